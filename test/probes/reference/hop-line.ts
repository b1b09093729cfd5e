/**
 * The hop line parser as it was before the speed work (commit cca7c83), kept verbatim as an
 * oracle for test/probes/hop-line-oracle.test.ts. Do not optimise this file.
 */
/**
 * Parser for the hop lines the probes print. One line per hop, space-separated, fixed order:
 *
 *   H <kind> <t> <cpu> <skb> <netns> <ifindex> <fam> <l4> <len> <id> <s0> <s1> <d0> <d1> <sport> <dport> <icmptype> <icmpid> <tcpflags> <tcpseq> <reason> <ifname>
 *
 *   kind      1 xmit (net_dev_start_xmit), 2 rx (netif_rx), 3 recv (netif_receive_skb),
 *             4 drop (kfree_skb), 5 consume (consume_skb)
 *   t         bpf_ktime_get_ns(), decimal
 *   cpu       CPU the probe ran on
 *   skb       sk_buff address, hex without 0x
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
 * With byte capture on (ProgramOptions.captureBytes), lines start with `HB` and carry one more
 * field before ifname: the first bytes from the IP header as 64-bit words, each `%016llx`, run
 * together (each word's first byte in memory last), trimmed here to the packet's IP length.
 *
 * Other lines bpftrace prints on stdout: `READY` once every probe is attached (from BEGIN),
 * `Attaching N probes...`, and `Lost N events` when the perf buffer overflowed.
 * Fixtures of real output live in probes/fixtures/.
 */
import type { HopEvent, HopKind } from '../../../shared/hop-event.js';
import { rawV6ToString } from '../../../shared/filter/raw.js';

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
const SPACE = 32;
const U64_MAX = (1n << 64n) - 1n;

/** Reads a decimal field and the space after it; -1 when it is not one (exact below 2^53). */
function decimal(line: string): number {
  const start = pos;
  let v = 0;
  for (let c = line.charCodeAt(pos); c !== SPACE; c = line.charCodeAt(++pos)) {
    if (!(c >= 48 && c <= 57)) return -1;
    v = v * 10 + (c - 48);
  }
  if (pos === start) return -1;
  pos++;
  return v;
}

/** Reads a decimal field as text (IPv6 halves: up to 2^64); '' when it is not one. */
function decimalText(line: string): string {
  const start = pos;
  for (let c = line.charCodeAt(pos); c !== SPACE; c = line.charCodeAt(++pos)) {
    if (!(c >= 48 && c <= 57)) return '';
  }
  if (pos === start) return '';
  return line.slice(start, pos++);
}

/**
 * Reads the lowercase hex skb field; '' when it is not one. Addresses recur (the kernel reuses
 * sk_buffs): each is one string, found by its low 48 bits without building it. A slice would
 * also keep the whole line alive as long as the event.
 */
function hex(line: string): string {
  const start = pos;
  let low = 0;
  for (let c = line.charCodeAt(pos); c !== SPACE; c = line.charCodeAt(++pos)) {
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return '';
    low = (low % 0x100000000000) * 16 + d;
  }
  const len = pos - start;
  if (len === 0) return '';
  const cached = skbCache.get(low);
  if (cached !== undefined && cached.length === len && line.startsWith(cached, start)) {
    pos++;
    return cached;
  }
  // A flat copy, not a slice of the line.
  const s = JSON.parse(`"${line.slice(start, pos++)}"`) as string;
  if (skbCache.size >= CACHE_MAX) skbCache.clear();
  skbCache.set(low, s);
  return s;
}

// Addresses and device names repeat from line to line: one string each, shared by every event
// (cheaper than building it, smaller for consumers that keep events, and equal strings compare
// by pointer). Bounded: cleared when full.
const CACHE_MAX = 65536;
const v4Cache = new Map<number, string>();
const v6Cache = new Map<string, string>();
const skbCache = new Map<number, string>();
const ifnameCache = new Map<number, string>();

/** Dotted quad of a raw IPv4 u32 (the same text as rawV4ToString, without the generic path). */
function v4Text(raw: number): string {
  let s = v4Cache.get(raw);
  if (s === undefined) {
    s = `${raw & 0xff}.${(raw >>> 8) & 0xff}.${(raw >>> 16) & 0xff}.${raw >>> 24}`;
    if (v4Cache.size >= CACHE_MAX) v4Cache.clear();
    v4Cache.set(raw, s);
  }
  return s;
}

/** Text of a raw IPv6 address from its two decimal halves; null when a half is out of range. */
function v6Text(hi: string, lo: string): string | null {
  const key = `${hi}/${lo}`;
  let s = v6Cache.get(key);
  if (s === undefined) {
    const h = BigInt(hi);
    const l = BigInt(lo);
    if (h > U64_MAX || l > U64_MAX) return null;
    s = rawV6ToString(h, l);
    if (v6Cache.size >= CACHE_MAX) v6Cache.clear();
    v6Cache.set(key, s);
  }
  return s;
}

/** The rest of the line from `pos` (the device name), reusing the string last seen for this device. */
function ifnameAt(line: string, netns: number, ifindex: number): string {
  if (pos >= line.length) return '';
  const key = netns * 4096 + (ifindex & 4095);
  const cached = ifnameCache.get(key);
  if (cached !== undefined && cached.length === line.length - pos && line.startsWith(cached, pos)) return cached;
  const s = line.slice(pos);
  if (ifnameCache.size >= CACHE_MAX) ifnameCache.clear();
  ifnameCache.set(key, s);
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
 * Reads the `HB` lines' captured bytes: bpftrace's `%rx` prints every byte as `\xNN`.
 * Returns null when the field is not that.
 */
function capturedBytes(line: string): Uint8Array | null {
  const start = pos;
  while (pos < line.length && line.charCodeAt(pos) !== SPACE) pos++;
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
 * Parses one hop line (`H …`, or `HB …` with captured bytes before the device name).
 * Returns null when the line is malformed.
 */
export function parseHopLine(line: string): HopEvent | null {
  const withBytes = line.charCodeAt(1) === 66; // 'B'
  pos = withBytes ? 3 : 2;
  const kind = KIND_BY_CODE[decimal(line)];
  const t = decimal(line);
  const cpu = decimal(line);
  const skb = hex(line);
  const netns = decimal(line);
  const ifindex = decimal(line);
  const fam = decimal(line);
  const proto = decimal(line);
  const rawLen = decimal(line);
  const rawId = decimal(line);
  if (kind === undefined || (fam !== 4 && fam !== 6) || skb === '' || t < 0 || cpu < 0 || netns < 0 || ifindex < 0 || proto < 0 || rawLen < 0 || rawId < 0) return null;
  let src: string;
  let dst: string;
  if (fam === 4) {
    const s0 = decimal(line);
    const s1 = decimal(line);
    const d0 = decimal(line);
    const d1 = decimal(line);
    if (s0 < 0 || s1 < 0 || d0 < 0 || d1 < 0 || s0 > 0xffffffff || d0 > 0xffffffff) return null;
    src = v4Text(s0);
    dst = v4Text(d0);
  } else {
    const s0 = decimalText(line);
    const s1 = decimalText(line);
    const d0 = decimalText(line);
    const d1 = decimalText(line);
    if (s0 === '' || s1 === '' || d0 === '' || d1 === '') return null;
    const a = v6Text(s0, s1);
    const b = v6Text(d0, d1);
    if (a === null || b === null) return null;
    src = a;
    dst = b;
  }
  const sport = decimal(line);
  const dport = decimal(line);
  const icmpType = decimal(line);
  const icmpId = decimal(line);
  const tcpFlags = decimal(line);
  const tcpSeq = decimal(line);
  const reason = decimal(line);
  if (sport < 0 || dport < 0 || icmpType < 0 || icmpId < 0 || tcpFlags < 0 || tcpSeq < 0 || reason < 0) return null;
  if (sport > 0xffff || dport > 0xffff || rawLen > 0xffff || rawId > 0xffff || icmpId > 0xffff || tcpSeq > 0xffffffff) return null;
  let head: Uint8Array | null = null;
  if (withBytes) {
    head = capturedBytes(line);
    if (head === null) return null;
  }
  // ifname is last and may be empty: the rest of the line.
  const ifname = ifnameAt(line, netns, ifindex);
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
    // IPv6: the low 16 bits of a Fragment header's id (probes/decode.bt), 0 without one.
    ipId: swap16(rawId),
    src,
    dst,
    sport: swap16(sport),
    dport: swap16(dport),
    icmpType,
    icmpId: swap16(icmpId),
    tcpFlags,
    tcpSeq: swap32(tcpSeq),
    reason,
  };
  // The probe reads a fixed number of bytes: past the packet's end they are not the packet's.
  return head ? { ...hop, head: head.subarray(0, Math.min(head.length, ipLen)) } : hop;
}

export function parseProbeLine(line: string): ProbeLine {
  if (line.startsWith('H ') || line.startsWith('HB ')) {
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
