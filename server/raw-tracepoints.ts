/**
 * Checks once per process that this kernel declares the hop tracepoints' arguments where
 * probes/tracepoints.ts expects them (BTF's btf_trace_<name> typedefs, read with bpftool), so
 * raw tracepoints can be used: the fast tier.
 */
import { execa } from 'execa';
import { RAW_TRACEPOINTS, checkRawArgs, parseBtfTraceTypedefs } from '../probes/tracepoints.js';

export interface RawTracepointCheck {
  readonly ok: boolean;
  /** Why not, naming the fix where there is one. */
  readonly reason: string | null;
}

let cached: Promise<RawTracepointCheck> | undefined;

export function checkRawTracepoints(): Promise<RawTracepointCheck> {
  cached ??= (async () => {
    const r = await execa('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { reject: false, timeout: 60_000, maxBuffer: 512 * 1024 * 1024 }).catch(() => null);
    if (!r || r.exitCode !== 0) return { ok: false, reason: 'their arguments cannot be checked against the kernel\'s BTF without bpftool (run `hoptrace setup` as root: it installs bpftool).' };
    const names = Object.keys(RAW_TRACEPOINTS).map((tp) => tp.slice(tp.indexOf(':') + 1));
    const reason = checkRawArgs(parseBtfTraceTypedefs(String(r.stdout), names));
    return reason === null ? { ok: true, reason: null } : { ok: false, reason: `this kernel declares them otherwise: ${reason}` };
  })();
  return cached;
}
