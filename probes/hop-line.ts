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
 * Other lines bpftrace prints on stdout: `READY` once every probe is attached (from BEGIN),
 * `Attaching N probes...`, and `Lost N events` when the perf buffer overflowed.
 * Fixtures of real output live in probes/fixtures/.
 */
import type { HopEvent, HopKind, Family } from '../shared/hop-event.js';
import { rawV4ToString, rawV6ToString, rawPort } from '../shared/filter/raw.js';

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

/** Parses one hop line's fields (after `H `). Returns null when the line is malformed. */
export function parseHopLine(line: string): HopEvent | null {
  // ifname is last and may be empty, so split off exactly 22 fields and keep the rest as the name.
  const parts: string[] = [];
  let pos = 2;
  for (let i = 0; i < 21; i++) {
    const next = line.indexOf(' ', pos);
    if (next < 0) return null;
    parts.push(line.slice(pos, next));
    pos = next + 1;
  }
  const ifname = line.slice(pos);
  const num = (i: number): number => Number(parts[i]);
  const big = (i: number): bigint => BigInt(parts[i] ?? '0');
  const kind = KIND_BY_CODE[num(0)];
  const fam = num(6);
  const skb = parts[3] ?? '';
  if (kind === undefined || (fam !== 4 && fam !== 6) || !/^[0-9a-f]+$/.test(skb)) return null;
  for (let i = 0; i < parts.length; i++) if (i !== 3 && !/^\d+$/.test(parts[i] ?? '')) return null;
  const v4 = fam === 4;
  const rawLen = swap16(num(8));
  const hop: HopEvent = {
    kind,
    t: num(1),
    cpu: num(2),
    skb,
    netns: num(4),
    ifindex: num(5),
    ifname,
    family: fam as Family,
    proto: num(7),
    len: v4 ? rawLen : rawLen + 40,
    ipId: v4 ? swap16(num(9)) : 0,
    src: v4 ? rawV4ToString(num(10)) : rawV6ToString(big(10), big(11)),
    dst: v4 ? rawV4ToString(num(12)) : rawV6ToString(big(12), big(13)),
    sport: rawPort(num(14)),
    dport: rawPort(num(15)),
    icmpType: num(16),
    icmpId: swap16(num(17)),
    tcpFlags: num(18),
    tcpSeq: swap32(num(19)),
    reason: num(20),
  };
  return hop;
}

export function parseProbeLine(line: string): ProbeLine {
  if (line.startsWith('H ')) {
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
