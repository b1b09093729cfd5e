/**
 * One probe source for both tiers: the .bt files are written against classic tracepoints
 * (`tracepoint:net:netif_rx { … args->skbaddr … }`, which every bpftrace has); on the fast tier
 * `rawTracepointProgram` turns the hop tracepoints into raw ones (`rawtracepoint:netif_rx
 * { … arg0 … }`), which cost almost nothing to attach (issue 15: 0.95–1.06 of untraced
 * throughput, against 0.72–0.81 for classic ones).
 *
 * A raw tracepoint's arguments are the tracepoint function's own (its TP_PROTO), in order, not
 * the fields of the classic event. Their positions are written down here from the kernel's
 * TP_PROTO and checked at start-up against BTF's `btf_trace_<name>` typedef (the kernel's own
 * declaration, with a leading `void *` for the context): if this kernel declares them otherwise,
 * the classic tier is used.
 */

export interface RawTracepoint {
  /** Classic event field → the TP_PROTO argument it comes from (position and C type). */
  readonly args: Readonly<Record<string, { readonly pos: number; readonly type: string }>>;
}

const SKB = { pos: 0, type: 'struct sk_buff *' } as const;

/** The tracepoints the hop and stats probes attach to, with their TP_PROTO arguments they read. */
export const RAW_TRACEPOINTS: Readonly<Record<string, RawTracepoint>> = {
  // TP_PROTO(struct sk_buff *skb, struct net_device *dev) — include/trace/events/net.h
  'net:net_dev_start_xmit': { args: { skbaddr: SKB } },
  // TP_PROTO(struct sk_buff *skb) — net_dev_template
  'net:netif_rx': { args: { skbaddr: SKB } },
  'net:netif_receive_skb': { args: { skbaddr: SKB } },
  // TP_PROTO(struct sk_buff *skb, void *location, enum skb_drop_reason reason[, struct sock *rx_sk])
  'skb:kfree_skb': { args: { skbaddr: SKB, reason: { pos: 2, type: 'enum skb_drop_reason' } } },
  // TP_PROTO(struct sk_buff *skb, void *location)
  'skb:consume_skb': { args: { skbaddr: SKB } },
};

/** The raw tracepoint's name (bpftrace's `rawtracepoint:<name>`): the event name without its group. */
const rawName = (tp: string): string => tp.slice(tp.indexOf(':') + 1);

/**
 * Parses the `typedef void (*btf_trace_<name>)(void *, …);` lines of `bpftool btf dump file
 * /sys/kernel/btf/vmlinux format c` into name → argument types (the leading context pointer left out).
 */
export function parseBtfTraceTypedefs(header: string, names: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const wanted = new Set(names);
  for (const m of header.matchAll(/^typedef void \(\*btf_trace_(\w+)\)\(([^)]*)\);$/gm)) {
    const name = m[1] ?? '';
    if (!wanted.has(name)) continue;
    const params = (m[2] ?? '').split(',').map((p) => p.trim());
    out.set(name, params.slice(1));
  }
  return out;
}

/** Whether the kernel's declared arguments agree with RAW_TRACEPOINTS: null when they do, else why not. */
export function checkRawArgs(declared: ReadonlyMap<string, readonly string[]>): string | null {
  const problems: string[] = [];
  for (const [tp, def] of Object.entries(RAW_TRACEPOINTS)) {
    const name = rawName(tp);
    const params = declared.get(name);
    if (!params) {
      problems.push(`BTF has no btf_trace_${name}`);
      continue;
    }
    for (const [field, { pos, type }] of Object.entries(def.args)) {
      const got = (params[pos] ?? '').replace(/^const\s+/, '');
      if (got !== type) problems.push(`${tp}'s ${field} is argument ${pos} of type ${type} by its TP_PROTO, BTF says ${params[pos] ?? 'nothing'}`);
    }
  }
  return problems.length === 0 ? null : `${problems.join('; ')}.`;
}

/**
 * The probe points a program attaches, as bpftrace names them (`rawtracepoint:netif_rx`,
 * `tracepoint:net:netif_rx`, `kprobe:…`), in program order, once each; BEGIN, END and interval
 * probes are not probe points. What a recording's header lists: the tier's own names.
 */
export function attachedProbes(program: string): string[] {
  const out = new Set<string>();
  for (const m of program.matchAll(/^\s*((?:rawtracepoint|tracepoint|kprobe|kretprobe|kfunc|kretfunc|fentry|fexit):[^\s{]+(?:\s*,\s*[^\s{]+)*)\s*$/gm)) {
    for (const p of (m[1] ?? '').split(',')) out.add(p.trim());
  }
  return [...out];
}

/**
 * The same program on raw tracepoints: each `tracepoint:<group>:<name>` probe of RAW_TRACEPOINTS
 * becomes `rawtracepoint:<name>`, and inside its block `args->field` / `args.field` become the
 * TP_PROTO argument. Other probes (notes, intervals) are left as they are. Probe headers stand on
 * their own line, as every .bt here writes them.
 */
export function rawTracepointProgram(program: string): string {
  let current: RawTracepoint | undefined;
  return program
    .split('\n')
    .map((line) => {
      const header = /^(\s*)tracepoint:(\w+:\w+)\s*$/.exec(line);
      if (header) {
        current = RAW_TRACEPOINTS[header[2] ?? ''];
        return current ? `${header[1] ?? ''}rawtracepoint:${rawName(header[2] ?? '')}` : line;
      }
      if (/^\s*(tracepoint|rawtracepoint|kprobe|kretprobe|interval|BEGIN|END|profile|kfunc|fentry)\b/.test(line)) current = undefined;
      if (!current) return line;
      const args = current.args;
      return line.replace(/\bargs(?:->|\.)(\w+)/g, (_all, field: string) => {
        const a = args[field];
        if (!a) throw new Error(`raw tracepoint program: no TP_PROTO argument for args.${field}`);
        return `arg${a.pos}`;
      });
    })
    .join('\n');
}
