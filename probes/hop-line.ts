/**
 * Parser for the hop lines the probes print. One line per hop. The probes print the packed form:
 *
 *   P <t> <skb> <where> <info> <s0> <s1> <d0> <d1> <ports> <l4> <ifname>
 *
 * every field lowercase hex without 0x, the fields of the long form below packed into 64-bit words
 * (bpftrace 0.17 formats each printf argument on its own: 11 cost it a third less CPU than 21,
 * and hex is cheaper to read here than decimal):
 *
 *   t         bpf_ktime_get_ns()
 *   skb       sk_buff address
 *   where     netns << 32 | ifindex
 *   info      kind << 60 | fam << 56 | l4 << 48 | len << 32 | id << 16 | cpu (low 16 bits)
 *   s0 … d1   the addresses, raw as in the long form
 *   ports     frag << 48 | reason << 32 | sport << 16 | dport
 *             frag: the hop's own IP fragment field, raw (IPv4 frag_off; an IPv6 Fragment header's
 *             offset/M word): a sender's own fragments are joined by it (HopEvent.frag).
 *             reason: 16 bits, a subsystem's reason (subsystem << 16 | code) folded to
 *             subsystem << 12 | code by emit.bt; lines printed before frag existed have 0 there.
 *   l4        icmptype << 56 | icmpid << 40 | tcpflags << 32 | tcpseq
 *
 * The long form, which the fixtures captured before the packed one hold (and which is still read):
 *
 *   H <kind> <t> <cpu> <skb> <netns> <ifindex> <fam> <l4> <len> <id> <s0> <s1> <d0> <d1> <sport> <dport> <icmptype> <icmpid> <tcpflags> <tcpseq> <reason> <ifname>
 *
 *   kind      1 xmit (net_dev_start_xmit), 2 rx (netif_rx), 3 recv (netif_receive_skb),
 *             4 drop (kfree_skb), 5 consume (consume_skb)
 *   t         bpf_ktime_get_ns(), decimal
 *   cpu       CPU the probe ran on
 *   skb       sk_buff address, hex without 0x (the free of a raw socket's copy of an echo reply
 *             carries its original's address: probes/kfree_skb.bt)
 *   netns     namespace inode of skb->dev (of the socket when there is no device; 0 if neither)
 *   ifindex   skb->dev->ifindex, 0 without a device
 *   fam       4, 6 (0 never printed: non-IP is skipped in the kernel)
 *   l4        IP protocol number
 *   len       IPv4 tot_len, or IPv6 payload_len — raw network order (parser swaps; +40 for IPv6)
 *   id        IPv4 identification, raw network order
 *   s0 s1     source address: IPv4 in s0 as the raw u32 (network bytes read little-endian),
 *             s1 = 0; IPv6 as two raw u64 (bytes 0-7 and 8-15, each read little-endian)
 *   d0 d1     destination, the same way
 *   sport dport   raw network order u16 (0 for non-TCP/UDP/SCTP and non-first fragments)
 *   icmptype icmpid   ICMP/ICMPv6 type and echo id (raw network order)
 *   tcpflags  TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, ...)
 *   tcpseq    TCP sequence number, raw network order
 *   reason    enum skb_drop_reason value for drop hops, else 0
 *   ifname    device name; LAST because it is empty when the skb had no device
 *
 * With byte capture on (ProgramOptions.captureBytes), lines start with `PB` (`HB`) and carry one more
 * field before ifname: the first bytes from the IP header as 64-bit words read from memory, each
 * printed `%016llx` and run together (16 hex digits a word, the word's first byte in memory last:
 * x86 is little-endian), trimmed here to the packet's IP length. Words, not bpftrace's `%rx`:
 * bpftrace 0.17 spends ~66 µs formatting a 56-byte `%rx` line against ~20 µs for the same bytes as
 * words (bench note in README), and the formatting is what limits a busy trace.
 *
 * Other lines bpftrace prints on stdout: `READY` once every probe is attached (from BEGIN),
 * `Attaching N probes...`, and `Lost N events` when the perf buffer overflowed.
 * Fixtures of real output live in probes/fixtures/.
 */
import type { HopEvent, HopKind, HopOuter, HopSent } from '../shared/hop-event.js';
import { rawV6ToString } from '../shared/filter/raw.js';
import {
  STORE_NUM, STORE_REFS, F_T, F_CPU, F_NETNS, F_IFINDEX, F_FAMILY, F_PROTO, F_LEN, F_IPID, F_SPORT, F_DPORT, F_ICMPTYPE, F_ICMPID,
  F_TCPFLAGS, F_TCPSEQ, F_REASON as SF_REASON, R_KIND, R_SKB, R_IFNAME, R_SRC, R_DST, type HopStore,
} from '../shared/hop-store.js';
import type { Reconstructor } from '../shared/reconstruct.js';

export const HOP_KIND_CODES: Readonly<Record<HopKind, number>> = { xmit: 1, rx: 2, recv: 3, drop: 4, consume: 5 };
const KIND_BY_CODE: ReadonlyArray<HopKind | undefined> = [undefined, 'xmit', 'rx', 'recv', 'drop', 'consume'];

export type ProbeLine =
  | { readonly type: 'hop'; readonly hop: HopEvent }
  | { readonly type: 'ready' }
  | { readonly type: 'lost'; readonly count: number }
  | { readonly type: 'attaching'; readonly probes: number }
  | { readonly type: 'other'; readonly text: string };

const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
const swap32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;

// The parser scans the line once by character codes, without splitting, slicing or regular
// expressions: it runs for every hop the kernel reports (bench/pipeline.ts measures it).
// `pos` is the scan position, shared by the field readers below (no closures per line).
let pos = 0;
/** End of the line being parsed: the string's length, or where its '\n' is in a chunk of output. */
let lineEnd = 0;
const SPACE = 32;
/**
 * Value of a lowercase hex digit by character code, -1 for any other code unit (past the end of
 * a line charCodeAt gives NaN, and NaN & 0xffff is 0). A lookup, not comparisons: digits and
 * letters alternate at random in hex words, and a branch on which one it is mispredicts often.
 */
const HEX = new Int8Array(0x10000).fill(-1);
for (let c = 48; c <= 57; c++) HEX[c] = c - 48;
for (let c = 97; c <= 102; c++) HEX[c] = c - 87;
const U64_MAX = (1n << 64n) - 1n;

/**
 * Reads the lowercase hex skb field; '' when it is not one. Addresses recur (the kernel reuses
 * sk_buffs): each is one string, found by its value (two 32-bit halves and its length, exact up
 * to 16 digits) without building it. A slice would also keep the whole line alive as long as
 * the event.
 */
function hex(line: string): string {
  const start = pos;
  let i = start;
  let lo = 0;
  let hi = 0;
  for (let c = line.charCodeAt(i); c !== SPACE; c = line.charCodeAt(++i)) {
    const d = HEX[c & 0xffff] as number;
    if (d < 0) return '';
    // Integer shifts, not `low * 16 % 2^44`: a floating-point modulo is a library call.
    hi = (hi << 4) | (lo >>> 28);
    lo = (lo << 4) | d;
  }
  pos = i;
  const len = i - start;
  if (len === 0) return '';
  if (len > 16) return flatCopy(line, start, pos++);
  // Two ways per set: an address whose entry another one took is still found in the other way.
  const k = (mix32(lo, hi) >>> (32 - SKB_BITS)) & ~1;
  if (skbLen[k] === len && skbLo[k] === lo && skbHi[k] === hi) {
    pos++;
    return skbText[k] as string;
  }
  const k2 = k + 1;
  if (skbLen[k2] === len && skbLo[k2] === lo && skbHi[k2] === hi) {
    pos++;
    return skbText[k2] as string;
  }
  const s = flatCopy(line, start, pos++);
  // The newest goes first, the one it displaces second.
  skbText[k2] = skbText[k] as string;
  skbLen[k2] = skbLen[k] as number;
  skbLo[k2] = skbLo[k] as number;
  skbHi[k2] = skbHi[k] as number;
  skbText[k] = s;
  skbLen[k] = len;
  skbLo[k] = lo;
  skbHi[k] = hi;
  return s;
}

/**
 * A well-mixed 32-bit hash of two 32-bit values (murmur3's finaliser): kernel addresses differ in
 * a few middle bits, which a plain multiply leaves clustered.
 */
function mix32(a: number, b: number): number {
  let h = a ^ Math.imul(b, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * line[start, end) as a string of its own, whatever it holds: a slice of 13 characters or more
 * would point into the line, and in a chunk of output keep the whole chunk alive.
 */
function copyOf(line: string, start: number, end: number): string {
  const slice = line.slice(start, end);
  return end - start < 13 ? slice : (JSON.parse(JSON.stringify(slice)) as string);
}

/** line[start, end) as a string of its own (a slice of 13 characters or more would point into the line). Hex or decimal digits only. */
function flatCopy(line: string, start: number, end: number): string {
  return JSON.parse(`"${line.slice(start, end)}"`) as string;
}

// Addresses and device names repeat from line to line: one string each, shared by every event
// (cheaper than building it, smaller for consumers that keep events, and equal strings compare
// by pointer). The caches are direct-mapped tables indexed by a hash of the value, checked
// against the value itself (a collision just replaces the entry): no Map, no boxed number keys.
const SKB_BITS = 16;
const skbText: string[] = new Array<string>(1 << SKB_BITS).fill('');
const skbLen = new Uint8Array(1 << SKB_BITS);
const skbLo = new Int32Array(1 << SKB_BITS);
const skbHi = new Int32Array(1 << SKB_BITS);
const V4_BITS = 12;
const v4Text_: string[] = new Array<string>(1 << V4_BITS).fill('');
const v4Raw = new Int32Array(1 << V4_BITS);
const V6_BITS = 10;
/** The two decimal fields as printed (`s0 s1`), and the address they spell. */
const v6Key: string[] = new Array<string>(1 << V6_BITS).fill('');
const v6Text_: string[] = new Array<string>(1 << V6_BITS).fill('');
const IF_BITS = 10;
const ifText: string[] = new Array<string>(1 << IF_BITS).fill('');
const ifNetns = new Float64Array(1 << IF_BITS);
const ifIndex = new Float64Array(1 << IF_BITS);

/** Dotted quad of a raw IPv4 u32 (the same text as rawV4ToString, without the generic path). */
function v4Text(raw: number): string {
  const i = mix32(raw, 0) >>> (32 - V4_BITS);
  const cached = v4Text_[i] as string;
  if (v4Raw[i] === (raw | 0) && cached !== '') return cached;
  const s = `${raw & 0xff}.${(raw >>> 8) & 0xff}.${(raw >>> 16) & 0xff}.${raw >>> 24}`;
  v4Text_[i] = s;
  v4Raw[i] = raw;
  return s;
}

/**
 * Reads an IPv6 address: two decimal fields (raw u64 halves, up to 2^64, so not numbers) and the
 * spaces after them. Returns null when they are not that.
 */
function v6Address(line: string): string | null {
  const start = pos;
  let h = 0;
  for (let f = 0; f < 2; f++) {
    const fieldStart = pos;
    for (let c = line.charCodeAt(pos); c !== SPACE; c = line.charCodeAt(++pos)) {
      if (!(c >= 48 && c <= 57)) return null;
      h = Math.imul(h, 31) + c;
    }
    if (pos === fieldStart) return null;
    pos++;
  }
  const end = pos - 1;
  const i = mix32(h, 0) >>> (32 - V6_BITS);
  const key = v6Key[i] as string;
  if (key.length === end - start && key !== '' && line.startsWith(key, start)) return v6Text_[i] as string;
  const text = line.slice(start, end);
  const sep = text.indexOf(' ');
  const hi = BigInt(text.slice(0, sep));
  const lo = BigInt(text.slice(sep + 1));
  if (hi > U64_MAX || lo > U64_MAX) return null;
  const s = rawV6ToString(hi, lo);
  v6Key[i] = flatCopy(text, 0, text.length);
  v6Text_[i] = s;
  return s;
}

/** The rest of the line from `pos` (the device name), reusing the string last seen for this device. */
function ifnameAt(line: string, netns: number, ifindex: number): string {
  if (pos >= lineEnd) return '';
  const i = mix32(netns | 0, ifindex | 0) >>> (32 - IF_BITS);
  const cached = ifText[i] as string;
  if (ifNetns[i] === netns && ifIndex[i] === ifindex && cached.length === lineEnd - pos && cached !== '' && line.startsWith(cached, pos)) return cached;
  const s = copyOf(line, pos, lineEnd);
  ifText[i] = s;
  ifNetns[i] = netns;
  ifIndex[i] = ifindex;
  return s;
}

/** Value of a hex digit's character code; -1 when it is not one. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Reads the `HB` lines' captured bytes: words of 16 hex digits, each word's bytes in reverse.
 * Returns null when the field is not that.
 */
function capturedBytes(line: string): Uint8Array | null {
  const start = pos;
  while (pos < lineEnd && line.charCodeAt(pos) !== SPACE) pos++;
  const words = (pos - start) / 16;
  if (!Number.isInteger(words)) return null;
  const out = new Uint8Array(words * 8);
  for (let w = 0; w < words; w++) {
    for (let j = 0; j < 8; j++) {
      // Byte j of the word is the j-th pair of hex digits counted from the right.
      const at = start + w * 16 + (7 - j) * 2;
      const hi = hexDigit(line.charCodeAt(at));
      const lo = hexDigit(line.charCodeAt(at + 1));
      if (hi < 0 || lo < 0) return null;
      out[w * 8 + j] = (hi << 4) | lo;
    }
  }
  pos++;
  return out;
}

/**
 * A field's value as a small integer when it is one. Read from a Float64Array a number is a
 * double, and objects built from doubles keep every field as a separate heap number (2.4×
 * the memory per event); a small integer is stored in the object itself.
 */
const small = (v: number): number => ((v | 0) === v ? v | 0 : v);

/** The numeric fields of the line being parsed, by position after the tag (reused from line to line). */
const fields = new Float64Array(21);
const F_SKB = 3;
const F_FAM = 6;
const F_SRC = 10;
const F_REASON = 20;

/**
 * Parses one hop line: the packed form (`P …`, `PB …`) the probes print, or the long form
 * (`H …`, `HB …`). Returns null when the line is malformed.
 */
export function parseHopLine(line: string): HopEvent | null {
  return scanHopLine(line, 0, line.length, null, 0, NO_REFS, 0) ? scannedEvent : null;
}

/**
 * Parses one hop line straight into a free slot of `store` (the layout of shared/hop-store.ts),
 * without building a HopEvent: what the engine would hold after `store.add(parseHopLine(line))`,
 * the slot's arrival order (F_SEQ) left to the caller. Returns the slot, or -1 (no slot taken)
 * when the line is not a well-formed hop line. For the live path, where building a HopEvent per
 * hop cost ~12 % of parse + reconstruct (bench/pipeline.ts): see pushHopLine.
 */
export function parseHopLineInto(line: string, store: HopStore): number {
  if (!isHopTag(line, 0)) return -1;
  const s = store.claim();
  if (!scanHopLine(line, 0, line.length, store.num, s * STORE_NUM, store.ref, s * STORE_REFS)) {
    store.unclaim(s);
    return -1;
  }
  if (scannedHead !== null) store.setHead(s, scannedHead);
  if (scannedOuter !== null) store.setOuter(s, scannedOuter);
  if (scannedSent !== null) store.setSent(s, scannedSent);
  if (scannedFrag !== 0) store.setFrag(s, scannedFrag);
  return s;
}

/**
 * Adds the hop of `line` to `engine` as `engine.push(parseHopLine(line))` would, without the
 * HopEvent. False, and the engine untouched, when the line is not a well-formed hop line: read
 * it with parseProbeLine then (READY, Lost, a malformed hop line is 'other', ...).
 */
export function pushHopLine(engine: Pick<Reconstructor, 'hopStore' | 'pushStored'>, line: string): boolean {
  const s = parseHopLineInto(line, engine.hopStore);
  if (s < 0) return false;
  engine.pushStored(s);
  return true;
}

/**
 * Reads the lines of text[start, end) as bpftrace's output arrives: hop lines go straight into
 * `engine` (pushHopLine), every other non-empty line — READY, Lost, notes, and hop lines that are
 * malformed — is handed to `other` as its own string (read it with parseProbeLine, as before).
 * No line is split off as a string of its own unless it goes to `other`: at a million lines a
 * second those strings were a cost of their own. `end` is text.length or just past a '\n' (a
 * line's scan stops at its '\n', not at `end`); `start` is where a line starts. Pass a flat
 * string (not `a + b`): a cons string is slower to scan. Returns the number of hops pushed.
 */
export function pushHopLines(
  engine: Pick<Reconstructor, 'hopStore' | 'pushStored'>, text: string, start: number, end: number, other: (line: string) => void,
): number {
  let hops = 0;
  for (let i = start; i < end;) {
    let nl = text.indexOf('\n', i);
    if (nl < 0 || nl > end) nl = end;
    if (nl > i) {
      if (isHopTag(text, i)) {
        const store = engine.hopStore;
        const s = store.claim();
        // After claim(): it may have replaced the arrays.
        if (scanHopLine(text, i, nl, store.num, s * STORE_NUM, store.ref, s * STORE_REFS)) {
          if (scannedHead !== null) store.setHead(s, scannedHead);
          if (scannedOuter !== null) store.setOuter(s, scannedOuter);
          if (scannedSent !== null) store.setSent(s, scannedSent);
  if (scannedFrag !== 0) store.setFrag(s, scannedFrag);
          engine.pushStored(s);
          hops++;
        } else {
          store.unclaim(s);
          other(text.slice(i, nl));
        }
      } else {
        other(text.slice(i, nl));
      }
    }
    i = nl + 1;
  }
  return hops;
}

/** Whether the line at `i` starts as a hop line does (`P `, `PB `, `PE `, `PBE `, `H `, `HB `), as parseProbeLine tells them. */
function isHopTag(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c !== 80 && c !== 72) return false; // 'P', 'H'
  let j = i + 1;
  if (text.charCodeAt(j) === 66) j++; // 'B'
  if (c === 80 && text.charCodeAt(j) === 69) j++; // 'E': encapsulated, packed form only
  return text.charCodeAt(j) === SPACE;
}

/** Captured bytes of the line scanned last into a store (null for a line without them). */
let scannedHead: Uint8Array | null = null;
/** Tunnel headers of the line scanned last (`PE`, `PBE`), null for a line without them. */
let scannedOuter: HopOuter | null = null;
/** The sending socket's own tuple on the line scanned last (`PE` with enc 3), null for a line without it. */
let scannedSent: HopSent | null = null;
/** The hop's own IP fragment field on the line scanned last (HopEvent.frag), 0 when it is not a fragment. */
let scannedFrag = 0;
/** The event of the line scanned last without a store. */
let scannedEvent: HopEvent | null = null;
const NO_REFS: string[] = [];

/**
 * Scans the hop line line[start, end) of either form into `num` at `o` and `ref` at `q` (a
 * HopStore slot's layout) and its captured bytes into `scannedHead`; with `num` null, into a
 * HopEvent, `scannedEvent` (built from the values in hand: read back from an array they would
 * be doubles, heavier in the object). False when the line is malformed (what was written is
 * then meaningless).
 */
function scanHopLine(line: string, start: number, end: number, num: Float64Array | null, o: number, ref: string[], q: number): boolean {
  scannedHead = null;
  scannedOuter = null;
  scannedSent = null;
  scannedFrag = 0;
  lineEnd = end;
  if (line.charCodeAt(start) === 80) return scanPackedLine(line, start, num, o, ref, q); // 'P'
  const withBytes = line.charCodeAt(start + 1) === 66; // 'B'
  // One loop over the fields, the index in a local: the parser's cost is this scan (bench/pipeline.ts).
  let i = start + (withBytes ? 3 : 2);
  let skb = '';
  let src = '';
  let dst = '';
  for (let f = 0; f <= F_REASON; f++) {
    if (f === F_SKB) {
      pos = i;
      skb = hex(line);
      if (skb === '') return false;
      i = pos;
      continue;
    }
    if (f === F_SRC && fields[F_FAM] === 6) {
      // IPv6 halves are u64: read as text, not as numbers.
      pos = i;
      const a = v6Address(line);
      if (a === null) return false;
      const b = v6Address(line);
      if (b === null) return false;
      src = a;
      dst = b;
      i = pos;
      f += 3;
      continue;
    }
    const start = i;
    let v = 0;
    for (let c = line.charCodeAt(i); c !== SPACE; c = line.charCodeAt(++i)) {
      if (!(c >= 48 && c <= 57)) return false;
      v = v * 10 + (c - 48);
    }
    if (i === start) return false;
    i++;
    fields[f] = v;
    if (f === F_FAM && v !== 4 && v !== 6) return false;
  }
  const kind = KIND_BY_CODE[fields[0] as number];
  if (kind === undefined) return false;
  const t = fields[1] as number;
  const cpu = small(fields[2] as number);
  const netns = small(fields[4] as number);
  const ifindex = small(fields[5] as number);
  const fam = fields[F_FAM] === 6 ? 6 : 4;
  const proto = small(fields[7] as number);
  const rawLen = fields[8] as number;
  const rawId = fields[9] as number;
  if (fam === 4) {
    const s0 = fields[10] as number;
    const d0 = fields[12] as number;
    if (s0 > 0xffffffff || d0 > 0xffffffff) return false;
    src = v4Text(s0);
    dst = v4Text(d0);
  }
  const sport = fields[14] as number;
  const dport = fields[15] as number;
  const icmpType = small(fields[16] as number);
  const icmpId = fields[17] as number;
  const tcpFlags = small(fields[18] as number);
  const tcpSeq = fields[19] as number;
  const reason = small(fields[F_REASON] as number);
  if (sport > 0xffff || dport > 0xffff || rawLen > 0xffff || rawId > 0xffff || icmpId > 0xffff || tcpSeq > 0xffffffff) return false;
  pos = i;
  let head: Uint8Array | null = null;
  if (withBytes) {
    head = capturedBytes(line);
    if (head === null) return false;
  }
  // ifname is last and may be empty: the rest of the line.
  // This tail (bytes, ifname, then hopEvent or put) stands again in scanPackedLine on purpose:
  // each form's fields are locals of its own loop (869d2d7, d2f7620: values in hand, not through
  // an array or a call that takes them all again), and this runs once per line of the hot path.
  const ifname = ifnameAt(line, netns, ifindex);
  if (num === null) scannedEvent = hopEvent(kind, t, cpu, skb, netns, ifindex, ifname, fam, proto, rawLen, rawId, src, dst, sport, dport, icmpType, icmpId, tcpFlags, tcpSeq, reason, head);
  else put(num, o, ref, q, kind, t, cpu, skb, netns, ifindex, ifname, fam, proto, rawLen, rawId, src, dst, sport, dport, icmpType, icmpId, tcpFlags, tcpSeq, reason, head);
  return true;
}

/**
 * The event of a scanned line, from either form. Raw (network-order) fields are swapped here;
 * captured bytes past the packet's end are not the packet's (the probe reads a fixed number).
 * Keep in step with `put`.
 */
function hopEvent(
  kind: HopKind, t: number, cpu: number, skb: string, netns: number, ifindex: number, ifname: string, fam: 4 | 6, proto: number,
  rawLen: number, rawId: number, src: string, dst: string, rawSport: number, rawDport: number, icmpType: number, rawIcmpId: number,
  tcpFlags: number, rawSeq: number, reason: number, head: Uint8Array | null,
): HopEvent {
  const v4 = fam === 4;
  const len = swap16(rawLen);
  const ipLen = v4 ? len : len + 40;
  const hop: HopEvent = {
    kind,
    t,
    cpu,
    skb,
    netns,
    ifindex,
    ifname,
    family: fam,
    proto,
    len: ipLen,
    // IPv6: the low 16 bits of a Fragment header's id (decode.bt), 0 without one.
    ipId: swap16(rawId),
    src,
    dst,
    sport: swap16(rawSport),
    dport: swap16(rawDport),
    icmpType,
    icmpId: swap16(rawIcmpId),
    tcpFlags,
    tcpSeq: swap32(rawSeq),
    reason,
  };
  const withHead = head ? { ...hop, head: head.subarray(0, Math.min(head.length, ipLen)) } : hop;
  const withOuter = scannedOuter ? { ...withHead, outer: scannedOuter } : withHead;
  const withFrag = scannedFrag !== 0 ? { ...withOuter, frag: scannedFrag } : withOuter;
  return scannedSent ? { ...withFrag, sent: scannedSent } : withFrag;
}

/**
 * Writes the fields of a scanned line, from either form, at `num[o…]` and `ref[q…]` (a HopStore
 * slot), as `hopEvent` builds them (keep the two in step). Raw
 * (network-order) fields are swapped here; captured bytes past the packet's end are not the
 * packet's (the probe reads a fixed number).
 */
function put(
  num: Float64Array, o: number, ref: string[], q: number,
  kind: HopKind, t: number, cpu: number, skb: string, netns: number, ifindex: number, ifname: string, fam: 4 | 6, proto: number,
  rawLen: number, rawId: number, src: string, dst: string, rawSport: number, rawDport: number, icmpType: number, rawIcmpId: number,
  tcpFlags: number, rawSeq: number, reason: number, head: Uint8Array | null,
): void {
  const v4 = fam === 4;
  const len = swap16(rawLen);
  const ipLen = v4 ? len : len + 40;
  num[o + F_T] = t;
  num[o + F_CPU] = cpu;
  num[o + F_NETNS] = netns;
  num[o + F_IFINDEX] = ifindex;
  num[o + F_FAMILY] = fam;
  num[o + F_PROTO] = proto;
  num[o + F_LEN] = ipLen;
  num[o + F_IPID] = swap16(rawId);
  num[o + F_SPORT] = swap16(rawSport);
  num[o + F_DPORT] = swap16(rawDport);
  num[o + F_ICMPTYPE] = icmpType;
  num[o + F_ICMPID] = swap16(rawIcmpId);
  num[o + F_TCPFLAGS] = tcpFlags;
  num[o + F_TCPSEQ] = swap32(rawSeq);
  num[o + SF_REASON] = reason;
  ref[q + R_KIND] = kind;
  ref[q + R_SKB] = skb;
  ref[q + R_IFNAME] = ifname;
  ref[q + R_SRC] = src;
  ref[q + R_DST] = dst;
  scannedHead = head ? head.subarray(0, Math.min(head.length, ipLen)) : null;
}

// The packed form's words as two 32-bit halves each (a u64 is not a JS number), and where each
// field starts in the line (IPv6 addresses are cached by their text). Reused from line to line.
const wordHi = new Int32Array(16);
const wordLo = new Int32Array(16);
const wordAt = new Int32Array(17);
const W_SKB = 1;

/** An IPv6 address from two packed words (raw halves, as in the long form), cached by their text. */
function v6FromWords(line: string, f: number): string {
  const start = wordAt[f] as number;
  const end = (wordAt[f + 2] as number) - 1;
  const i = mix32((wordHi[f] as number) ^ (wordHi[f + 1] as number), (wordLo[f] as number) ^ (wordLo[f + 1] as number)) >>> (32 - V6_BITS);
  const key = v6Key[i] as string;
  if (key.length === end - start && key !== '' && line.startsWith(key, start)) return v6Text_[i] as string;
  const u64 = (k: number): bigint => (BigInt((wordHi[k] as number) >>> 0) << 32n) | BigInt((wordLo[k] as number) >>> 0);
  const s = rawV6ToString(u64(f), u64(f + 1));
  v6Key[i] = flatCopy(line, start, end);
  v6Text_[i] = s;
  return s;
}

/** Scans a packed hop line (`P …`, `PB …`) from `start` as scanHopLine does; false when it is malformed. */
function scanPackedLine(line: string, start: number, num: Float64Array | null, o: number, ref: string[], q: number): boolean {
  const withBytes = line.charCodeAt(start + 1) === 66; // 'B'
  const encapsulated = line.charCodeAt(start + (withBytes ? 2 : 1)) === 69; // 'E'
  // One loop over the words, the index in a local, as scanHopLine does for the long form.
  let i = start + 2 + (withBytes ? 1 : 0) + (encapsulated ? 1 : 0);
  let skb = '';
  const words = encapsulated ? 16 : 10;
  for (let f = 0; f < words; f++) {
    wordAt[f] = i;
    if (f === W_SKB) {
      pos = i;
      skb = hex(line);
      if (skb === '') return false;
      i = pos;
      continue;
    }
    const start = i;
    let hi = 0;
    let lo = 0;
    for (let c = line.charCodeAt(i); c !== SPACE; c = line.charCodeAt(++i)) {
      const d = HEX[c & 0xffff] as number;
      if (d < 0) return false;
      hi = (hi << 4) | (lo >>> 28);
      lo = (lo << 4) | d;
    }
    const n = i - start;
    if (n === 0 || n > 16) return false;
    i++;
    wordHi[f] = hi;
    wordLo[f] = lo;
  }
  wordAt[words] = i;
  if (encapsulated && !readOuter(line)) return false;
  const tHi = (wordHi[0] as number) >>> 0;
  if (tHi > 0x1fffff) return false;
  const t = tHi * 4294967296 + ((wordLo[0] as number) >>> 0);
  const netns = small((wordHi[2] as number) >>> 0);
  const ifindex = small((wordLo[2] as number) >>> 0);
  const info = wordHi[3] as number;
  const kind = KIND_BY_CODE[info >>> 28];
  const fam = (info >>> 24) & 0xf;
  if (kind === undefined || (fam !== 4 && fam !== 6)) return false;
  const proto = (info >>> 16) & 0xff;
  const rawLen = info & 0xffff;
  const infoLo = wordLo[3] as number;
  const rawId = infoLo >>> 16;
  const cpu = infoLo & 0xffff;
  let src: string;
  let dst: string;
  if (fam === 4) {
    if (wordHi[4] !== 0 || wordHi[6] !== 0) return false;
    src = v4Text((wordLo[4] as number) >>> 0);
    dst = v4Text((wordLo[6] as number) >>> 0);
  } else {
    src = v6FromWords(line, 4);
    dst = v6FromWords(line, 6);
  }
  const w8 = (wordHi[8] as number) >>> 0;
  // Reason in the low 16 bits (a subsystem's folded: see the header), the fragment field above.
  const r16 = w8 & 0xffff;
  const reason = r16 > 0xfff ? ((r16 >>> 12) << 16) | (r16 & 0xfff) : r16;
  const rawFrag = w8 >>> 16;
  if (rawFrag !== 0) {
    // Host order in IPv4's layout (MF 0x2000, offset / 8), DF left out: only a fragment has it.
    const frag = fam === 4 ? swap16(rawFrag) & 0x3fff : v6FragAsV4(swap16(rawFrag));
    if (frag !== 0) scannedFrag = frag;
  }
  const ports = wordLo[8] as number;
  const l4Hi = wordHi[9] as number;
  pos = i;
  let head: Uint8Array | null = null;
  if (withBytes) {
    head = capturedBytes(line);
    if (head === null) return false;
  }
  const ifname = ifnameAt(line, netns, ifindex);
  const sport = ports >>> 16;
  const dport = ports & 0xffff;
  const icmpType = l4Hi >>> 24;
  const icmpId = (l4Hi >>> 8) & 0xffff;
  const tcpFlags = l4Hi & 0xff;
  const tcpSeq = (wordLo[9] as number) >>> 0;
  if (num === null) scannedEvent = hopEvent(kind, t, cpu, skb, netns, ifindex, ifname, fam, proto, rawLen, rawId, src, dst, sport, dport, icmpType, icmpId, tcpFlags, tcpSeq, reason, head);
  else put(num, o, ref, q, kind, t, cpu, skb, netns, ifindex, ifname, fam, proto, rawLen, rawId, src, dst, sport, dport, icmpType, icmpId, tcpFlags, tcpSeq, reason, head);
  return true;
}

/**
 * The tunnel headers of an encapsulated line (words 10-15, in wordHi/wordLo) into scannedOuter:
 *   10  enc << 60 | ofam << 56 | ol4 << 48 | vni (raw: bytes 4-6 of the tunnel header read little-endian;
 *       gre: its 32-bit key, raw)
 *       enc 1: the hop's fields are the inner packet's; 2: the inner header was not IP, they are the outer
 *   11-14  outer addresses, raw as s0 s1 d0 d1
 *   15  outer frag_off << 48 | id << 32 | dport << 16 | sport, raw (IPv4 outer: frag_off and id;
 *       IPv6 outer with a Fragment header: its offset/M word and the id's low 16 bits;
 *       the UDP header's first word read little-endian)
 * or, with enc 3 (not encapsulated), the first hop of a packet a local socket sent whose header
 * differs from the socket's own tuple (NAT in its namespace's OUTPUT/POSTROUTING): words 11-15
 * are the socket's addresses and ports, the same way (word 15's low half), into scannedSent (emit.bt).
 */
/**
 * An IPv6 Fragment header's offset/M word (offset in 8-byte units << 3, M the low bit) in IPv4's
 * frag_off layout (MF 0x2000, offset in 8-byte units), so one `frag` field means the same for
 * both families (an IPv6 datagram has no DF).
 */
function v6FragAsV4(v: number): number {
  return ((v & 1) << 13) | (v >>> 3);
}

function readOuter(line: string): boolean {
  const hi = wordHi[10] as number;
  const enc = hi >>> 28;
  const fam = (hi >>> 24) & 0xf;
  if ((enc !== 1 && enc !== 2 && enc !== 3) || (fam !== 4 && fam !== 6)) return false;
  let src: string;
  let dst: string;
  if (fam === 4) {
    if (wordHi[11] !== 0 || wordHi[13] !== 0) return false;
    src = v4Text((wordLo[11] as number) >>> 0);
    dst = v4Text((wordLo[13] as number) >>> 0);
  } else {
    src = v6FromWords(line, 11);
    dst = v6FromWords(line, 13);
  }
  const ports = (wordLo[15] as number) >>> 0;
  if (enc === 3) {
    scannedSent = { src, dst, sport: swap16(ports & 0xffff), dport: swap16(ports >>> 16) };
    return true;
  }
  const proto = (hi >>> 16) & 0xff;
  // gre's key is 32 bits (read little-endian like the rest); the VNI of vxlan/geneve 24.
  const raw = (wordLo[10] as number) >>> 0;
  const vni = proto === 47 ? (((raw & 0xff) << 24) | ((raw & 0xff00) << 8) | ((raw >>> 8) & 0xff00) | (raw >>> 24)) >>> 0 : raw & 0xffffff;
  const ipHi = (wordHi[15] as number) >>> 0;
  scannedOuter = {
    family: fam,
    proto,
    src,
    dst,
    sport: swap16(ports & 0xffff),
    dport: swap16(ports >>> 16),
    vni: proto === 47 ? vni : ((vni & 0xff) << 16) | (vni & 0xff00) | (vni >>> 16),
    innerRead: enc === 1,
    ipId: swap16(ipHi & 0xffff),
    frag: fam === 4 ? swap16(ipHi >>> 16) : v6FragAsV4(swap16(ipHi >>> 16)),
  };
  return true;
}

/**
 * The packed form (`P`, `PB`) of a long-form hop line (`H`, `HB`), for tests and benchmarks that
 * replay fixtures captured in the long form. null when the line is not one.
 */
export function toPackedLine(line: string): string | null {
  const m = /^(HB?) (\d+) (\d+) (\d+) ([0-9a-f]+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)(?: ([0-9a-f]+))? (.*)$/.exec(line);
  if (!m) return null;
  const n = m.slice(2, 23).map((x, i) => (i === 3 ? BigInt(`0x${x}`) : BigInt(x)));
  const [kind, t, cpu, skb, netns, ifindex, fam, l4, len, id, s0, s1, d0, d1, sp, dp, it, iid, fl, seq, reason] = n as [bigint, ...bigint[]] as bigint[];
  const h = (v: bigint | undefined): string => (v ?? 0n).toString(16);
  // The reason folded to 16 bits as emit.bt folds it (a subsystem's: subsystem << 12 | code).
  const r = reason ?? 0n;
  const r16 = r > 0xffffn ? ((r >> 16n) << 12n) | (r & 0xfffn) : r;
  const info = ((kind ?? 0n) << 60n) | ((fam ?? 0n) << 56n) | ((l4 ?? 0n) << 48n) | ((len ?? 0n) << 32n) | ((id ?? 0n) << 16n) | ((cpu ?? 0n) & 0xffffn);
  const fields = [
    m[1] === 'HB' ? 'PB' : 'P', h(t), h(skb), h(((netns ?? 0n) << 32n) | (ifindex ?? 0n)), h(info), h(s0), h(s1), h(d0), h(d1),
    h((r16 << 32n) | ((sp ?? 0n) << 16n) | (dp ?? 0n)), h(((it ?? 0n) << 56n) | ((iid ?? 0n) << 40n) | ((fl ?? 0n) << 32n) | (seq ?? 0n)),
  ];
  if (m[23] !== undefined) fields.push(m[23]);
  // join, not a template: a flat string, as lines split from bpftrace's output are.
  fields.push(m[24] ?? '');
  return fields.join(' ');
}

export function parseProbeLine(line: string): ProbeLine {
  if (isHopTag(line, 0)) {
    const hop = parseHopLine(line);
    return hop ? { type: 'hop', hop } : { type: 'other', text: line };
  }
  if (line === 'READY') return { type: 'ready' };
  const lost = /^Lost (\d+) events/.exec(line);
  if (lost) return { type: 'lost', count: Number(lost[1]) };
  const att = /^Attaching (\d+) probes?/.exec(line);
  if (att) return { type: 'attaching', probes: Number(att[1]) };
  return { type: 'other', text: line };
}
