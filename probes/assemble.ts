/**
 * Builds the one bpftrace program a trace runs from the fragments in this folder: one file per
 * hop kind (net_dev_start_xmit.bt, netif_rx.bt, netif_receive_skb.bt, kfree_skb.bt,
 * consume_skb.bt) plus the shared decode.bt and emit.bt. The only things substituted are
 * numbers this code produced and a filter expression compiled from a parsed AST
 * (shared/filter): no user text ever reaches the program.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HOP_KIND_CODES } from './hop-line.js';
import type { HopKind } from '../shared/hop-event.js';

/** Hop probes in the order they are attached. */
export const HOP_PROBES: ReadonlyArray<{ file: string; kind: HopKind; tracepoint: string }> = [
  { file: 'net_dev_start_xmit.bt', kind: 'xmit', tracepoint: 'net:net_dev_start_xmit' },
  { file: 'netif_rx.bt', kind: 'rx', tracepoint: 'net:netif_rx' },
  { file: 'netif_receive_skb.bt', kind: 'recv', tracepoint: 'net:netif_receive_skb' },
  { file: 'kfree_skb.bt', kind: 'drop', tracepoint: 'skb:kfree_skb' },
  { file: 'consume_skb.bt', kind: 'consume', tracepoint: 'skb:consume_skb' },
];

/** How many hops of a not-yet-matching packet the kernel keeps, waiting for a match. */
export const PENDING_HOPS = 4;

export interface ProgramOptions {
  /** bpftrace boolean expression from compileToBpftrace(); '1' for no filter. */
  readonly filterExpr: string;
  /** The tracer's own namespace: its loopback is never traced (it carries our own stream). */
  readonly selfNetns: number;
  /** Value of SKB_DROP_REASON_NOT_SPECIFIED on this kernel (from BTF). */
  readonly reasonNotSpecified: number;
  /** Tracepoints this kernel lacks are left out (reported by the caller, not fatal). */
  readonly skip?: ReadonlySet<HopKind>;
}

/** Where the .bt fragments are: beside this file in the source tree, or ../../probes from dist/. */
export function probesDir(): string {
  const candidates = [new URL('./', import.meta.url), new URL('../../probes/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(`${dir}decode.bt`)) return dir;
  }
  throw new Error('probe fragments (probes/*.bt) not found beside the program');
}

const FIELDS = [
  'nsecs', 'cpu', '$skb', '$netns', '$ifindex', '$fam', '$l4', '$len', '$id', '$s0', '$s1', '$d0', '$d1',
  '$sp', '$dp', '$it', '$iid', '$fl', '$seq', '$reason', '$ifname',
] as const;
/** Format of one hop line after the kind code; see probes/README.md and hop-line.ts. */
const LINE_FORMAT = '%llu %u %llx %u %u %u %u %u %u %llu %llu %llu %llu %u %u %u %u %u %u %u %s';

function pendingStore(kind: HopKind): string {
  const tuple = [String(HOP_KIND_CODES[kind]), ...FIELDS].join(', ');
  return ` else {
      $n = @pn[$skb];
      if ($n < ${PENDING_HOPS}) { @ph[$skb, $n] = (${tuple}); @pn[$skb] = $n + 1; }
    }`;
}

function pendingFlush(): string {
  const lines = ['      $n = @pn[$skb];'];
  for (let i = 0; i < PENDING_HOPS; i++) {
    const args = Array.from({ length: FIELDS.length + 1 }, (_, k) => `$q${i}.${k}`).join(', ');
    lines.push(`      if ($n > ${i}) { $q${i} = @ph[$skb, ${i}]; printf("H %u ${LINE_FORMAT}\\n", ${args}); delete(@ph[$skb, ${i}]); }`);
  }
  lines.push('      if ($n > 0) { delete(@pn[$skb]); }');
  return lines.join('\n');
}

function pendingClear(): string {
  const dels = Array.from({ length: PENDING_HOPS }, (_, i) => `delete(@ph[$skb, ${i}]);`).join(' ');
  return `  if (@pn[$skb] > 0) { ${dels} delete(@pn[$skb]); }`;
}

function assertNumeric(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${n}`);
}

export function buildHopProgram(opts: ProgramOptions): string {
  assertNumeric('selfNetns', opts.selfNetns);
  assertNumeric('reasonNotSpecified', opts.reasonNotSpecified);
  // Defence in depth: the compiled filter is ours, but refuse anything that is not an expression.
  if (!/^[\s\w$()&|!=<>^~+-]*$/.test(opts.filterExpr)) throw new Error('compiled filter has unexpected characters');
  const filtered = opts.filterExpr.trim() !== '1';
  const dir = probesDir();
  const read = (f: string): string => readFileSync(`${dir}${f}`, 'utf8');
  const strip = (s: string): string => s.split('\n').filter((l) => !/^\s*\/\//.test(l)).join('\n');
  const decode = strip(read('decode.bt'));
  const emitTemplate = strip(read('emit.bt'));

  const blocks: string[] = [];
  for (const probe of HOP_PROBES) {
    if (opts.skip?.has(probe.kind)) continue;
    const emit = emitTemplate
      .replace('{{SELF_NETNS}}', String(opts.selfNetns))
      .replace('{{FILTER}}', opts.filterExpr)
      .replace('{{KIND}}', String(HOP_KIND_CODES[probe.kind]))
      .replace('{{FLUSH_PENDING}}', filtered ? pendingFlush() : '')
      .replace('{{STORE_PENDING}}', filtered ? pendingStore(probe.kind) : '');
    const body = read(probe.file)
      .replace(/^\s*\/\/ @decode\s*$/m, decode)
      .replace(/^\s*\/\/ @emit \w+\s*$/m, emit)
      .replace(/^\s*\/\/ @clear-pending\s*$/m, filtered ? pendingClear() : '')
      .replace('{{REASON_NOT_SPECIFIED}}', String(opts.reasonNotSpecified));
    blocks.push(body);
  }
  const clears = filtered ? 'clear(@follow); clear(@pn); clear(@ph);' : 'clear(@follow);';
  return [
    'BEGIN { printf("READY\\n"); }',
    ...blocks,
    // Safety net for map capacity: entries of skbs freed without a tracepoint are stale after 1 s
    // anyway; clearing them every 10 s keeps the maps from filling up on long runs.
    `interval:s:10 { ${clears} }`,
    // bpftrace prints every non-empty map at exit: clear ours so the output stays hop lines only.
    `END { ${clears} }`,
    '',
  ].join('\n');
}
