/**
 * The stats document: what `hoptrace stats --json` prints per interval, what the service streams
 * and what the dashboard charts. Public contract: add fields, never rename or remove them.
 * Names are snake_case as in issue 8's JSON. Counts are of the packets the kernel followed: with
 * `sample_rate` N > 1 that is about 1 in N flows, and the counts are NOT scaled up.
 */
import type { HopKind } from '../hop-event.js';
import type { HistBucket } from './buckets.js';

export type { HistBucket } from './buckets.js';

/** Where a hop happened. */
export interface StatsPlace {
  /** Namespace name, `netns:<inode>` when unknown. */
  readonly ns: string;
  /** Interface name, `if<index>` when unknown, '' without a device. */
  readonly ifname: string;
  readonly event: HopKind;
  readonly netns: number;
  readonly ifindex: number;
  /** The node that saw the hop (documents of a hub's sessions, `serve --hub`); absent on one host. */
  readonly node?: string;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50_ns: number;
  readonly p90_ns: number;
  readonly p99_ns: number;
  readonly max_ns: number;
  /** Non-empty buckets, ascending (shared/stats/buckets.ts). */
  readonly hist: HistBucket[];
}

/** Time between two consecutive hops of one packet. */
export interface SegmentStats extends LatencySummary {
  readonly from: StatsPlace;
  readonly to: StatsPlace;
  /**
   * Whose clock timed it (hub documents only; absent on one host, where one kernel's clock times
   * every segment): 'node' — both hops on one node, timed by that node's own clock (exact);
   * 'estimate' — the segment crosses nodes (left `from.node`, entered `to.node`), timed on the
   * hub's estimate of the two nodes' clock offset (GET /api/cluster `clockOffsets`), which
   * includes the wire time when only one direction was seen; a negative difference counts as 0.
   */
  readonly clock?: 'node' | 'estimate';
}

/** Time a packet spent crossing a namespace: entered from another one, left to another one. */
export interface TransitStats extends LatencySummary {
  readonly ns: string;
  readonly netns: number;
  /** The node (hub documents only). */
  readonly node?: string;
}

export interface DropStats {
  /** The node (hub documents only). */
  readonly node?: string;
  readonly ns: string;
  readonly netns: number;
  readonly ifname: string;
  readonly ifindex: number;
  /** Kernel drop reason without SKB_DROP_REASON_. */
  readonly reason: string;
  readonly count: number;
}

export interface InterfaceStats {
  /** The node (hub documents only). */
  readonly node?: string;
  readonly ns: string;
  readonly netns: number;
  readonly ifname: string;
  readonly ifindex: number;
  /** Packets per second, transmitted + received. */
  readonly pps: number;
  /** Bits per second of IP length (no link-layer headers), transmitted + received. */
  readonly bps: number;
  readonly rx_packets: number;
  readonly tx_packets: number;
  readonly rx_bytes: number;
  readonly tx_bytes: number;
}

export interface StatsDocument {
  readonly type: 'stats';
  /** Interval bounds, kernel monotonic ns (the clock of hop events); a hub's documents: wall-clock ns (its nodes' kernels differ). */
  readonly start_ns: number;
  readonly end_ns: number;
  /** The same bounds as wall-clock ISO times. */
  readonly start: string;
  readonly end: string;
  readonly duration_s: number;
  /** 1 in `sample_rate` flows were followed (1: all of them). Counts are not scaled. */
  readonly sample_rate: number;
  /** Canonical filter text ('' for none). */
  readonly filter: string;
  /** The last document of a run. */
  readonly final: boolean;
  readonly segments: SegmentStats[];
  readonly transit: TransitStats[];
  readonly drops: DropStats[];
  readonly interfaces: InterfaceStats[];
}

/** Resolves inodes, ifindexes and reason codes to names. */
export interface StatsNames {
  ns(netns: number): string | null;
  ifname(netns: number, ifindex: number): string | null;
  reason(code: number): string;
}
