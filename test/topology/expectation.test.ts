/**
 * PathExpectations, what `trace` and the service put on every packet: the expected path and the
 * divergence, with replies and later packets of NATed connections expected as conntrack
 * handles them. Observed hops are the ones the kernel showed on the lab (kernel-notes.md).
 */
import { describe, expect, it } from 'vitest';
import type { Hop, Packet } from '../../shared/packet.js';
import type { HopKind } from '../../shared/hop-event.js';
import type { Topology } from '../../shared/topology/model.js';
import { PathExpectations } from '../../shared/expectation.js';
import { podLab } from './builder.js';

const MASQ = `*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE
COMMIT
`;

function inode(t: Topology, name: string): number {
  const n = t.namespaces.find((x) => x.name === name);
  if (!n) throw new Error(name);
  return n.netns;
}

let clock = 1000;
function hop(t: Topology, ns: string, ifname: string, event: HopKind, src: string, dst: string, sport: number, dport: number): Hop {
  clock += 1000;
  return {
    t: clock, event, netns: inode(t, ns), ns, ifname, ifindex: 0, src, dst, sport, dport,
    cpu: 0, len: 29, ipId: 1, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
  };
}

function packet(hops: Hop[]): Packet {
  const f = hops[0];
  if (!f) throw new Error('no hops');
  return {
    id: `${f.t}-ffff`, proto: 'udp', family: 4, src: f.src, dst: f.dst, sport: f.sport, dport: f.dport,
    fate: 'delivered', fateBy: 'local-address', drop: null, hops, cloneOf: null,
  };
}

/** pod1 → ext through MASQUERADE, as the kernel showed it. */
function request(t: Topology): Packet {
  const [a, n, d] = ['10.244.1.11', '10.99.0.1', '10.99.0.2'];
  return packet([
    hop(t, 'pod1', 'eth0', 'xmit', a, d, 40000, 7000),
    hop(t, 'node', 'veth-pod1', 'recv', a, d, 40000, 7000),
    hop(t, 'node', 'br0', 'recv', a, d, 40000, 7000),
    hop(t, 'node', 'eth-node', 'xmit', n, d, 40000, 7000),
    hop(t, 'ext', 'eth0', 'recv', n, d, 40000, 7000),
  ]);
}

/** The reply: to the node's address, de-NATed in the node's PREROUTING, bridged to pod1. */
function reply(t: Topology): Packet {
  const [a, n, d] = ['10.244.1.11', '10.99.0.1', '10.99.0.2'];
  return packet([
    hop(t, 'ext', 'eth0', 'xmit', d, n, 7000, 40000),
    hop(t, 'node', 'eth-node', 'recv', d, n, 7000, 40000),
    hop(t, 'node', 'br0', 'xmit', d, a, 7000, 40000),
    hop(t, 'node', 'veth-pod1', 'xmit', d, a, 7000, 40000),
    hop(t, 'pod1', 'eth0', 'recv', d, a, 7000, 40000),
  ]);
}

describe('PathExpectations', () => {
  it('should expect the reply of a MASQUERADEd request to be de-NATed back to the pod', () => {
    const t = podLab().iptables('node', MASQ).build();
    const x = new PathExpectations(t);
    const req = x.annotate(request(t));
    expect(req.divergence).toBeNull();
    expect(req.expected?.connections).toHaveLength(1);
    const rep = x.annotate(reply(t));
    expect(rep.divergence).toBeNull();
    expect(rep.expected?.fate).toBe('delivered');
    expect(rep.expected?.hops.at(-1)).toMatchObject({ ns: 'pod1', ifname: 'eth0', event: 'recv', dst: '10.244.1.11' });
  });

  it('should take a UDP reply whose request it never saw as conntrack reversing the MASQUERADE, and say it guessed', () => {
    const t = podLab().iptables('node', MASQ).build();
    const rep = new PathExpectations(t).annotate(reply(t));
    expect(rep.divergence).toBeNull();
    expect(rep.expected?.guess).toBe(true);
    expect(rep.expected?.notes.join('\n')).toContain("its NAT in node was taken from this packet's observed hops");
    expect(rep.expected?.hops.find((h) => h.hook === 'PREROUTING')?.rules[0]?.verdict).toBe('reverse NAT: destination 10.244.1.11:40000');
  });

  it('should still report a UDP datagram whose NAT no rule of the namespace explains', () => {
    const t = podLab().iptables('node', MASQ).build();
    // From ext to an address the node does not own, rewritten on the way: no reply pattern.
    const odd = packet([
      hop(t, 'ext', 'eth0', 'xmit', '10.99.0.2', '10.244.1.12', 7000, 40000),
      hop(t, 'node', 'eth-node', 'recv', '10.99.0.2', '10.244.1.12', 7000, 40000),
      hop(t, 'node', 'br0', 'xmit', '10.99.0.2', '10.244.1.11', 7000, 40000),
      hop(t, 'node', 'veth-pod1', 'xmit', '10.99.0.2', '10.244.1.11', 7000, 40000),
      hop(t, 'pod1', 'eth0', 'recv', '10.99.0.2', '10.244.1.11', 7000, 40000),
    ]);
    expect(new PathExpectations(t).annotate(odd).divergence).not.toBeNull();
  });

  it('should keep the connections it knows across a topology change', () => {
    const t = podLab().iptables('node', MASQ).build();
    const before = new PathExpectations(t);
    before.annotate(request(t));
    const after = before.withTopology(podLab().iptables('node', MASQ).build());
    expect(after.knownConnections).toBe(2);
    expect(after.annotate(reply(t)).divergence).toBeNull();
  });

  it('should compare a packet with the model in force when it started, not the one read while it was on its way', () => {
    // A discovery that started while a packet was in flight read the host after the packet had
    // changed it (a vxlan or bridge FDB learning from its reply): that packet keeps the model before.
    const withMasq = podLab().iptables('node', MASQ).build();
    const x = new PathExpectations(withMasq);
    const inFlight = request(withMasq);
    const sinceNs = (inFlight.hops[0]?.t ?? 0) + 1;
    const y = x.withTopology(podLab().build(), sinceNs);
    expect(y.annotate(inFlight).divergence).toBeNull();
    // A packet sent after the rule went: the NAT it shows is explained by no rule any more.
    const later = request(withMasq);
    const other = { ...later, sport: 40001, hops: later.hops.map((h) => ({ ...h, sport: 40001 })) };
    expect(other.hops[0]!.t).toBeGreaterThan(sinceNs);
    expect(y.annotate(other).divergence).not.toBeNull();
    // Without a time, the new model is for every packet (a refresh asked for, not a change seen).
    expect(x.withTopology(podLab().build()).annotate({ ...inFlight, sport: 40002, hops: inFlight.hops.map((h) => ({ ...h, sport: 40002 })) }).divergence).not.toBeNull();
  });

  it('should re-simulate a reply cached before its connection was known', () => {
    const t = podLab().iptables('node', MASQ).build();
    const x = new PathExpectations(t);
    // Without the request the reply's NAT is taken from its own hops (a guess)...
    expect(x.annotate(reply(t)).expected?.guess).toBe(true);
    x.annotate(request(t));
    // ...and once the request was seen, from the connection it made.
    const again = x.annotate(reply(t));
    expect(again.divergence).toBeNull();
    expect(again.expected?.notes.join('\n')).toContain('a reply on the connection');
  });

  it('should give a packet no expectation, once told, when the simulator fails on the model', () => {
    const t = podLab().iptables('node', MASQ).build();
    // A model a broken discovery could produce: the node's routes are not an array.
    const broken: Topology = { ...t, namespaces: t.namespaces.map((n) => (n.name === 'node' ? { ...n, routes: null as never } : n)) };
    const errors: string[] = [];
    const x = new PathExpectations(broken, undefined, (m) => errors.push(m));
    const a = x.annotate(request(t));
    const b = x.annotate(request(t));
    expect(a).toMatchObject({ expected: null, divergence: null });
    expect(b).toMatchObject({ expected: null, divergence: null });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('expected path of a packet from netns');
  });

  it('should take the NAT of a TCP connection that predates the trace from the packet, and say so', () => {
    const t = podLab().iptables('node', MASQ).build();
    // An ACK from ext to a pod's masqueraded connection, opened before the trace started.
    const ack = (flags: number): Packet => ({
      ...reply(t),
      proto: 'tcp',
      hops: reply(t).hops.map((h) => ({ ...h, sport: 443, dport: 40001, tcpFlags: flags })),
    });
    const x = new PathExpectations(t);
    const a = x.annotate(ack(0x10));
    expect(a.divergence).toBeNull();
    expect(a.expected?.guess).toBe(true);
    expect(a.expected?.notes.join('\n')).toContain("its NAT in node was taken from this packet's observed hops");
    expect(a.expected?.hops.at(-1)).toMatchObject({ ns: 'pod1', event: 'recv', dst: '10.244.1.11', dport: 40001 });
    // Remembered (both directions) for the connection's next packets.
    expect(x.knownConnections).toBe(2);
    // A SYN starts a connection: what the kernel did to it is exactly what the model must predict.
    const syn = new PathExpectations(t).annotate(ack(0x02));
    expect(syn.divergence?.summary).toContain('left node through br0');
  });

  it('should give a clone no path of its own (a frame the bridge flooded out of another port)', () => {
    const t = podLab().iptables('node', MASQ).build();
    const flooded: Packet = { ...packet([hop(t, 'node', 'veth-pod2', 'xmit', '10.244.1.11', '10.99.0.2', 40000, 7000)]), cloneOf: 'b1-ffff' };
    expect(new PathExpectations(t).annotate(flooded)).toMatchObject({ expected: null, divergence: null, cloneOf: 'b1-ffff' });
  });

  it('should forget a connection idle longer than conntrack keeps it (ICMP: 30 s)', () => {
    const t = podLab().iptables('node', MASQ).build();
    const at = (p: Packet, ns: number, proto: Packet['proto']): Packet => ({
      ...p, proto, hops: p.hops.map((h, i) => ({ ...h, t: ns + i * 1000, sport: 0, dport: 0 })),
    });
    const x = new PathExpectations(t);
    x.annotate(at(request(t), 1e9, 'icmp'));
    // The echo reply a second later goes back to the pod.
    const back = x.annotate(at(reply(t), 2e9, 'icmp'));
    expect(back.divergence).toBeNull();
    expect(back.expected?.hops.at(-1)?.ns).toBe('pod1');
    // A minute later ext pings the node itself: no connection left to take it to the pod.
    const ping = at(packet([
      hop(t, 'ext', 'eth0', 'xmit', '10.99.0.2', '10.99.0.1', 0, 0),
      hop(t, 'node', 'eth-node', 'recv', '10.99.0.2', '10.99.0.1', 0, 0),
    ]), 62e9, 'icmp');
    const later = x.annotate(ping);
    expect(later.expected?.reason).toBe('10.99.0.1 is local to node');
    expect(later.divergence).toBeNull();
  });
});
