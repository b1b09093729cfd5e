/**
 * Checks once per process that this kernel declares the hop tracepoints' arguments where
 * probes/tracepoints.ts expects them (BTF's btf_trace_<name> typedefs, read with bpftool), so
 * raw tracepoints can be used: the fast tier.
 */
import { execa } from 'execa';
import { RAW_TRACEPOINTS, checkRawArgs, parseBtfTraceTypedefs } from '../probes/tracepoints.js';
import { perKernel } from './kernel-cache.js';

export interface RawTracepointCheck {
  readonly ok: boolean;
  /** Why not, naming the fix where there is one. */
  readonly reason: string | null;
}

let cached: Promise<RawTracepointCheck> | undefined;

export function checkRawTracepoints(): Promise<RawTracepointCheck> {
  // Stored per kernel when settled (server/kernel-cache.ts); a failed or timed-out bpftool is not.
  cached ??= perKernel('raw-tracepoints', readRawTracepoints, (v) => v.settled).then(({ ok, reason }) => ({ ok, reason }));
  return cached;
}

async function readRawTracepoints(): Promise<RawTracepointCheck & { settled: boolean }> {
  const r = await execa('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { reject: false, timeout: 60_000, maxBuffer: 512 * 1024 * 1024 }).catch(() => null);
  if (!r || (r as { code?: string }).code === 'ENOENT' || r.failed && r.exitCode === undefined && !r.timedOut) {
    return { ok: false, settled: false, reason: 'their arguments cannot be checked against the kernel\'s BTF without bpftool (run `hoptrace setup` as root: it installs bpftool).' };
  }
  if (r.timedOut) return { ok: false, settled: false, reason: 'their arguments could not be checked against the kernel\'s BTF: `bpftool btf dump` took more than 60 s (a very busy host); the next start tries again.' };
  if (r.exitCode !== 0) return { ok: false, settled: false, reason: `their arguments could not be checked against the kernel's BTF: bpftool failed (${String(r.stderr).split('\n')[0]?.slice(0, 200) ?? ''}).` };
  const names = Object.keys(RAW_TRACEPOINTS).map((tp) => tp.slice(tp.indexOf(':') + 1));
  const reason = checkRawArgs(parseBtfTraceTypedefs(String(r.stdout), names));
  return reason === null ? { ok: true, settled: true, reason: null } : { ok: false, settled: true, reason: `this kernel declares them otherwise: ${reason}` };
}
