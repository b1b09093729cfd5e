import { describe, expect, it } from 'vitest';
import { FlowError, simulatePath } from '../../shared/topology/simulate.js';
import type { ExpectedPath } from '../../shared/topology/simulate.js';
import { podLab, TopoBuilder } from './builder.js';
import { ConntrackTable } from '../../shared/topology/conntrack.js';

/** `ns/ifname/event` per hop: the part of a path the kernel's hops are compared on. */
function spots(p: ExpectedPath): string[] {
  return p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`);
}

const MASQ = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE
COMMIT
`;

describe('simulatePath: bridge', () => {
  it('should bridge pod to pod through the node without touching the bridge device', () => {
    const p = simulatePath(podLab().build(), { from: 'pod1', dst: '10.244.1.12', proto: 'udp', sport: 4000, dport: 9000 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/veth-pod2/xmit', 'pod2/eth0/recv']);
    expect(p.flow.src).toBe('10.244.1.11');
    expect(p.guess).toBe(false);
  });

  it('should go up to the bridge device when the node owns the destination', () => {
    const p = simulatePath(podLab().build(), { from: 'pod1', dst: '10.244.1.1', proto: 'icmp' });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv']);
    expect(p.hops[2]?.hooks).toEqual(['PREROUTING', 'INPUT']);
  });

  it('should transmit on the bridge and then on the egress port when the node routes into the bridge', () => {
    const p = simulatePath(podLab().build(), { from: 'node', dst: '10.244.1.11', proto: 'udp', dport: 53 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['node/br0/xmit', 'node/veth-pod1/xmit', 'pod1/eth0/recv']);
    expect(p.flow.src).toBe('10.244.1.1');
  });
});

describe('simulatePath: routing', () => {
  it('should route pod to ext through the node: recv on the port, recv on the bridge, xmit on the uplink', () => {
    const p = simulatePath(podLab().build(), { from: 'pod1', src: '10.244.1.11', dst: '10.99.0.2', proto: 'tcp', sport: 33000, dport: 80 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv', 'node/eth-node/xmit', 'ext/eth0/recv']);
    expect(p.hops[2]?.hooks).toEqual(['PREROUTING', 'FORWARD']);
    expect(p.hops[3]?.hooks).toEqual(['POSTROUTING']);
    // No NAT configured: the source stays the pod's.
    expect(p.hops[4]?.src).toBe('10.244.1.11');
  });

  it('should follow a routed chain of point-to-point veths across three routers', () => {
    const b = new TopoBuilder()
      .ns('a').ns('r1', { forward: true }).ns('r2', { forward: true }).ns('b')
      .veth(['a', 'e0', ['10.250.0.1/30']], ['r1', 'e0', ['10.250.0.2/30']])
      .veth(['r1', 'e1', ['10.250.0.5/30']], ['r2', 'e0', ['10.250.0.6/30']])
      .veth(['r2', 'e1', ['10.250.0.9/30']], ['b', 'e0', ['10.250.0.10/30']])
      .route('a', 'default', { via: '10.250.0.2', dev: 'e0' })
      .route('r1', '10.250.0.8/30', { via: '10.250.0.6', dev: 'e1' });
    const p = simulatePath(b.build(), { from: 'a', dst: '10.250.0.10', proto: 'icmp' });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['a/e0/xmit', 'r1/e0/recv', 'r1/e1/xmit', 'r2/e0/recv', 'r2/e1/xmit', 'b/e0/recv']);
  });

  it('should say unreachable, with the namespace and a drop there, when a router has no route', () => {
    const p = simulatePath(podLab().build(), { from: 'pod1', dst: '10.250.77.1', proto: 'udp', dport: 1 });
    expect(p.fate).toBe('unreachable');
    expect(p.reason).toContain('no route to 10.250.77.1 in node');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv', 'node/br0/drop']);
    expect(p.drop?.kernelReason).toBe('IP_INNOROUTES');
  });

  it('should say unreachable without hops when the sender itself has no route', () => {
    const p = simulatePath(podLab().build(), { from: 'ext', dst: '10.244.1.11', proto: 'icmp' });
    expect(p.fate).toBe('unreachable');
    expect(p.hops).toEqual([]);
    expect(p.reason).toContain('no route to 10.244.1.11 in ext');
  });

  it('should drop at a router whose forwarding switch is off', () => {
    const t = podLab().build();
    const node = t.namespaces.find((n) => n.name === 'node');
    if (!node) throw new Error('node');
    const off = { ...t, namespaces: t.namespaces.map((n) => (n === node ? { ...n, forwarding: { ipv4: false, ipv6: false } } : n)) };
    const p = simulatePath(off, { from: 'pod1', dst: '10.99.0.2', proto: 'icmp' });
    expect(p.fate).toBe('dropped');
    expect(p.reason).toContain('net.ipv4.ip_forward=0');
    expect(spots(p).at(-1)).toBe('node/br0/drop');
  });

  it('should honour blackhole routes and longest prefix over the default', () => {
    const b = podLab().route('node', '10.99.0.128/25', { type: 'blackhole' });
    const t = b.build();
    expect(simulatePath(t, { from: 'pod1', dst: '10.99.0.200', proto: 'icmp' }).fate).toBe('dropped');
    expect(simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'icmp' }).fate).toBe('delivered');
  });

  it('should deliver locally over loopback with xmit and recv on lo', () => {
    const p = simulatePath(podLab().build(), { from: 'node', dst: '10.99.0.1', proto: 'udp', dport: 53 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['node/lo/xmit', 'node/lo/recv']);
  });

  it('should stop a routing loop with fate loop', () => {
    const b = new TopoBuilder()
      .ns('a', { forward: true }).ns('b', { forward: true })
      .veth(['a', 'e0', ['10.250.0.1/30']], ['b', 'e0', ['10.250.0.2/30']])
      .route('a', '10.250.50.0/24', { via: '10.250.0.2', dev: 'e0' })
      .route('b', '10.250.50.0/24', { via: '10.250.0.1', dev: 'e0' });
    const p = simulatePath(b.build(), { from: 'a', dst: '10.250.50.1', proto: 'icmp' }, { maxHops: 20 });
    expect(p.fate).toBe('loop');
    expect(p.hops).toHaveLength(20);
  });

  it('should follow a policy rule to another table, and guess past a fwmark rule', () => {
    const b = podLab()
      .veth(['node', 'eth-alt', ['10.98.0.1/24']], ['ext', 'eth1', ['10.98.0.2/24']])
      .route('ext', '10.244.1.0/24', { via: '10.98.0.1', dev: 'eth1' })
      .route('node', '10.99.0.0/24', { via: '10.98.0.2', dev: 'eth-alt', table: '100' })
      .policyRule('node', { priority: 50, unsupported: ['fwmark 0x1'], table: '200' })
      .policyRule('node', { priority: 100, src: '10.244.1.12/32', table: '100' });
    const t = b.build();
    const viaAlt = simulatePath(t, { from: 'pod2', dst: '10.99.0.2', proto: 'icmp' });
    expect(spots(viaAlt)).toContain('node/eth-alt/xmit');
    expect(viaAlt.guess).toBe(true);
    expect(viaAlt.notes.join('\n')).toContain('fwmark 0x1');
    const direct = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'icmp' });
    expect(spots(direct)).toContain('node/eth-node/xmit');
  });

  it('should leave the model through a physical interface', () => {
    const b = podLab().iface('node', 'eth9', 'physical', ['192.0.2.10/24']).route('node', 'default', { via: '192.0.2.1', dev: 'eth9' });
    const p = simulatePath(b.build(), { from: 'pod1', dst: '198.51.100.7', proto: 'tcp', dport: 443 });
    expect(p.fate).toBe('left-model');
    expect(spots(p).at(-1)).toBe('node/eth9/xmit');
  });

  it('should drop at a down veth peer', () => {
    const t = podLab().build();
    const down = {
      ...t,
      namespaces: t.namespaces.map((n) => (n.name === 'pod2'
        ? { ...n, interfaces: n.interfaces.map((i) => (i.name === 'eth0' ? { ...i, up: false } : i)) }
        : n)),
    };
    const p = simulatePath(down, { from: 'pod1', dst: '10.244.1.12', proto: 'icmp' });
    expect(p.fate).toBe('dropped');
    expect(p.reason).toContain('down');
  });
});

describe('simulatePath: NAT', () => {
  it('should masquerade in POSTROUTING and show the new source on the uplink xmit', () => {
    const p = simulatePath(podLab().iptables('node', MASQ).build(), { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 40000, dport: 53 });
    expect(p.fate).toBe('delivered');
    const up = p.hops.find((h) => h.ifname === 'eth-node');
    expect(up?.src).toBe('10.99.0.1');
    expect(up?.sport).toBe(40000);
    expect(up?.hook).toBe('POSTROUTING');
    expect(up?.table).toBe('nat');
    expect(up?.rules[0]?.rule).toBe('-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE');
    expect(up?.rules[0]?.verdict).toBe('masquerade to 10.99.0.1');
    // The receive hop before it still shows the pod's address: SNAT happens after routing.
    expect(p.hops.find((h) => h.ifname === 'br0')?.src).toBe('10.244.1.11');
    expect(p.notes.join('\n')).toContain('new connection');
  });

  it('should SNAT to a fixed address and port', () => {
    const t = podLab().iptables('node', `*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.1.12/32 -p tcp -j SNAT --to-source 10.99.0.1:5555
COMMIT
`).build();
    const p = simulatePath(t, { from: 'pod2', dst: '10.99.0.2', proto: 'tcp', sport: 1234, dport: 80 });
    const up = p.hops.find((h) => h.ifname === 'eth-node');
    expect(up?.src).toBe('10.99.0.1');
    expect(up?.sport).toBe(5555);
    // The rule names tcp: a udp packet is not rewritten.
    const u = simulatePath(t, { from: 'pod2', dst: '10.99.0.2', proto: 'udp', sport: 1234, dport: 80 });
    expect(u.hops.find((h) => h.ifname === 'eth-node')?.src).toBe('10.244.1.12');
  });

  it('should DNAT a port forward in PREROUTING and route to the pod', () => {
    const t = podLab().iptables('node', `*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -i eth-node -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.12:80
COMMIT
`).build();
    const p = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'tcp', sport: 50000, dport: 8080 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['ext/eth0/xmit', 'node/eth-node/recv', 'node/br0/xmit', 'node/veth-pod2/xmit', 'pod2/eth0/recv']);
    const recv = p.hops[1];
    expect(recv?.dst).toBe('10.99.0.1');
    expect(recv?.dport).toBe(8080);
    expect(recv?.hook).toBe('PREROUTING');
    expect(recv?.rules[0]?.verdict).toBe('dnat to 10.244.1.12:80');
    expect(p.hops[2]?.dst).toBe('10.244.1.12');
    expect(p.hops[2]?.dport).toBe(80);
    expect(p.reason).toContain('local to pod2');
  });

  it('should DNAT with a native nft rule behind a jump, and skip NAT for established packets', () => {
    const t = podLab().nft('node', [
      { table: { family: 'ip', name: 'lb', handle: 1 } },
      { chain: { family: 'ip', table: 'lb', name: 'pre', handle: 1, type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' } },
      { chain: { family: 'ip', table: 'lb', name: 'svc', handle: 2 } },
      { rule: { family: 'ip', table: 'lb', chain: 'pre', handle: 3, expr: [
        { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '10.96.0.10' } },
        { jump: { target: 'svc' } },
      ] } },
      { rule: { family: 'ip', table: 'lb', chain: 'svc', handle: 4, expr: [
        { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } },
        { dnat: { addr: '10.244.1.12', port: 5353 } },
      ] } },
    ]).route('pod1', '10.96.0.0/12', { via: '10.244.1.1', dev: 'eth0' }).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.96.0.10', proto: 'udp', sport: 999, dport: 53 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv', 'node/br0/xmit', 'node/veth-pod2/xmit', 'pod2/eth0/recv']);
    expect(p.hops[2]?.table).toBe('lb');
    expect(p.hops[3]?.dst).toBe('10.244.1.12');
    expect(p.hops[3]?.dport).toBe(5353);
    const est = simulatePath(t, { from: 'pod1', dst: '10.96.0.10', proto: 'udp', sport: 999, dport: 53, ctState: 'established' });
    expect(est.fate).toBe('unreachable');
  });

  it('should DNAT locally generated packets in OUTPUT and route again', () => {
    const t = podLab().iptables('node', `*nat
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 10.96.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 10.244.1.11:6443
COMMIT
`).route('node', '10.96.0.0/12', { via: '10.99.0.2', dev: 'eth-node' }).build();
    const p = simulatePath(t, { from: 'node', dst: '10.96.0.1', proto: 'tcp', sport: 1, dport: 443 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['node/br0/xmit', 'node/veth-pod1/xmit', 'pod1/eth0/recv']);
    expect(p.hops[0]?.hooks).toEqual(['OUTPUT', 'POSTROUTING']);
    expect(p.hops[0]?.hook).toBe('OUTPUT');
    expect(p.hops[0]?.dst).toBe('10.244.1.11');
  });
});

describe('simulatePath: conntrack (replies and later packets of NATed connections)', () => {
  const DNAT = `*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -i eth-node -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.12:80
COMMIT
`;

  it('should record the connection a MASQUERADEd packet creates and reverse it for the reply', () => {
    const t = podLab().iptables('node', MASQ).build();
    const ct = new ConntrackTable();
    const out = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 40000, dport: 53, conntrack: ct });
    expect(out.connections).toEqual([{
      netns: t.namespaces.find((n) => n.name === 'node')?.netns,
      ns: 'node',
      orig: { proto: 17, src: '10.244.1.11', dst: '10.99.0.2', sport: 40000, dport: 53 },
      reply: { proto: 17, src: '10.99.0.2', dst: '10.99.0.1', sport: 53, dport: 40000 },
    }]);
    // Without the connection, the reply to the node's address is the node's.
    const unknown = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'udp', sport: 53, dport: 40000, conntrack: ct });
    expect(unknown.fate).toBe('delivered');
    expect(unknown.reason).toContain('local to node');
    for (const c of out.connections) ct.add(c);
    const reply = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'udp', sport: 53, dport: 40000, conntrack: ct });
    expect(reply.fate).toBe('delivered');
    expect(spots(reply)).toEqual(['ext/eth0/xmit', 'node/eth-node/recv', 'node/br0/xmit', 'node/veth-pod1/xmit', 'pod1/eth0/recv']);
    expect(reply.hops[1]).toMatchObject({ hook: 'PREROUTING', table: 'nat', dst: '10.99.0.1' });
    expect(reply.hops[1]?.rules[0]).toMatchObject({ chain: 'conntrack', verdict: 'reverse NAT: destination 10.244.1.11:40000' });
    expect(reply.hops[2]?.dst).toBe('10.244.1.11');
    // Knowing the connection is not a guess, and a reply creates no connection of its own.
    expect(reply.guess).toBe(false);
    expect(reply.connections).toEqual([]);
    expect(reply.notes.join('\n')).toContain('a reply on the connection udp 10.244.1.11:40000 > 10.99.0.2:53');
  });

  it('should rewrite the reply source of a DNAT target back in POSTROUTING, and NAT later packets from conntrack', () => {
    const t = podLab().iptables('node', DNAT).build();
    const ct = new ConntrackTable();
    const syn = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'tcp', sport: 50000, dport: 8080, conntrack: ct });
    for (const c of syn.connections) ct.add(c);
    expect(ct.size).toBe(2);
    const back = simulatePath(t, { from: 'pod2', dst: '10.99.0.2', proto: 'tcp', sport: 80, dport: 50000, conntrack: ct });
    expect(back.fate).toBe('delivered');
    const up = back.hops.find((h) => h.ifname === 'eth-node');
    expect(up).toMatchObject({ event: 'xmit', hook: 'POSTROUTING', table: 'nat', src: '10.99.0.1', sport: 8080, dst: '10.99.0.2' });
    const ack = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'tcp', sport: 50000, dport: 8080, conntrack: ct });
    expect(spots(ack)).toEqual(spots(syn));
    expect(ack.hops[1]?.rules[0]).toMatchObject({ chain: 'conntrack', verdict: 'NAT: destination 10.244.1.12:80' });
    expect(ack.connections).toEqual([]);
  });

  it('should let conntrack state rules see a known connection as established', () => {
    const t = podLab().iptables('node', `${MASQ}*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 10.244.1.0/24 -j ACCEPT
COMMIT
`).build();
    const ct = new ConntrackTable();
    const out = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 41000, dport: 53, conntrack: ct });
    expect(out.fate).toBe('delivered');
    // Known, the reply is established: the first FORWARD rule accepts it (the policy drops).
    for (const c of out.connections) ct.add(c);
    const reply = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'udp', sport: 53, dport: 41000, conntrack: ct });
    expect(reply.fate).toBe('delivered');
    expect(reply.hops.at(-1)).toMatchObject({ ns: 'pod1', event: 'recv', dst: '10.244.1.11' });
  });

  it('should create no connection for a packet dropped before it left the namespace', () => {
    const t = podLab().iptables('node', `${MASQ}*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -p udp --dport 9999 -j DROP
COMMIT
`).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 1, dport: 9999, conntrack: new ConntrackTable() });
    expect(p.fate).toBe('dropped');
    expect(p.connections).toEqual([]);
  });
});

describe('simulatePath: filter verdicts', () => {
  const FWD_DROP = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p udp -m udp --dport 9999 -j DROP
COMMIT
`;

  it('should drop in FORWARD, naming the rule, hook and table, with the drop on the ingress device', () => {
    const p = simulatePath(podLab().iptables('node', FWD_DROP).build(), { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 1, dport: 9999 });
    expect(p.fate).toBe('dropped');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv', 'node/br0/drop']);
    expect(p.drop).toMatchObject({
      ns: 'node', hook: 'FORWARD', table: 'filter', chain: 'FORWARD', kernelReason: 'NETFILTER_DROP',
      rule: '-A FORWARD -p udp -m udp --dport 9999 -j DROP',
    });
    expect(p.hops[2]?.hooks).toEqual(['PREROUTING', 'FORWARD']);
    expect(p.hops[3]?.hook).toBe('FORWARD');
    expect(p.hops[3]?.rules.map((r) => r.verdict)).toEqual(['drop']);
    // Other ports pass.
    expect(simulatePath(podLab().iptables('node', FWD_DROP).build(), { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 1, dport: 9998 }).fate).toBe('delivered');
  });

  it('should apply FORWARD to bridged frames only with br_netfilter, dropping on the egress port', () => {
    const flow = { from: 'pod1', dst: '10.244.1.12', proto: 'udp', sport: 1, dport: 9999 } as const;
    const off = simulatePath(podLab().iptables('node', FWD_DROP).build(), flow);
    expect(off.fate).toBe('delivered');
    const on = simulatePath(podLab({ bridgeNf: true }).iptables('node', FWD_DROP).build(), flow);
    expect(on.fate).toBe('dropped');
    expect(spots(on)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/veth-pod2/drop']);
  });

  it('should drop on a chain policy and on REJECT in INPUT', () => {
    const t = podLab().iptables('node', `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m multiport --dports 22,80 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p udp --dport 53 -j ACCEPT
COMMIT
`).build();
    const rej = simulatePath(t, { from: 'pod1', dst: '10.244.1.1', proto: 'tcp', sport: 1, dport: 80 });
    expect(rej.fate).toBe('dropped');
    expect(rej.drop?.rule).toContain('REJECT');
    expect(rej.hops[rej.hops.length - 1]?.rules[0]?.verdict).toBe('reject');
    const pol = simulatePath(t, { from: 'pod1', dst: '10.244.1.1', proto: 'tcp', sport: 1, dport: 81 });
    expect(pol.drop?.rule).toBe('policy drop');
    expect(simulatePath(t, { from: 'pod1', dst: '10.244.1.1', proto: 'udp', sport: 1, dport: 53 }).fate).toBe('delivered');
  });

  it('should drop in OUTPUT before the packet has a device', () => {
    const t = podLab().iptables('pod1', `*filter
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 10.99.0.0/24 -j DROP
COMMIT
`).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'icmp' });
    expect(p.fate).toBe('dropped');
    expect(spots(p)).toEqual(['pod1//drop']);
    expect(p.drop?.hook).toBe('OUTPUT');
  });

  it('should say it guessed when a rule uses a match it does not evaluate', () => {
    const t = podLab().nft('node', [
      { chain: { family: 'inet', table: 'fw', name: 'fwd', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { rule: { family: 'inet', table: 'fw', chain: 'fwd', handle: 2, expr: [
        { match: { op: '==', left: { meta: { key: 'skuid' } }, right: 1000 } },
        { drop: null },
      ] } },
    ]).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'icmp' });
    expect(p.fate).toBe('delivered');
    expect(p.guess).toBe(true);
    const g = p.hops.find((h) => h.guess)?.guess?.join('\n') ?? '';
    expect(g).toContain('assumed it does not match');
    expect(g).toContain('FORWARD');
  });
});

describe('simulatePath: what it does not model', () => {
  it('should say so when a namespace on the path has netdev or bridge family chains', () => {
    const t = podLab().nft('node', [
      { chain: { family: 'netdev', table: 'edge', name: 'in', handle: 1, type: 'filter', hook: 'ingress', prio: 0, policy: 'accept' } },
    ]).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.244.1.12', proto: 'icmp' });
    expect(p.fate).toBe('delivered');
    expect(p.guess).toBe(true);
    expect(p.hops[1]?.guess?.[0]).toContain('netdev edge in');
  });

  it('should bridge towards a port whose far side is not modelled by the MAC its forwarding database learned there', () => {
    const lab = (): TopoBuilder => podLab()
      .iface('node', 'vx0', 'vxlan', [], { master: 'br0' })
      .iface('node', 'eth9', 'physical', [], { master: 'br0' });
    // Nothing in the model owns 10.244.1.50: two unmodelled ports could lead there.
    const blind = simulatePath(lab().build(), { from: 'pod1', dst: '10.244.1.50', proto: 'udp', dport: 5 });
    expect(blind.fate).toBe('left-model');
    expect(spots(blind)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv']);
    const t = lab().neigh('pod1', '10.244.1.50', 'eth0', '02:00:00:00:00:50', 'STALE').fdb('node', '02:00:00:00:00:50', 'vx0', 'br0').build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.244.1.50', proto: 'udp', dport: 5 });
    expect(p.fate).toBe('left-model');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/vx0/xmit']);
    expect(p.reason).toContain('vx0 (vxlan)');
    expect(p.guess).toBe(true);
    expect(p.notes.join('\n')).toContain('forwarding database learned 02:00:00:00:00:50');
    // The node routing into the bridge finds the port the same way.
    const up = simulatePath(t, { from: 'node', dst: '10.244.1.50', proto: 'udp', dport: 5 });
    expect(spots(up)).toEqual(['node/br0/xmit', 'node/vx0/xmit']);
  });

  it('should ignore the tables trace --netfilter adds while it runs', () => {
    // What the tracer installs (shared/netfilter/nft-filter.ts): rate-limited nftrace rules in
    // inet and bridge tables named hoptrace_<pid>_<n>.
    const t = podLab().nft('node', [
      { chain: { family: 'inet', table: 'hoptrace_42_1', name: 'pre', handle: 1, type: 'filter', hook: 'prerouting', prio: -350, policy: 'accept' } },
      { chain: { family: 'inet', table: 'hoptrace_42_1', name: 'trace', handle: 2 } },
      { rule: { family: 'inet', table: 'hoptrace_42_1', chain: 'pre', handle: 3, expr: [{ goto: { target: 'trace' } }] } },
      { rule: { family: 'inet', table: 'hoptrace_42_1', chain: 'trace', handle: 4, expr: [
        { limit: { rate: 100, per: 'second' } }, { mangle: { key: { meta: { key: 'nftrace' } }, value: 1 } },
      ] } },
      { chain: { family: 'bridge', table: 'hoptrace_42_1', name: 'pre', handle: 5, type: 'filter', hook: 'prerouting', prio: -350, policy: 'accept' } },
    ]).build();
    const p = simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', dport: 7 });
    expect(p.fate).toBe('delivered');
    expect(p.guess).toBe(false);
    expect(p.notes).toEqual([]);
  });

  it('should leave the model through an interface kind it does not follow', () => {
    const b = podLab().iface('node', 'wg0', 'wireguard', ['10.250.40.1/32']).route('node', '10.250.41.0/24', { dev: 'wg0' });
    const p = simulatePath(b.build(), { from: 'pod1', dst: '10.250.41.9', proto: 'udp', dport: 51820 });
    expect(p.fate).toBe('left-model');
    expect(p.reason).toContain('wg0 (wireguard)');
  });
});

describe('simulatePath: IPv6', () => {
  it('should bridge IPv6 between pods and deliver to the node address', () => {
    const t = podLab().build();
    const p = simulatePath(t, { from: 'pod1', dst: 'fd00:244:1::12', proto: 'udp', sport: 1, dport: 2 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/veth-pod2/xmit', 'pod2/eth0/recv']);
    expect(p.flow.src).toBe('fd00:244:1::11');
    expect(simulatePath(t, { from: 'pod1', dst: 'fd00:244:1::1', proto: 'icmpv6' }).fate).toBe('delivered');
  });

  it('should route IPv6 only when IPv6 forwarding is on', () => {
    const b = podLab();
    b.get('ext').interfaces[1] = { ...b.get('ext').interfaces[1]!, addrs: ['10.99.0.2/24', 'fd00:99::2/64'] };
    const nodeIfs = b.get('node').interfaces;
    const up = nodeIfs.findIndex((i) => i.name === 'eth-node');
    nodeIfs[up] = { ...nodeIfs[up]!, addrs: ['10.99.0.1/24', 'fd00:99::1/64'] };
    b.get('node').forwarding = { ipv4: true, ipv6: false };
    const off = simulatePath(b.build(), { from: 'pod1', dst: 'fd00:99::2', proto: 'tcp', sport: 1, dport: 22 });
    expect(off.fate).toBe('dropped');
    expect(off.reason).toContain('net.ipv6.conf.all.forwarding=0');
    b.get('node').forwarding = { ipv4: true, ipv6: true };
    const on = simulatePath(b.build(), { from: 'pod1', dst: 'fd00:99::2', proto: 'tcp', sport: 1, dport: 22 });
    expect(on.fate).toBe('delivered');
    expect(spots(on)).toEqual(['pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/br0/recv', 'node/eth-node/xmit', 'ext/eth0/recv']);
  });

  it('should apply ip6 rules to IPv6 and not to IPv4', () => {
    const t = podLab().iptables('pod1', `*filter
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d fd00:244:1::/64 -p udp -j DROP
COMMIT
`, 6).build();
    expect(simulatePath(t, { from: 'pod1', dst: 'fd00:244:1::12', proto: 'udp', dport: 1 }).fate).toBe('dropped');
    expect(simulatePath(t, { from: 'pod1', dst: '10.244.1.12', proto: 'udp', dport: 1 }).fate).toBe('delivered');
  });
});

describe('simulatePath: starting mid-path and bad input', () => {
  it('should start as a packet received on an interface', () => {
    const t = podLab().iptables('node', MASQ).build();
    const p = simulatePath(t, { from: 'node', iif: 'veth-pod1', src: '10.244.1.11', dst: '10.99.0.2', proto: 'udp', sport: 5, dport: 6 });
    expect(spots(p)).toEqual(['node/veth-pod1/recv', 'node/br0/recv', 'node/eth-node/xmit', 'ext/eth0/recv']);
    expect(p.hops[2]?.src).toBe('10.99.0.1');
  });

  it('should resolve the namespace by inode number', () => {
    const t = podLab().build();
    const pod1 = t.namespaces.find((n) => n.name === 'pod1');
    expect(simulatePath(t, { from: pod1?.netns ?? 0, dst: '10.244.1.12', proto: 'icmp' }).flow.ns).toBe('pod1');
    expect(simulatePath(t, { from: String(pod1?.netns), dst: '10.244.1.12', proto: 'icmp' }).flow.ns).toBe('pod1');
  });

  it('should throw FlowError for an unknown namespace, interface, protocol or address', () => {
    const t = podLab().build();
    expect(() => simulatePath(t, { from: 'nope', dst: '10.0.0.1', proto: 'udp' })).toThrow(FlowError);
    expect(() => simulatePath(t, { from: 'pod1', dst: '10.0.0', proto: 'udp' })).toThrow(/bad destination/);
    expect(() => simulatePath(t, { from: 'pod1', dst: '10.0.0.1', proto: 'bogus' })).toThrow(/unknown protocol/);
    expect(() => simulatePath(t, { from: 'pod1', src: 'fd00::1', dst: '10.0.0.1', proto: 'udp' })).toThrow(/different families/);
    expect(() => simulatePath(t, { from: 'pod1', iif: 'eth7', dst: '10.0.0.1', proto: 'udp' })).toThrow(/no interface eth7/);
    expect(() => simulatePath(t, { from: 'pod1', dst: '10.0.0.1', proto: 'udp', dport: 70000 })).toThrow(/dport/);
  });
});
