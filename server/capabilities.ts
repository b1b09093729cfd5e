/**
 * What this host lets hoptrace do, detected once (the service at start-up, `doctor` on demand):
 * bpftrace version, which probe kinds work on this kernel and, when one does not, why.
 *
 * `bpftrace --info` is not enough: it says `kprobe: yes` whenever the BPF program type exists,
 * even on kernels built without kprobe_events where every kprobe fails to attach. So each kind is
 * judged from what the kernel exposes in tracefs.
 */
import { accessSync, constants, existsSync, openSync, closeSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import type { Capabilities, ProbeKindSupport } from '../shared/api-types.js';
import { preflight, TRACEFS_DIRS } from './preflight.js';

/** The tracepoints the hop probes (probes/*.bt) attach to. */
export const HOP_TRACEPOINTS = [
  'net:net_dev_start_xmit',
  'net:netif_rx',
  'net:netif_receive_skb',
  'skb:kfree_skb',
  'skb:consume_skb',
] as const;

function tracefsDir(): string | null {
  return TRACEFS_DIRS.find((d) => existsSync(`${d}/events`)) ?? null;
}

function tracepointSupport(tracefs: string | null, present: Record<string, boolean>): ProbeKindSupport {
  if (!tracefs) return { available: false, reason: 'tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing).' };
  const missing = Object.entries(present).filter(([, ok]) => !ok).map(([tp]) => tp);
  if (missing.length > 0) return { available: true, reason: `this kernel lacks ${missing.join(', ')}: those hops are not seen.` };
  return { available: true, reason: null };
}

function kprobeSupport(tracefs: string | null): ProbeKindSupport {
  if (!tracefs) return { available: false, reason: 'tracefs is not mounted, so kprobes cannot be created.' };
  if (!existsSync(`${tracefs}/kprobe_events`)) {
    return { available: false, reason: `this kernel has no ${tracefs}/kprobe_events: it was built without CONFIG_KPROBE_EVENTS, so kprobe: probes fail to attach.` };
  }
  return { available: true, reason: null };
}

/** Whether the file can be opened for reading (not just stat'ed: tracefs files can be EPERM on open). */
function readable(path: string): string | null {
  try {
    accessSync(path, constants.R_OK);
    closeSync(openSync(path, 'r'));
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable';
  }
}

function kfuncSupport(tracefs: string | null, btf: boolean, info: string | null): ProbeKindSupport {
  if (!btf) return { available: false, reason: 'kfunc probes need kernel BTF (/sys/kernel/btf/vmlinux), which this kernel lacks.' };
  if (!tracefs) return { available: false, reason: 'tracefs is not mounted: bpftrace cannot list traceable functions.' };
  // bpftrace 0.17 refuses kfunc when it cannot read available_filter_functions (EPERM here).
  const err = readable(`${tracefs}/available_filter_functions`);
  if (err) return { available: false, reason: `bpftrace cannot read ${tracefs}/available_filter_functions (${err}), so it refuses kfunc: probes on this kernel.` };
  if (info !== null && /^\s*kfunc:\s*no\s*$/m.test(info)) return { available: false, reason: 'bpftrace --info reports kfunc: no for this kernel.' };
  return { available: true, reason: null };
}

/** Detects everything at once. Never throws: what cannot be checked is reported as a problem. */
export async function detectCapabilities(): Promise<Capabilities> {
  const pre = await preflight();
  const tracefs = tracefsDir();
  const btf = existsSync('/sys/kernel/btf/vmlinux');
  const info = pre.bpftraceVersion === null ? null : await execa('bpftrace', ['--info'], { reject: false, all: true, timeout: 15_000 }).then((r) => String(r.all ?? ''), () => null);
  const tracepoints: Record<string, boolean> = {};
  for (const tp of HOP_TRACEPOINTS) {
    const [group = '', name = ''] = tp.split(':');
    tracepoints[tp] = tracefs !== null && existsSync(`${tracefs}/events/${group}/${name}`);
  }
  return {
    detectedAt: new Date().toISOString(),
    root: process.getuid?.() === 0,
    kernel: release(),
    bpftrace: { version: pre.bpftraceVersion },
    btf,
    tracefs,
    probes: {
      tracepoint: tracepointSupport(tracefs, tracepoints),
      kprobe: kprobeSupport(tracefs),
      kfunc: kfuncSupport(tracefs, btf, info),
    },
    tracepoints,
    canTrace: pre.ok,
    problems: pre.problems,
  };
}
