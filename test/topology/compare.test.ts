import { describe, expect, it } from 'vitest';
import type { Hop, Packet } from '../../shared/packet.js';
import type { HopKind } from '../../shared/hop-event.js';
import type { Topology } from '../../shared/topology/model.js';
import { comparePaths, expectPacket, flowFromPacket } from '../../shared/topology/compare.js';
import { simulatePath } from '../../shared/topology/simulate.js';
import { podLab } from './builder.js';

const MASQ = `*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE
COMMIT
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -p udp -m udp --dport 9999 -j DROP
COMMIT
`;

function lab(): Topology {
  return podLab().iptables('node', MASQ).build();
}

function inode(t: Topology, name: string): number {
  const n = t.namespaces.find((x) => x.name === name);
  if (!n) throw new Error(name);
  return n.netns;
}

let clock = 1000;
function hop(t: Topology, ns: string, ifname: string, event: HopKind, src: string, dst: string, sport = 4000, dport = 9002): Hop {
  clock += 1000;
  return {
    t: clock, event, netns: inode(t, ns), ns, ifname, ifindex: 0, src, dst, sport, dport,
    cpu: 0, len: 29, ipId: 1, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
  };
}

/**
 * What the kernel showed for a pod→ext UDP packet through MASQUERADE on the lab
 * (bpftrace on net_dev_start_xmit / netif_rx / netif_receive_skb, see kernel-notes.md).
 */
function observedPodToExt(t: Topology): Hop[] {
  const a = '10.244.1.11';
  const d = '10.99.0.2';
  return [
    hop(t, 'pod1', 'eth0', 'xmit', a, d),
    hop(t, 'node', 'veth-pod1', 'rx', a, d),
    hop(t, 'node', 'veth-pod1', 'recv', a, d),
    hop(t, 'node', 'br0', 'recv', a, d),
    hop(t, 'node', 'eth-node', 'xmit', '10.99.0.1', d),
    hop(t, 'ext', 'eth0', 'rx', '10.99.0.1', d),
    hop(t, 'ext', 'eth0', 'recv', '10.99.0.1', d),
  ];
}

const podToExt = { from: 'pod1', src: '10.244.1.11', dst: '10.99.0.2', proto: 'udp', sport: 4000, dport: 9002 } as const;

describe('comparePaths', () => {
  it('should find no divergence when the kernel followed the expected path (rx hops ignored)', () => {
    const t = lab();
    expect(comparePaths(observedPodToExt(t), simulatePath(t, podToExt))).toBeNull();
  });

  it('should accept a delivered packet freed afterwards for lack of a socket', () => {
    const t = lab();
    const obs = [...observedPodToExt(t), hop(t, 'ext', 'eth0', 'drop', '10.99.0.1', '10.99.0.2')];
    expect(comparePaths(obs, simulatePath(t, podToExt), { dropReason: 'NO_SOCKET' })).toBeNull();
  });

  it('should report a firewall drop after arrival as a divergence', () => {
    const t = lab();
    const obs = [...observedPodToExt(t), hop(t, 'ext', 'eth0', 'drop', '10.99.0.1', '10.99.0.2')];
    const d = comparePaths(obs, simulatePath(t, podToExt), { dropReason: 'NETFILTER_DROP' });
    expect(d?.kind).toBe('drop');
    expect(d?.summary).toContain('was dropped in ext (reason NETFILTER_DROP)');
  });

  it('should name the expected hop and the drop when the packet was dropped in the node', () => {
    const t = lab();
    const a = '10.244.1.11';
    const d = '10.99.0.2';
    const obs = [
      hop(t, 'pod1', 'eth0', 'xmit', a, d),
      hop(t, 'node', 'veth-pod1', 'rx', a, d),
      hop(t, 'node', 'veth-pod1', 'recv', a, d),
      hop(t, 'node', 'br0', 'recv', a, d),
      hop(t, 'node', 'br0', 'drop', a, d),
    ];
    const div = comparePaths(obs, simulatePath(t, podToExt), { dropReason: 'NETFILTER_DROP' });
    expect(div).not.toBeNull();
    expect(div?.index).toBe(3);
    expect(div?.observedIndex).toBe(4);
    expect(div?.expected).toMatchObject({ ns: 'node', ifname: 'eth-node', event: 'xmit' });
    expect(div?.observed?.event).toBe('drop');
    expect(div?.summary).toBe('expected to leave node through eth-node (xmit), was dropped in node (reason NETFILTER_DROP)');
    // With trace --netfilter the rule that dropped it is known: the summary names hook and rule.
    const droppedBy = {
      ns: 'node', netns: inode(t, 'node'), hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD',
      type: 'rule', rule: 'udp dport 9002 drop', handle: 7, verdict: 'drop', nat: null, afterHop: 3,
    } as const;
    const named = comparePaths(obs, simulatePath(t, podToExt), { dropReason: 'NETFILTER_DROP', droppedBy });
    expect(named?.summary).toBe('expected to leave node through eth-node (xmit), was dropped in node in FORWARD by ip filter FORWARD rule "udp dport 9002 drop" (reason NETFILTER_DROP)');
  });

  it('should agree when the model also expected the drop', () => {
    const t = lab();
    const a = '10.244.1.11';
    const d = '10.99.0.2';
    const obs = [
      hop(t, 'pod1', 'eth0', 'xmit', a, d, 1, 9999),
      hop(t, 'node', 'veth-pod1', 'recv', a, d, 1, 9999),
      hop(t, 'node', 'br0', 'recv', a, d, 1, 9999),
      hop(t, 'node', 'br0', 'drop', a, d, 1, 9999),
    ];
    const expected = simulatePath(t, { ...podToExt, sport: 1, dport: 9999 });
    expect(expected.fate).toBe('dropped');
    expect(comparePaths(obs, expected, { dropReason: 'NETFILTER_DROP' })).toBeNull();
  });

  it('should report a packet that took another interface', () => {
    const t = lab();
    const a = '10.244.1.11';
    const d = '10.99.0.2';
    const obs = [
      hop(t, 'pod1', 'eth0', 'xmit', a, d),
      hop(t, 'node', 'veth-pod1', 'recv', a, d),
      hop(t, 'node', 'veth-pod2', 'xmit', a, d),
    ];
    const div = comparePaths(obs, simulatePath(t, podToExt));
    expect(div?.kind).toBe('path');
    expect(div?.summary).toBe('expected to arrive in node on br0 (recv), left node through veth-pod2 (xmit)');
  });

  it('should report a source address the model did not expect (NAT divergence)', () => {
    const t = lab();
    const obs = observedPodToExt(t).map((h) => (h.ifname === 'eth-node' ? { ...h, src: '10.99.0.77' } : h));
    const div = comparePaths(obs, simulatePath(t, podToExt));
    expect(div?.kind).toBe('nat');
    expect(div?.summary).toContain('expected 10.99.0.1 → 10.99.0.2 on eth-node');
    expect(div?.summary).toContain('saw 10.99.0.77 → 10.99.0.2');
  });

  it('should tolerate an observation that starts mid-path and one that lost a hop', () => {
    const t = lab();
    const full = observedPodToExt(t);
    expect(comparePaths(full.slice(2), simulatePath(t, podToExt))).toBeNull();
    const lost = full.filter((h) => !(h.ifname === 'br0'));
    expect(comparePaths(lost, simulatePath(t, podToExt))).toBeNull();
  });

  it('should ignore hops on devices the model does not know', () => {
    const t = lab();
    const obs = observedPodToExt(t);
    obs.splice(4, 0, hop(t, 'node', 'ifb0', 'xmit', '10.244.1.11', '10.99.0.2'));
    expect(comparePaths(obs, simulatePath(t, podToExt), { topology: t })).toBeNull();
    // Without the topology it cannot tell, and reports it.
    expect(comparePaths(obs, simulatePath(t, podToExt))?.observed?.ifname).toBe('ifb0');
  });

  it('should report an observation that stopped before the expected end', () => {
    const t = lab();
    const obs = observedPodToExt(t).slice(0, 4);
    const div = comparePaths(obs, simulatePath(t, podToExt));
    expect(div?.kind).toBe('missing');
    expect(div?.observed).toBeNull();
    expect(div?.summary).toBe('expected to leave node through eth-node (xmit), was last seen in node on br0 (recv)');
  });

  it('should report a packet the model says cannot leave its sender, seen moving on', () => {
    const t = lab();
    const expected = simulatePath(t, { from: 'ext', dst: '10.244.1.11', proto: 'udp', sport: 4000, dport: 9002 });
    expect(expected.hops).toEqual([]);
    const obs = [hop(t, 'ext', 'eth0', 'xmit', '10.99.0.2', '10.244.1.11')];
    const div = comparePaths(obs, expected);
    expect(div?.kind).toBe('path');
    expect(div?.observedIndex).toBe(0);
    expect(div?.summary).toMatch(/^expected to end in ext \(unreachable\), /);
    // Its own no-route drop in the sender is what the model said.
    expect(comparePaths([hop(t, 'ext', '', 'drop', '10.99.0.2', '10.244.1.11')], expected)).toBeNull();
  });

  it('should report hops past the expected end', () => {
    const t = lab();
    const expected = simulatePath(t, { from: 'pod1', dst: '10.244.1.1', proto: 'udp', sport: 4000, dport: 9002 });
    const obs = [
      hop(t, 'pod1', 'eth0', 'xmit', '10.244.1.11', '10.244.1.1'),
      hop(t, 'node', 'veth-pod1', 'recv', '10.244.1.11', '10.244.1.1'),
      hop(t, 'node', 'br0', 'recv', '10.244.1.11', '10.244.1.1'),
      hop(t, 'node', 'eth-node', 'xmit', '10.244.1.11', '10.244.1.1'),
    ];
    const div = comparePaths(obs, expected);
    expect(div?.index).toBe(3);
    expect(div?.expected).toBeNull();
    expect(div?.summary).toBe('expected to end in node (delivered), left node through eth-node (xmit)');
  });
});

describe('expectPacket', () => {
  function packet(hops: Hop[]): Packet {
    const f = hops[0];
    if (!f) throw new Error('no hops');
    return {
      id: `${f.t}-ffff`, proto: 'udp', family: 4, src: f.src, dst: f.dst, sport: f.sport, dport: f.dport,
      fate: 'delivered', fateBy: 'local-address', drop: null, hops, cloneOf: null,
    };
  }

  it('should simulate from the first hop and compare', () => {
    const t = lab();
    const r = expectPacket(t, packet(observedPodToExt(t)));
    expect(r.expected?.fate).toBe('delivered');
    expect(r.expected?.flow.ns).toBe('pod1');
    expect(r.divergence).toBeNull();
  });

  it('should start a packet first seen on a receive as received there', () => {
    const t = lab();
    const obs = observedPodToExt(t).slice(1);
    const flow = flowFromPacket(packet(obs));
    expect(flow).toMatchObject({ from: inode(t, 'node'), iif: 'veth-pod1', src: '10.244.1.11', proto: 'udp' });
    const r = expectPacket(t, packet(obs));
    expect(r.expected?.hops[0]).toMatchObject({ ns: 'node', ifname: 'veth-pod1', event: 'recv' });
    expect(r.divergence).toBeNull();
  });

  it('should match a delivered packet its socket then discarded with its expected delivered path (issue 19)', () => {
    const t = lab();
    const obs = [...observedPodToExt(t), hop(t, 'ext', '', 'drop', '10.99.0.1', '10.99.0.2')];
    const discard = { reason: 'NOT_SPECIFIED', ns: 'ext', netns: inode(t, 'ext'), ifname: 'eth0' };
    const r = expectPacket(t, { ...packet(obs), discard });
    expect(r.expected?.fate).toBe('delivered');
    expect(r.divergence).toBeNull();
    // Delivered short of where the model expected it: a divergence, told as a delivery.
    const early = [...observedPodToExt(t).slice(0, 4), hop(t, 'node', '', 'drop', '10.244.1.11', '10.99.0.2')];
    const d = expectPacket(t, { ...packet(early), discard: { ...discard, ns: 'node', netns: inode(t, 'node') } }).divergence;
    expect(d?.summary).toBe('expected to leave node through eth-node (xmit), was delivered in node (then discarded by its socket: NOT_SPECIFIED)');
  });

  it('should give no expectation for a namespace the model does not know', () => {
    const t = lab();
    const obs = observedPodToExt(t).map((h) => ({ ...h, netns: 1 }));
    expect(expectPacket(t, packet(obs))).toEqual({ expected: null, divergence: null });
  });
});
