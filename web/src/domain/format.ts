/** How numbers, times and tuples read on screen. Pure functions, shared by every view. */

/** A duration in ns, in the unit that keeps 3 significant digits: 870 ns, 12.4 µs, 3.07 ms, 1.25 s. */
export function formatDuration(ns: number): string {
  const a = Math.abs(ns);
  if (a < 1_000) return `${Math.round(ns)} ns`;
  if (a < 1_000_000) return `${trim(ns / 1_000)} µs`;
  if (a < 1_000_000_000) return `${trim(ns / 1_000_000)} ms`;
  return `${trim(ns / 1_000_000_000)} s`;
}

function trim(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Kernel monotonic ns ⇄ wall clock, from one (monotonic, epoch) pair the service measured together. */
export interface ClockRef {
  readonly monotonicNs: number;
  readonly epochMs: number;
}

/**
 * A hop time as a clock time (HH:MM:SS.mmm, local) when the service told us how kernel time maps
 * to the wall clock, else as seconds since `originNs` (the first event this view saw).
 */
export function formatTime(tNs: number, clock: ClockRef | null, originNs: number): string {
  if (clock) {
    const ms = clock.epochMs + (tNs - clock.monotonicNs) / 1e6;
    const d = new Date(Math.floor(ms));
    const p = (v: number, w = 2): string => String(v).padStart(w, '0');
    // Microseconds: packets of one exchange are often within the same millisecond.
    const us = Math.floor((ms - Math.floor(ms / 1000) * 1000) * 1000);
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(us, 6)}`;
  }
  // Before the origin (the hub's stitched packets arrive out of order): a minus, not "+-".
  const s = (tNs - originNs) / 1e9;
  return `${s < 0 ? '−' : '+'}${Math.abs(s).toFixed(6)}`;
}

/** address:port, with IPv6 in brackets; the port is left out when 0 (icmp). */
export function endpoint(addr: string, port: number): string {
  if (!port) return addr || '?';
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export interface TupleLike {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

export function formatTuple(t: TupleLike): string {
  return `${endpoint(t.src, t.sport)} → ${endpoint(t.dst, t.dport)}`;
}

/** Compact count: 950, 12.3k, 4.51M. */
export function formatCount(v: number): string {
  const a = Math.abs(v);
  if (a < 1000) return String(Math.round(v));
  if (a < 1e6) return `${trim(v / 1e3)}k`;
  return `${trim(v / 1e6)}M`;
}

/** 1.2 kB, 34 MB: decimal units, as file managers show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** An elapsed time as a clock reads: 0:07, 12:05, 1:02:03. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const p = (v: number): string => String(v).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${p(m)}:${p(s % 60)}` : `${m}:${p(s % 60)}`;
}

/** A replay position relative to the recording's start: +12.345678 s (µs: packets of one exchange are that close). */
export function formatOffset(ns: number): string {
  const sign = ns < 0 ? '−' : '+';
  return `${sign}${(Math.abs(ns) / 1e9).toFixed(6)} s`;
}

/** A wall-clock instant (ms since the epoch, fractional) as local date and time with µs. */
export function formatWall(ms: number): string {
  const d = new Date(Math.floor(ms));
  const p = (v: number, w = 2): string => String(v).padStart(w, '0');
  const us = Math.floor((ms - Math.floor(ms / 1000) * 1000) * 1000);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(us, 6)}`;
}

/**
 * What counts of a flow-sampled trace are, said next to them: '' for every flow (1 or unknown),
 * else `sampled 1 in N flows — counts not scaled` (the kernel follows 1 in N flows by flow hash;
 * nothing is multiplied back up).
 */
export function formatSampling(rate: number | null | undefined): string {
  return rate != null && rate > 1 ? `sampled 1 in ${rate} flows — counts not scaled` : '';
}

/** The flows choices of a new session (as the stats panel offers them): 1 is every flow. */
export const SAMPLE_CHOICES: readonly number[] = [1, 4, 16, 64, 256];

export function formatRate(perSec: number): string {
  return `${formatCount(perSec)}/s`;
}

/** TCP flag letters in tcpdump's order (FIN SYN RST PSH ACK URG ECE CWR). */
export function tcpFlags(flags: number): string {
  const names: [number, string][] = [[0x02, 'S'], [0x10, '.'], [0x01, 'F'], [0x04, 'R'], [0x08, 'P'], [0x20, 'U'], [0x40, 'E'], [0x80, 'W']];
  let out = '';
  for (const [bit, ch] of names) if (flags & bit) out += ch;
  return out ? `[${out}]` : '';
}

/** A drop reason as people read it: NETFILTER_DROP → "netfilter drop". Unknown codes stay as they are. */
export function humanReason(reason: string): string {
  if (/^reason-\d+$/.test(reason)) return reason;
  return reason.toLowerCase().replace(/_/g, ' ');
}

/** Hop kinds in words, for tooltips and the hop table. */
export const HOP_KIND_TEXT: Readonly<Record<string, string>> = {
  xmit: 'transmit (net_dev_start_xmit)',
  rx: 'backlog rx (netif_rx)',
  recv: 'receive (netif_receive_skb)',
  drop: 'drop (kfree_skb)',
  consume: 'consumed (consume_skb)',
};

/** "1 hop", "5 hops": a count with its noun, singular for one. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${formatCount(n)} ${n === 1 ? noun : nouns}`;
}
