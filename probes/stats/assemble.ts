/**
 * Builds the `hoptrace stats` bpftrace program: one probe per hop kind (xmit.bt, rx.bt,
 * recv.bt, drop.bt, consume.bt in this folder), each followed by the shared step.bt that
 * turns consecutive hops of one skb into in-kernel aggregates, plus tick.bt for the snapshots.
 * Packets are chosen exactly as `trace` chooses them: the hop probes' header decode
 * (probes/decode.bt), the compiled filter (shared/filter compileToBpftrace), the same flow
 * memory for filtered runs, and optional flow sampling (probes/sample.ts). Only numbers this
 * code produced and the compiled filter are substituted: no user text reaches the program.
 *
 * Output (text, parsed by shared/stats/parse.ts):
 *   B <nsecs>           start, then READY once every probe is attached
 *   T <nsecs> ... E     a snapshot of every aggregate map each interval ("F" instead of "T" at the end)
 * Maps (cumulative; places pack (netns << 32) | (ifindex << 8) | kind, kinds as in hop-line.ts):
 *   @seg[from, to, bucket] = count      @segmax[from, to] = max ns (zeroed after each print)
 *   @transit[netns, bucket] = count     @transitmax[netns] = max ns (zeroed after each print)
 *   @drops[netns, ifindex, reason] = count
 *   @ifs[netns, ifindex, kind] = stats(IP bytes)   kind 1 transmit, 3 receive
 * Buckets: see shared/stats/buckets.ts (4 per power of two).
 */
import { readFileSync } from 'node:fs';
import { probesDir, FLOW_MEMORY_NS, FLOW_REFRESH_NS, SOCKET_FIRST_HOPS, socketMatch } from '../assemble.js';
import { HOP_KIND_CODES } from '../hop-line.js';
import { sampleCondition } from '../sample.js';
import { portToRaw } from '../../shared/filter/raw.js';
import { rawTracepointProgram } from '../tracepoints.js';
import { expandSkbWords } from '../skb-words.js';
import type { HopKind } from '../../shared/hop-event.js';
import type { ProbeTier } from '../../shared/api-types.js';

export interface StatsProgramOptions {
  /** 'fast': raw tracepoints (probes/tracepoints.ts); 'classic' (default): classic ones. */
  readonly tier?: ProbeTier;
  /** bpftrace boolean expression from compileToBpftrace(); '1' for no filter. */
  readonly filterExpr: string;
  /** The same filter from compileSocketToBpftrace(), tried on the sending socket's tuple as `trace` does (probes/emit.bt). */
  readonly socketFilterExpr?: string;
  /** The tracer's own namespace: on its loopback, the connections of `selfPorts` are never counted. */
  readonly selfNetns: number;
  /** The service's own listening ports (none for the CLI): left out on its own loopback. */
  readonly selfPorts?: readonly number[];
  /** Value of SKB_DROP_REASON_NOT_SPECIFIED on this kernel (from BTF). */
  readonly reasonNotSpecified: number;
  /**
   * Drop reasons that mean a socket's discard after delivery (shared/fate.ts), as this kernel
   * numbers them: `bySocket` always, `afterArrival` when the packet's last hop was its stack's
   * `recv`. Such a free is counted as the packet's consume, not as a drop, as `trace` reads it.
   * Absent: every free with a reason is a drop.
   */
  readonly discardReasons?: { readonly bySocket: readonly number[]; readonly afterArrival: readonly number[] };
  /** Snapshot every this many ms; undefined: one snapshot at the end. */
  readonly intervalMs?: number;
  /** Follow 1 in `sampleRate` flows (default 1: all). */
  readonly sampleRate?: number;
  /** Tracepoints this kernel lacks are left out. */
  readonly skip?: ReadonlySet<HopKind>;
}

export const STATS_PROBES: ReadonlyArray<{ file: string; kind: HopKind }> = [
  { file: 'xmit.bt', kind: 'xmit' },
  { file: 'rx.bt', kind: 'rx' },
  { file: 'recv.bt', kind: 'recv' },
  { file: 'drop.bt', kind: 'drop' },
  { file: 'consume.bt', kind: 'consume' },
];

/** Map names in snapshot order. */
export const STATS_MAPS = ['seg', 'segmax', 'transit', 'transitmax', 'drops', 'ifs'] as const;

/** bpftrace statements putting the bucket index of `input` into `output` (see shared/stats/buckets.ts). */
export function bucketCode(input: string, output: string): string {
  const steps: Array<[string, number]> = [['0x100000000', 32], ['0x10000', 16], ['0x100', 8], ['0x10', 4], ['0x4', 2]];
  return [
    `      $bv = ${input}; $be = (uint64)0;`,
    ...steps.map(([lim, sh]) => `      if ($bv >= ${lim}) { $bv = $bv >> ${sh}; $be = $be + ${sh}; }`),
    '      if ($bv >= 0x2) { $be = $be + 1; }',
    `      ${output} = ${input} < 4 ? ${input} : (($be << 2) | ((${input} >> ($be - 2)) & 3));`,
  ].join('\n');
}

function assertNumeric(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${n}`);
}

const TUPLE = `
  $s0 = $fam == 4 ? $sa : $sa0; $s1 = $fam == 4 ? (uint64)0 : $sa1;
  $d0 = $fam == 4 ? $da : $da0; $d1 = $fam == 4 ? (uint64)0 : $da1;
  $ports = ($sp << 16) | $dp;`;
// Flow memory as in probes/assemble.ts (trace): the same key, both directions, same lifetime.
const FLOW_KEY = '$s0, $s1, $d0, $d1, $ports, $l4';
const FLOW_REVERSE_KEY = '$d0, $d1, $s0, $s1, ($dp << 16) | $sp, $l4';

/**
 * A first hop ($cont 0) the header did not match, of a packet a local socket sent: the filter on
 * the socket's own tuple (`socket`, from socketMatch), as `trace` tries it (probes/emit.bt),
 * so a connection NATed in its own namespace's OUTPUT counts by what it asked for.
 */
function socketMatchCode(socketRead: string, socket: string): string {
  return [
    // skb_iif 0: no device has received the skb yet, as in trace (probes/emit.bt).
    '  if (!$m && !$cont && $fam != 0 && $enc == 0 && ($l4 == 6 || $l4 == 17) && $skb->skb_iif == 0) {',
    '    $sk = $skb->sk; $sr = (uint64)0;',
    '    if ($sk != 0) {',
    socketRead,
    `        if ($sr != 0) { $m = ${socket}; }`,
    '    }',
    '  }',
  ].join('\n');
}

function matchCode(decode: string, filterExpr: string, sample: string, socket: string | null): string {
  const filtered = filterExpr.trim() !== '1';
  if (!filtered && sample === '1') return '  $m = 1;';
  if (!filtered) {
    // Unfiltered sampling decides on a packet's first hop only: later hops are followed by skb.
    return ['  if (!$cont) {', decode, TUPLE, `  $m = $fam != 0 && ${sample};`, '  }'].join('\n');
  }
  return [
    // A fragment's key, read before decode.bt moves $h to an inner header: the outer source and
    // destination (one read, IPv4 fragments that start a state only) with the id, below.
    '  $fk = (uint64)0;',
    '  if (!$cont && !$v6 && (($w >> 48) & 0xff3f) != 0) { $fk = *(uint64 *)($h + 12); }',
    decode,
    TUPLE,
    `  if (!$m) { $m = $fam != 0 && (${filterExpr}) && ${sample}; }`,
    // A later fragment has no ports to match: it matches when its datagram's first fragment did,
    // by outer addresses and id (probes/stats/README.md "Fragments"). The last one forgets the key.
    '  if ($fk != 0) {',
    '    $fid = ($w >> 32) & 0xffff; $frg = ($w >> 48) & 0xff3f;',
    '    if ($m) {',
    `      if (($frg & 0xff1f) == 0) { @frags[$fk, $fid] = $now; }`,
    '    } else {',
    '      $fm = @frags[$fk, $fid];',
    `      $m = $fm != 0 && $now - $fm < ${FLOW_MEMORY_NS};`,
    '      if ($m && ($frg & 0x20) == 0) { delete(@frags[$fk, $fid]); }',
    '    }',
    '  }',
    ...(socket === null ? [] : [socket]),
    // As in trace (probes/assemble.ts FLOW_REFRESH_NS): one lookup, and a rewrite only when stale.
    // (Read unconditionally: under 0.17 a map read assigned to an already typed variable fails
    // to type. A non-IP packet's tuple is all zeros, a key never followed.)
    `  $fl0 = @flows[${FLOW_KEY}];`,
    `  if (!$m && $fam != 0) { $m = $fl0 != 0 && $now - $fl0 < ${FLOW_MEMORY_NS}; }`,
    `  if ($m && ($fl0 == 0 || $now - $fl0 > ${FLOW_REFRESH_NS})) { @flows[${FLOW_KEY}] = $now; @flows[${FLOW_REVERSE_KEY}] = $now; }`,
  ].join('\n');
}

function afterCode(kind: HopKind): string {
  const code = HOP_KIND_CODES[kind];
  switch (kind) {
    case 'xmit':
    case 'recv':
      return `    @skbs[$skb] = ($now, $loc, $sig, $enter, $entered);\n    @ifs[$netns, $ifindex, ${code}] = stats($bytes);`;
    case 'rx':
      return '    @skbs[$skb] = ($now, $loc, $sig, $enter, $entered);';
    case 'drop':
      // The place's kind says whether this free was a drop or a discard after delivery (dropKind).
      return `    if (($cont || $real) && ($loc & 0xff) == ${code}) { @drops[$netns, $ifindex, $reason] = count(); }`;
    case 'consume':
      return '';
  }
}

/**
 * The kind code of a drop probe's place: a free the socket layer made of a packet it had (a
 * reason of `bySocket`; or one of `afterArrival` right after its stack's `recv`, which a
 * continued packet's state says: last kind recv, same namespace) is the packet's consume, as
 * shared/fate.ts reads it in `trace`; anything else a drop. Numbers only.
 */
function dropKind(d: StatsProgramOptions['discardReasons']): string {
  const drop = HOP_KIND_CODES.drop;
  if (!d || (d.bySocket.length === 0 && d.afterArrival.length === 0)) return String(drop);
  for (const r of [...d.bySocket, ...d.afterArrival]) assertNumeric('discard reason', r);
  const any = (codes: readonly number[]): string => codes.map((r) => `$reason == ${r}`).join(' || ') || '0';
  return `(uint64)((${any(d.bySocket)}) || ((${any(d.afterArrival)}) && $cont && ($st.1 & 0xff) == ${HOP_KIND_CODES.recv}) ? ${HOP_KIND_CODES.consume} : ${drop})`;
}

/**
 * The kind code of a consume's place. An skb freed while still encapsulated (its outer header at
 * network_header) went out as other skbs on that device: ip_do_fragment frees the original right
 * after handing its fragments to the underlay (a GSO packet's segments likewise). Its segment is
 * the packet's way to that device's transmit, not an end (probes/stats/README.md "Fragments").
 */
function consumeKind(): string {
  // Encapsulated: step.bt took the signature from the inner header, so it differs from the word at $h.
  return `($sig != ($v6 ? ($w & 0x00ffffffffffffff) : $w) ? ${HOP_KIND_CODES.xmit} : ${HOP_KIND_CODES.consume})`;
}

/**
 * When a continued hop counts no segment: a fragment's skb is one of several of its packet, and
 * only the first fragment's hops are the packet's segments; a fragment freed normally was joined
 * into its reassembled datagram (which goes on in another fragment's skb), not consumed.
 */
function noSegment(kind: HopKind): string {
  return kind === 'consume' ? '!$v6 && (($w >> 48) & 0xff3f) != 0' : '!$v6 && (($w >> 48) & 0xff1f) != 0';
}

/** The snapshot statements: a map no attached probe writes does not exist, and printing it fails. */
function snapshot(skip: ReadonlySet<HopKind> | undefined): string {
  return [
    'print(@seg);', 'print(@segmax);', 'zero(@segmax);',
    'print(@transit);', 'print(@transitmax);', 'zero(@transitmax);',
    ...(skip?.has('drop') ? [] : ['print(@drops);']),
    ...(skip?.has('xmit') && skip.has('recv') ? [] : ['print(@ifs);']),
  ].map((s) => `  ${s}`).join('\n');
}

export function buildStatsProgram(opts: StatsProgramOptions): string {
  assertNumeric('selfNetns', opts.selfNetns);
  assertNumeric('reasonNotSpecified', opts.reasonNotSpecified);
  if (opts.intervalMs !== undefined && (!Number.isSafeInteger(opts.intervalMs) || opts.intervalMs < 1)) {
    throw new Error(`intervalMs must be a whole number ≥ 1, got ${opts.intervalMs}`);
  }
  // Defence in depth: the compiled filter is ours, but refuse anything that is not an expression.
  if (!/^[\s\w$()&|!=<>^~+-]*$/.test(opts.filterExpr)) throw new Error('compiled filter has unexpected characters');
  for (const p of opts.selfPorts ?? []) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`selfPorts must be ports 1-65535, got ${p}`);
  const selfPorts = (opts.selfPorts ?? []).map((p) => `$lsp == ${portToRaw(p)} || $ldp == ${portToRaw(p)}`).join(' || ') || '0';
  const sample = sampleCondition(opts.sampleRate ?? 1);
  const dir = probesDir();
  const marker = /^\s*\/\/ @(match|after|bucket|step|snapshot|where)\b/;
  const strip = (s: string): string => s.split('\n').filter((l) => !/^\s*\/\//.test(l) || marker.test(l)).join('\n');
  const read = (f: string): string => strip(readFileSync(`${dir}${f}`, 'utf8'));
  const decode = read('decode.bt');
  const socketRead = read('socket.bt');
  if (opts.socketFilterExpr !== undefined && !/^[\s\w$()&|!=<>^~+-]*$/.test(opts.socketFilterExpr)) throw new Error('compiled filter has unexpected characters');
  const socket = socketMatch(opts.filterExpr, opts.socketFilterExpr, sample);
  const step = read('stats/step.bt');
  const withBuckets = (s: string): string => s.replace(/^\s*\/\/ @bucket (\$\w+) (\$\w+)\s*$/gm, (_l, i: string, o: string) => bucketCode(i, o));

  // BEGIN types @skbs before any probe reads it (bpftrace 0.17 cannot infer a tuple value type from
  // a read that precedes the first write), then announces the start time and readiness.
  const begin = [
    'BEGIN',
    '{',
    '  @skbs[(struct sk_buff *)0] = ((uint64)0, (uint64)0, (uint64)0, (uint64)0, (uint64)0);',
    '  delete(@skbs[(struct sk_buff *)0]);',
    '  printf("B %llu\\n", nsecs);',
    '  printf("READY\\n");',
    '}',
  ].join('\n');
  const blocks: string[] = [begin];
  for (const probe of STATS_PROBES) {
    if (opts.skip?.has(probe.kind)) continue;
    const body = withBuckets(step)
      .replace(/^\s*\/\/ @match\s*$/m, () => matchCode(decode, opts.filterExpr, sample, socket !== null && SOCKET_FIRST_HOPS.has(probe.kind) ? socketMatchCode(socketRead, socket) : null))
      .replace(/^\s*\/\/ @after\s*$/m, () => afterCode(probe.kind))
      .replaceAll('{{KIND}}', probe.kind === 'drop' ? dropKind(opts.discardReasons) : probe.kind === 'consume' ? consumeKind() : String(HOP_KIND_CODES[probe.kind]))
      .replaceAll('{{RECV}}', String(HOP_KIND_CODES.recv))
      .replaceAll('{{NOSEG}}', noSegment(probe.kind));
    // A probe file is its probe, then after `// @where` the code reading the hop's place, which
    // step.bt runs only for hops that may count.
    const [probeCode = '', where] = read(`stats/${probe.file}`).split(/^\/\/ @where\b.*$/m);
    if (where === undefined) throw new Error(`probes/stats/${probe.file} has no // @where section`);
    blocks.push(probeCode
      .replace(/^\s*\/\/ @step\s*$/m, () => body.replace(/^\s*\/\/ @where\s*$/gm, () => where.replace(/^\n+|\n+$/g, '')))
      .replaceAll('{{SELF_NETNS}}', String(opts.selfNetns))
      .replaceAll('{{SELF_PORTS}}', selfPorts)
      .replaceAll('{{REASON_NOT_SPECIFIED}}', String(opts.reasonNotSpecified)));
  }
  const snap = snapshot(opts.skip);
  const tick = opts.intervalMs === undefined ? '' : `interval:ms:${opts.intervalMs}\n{\n  printf("T %llu\\n", nsecs);\n${snap}\n  printf("E\\n");\n}`;
  blocks.push(read('stats/tick.bt').replace('{{INTERVAL_PROBE}}', () => tick).replace(/^\s*\/\/ @snapshot\s*$/m, () => snap));
  const program = expandSkbWords(`${blocks.join('\n')}\n`, opts.tier);
  return opts.tier === 'fast' ? rawTracepointProgram(program) : program;
}
