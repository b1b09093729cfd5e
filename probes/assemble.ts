/**
 * Builds the one bpftrace program a trace runs from the fragments in this folder: one file per
 * hop kind (net_dev_start_xmit.bt, netif_rx.bt, netif_receive_skb.bt, kfree_skb.bt,
 * consume_skb.bt) plus the shared decode.bt, emit.bt and socket.bt. The only things substituted are
 * numbers this code produced and a filter expression compiled from a parsed AST
 * (shared/filter): no user text ever reaches the program.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HOP_KIND_CODES } from './hop-line.js';
import { sampleCondition } from './sample.js';
import { portToRaw } from '../shared/filter/raw.js';
import { rawTracepointProgram } from './tracepoints.js';
import { expandSkbWords } from './skb-words.js';
import type { HopKind } from '../shared/hop-event.js';
import type { ProbeTier } from '../shared/api-types.js';

/** Hop probes in the order they are attached. */
export const HOP_PROBES: ReadonlyArray<{ file: string; kind: HopKind; tracepoint: string }> = [
  { file: 'net_dev_start_xmit.bt', kind: 'xmit', tracepoint: 'net:net_dev_start_xmit' },
  { file: 'netif_rx.bt', kind: 'rx', tracepoint: 'net:netif_rx' },
  { file: 'netif_receive_skb.bt', kind: 'recv', tracepoint: 'net:netif_receive_skb' },
  { file: 'kfree_skb.bt', kind: 'drop', tracepoint: 'skb:kfree_skb' },
  { file: 'consume_skb.bt', kind: 'consume', tracepoint: 'skb:consume_skb' },
];

/** How long (ns) a remembered flow tuple keeps matching. */
export const FLOW_MEMORY_NS = 10_000_000_000;

export interface ProgramOptions {
  /** 'fast': the hop probes on raw tracepoints (probes/tracepoints.ts); 'classic' (default): classic ones. */
  readonly tier?: ProbeTier;
  /** bpftrace boolean expression from compileToBpftrace(); '1' for no filter. */
  readonly filterExpr: string;
  /**
   * The same filter from compileSocketToBpftrace(): tried on a packet's first hop against the
   * tuple of the local socket that sent it, when the header did not match (probes/emit.bt), so a
   * connection NATed in its own namespace's OUTPUT is found by what it asked for. Absent: the
   * header alone decides.
   */
  readonly socketFilterExpr?: string;
  /** The tracer's own namespace: on its loopback, the connections of `selfPorts` are never traced. */
  readonly selfNetns: number;
  /**
   * The ports our own connections use on that loopback (the service's listening port): left out
   * in the kernel. Absent or empty: the loopback is traced like any device (`trace`, `record`
   * stream to a pipe or a file, not through a socket).
   */
  readonly selfPorts?: readonly number[];
  /**
   * Namespace inodes whose hops are printed (`agent --namespaces`: several agents share one
   * kernel in tests, and on a host an agent may watch only pods). Absent: every namespace.
   * Packets are still followed through the others, just not printed there.
   */
  readonly netnsAllow?: readonly number[];
  /** Value of SKB_DROP_REASON_NOT_SPECIFIED on this kernel (from BTF). */
  readonly reasonNotSpecified: number;
  /**
   * Value of SKB_DROP_REASON_NO_SOCKET on this kernel (from BTF). With it (and both free probes
   * attached), an echo reply a raw socket read (a root ping's) ends as consumed, not as dropped:
   * see kfree_skb.bt. Without it, such replies show the kernel's NO_SOCKET free.
   */
  readonly reasonNoSocket?: number;
  /** Tracepoints this kernel lacks are left out (reported by the caller, not fatal). */
  readonly skip?: ReadonlySet<HopKind>;
  /**
   * Follow 1 in N flows (probes/sample.ts), decided on a packet's first hop (default 1: all).
   * Sampling turns flow memory on, so a sampled flow's replies are followed after NAT too.
   */
  readonly sampleRate?: number;
  /**
   * Probe blocks appended after the hop probes (the notes and function-level tiers: see
   * probes/notes/assemble.ts). They read the hop probes' @follow map, so they come after them.
   */
  readonly extraBlocks?: readonly string[];
  /**
   * Keep the first N bytes (1..MAX_CAPTURE_BYTES) from the IP header of every printed hop, for
   * pcapng export: lines then start with `HB` and carry the bytes as a hex field before the
   * device name. 0 (default) captures nothing.
   */
  readonly captureBytes?: number;
}

/**
 * At most 56: the BPF stack (512 bytes) holds the hop printf and these bytes, and 64 overflows it in
 * kfree_skb. 56 covers IPv4 + TCP with 16 bytes of options, and IPv6 + the first 16 bytes of TCP.
 */
export const MAX_CAPTURE_BYTES = 56;

/**
 * Captured bytes go out as 64-bit words (probes/hop-line.ts says why): N bytes take this many,
 * so a capture is rounded up to a multiple of 8 bytes.
 */
export const captureWords = (bytes: number): number => Math.ceil(bytes / 8);

/** Where the .bt fragments are: beside this file in the source tree, or ../../probes from dist/. */
export function probesDir(): string {
  const candidates = [new URL('./', import.meta.url), new URL('../../probes/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(`${dir}decode.bt`)) return dir;
  }
  throw new Error('probe fragments (probes/*.bt) not found beside the program');
}

// Flow memory (filtered traces only): the tuple key is the same in both places.
const FLOW_KEY = '$s0, $s1, $d0, $d1, $ports, $l4';
/**
 * A followed flow's entries are rewritten only when older than this, not on every hop: a hash
 * update (lock, element swap) costs more than the lookup the match does anyway. The memory then
 * lasts FLOW_MEMORY_NS - FLOW_REFRESH_NS (9 s) after a flow's last packet at least. Measured
 * (bench/probe-cost.ts, same run, both tiers; README "Performance"): stats with a filter every
 * packet matches spent 15–22 % less BPF time per hop run (fast 810 against 1033 ns on
 * net_dev_start_xmit, classic 1116 against 1280); trace's runs are dominated by the printf.
 */
export const FLOW_REFRESH_NS = 1_000_000_000;
/** The flow memory's match (the notes probes: they run only for --notes, ungated). */
export const FLOW_MATCH = `    $fl0 = @flows[${FLOW_KEY}]; if (!$m) { $m = $fl0 != 0 && nsecs - $fl0 < ${FLOW_MEMORY_NS}; }`;
/**
 * The match gate (hop probes of filtered programs): @lastmatch holds when a hop was last printed,
 * refreshed at most once a second, 0 while nothing has been. Only when that was less than
 * MATCH_GATE_NS ago can a packet be followed (@follow entries last 1 s) or a flow be remembered
 * (FLOW_MEMORY_NS, written at most FLOW_REFRESH_NS before the gate's time), so only then are
 * @follow and @flows looked up. A filter that matches nothing (a `trace --filter` on a busy host
 * waiting for its packets) pays one lookup of an 8-byte key per hop and no clock read, instead of
 * two lookups, one of a 48-byte key; while something matches, the gate's lookup and a clock read
 * come on top. Written with `if`: bpftrace 0.23 gives 0 for a map read inside `c ? @map[k] : 0`
 * when `c` compares with nsecs. `if` needs the maps typed before their first read in the text:
 * BEGIN does it (MAP_TYPES). `$gm`: decode.bt has a uint32 `$g`. Measured: README "Performance".
 */
export const MATCH_GATE_NS = FLOW_MEMORY_NS + FLOW_REFRESH_NS;
const FOLLOW_LOOKUP_GATED = `    $gm = @lastmatch; $gate = (uint64)0; $f = (uint64)0;
    if ($gm != 0) { if (nsecs - $gm < ${MATCH_GATE_NS}) { $gate = 1; $f = @follow[$skb]; } }`;
const GATE_REFRESH = `        if (nsecs - $gm > ${FLOW_REFRESH_NS}) { @lastmatch = nsecs; }`;
const FLOW_MATCH_GATED = `    $fl0 = (uint64)0; if ($m || $gate) { $fl0 = @flows[${FLOW_KEY}]; } if (!$m) { $m = $fl0 != 0 && nsecs - $fl0 < ${FLOW_MEMORY_NS}; }`;
/** The gated maps' types, set in BEGIN under keys no packet has (a null skb, an all-zero tuple). */
const MAP_TYPES = '@lastmatch = (uint64)0; @follow[(struct sk_buff *)0] = (uint64)0; @flows[(uint64)0, (uint64)0, (uint64)0, (uint64)0, (uint64)0, (uint64)0] = (uint64)0; ';
// Both directions: a reply seen after the NAT that names the filtered address (e.g. the SYN-ACK
// leaving through MASQUERADE/DNAT reversal) carries the tuple the next request will have
// before its DNAT, reversed.
const FLOW_REVERSE_KEY = '$d0, $d1, $s0, $s1, ($dp << 16) | $sp, $l4';
// Not for a later fragment ($l4h 0: no L4 header, ports 0): its tuple would make every later
// fragment between the two hosts match for FLOW_MEMORY_NS.
const FLOW_REMEMBER = `      if ($l4h != 0 && ($fl0 == 0 || nsecs - $fl0 > ${FLOW_REFRESH_NS})) { @flows[${FLOW_KEY}] = nsecs; @flows[${FLOW_REVERSE_KEY}] = nsecs; }`;

/** How long (ns) a printed first fragment's datagram key lets its later fragments match. */
export const FRAG_MEMORY_NS = 1_000_000_000;
// A sender's own fragments (probes/README.md "A sender's own fragments"): only the first carries
// the L4 header, so a port filter cannot match the later ones by their header. A printed first
// fragment (L4 header, more fragments: MF is raw 0x20 of IPv4's frag_off, 0x100 of an IPv6
// Fragment header's offset/M) remembers its datagram's key, source, destination, id and
// protocol (NAT keeps the id: the key is remembered again after it, on the next printed hop), and
// a later fragment ($l4h 0) matches by it, behind the match gate. Other packets pay one compare.
const FRAG_KEY = '$s0, $s1, $d0, $d1, ($id << 8) | $l4';
const FRAG_MATCH = `    if (!$m && $l4h == 0 && $gate != 0) { $fg = @frags[${FRAG_KEY}]; $m = $fg != 0 && nsecs - $fg < ${FRAG_MEMORY_NS}; }`;
const FRAG_REMEMBER = `        if ($l4h != 0 && ($fr & ($fam == 4 ? (uint64)0x20 : (uint64)0x100)) != 0) { @frags[${FRAG_KEY}] = nsecs; }`;

/**
 * The only hops that can be the first of a packet a local socket sent: its device's transmit, or
 * a free before any device (a drop in OUTPUT). Only there is the socket's tuple tried against the
 * filter (probes/emit.bt), so the other probes pay nothing for it.
 */
export const SOCKET_FIRST_HOPS: ReadonlySet<HopKind> = new Set(['xmit', 'drop']);

/**
 * The condition matching a packet by its sending socket's tuple (sampled as the header's is, by
 * the header's tuple), or null when there is nothing to try: no filter (every packet matches
 * already) or no socket form of it.
 */
export function socketMatch(filterExpr: string, socketFilterExpr: string | undefined, sample: string): string | null {
  if (filterExpr.trim() === '1' || socketFilterExpr === undefined || socketFilterExpr.trim() === '1') return null;
  return sample === '1' ? socketFilterExpr : `(${socketFilterExpr}) && ${sample}`;
}

function assertNumeric(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${n}`);
}

export function buildHopProgram(opts: ProgramOptions): string {
  assertNumeric('selfNetns', opts.selfNetns);
  assertNumeric('reasonNotSpecified', opts.reasonNotSpecified);
  // Defence in depth: the compiled filter is ours, but refuse anything that is not an expression.
  if (!/^[\s\w$()&|!=<>^~+-]*$/.test(opts.filterExpr)) throw new Error('compiled filter has unexpected characters');
  if (opts.socketFilterExpr !== undefined && !/^[\s\w$()&|!=<>^~+-]*$/.test(opts.socketFilterExpr)) throw new Error('compiled filter has unexpected characters');
  const capture = opts.captureBytes ?? 0;
  if (!Number.isInteger(capture) || capture < 0 || capture > MAX_CAPTURE_BYTES) throw new Error(`captureBytes must be 0..${MAX_CAPTURE_BYTES}, got ${capture}`);
  for (const p of opts.selfPorts ?? []) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`selfPorts must be ports 1-65535, got ${p}`);
  // Ports compare in their raw (unswapped) form, as the filter's do (shared/filter/raw.ts).
  const selfPorts = (opts.selfPorts ?? []).map((p) => `$sp == ${portToRaw(p)} || $dp == ${portToRaw(p)}`).join(' || ') || '0';
  for (const n of opts.netnsAllow ?? []) assertNumeric('netnsAllow', n);
  // An empty list allows nothing (a selector that matched no namespace prints no hop), not everything.
  const netnsAllow = opts.netnsAllow ? opts.netnsAllow.map((n) => `$netns == ${n}`).join(' || ') || '0' : '1';
  const sample = sampleCondition(opts.sampleRate ?? 1);
  const filtered = opts.filterExpr.trim() !== '1' || sample !== '1';
  if (opts.reasonNoSocket !== undefined) assertNumeric('reasonNoSocket', opts.reasonNoSocket);
  // Raw-socket copies are followed from the original's free to the copy's: both probes needed.
  const rawCopy = opts.reasonNoSocket !== undefined && !opts.skip?.has('drop') && !opts.skip?.has('consume');
  const match = sample === '1' ? opts.filterExpr : `(${opts.filterExpr}) && ${sample}`;
  const socket = socketMatch(opts.filterExpr, opts.socketFilterExpr, sample);
  const dir = probesDir();
  const read = (f: string): string => readFileSync(`${dir}${f}`, 'utf8');
  const strip = (s: string): string => s.split('\n').filter((l) => !/^\s*\/\//.test(l)).join('\n');
  const decode = strip(read('decode.bt'));
  const emitTemplate = strip(read('emit.bt'));
  const socketRead = strip(read('socket.bt'));

  const blocks: string[] = [];
  for (const probe of HOP_PROBES) {
    if (opts.skip?.has(probe.kind)) continue;
    const emit = emitTemplate
      .replace('{{SELF_NETNS}}', String(opts.selfNetns))
      .replace('{{SELF_PORTS}}', selfPorts)
      .replace('{{NETNS_ALLOW}}', netnsAllow)
      .replace('{{FILTER}}', () => match)
      .replace('{{SOCKET_TRY}}', socket !== null && SOCKET_FIRST_HOPS.has(probe.kind) ? '1' : '0')
      .replace('{{SOCKET_READ}}', () => socketRead)
      .replace('{{SOCKET_FILTER}}', () => socket ?? '0')
      .replaceAll('{{KIND}}', String(HOP_KIND_CODES[probe.kind]))
      .replaceAll('{{PREFIX}}', capture > 0 ? 'PB' : 'P')
      .replaceAll('{{BYTES_FMT}}', capture > 0 ? ` ${'%016llx'.repeat(captureWords(capture))}` : '')
      .replaceAll('{{BYTES_ARG}}', capture > 0 ? Array.from({ length: captureWords(capture) }, (_, i) => `, *(uint64 *)($h + ${i * 8})`).join('') : '')
      // The free probes print under $as: a raw socket's copy goes under its original's address.
      .replaceAll('{{ADDR}}', probe.kind === 'drop' || probe.kind === 'consume' ? '$as' : '$skb')
      .replace('{{FOLLOW_LOOKUP}}', filtered ? FOLLOW_LOOKUP_GATED : '    $f = @follow[$skb];')
      .replace('{{FLOW_MATCH}}', filtered ? FLOW_MATCH_GATED : '')
      .replace('{{GATE_REFRESH}}', filtered ? GATE_REFRESH : '')
      .replace('{{FLOW_REMEMBER}}', filtered ? FLOW_REMEMBER : '')
      .replace('{{FRAG_MATCH}}', filtered ? FRAG_MATCH : '')
      .replace('{{FRAG_REMEMBER}}', filtered ? FRAG_REMEMBER : '');
    const body = read(probe.file)
      .replace(/^\s*\/\/ @decode\s*$/m, decode)
      .replace(/^\s*\/\/ @emit \w+\s*$/m, emit)
      .replace('{{REASON_NOT_SPECIFIED}}', String(opts.reasonNotSpecified))
      .replace(/^\/\/ @raw-copy\n([\s\S]*?)^\/\/ @end raw-copy\n/gm, (_, block: string) => (rawCopy ? block : ''))
      .replace('{{REASON_NO_SOCKET}}', String(opts.reasonNoSocket ?? 0));
    blocks.push(body);
  }
  const program = [
    // @rawcopy is read (the free probes) before it is first written (kfree_skb.bt's hold):
    // bpftrace 0.17 types a map at its first assignment in the program, so BEGIN makes one, under
    // a key no skb's data has.
    // The match gate's maps likewise (MAP_TYPES), and @frags (read by a later fragment before a
    // first fragment's remember in the text).
    `BEGIN { ${rawCopy ? '@rawcopy[(uint64)0] = (uint64)0; ' : ''}${filtered ? `${MAP_TYPES}@frags[(uint64)0, (uint64)0, (uint64)0, (uint64)0, (uint64)0] = (uint64)0; ` : ''}printf("READY\\n"); }`,
    ...blocks,
    ...(opts.extraBlocks ?? []),
    // No clear() anywhere: bpftrace 0.17 aborts when a map changes while clear() walks it
    // ("Could not clear map"), which a busy host guarantees. Stale entries are harmless — each
    // carries a timestamp and is ignored once old, and reused keys overwrite them; a full map only
    // stops new flows from being remembered. bpftrace prints the maps at exit: the parser skips them.
    '',
  ].join('\n');
  const expanded = expandSkbWords(program, opts.tier);
  return opts.tier === 'fast' ? rawTracepointProgram(expanded) : expanded;
}
