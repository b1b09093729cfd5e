/**
 * Decodes skb:kfree_skb's `reason` to the kernel's name. The numbering of enum skb_drop_reason
 * changes between kernels (new reasons are inserted in the middle), so it is read from this
 * kernel's BTF at run time rather than compiled in.
 */
import { execa } from 'execa';
import { perKernel } from './kernel-cache.js';

export interface DropReasons {
  /** Value → name without the SKB_DROP_REASON_ prefix. */
  readonly names: ReadonlyMap<number, string>;
  name(code: number): string;
  /** Value of NOT_SPECIFIED (the probes skip such frees of packets they do not follow). */
  readonly notSpecified: number;
  /** Value of NO_SOCKET, when this kernel has it (probes/kfree_skb.bt: raw sockets' copies). */
  readonly noSocket?: number;
}

/** Parses the enum from `bpftool btf dump file ... format raw` output. */
export function parseDropReasonEnum(raw: string): Map<number, string> {
  const names = new Map<number, string>();
  const start = raw.search(/^\[\d+\] ENUM 'skb_drop_reason'/m);
  if (start < 0) return names;
  const lines = raw.slice(start).split('\n');
  for (const line of lines.slice(1)) {
    const m = /^\s+'([A-Z0-9_]+)' val=(\d+)/.exec(line);
    if (!m) break;
    const [, name = '', val = '0'] = m;
    names.set(Number(val), name.replace(/^SKB_DROP_REASON_/, '').replace(/^SKB_/, ''));
  }
  return names;
}

export function dropReasonsFrom(names: ReadonlyMap<number, string>): DropReasons {
  let notSpecified = 2;
  let noSocket: number | undefined;
  for (const [v, n] of names) {
    if (n === 'NOT_SPECIFIED') notSpecified = v;
    if (n === 'NO_SOCKET') noSocket = v;
  }
  return {
    names,
    notSpecified,
    ...(noSocket !== undefined ? { noSocket } : {}),
    name: (code) => names.get(code) ?? `reason-${code}`,
  };
}

let cached: Promise<DropReasons> | undefined;

/**
 * Reads the table once per process, and once per kernel when it can be stored
 * (server/kernel-cache.ts); an empty table (no bpftool) still decodes as `reason-N`.
 */
export function loadDropReasons(): Promise<DropReasons> {
  cached ??= perKernel('drop-reasons', async () => {
    const r = await execa('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], { reject: false, maxBuffer: 256 * 1024 * 1024 }).catch(() => null);
    return r?.exitCode === 0 ? [...parseDropReasonEnum(String(r.stdout))] : [];
  }, (entries) => entries.length > 0).then((entries) => dropReasonsFrom(new Map(entries)));
  return cached;
}
