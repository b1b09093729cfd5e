/**
 * What this host lets hoptrace do, detected once (the service at start-up, `doctor` on demand):
 * bpftrace version, which probe kinds work on this kernel and, when one does not, why.
 *
 * `bpftrace --info` is not enough: it says `kprobe: yes` whenever the BPF program type exists,
 * even on kernels built without kprobe_events where every kprobe fails to attach. So each kind is
 * judged from what the kernel exposes in tracefs.
 */
import { accessSync, constants, existsSync, openSync, closeSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import type { Capabilities, ProbeKindSupport } from '../shared/api-types.js';
import { canLoadBpf, preflight, TRACEFS_DIRS } from './preflight.js';
import { bpftraceCommand } from './bpftrace-binary.js';
import { deepestTier, type AreaDepth, type DepthArea, type DeepScriptStatus, type ProbeTiers, type TierOption } from '../shared/probe-tiers.js';
import { DEEP_PROBES, NOTE_PROBES } from '../probes/notes/assemble.js';

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

/** Kernel functions present in BTF (vmlinux and modules), from `bpftool btf dump ... format raw`. */
async function btfFunctions(names: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  const files = ['/sys/kernel/btf/vmlinux'];
  try {
    files.push(...readdirSync('/sys/kernel/btf').filter((f) => f !== 'vmlinux').map((f) => `/sys/kernel/btf/${f}`));
  } catch {
    return found;
  }
  const wanted = new Set(names);
  for (const file of files) {
    const r = await execa('bpftool', ['btf', 'dump', 'file', file, 'format', 'raw'], { reject: false, timeout: 30_000, maxBuffer: 512 * 1024 * 1024 }).catch(() => null);
    if (!r || r.exitCode !== 0) continue;
    for (const m of String(r.stdout).matchAll(/^\[\d+\] FUNC '([^']+)'/gm)) if (wanted.has(m[1] ?? '')) found.add(m[1] ?? '');
    if (found.size === wanted.size) break;
  }
  return found;
}

/** Whether nft can run (the rule-trace tier). */
async function nftSupport(root: boolean): Promise<ProbeKindSupport> {
  const v = await execa('nft', ['--version'], { reject: false }).catch(() => null);
  if (!v || v.exitCode !== 0) return { available: false, reason: 'nft (nftables) is not installed: run `hoptrace setup` as root (it installs nftables).' };
  if (!root) return { available: false, reason: 'adding the tracing table in each namespace needs root.' };
  return { available: true, reason: null };
}

/**
 * How deep each part of the path can be seen here (see shared/probe-tiers.ts): the
 * function tier needs kprobes and the functions in BTF, the rule trace needs nft, the notes tier
 * its tracepoints, the device tier the hop probes.
 */
export async function detectTiers(input: {
  tracefs: string | null; probes: Capabilities['probes']; tracepoints: Readonly<Record<string, boolean>>; root: boolean; canTrace: boolean;
}): Promise<ProbeTiers> {
  const tp = (name: string): boolean => input.tracefs !== null && existsSync(`${input.tracefs}/events/${name.replace(':', '/')}`);
  const allFunctions = DEEP_PROBES.flatMap((p) => p.functions ?? []);
  const inBtf = await btfFunctions(allFunctions);
  const kprobe = input.probes.kprobe;
  const kfunc = input.probes.kfunc;
  const fn = (functions: readonly string[], shows: string): TierOption => {
    const missing = functions.filter((f) => !inBtf.has(f));
    let reason: string | null = null;
    if (!kprobe.available) {
      // The detailed why is in probes.kprobe / probes.kfunc: keep this one short, it repeats per area.
      reason = `no kprobes on this kernel${kfunc.available ? ' (fentry works, but the function-level scripts use kprobes)' : ''}.`;
    } else if (missing.length > 0) {
      reason = `this kernel has no ${missing.join(', ')} (not in BTF).`;
    }
    return { tier: 'function', shows, needs: functions.map((f) => `kprobe:${f}`), available: reason === null && input.canTrace, reason: reason ?? (input.canTrace ? null : 'the host cannot trace (see problems).') };
  };
  const tracepoints = (names: readonly string[], shows: string): TierOption => {
    const missing = names.filter((n) => !tp(n));
    const reason = missing.length > 0 ? `this kernel lacks tracepoint ${missing.join(', ')}.` : input.canTrace ? null : 'the host cannot trace (see problems).';
    return { tier: 'tracepoint', shows, needs: names.map((n) => `tracepoint:${n}`), available: reason === null, reason };
  };
  const hopsOk = input.canTrace && Object.values(input.tracepoints).every(Boolean);
  const device = (shows: string): TierOption => ({
    tier: 'device', shows, needs: Object.keys(input.tracepoints).map((n) => `tracepoint:${n}`), available: hopsOk,
    reason: hopsOk ? null : 'the hop probes cannot run here (see problems and tracepoints).',
  });
  const nft = await nftSupport(input.root);
  const ruleTrace = (shows: string): TierOption => ({ tier: 'rule-trace', shows, needs: ['nft', 'nsenter'], available: nft.available && input.canTrace, reason: nft.reason ?? (input.canTrace ? null : 'the host cannot trace (see problems).') });
  const noteTps = (file: string): readonly string[] => NOTE_PROBES.find((p) => p.file === file)?.tracepoints ?? [];
  const area = (name: DepthArea, options: TierOption[]): AreaDepth => ({ area: name, tier: deepestTier(options), options });
  const areas: AreaDepth[] = [
    area('netfilter', [
      fn(['nf_hook_slow'], 'each hook run: family, hook, verdict, time spent'),
      ruleTrace('the rule, chain and verdict each packet met (trace --netfilter)'),
      device('drops with reason NETFILTER_DROP'),
    ]),
    area('nat', [
      fn(['nf_nat_manip_pkt'], 'every NAT rewrite: side, direction, result'),
      ruleTrace('the NAT rule that set up a connection, named on its packets'),
      device('the tuple change between two hops'),
    ]),
    area('bridge', [
      fn(['br_forward', 'br_flood'], 'forwarding decision: FDB hit to a port, or flood'),
      tracepoints(noteTps('fdb.bt'), 'MAC learning (trace --notes)'),
      device('which ports a frame left by'),
    ]),
    area('veth', [
      fn(['veth_xmit'], 'each crossing and whether the peer dropped it'),
      device('transmit on one end, receive on the peer'),
    ]),
    area('routing', [
      fn(['ip_forward'], 'time in ip_forward and its result'),
      tracepoints([...noteTps('fib.bt'), ...noteTps('fib6.bt')], 'the route table and device each lookup chose (trace --notes)'),
      device('the interface the packet left by'),
    ]),
    area('queueing', [tracepoints(noteTps('qdisc.bt'), 'time waited in qdiscs (trace --notes)'), device('gaps between hops')]),
    area('neighbour', [tracepoints(noteTps('neigh.bt'), 'waits for neighbour resolution (trace --notes)'), device('gaps between hops')]),
    area('icmp', [tracepoints(noteTps('icmp.bt'), 'the ICMP error a drop caused (trace --notes)'), device('the ICMP packet itself, as a packet')]),
  ];
  const deepScripts: DeepScriptStatus[] = DEEP_PROBES.map((p) => {
    const functions = p.functions ?? [];
    const missing = functions.filter((f) => !inBtf.has(f));
    const attachable = kprobe.available && missing.length === 0;
    return {
      file: p.file, functions, inBtf: missing.length === 0, attachable,
      reason: attachable ? null : !kprobe.available ? 'no kprobes on this kernel (see probes.kprobe).' : `not in BTF: ${missing.join(', ')}.`,
    };
  });
  return { areas, deepScripts };
}

/** Detects everything at once. Never throws: what cannot be checked is reported as a problem. */
export async function detectCapabilities(): Promise<Capabilities & { readonly tiers: ProbeTiers }> {
  const pre = await preflight();
  const tracefs = tracefsDir();
  const btf = existsSync('/sys/kernel/btf/vmlinux');
  const info = pre.bpftraceVersion === null ? null : await execa(await bpftraceCommand(), ['--info'], { reject: false, all: true, timeout: 15_000 }).then((r) => String(r.all ?? ''), () => null);
  const tracepoints: Record<string, boolean> = {};
  for (const tp of HOP_TRACEPOINTS) {
    const [group = '', name = ''] = tp.split(':');
    tracepoints[tp] = tracefs !== null && existsSync(`${tracefs}/events/${group}/${name}`);
  }
  // Root as the kernel sees it: uid 0 with the capabilities to load BPF (server/preflight.ts).
  const root = canLoadBpf();
  const probes = {
    tracepoint: tracepointSupport(tracefs, tracepoints),
    kprobe: kprobeSupport(tracefs),
    kfunc: kfuncSupport(tracefs, btf, info),
  };
  const tiers = await detectTiers({ tracefs, probes, tracepoints, root, canTrace: pre.ok });
  return {
    detectedAt: new Date().toISOString(),
    root,
    kernel: release(),
    bpftrace: {
      version: pre.bpftraceVersion, path: pre.bpftrace.command, source: pre.bpftrace.source, tier: pre.bpftrace.tier,
      why: pre.bpftrace.why, warnings: pre.bpftrace.warnings,
    },
    btf,
    tracefs,
    probes,
    tracepoints,
    canTrace: pre.ok,
    problems: pre.problems,
    tiers,
  };
}

export interface NoteSupport {
  /** Whether the function-level tier (probes/deep/) can attach: kprobes work and its functions are in BTF. */
  readonly deep: boolean;
  /** Note tracepoints this kernel lacks (their blocks are left out). */
  readonly missingTracepoints: ReadonlySet<string>;
  /** Sentences on what is left out and why. */
  readonly notes: readonly string[];
}

/** What `trace --notes` can attach here: cheap checks only (tracefs, kprobe_events, BTF when kprobes exist). */
export async function detectNoteSupport(): Promise<NoteSupport> {
  const tracefs = tracefsDir();
  const missing = new Set<string>();
  for (const p of NOTE_PROBES) {
    for (const tp of p.tracepoints ?? []) if (!tracefs || !existsSync(`${tracefs}/events/${tp.replace(':', '/')}`)) missing.add(tp);
  }
  const out: string[] = [];
  if (missing.size > 0) out.push(`notes left out, this kernel lacks: ${[...missing].join(', ')}.`);
  const kprobe = kprobeSupport(tracefs);
  if (!kprobe.available) {
    out.push(`function-level notes (probes/deep/) off: ${kprobe.reason ?? 'no kprobes.'}`);
    return { deep: false, missingTracepoints: missing, notes: out };
  }
  const fns = DEEP_PROBES.flatMap((p) => p.functions ?? []);
  const inBtf = await btfFunctions(fns);
  const absent = fns.filter((f) => !inBtf.has(f));
  if (absent.length > 0) out.push(`function-level notes off: this kernel has no ${absent.join(', ')}.`);
  return { deep: absent.length === 0, missingTracepoints: missing, notes: out };
}
