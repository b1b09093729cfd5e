/**
 * Synthetic hop events shaped like a real trace of the demo lab: each packet leaves pod1, crosses
 * the node's bridge (sometimes NAT, sometimes a drop) and arrives in pod2, with CPU interleaving
 * that puts events slightly out of time order as bpftrace's per-CPU buffers do.
 */
import type { HopEvent } from '../../shared/hop-event.js';
import type { RecordingHeader } from '../../shared/recording/index.js';

/** Small deterministic PRNG (mulberry32): tests and benches repeat exactly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const NS = { pod1: 4026532001, node: 4026532002, pod2: 4026532003 } as const;
export const NS_NAMES: ReadonlyArray<[number, string]> = [[NS.pod1, 'lab-pod1'], [NS.node, 'lab-node'], [NS.pod2, 'lab-pod2']];
export const START_MONO = 5_000_000_000_000;
export const START_WALL = 1_764_000_000_000_000_000n;

export function syntheticHeader(over: Partial<RecordingHeader> = {}): RecordingHeader {
  return {
    host: 'testhost', kernel: '6.18.0-test', bpftraceVersion: 'bpftrace v0.17.0',
    probes: ['net:net_dev_start_xmit', 'net:netif_rx', 'net:netif_receive_skb', 'skb:kfree_skb', 'skb:consume_skb'],
    filter: '', startWallNs: START_WALL, startMonoNs: START_MONO,
    dropReasons: new Map([[2, 'NOT_SPECIFIED'], [12, 'NETFILTER_DROP']]), recorder: 'hoptrace test',
    ...over,
  };
}

/**
 * `packets` packets, `gapNs` apart on average, starting at t0 (START_MONO + 1 ms). Returns events in
 * the order a tracer would deliver them (mostly by time, CPUs interleaved within ~1 ms).
 */
export function syntheticEvents(packets: number, seed = 1, gapNs = 200_000, t0 = START_MONO + 1_000_000): HopEvent[] {
  const r = rng(seed);
  const out: HopEvent[] = [];
  let t = t0;
  for (let i = 0; i < packets; i++) {
    t += Math.floor(gapNs * (0.5 + r()));
    const skb = `ffff8881${(0x10000000 + Math.floor(r() * 0xfffffff)).toString(16)}`;
    const kindOfPacket = r();
    const proto = kindOfPacket < 0.6 ? 17 : kindOfPacket < 0.9 ? 6 : 1;
    const cpu = Math.floor(r() * 2);
    const ipId = (i * 7919) & 0xffff;
    const len = 40 + Math.floor(r() * 1400);
    const sport = proto === 1 ? 0 : 30000 + (i % 5000);
    const dport = proto === 1 ? 0 : 80;
    const icmpType = proto === 1 ? 8 : 0;
    const icmpId = proto === 1 ? i & 0xffff : 0;
    const tcpFlags = proto === 6 ? 0x18 : 0;
    const tcpSeq = proto === 6 ? (i * 2654435761) >>> 0 : 0;
    const dropped = r() < 0.05;
    let ht = t;
    // Literal objects with one key order (no spreads): fast enough for the million-event bench.
    const hop = (kind: HopEvent['kind'], netns: number, ifindex: number, ifname: string, reason = 0): void => {
      out.push({
        kind, t: ht, cpu, skb, netns, ifindex, ifname, family: 4, proto, len, ipId, src: '10.244.1.11', dst: '10.244.1.12',
        sport, dport, icmpType, icmpId, tcpFlags, tcpSeq, reason,
      });
      ht += 2_000 + Math.floor(r() * 20_000);
    };
    hop('xmit', NS.pod1, 2, 'eth0');
    hop('rx', NS.node, 3, 'veth-pod1');
    hop('recv', NS.node, 3, 'veth-pod1');
    if (dropped) {
      hop('drop', NS.node, 3, 'veth-pod1', 12);
      continue;
    }
    hop('xmit', NS.node, 5, 'br0');
    hop('xmit', NS.node, 4, 'veth-pod2');
    hop('rx', NS.pod2, 2, 'eth0');
    hop('recv', NS.pod2, 2, 'eth0');
    hop('consume', NS.pod2, 2, 'eth0');
  }
  // Deliver in CPU-buffer order: swap some neighbours that are close in time.
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1] as HopEvent;
    const b = out[i] as HopEvent;
    if (b.t - a.t < 1_000_000 && r() < 0.1) {
      out[i - 1] = b;
      out[i] = a;
    }
  }
  return out;
}
