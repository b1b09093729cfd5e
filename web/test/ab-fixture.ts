/**
 * Two small recordings for A/B tests, written by the shared recording encoder: the same lab path
 * (pod1 → node bridge → pod2) recorded twice, the lab recreated in between (other namespace
 * inodes, same names), and in the second the node forwards 40× slower (5 µs → 200 µs between its
 * receive on veth-pod1 and its transmit on br0). Every other hop gap is the same in both.
 */
import type { HopEvent, HopKind } from '../../shared/hop-event.js';
import { RecordingEncoder } from '../../shared/recording/index.js';
import { START_MONO, START_WALL, syntheticHeader } from '../../test/recording/synthetic.js';

export interface AbLab { readonly pod1: number; readonly node: number; readonly pod2: number }

/**
 * `packets` UDP packets pod1 → node (bridge) → pod2, 1 ms apart. Gaps between hops: 4 µs on the
 * veths, `forwardNs` from the node's receive to its bridge transmit (where forwarding and NAT
 * happen), 2 µs elsewhere.
 */
export function abRecording(lab: AbLab, packets: number, forwardNs: number): Uint8Array {
  const enc = new RecordingEncoder(syntheticHeader({ filter: 'udp' }));
  enc.topology({
    t: START_MONO, snapshot: true, model: null, removed: [],
    namespaces: [{ netns: lab.pod1, name: 'lab-pod1' }, { netns: lab.node, name: 'lab-node' }, { netns: lab.pod2, name: 'lab-pod2' }],
  });
  let last = START_MONO;
  for (let i = 0; i < packets; i++) {
    let t = START_MONO + 1_000_000 * (i + 1);
    const skb = `ffff8881${(0x10000000 + i * 0x1000).toString(16)}`;
    const hop = (kind: HopKind, netns: number, ifindex: number, ifname: string, gapAfter: number): void => {
      const ev: HopEvent = {
        kind, t, cpu: 0, skb, netns, ifindex, ifname, family: 4, proto: 17, len: 60, ipId: (i * 31) & 0xffff,
        src: '10.244.1.11', dst: '10.244.1.12', sport: 40000 + i, dport: 7000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
      };
      enc.event(ev);
      last = t;
      t += gapAfter;
    };
    hop('xmit', lab.pod1, 2, 'eth0', 4_000);
    hop('rx', lab.node, 3, 'veth-pod1', 2_000);
    hop('recv', lab.node, 3, 'veth-pod1', forwardNs);
    hop('xmit', lab.node, 5, 'br0', 2_000);
    hop('xmit', lab.node, 4, 'veth-pod2', 4_000);
    hop('rx', lab.pod2, 2, 'eth0', 2_000);
    hop('recv', lab.pod2, 2, 'eth0', 2_000);
    hop('consume', lab.pod2, 2, 'eth0', 0);
  }
  enc.end({ t: last + 1000, wallNs: START_WALL + BigInt(last + 1000 - START_MONO), packets, reason: 'duration' });
  return enc.take();
}

/** 40 packets, forwarding 5 µs. */
export const AB_BEFORE = abRecording({ pod1: 4026532001, node: 4026532002, pod2: 4026532003 }, 40, 5_000);
/** 60 packets, forwarding 200 µs; the lab recreated: new inodes, same names (segments are matched by names). */
export const AB_AFTER = abRecording({ pod1: 4026533101, node: 4026533102, pod2: 4026533103 }, 60, 200_000);
