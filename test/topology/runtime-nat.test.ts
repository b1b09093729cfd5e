/**
 * The NAT patterns real runtimes write, simulated on hand-built models with their rules as
 * iptables-save prints them (fixtures/netavark-nat.txt, fixtures/kube-proxy-nat.txt): a mark set
 * by one rule and masqueraded on by another, `addrtype LOCAL`, OUTPUT DNAT of the host's own
 * traffic (127.0.0.1 through route_localnet), hairpin (bridged DNAT), kube-proxy's statistic
 * endpoint choice, and the replies, de-NATed where br_netfilter does it. The same patterns on
 * the real kernel: test/integration/runtime-nat.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Hop, Packet } from '../../shared/packet.js';
import type { HopKind } from '../../shared/hop-event.js';
import type { Topology } from '../../shared/topology/model.js';
import type { ExpectedPath } from '../../shared/topology/simulate.js';
import { simulatePath } from '../../shared/topology/simulate.js';
import { PathExpectations } from '../../shared/expectation.js';
import { formatPath } from '../../shared/topology/format.js';
import { podLab } from './builder.js';

const fixture = (f: string): string => readFileSync(new URL(`./fixtures/${f}`, import.meta.url), 'utf8');
const NETAVARK = fixture('netavark-nat.txt');
const KUBE = fixture('kube-proxy-nat.txt');

/** The pod lab as a container host: node is the host (br0 its runtime's bridge), with br_netfilter on as on real hosts. */
function host(rules: string): Topology {
  return podLab({ bridgeNf: true }).iptables('node', rules).route('ext', '10.96.0.0/16', { via: '10.99.0.1', dev: 'eth0' }).build();
}

const spots = (p: Pick<ExpectedPath, 'hops'>): string[] => p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}${h.optional ? '?' : ''} ${h.src}:${h.sport}>${h.dst}:${h.dport}`);

function inode(t: Topology, name: string): number {
  const n = t.namespaces.find((x) => x.name === name);
  if (!n) throw new Error(name);
  return n.netns;
}

let clock = 1000;
/** Observed packets in the shape reconstruct gives them: `ns/if/event src:sport>dst:dport` per hop. */
function observed(t: Topology, spec: string[], flags = 0x10): Packet {
  const hops: Hop[] = spec.map((s) => {
    const m = /^(\w+)\/([\w-]*)\/(\w+) ([\d.]+):(\d+)>([\d.]+):(\d+)$/.exec(s);
    if (!m) throw new Error(s);
    clock += 1000;
    return {
      t: clock, event: m[3] as HopKind, netns: inode(t, m[1] as string), ns: m[1] as string, ifname: m[2] as string, ifindex: 0,
      src: m[4] as string, sport: Number(m[5]), dst: m[6] as string, dport: Number(m[7]),
      cpu: 0, len: 60, ipId: 1, tcpFlags: flags, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
    };
  });
  const f = hops[0] as Hop;
  return { id: `${f.t}-a`, proto: 'tcp', family: 4, src: f.src, dst: f.dst, sport: f.sport, dport: f.dport, fate: 'delivered', fateBy: 'local-address', drop: null, hops, cloneOf: null };
}

describe('netavark port forwarding (marks, addrtype LOCAL, OUTPUT DNAT, hairpin)', () => {
  it('should masquerade a hairpin connection by the mark its DNAT chain set, bridging it back out of br0', () => {
    const t = host(NETAVARK);
    const p = simulatePath(t, { from: 'pod1', dst: '10.99.0.1', proto: 'tcp', sport: 40000, dport: 18080 });
    expect(p.fate).toBe('delivered');
    expect(spots(p)).toEqual([
      'pod1/eth0/xmit 10.244.1.11:40000>10.99.0.1:18080',
      'node/veth-pod1/recv 10.244.1.11:40000>10.99.0.1:18080',
      'node/br0/xmit? 10.244.1.11:40000>10.244.1.12:80',
      'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80',
      'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80',
    ]);
    expect(p.hops[1]?.rules.map((r) => r.verdict)).toEqual(['dnat to 10.244.1.12:80']);
    expect(p.hops[3]?.rules.map((r) => r.rule)).toEqual(['-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE']);
    expect(p.guess).toBe(false);
  });

  it('should not masquerade a connection from outside, which no rule marks', () => {
    const p = simulatePath(host(NETAVARK), { from: 'ext', dst: '10.99.0.1', proto: 'tcp', sport: 40000, dport: 18080 });
    expect(p.hops.at(-1)).toMatchObject({ ns: 'pod2', src: '10.99.0.2', dst: '10.244.1.12', dport: 80 });
  });

  it('should expect the hairpin reply un-NATed by conntrack both ways, whether or not the bridge xmit shows', () => {
    const t = host(NETAVARK);
    const x = new PathExpectations(t);
    const syn = x.annotate(observed(t, [
      'pod1/eth0/xmit 10.244.1.11:40000>10.99.0.1:18080',
      'node/veth-pod1/recv 10.244.1.11:40000>10.99.0.1:18080',
      'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80',
      'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80',
    ], 0x02));
    expect(syn.divergence).toBeNull();
    const reply = x.annotate(observed(t, [
      'pod2/eth0/xmit 10.244.1.12:80>10.244.1.1:40000',
      'node/veth-pod2/recv 10.244.1.12:80>10.244.1.1:40000',
      'node/br0/xmit 10.244.1.12:80>10.244.1.11:40000',
      'node/veth-pod1/xmit 10.99.0.1:18080>10.244.1.11:40000',
      'pod1/eth0/recv 10.99.0.1:18080>10.244.1.11:40000',
    ], 0x12));
    expect(reply.divergence).toBeNull();
    expect(reply.expected?.hops[1]?.rules[0]?.verdict).toBe('reverse NAT: destination 10.244.1.11:40000');
    expect(reply.expected?.hops.find((h) => h.ifname === 'veth-pod1')?.rules.at(-1)?.verdict).toBe('reverse NAT: source 10.99.0.1:18080');
  });

  it('should DNAT the host\'s own connection to 127.0.0.1 in OUTPUT, route it to the bridge and masquerade it by mark', () => {
    const t = host(NETAVARK);
    const p = simulatePath(t, { from: 'node', src: '127.0.0.1', dst: '127.0.0.1', proto: 'tcp', sport: 40000, dport: 18080 });
    expect(spots(p)).toEqual([
      'node/br0/xmit 10.244.1.1:40000>10.244.1.12:80',
      'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80',
      'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80',
    ]);
    expect(p.hops[0]?.rules.map((r) => `${r.hook} ${r.verdict}`)).toEqual(['OUTPUT dnat to 10.244.1.12:80', 'POSTROUTING masquerade to 10.244.1.1']);
    expect(p.notes.join('\n')).toContain('route_localnet');
    // Its reply: reverse NAT on the bridge port (br_netfilter), so br0's recv already shows 127.0.0.1.
    const x = new PathExpectations(t);
    x.annotate(observed(t, ['node/br0/xmit 10.244.1.1:40000>10.244.1.12:80', 'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80', 'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80'], 0x02));
    const reply = x.annotate(observed(t, [
      'pod2/eth0/xmit 10.244.1.12:80>10.244.1.1:40000',
      'node/veth-pod2/recv 10.244.1.12:80>10.244.1.1:40000',
      'node/br0/recv 10.244.1.12:80>127.0.0.1:40000',
    ], 0x12));
    expect(reply.divergence).toBeNull();
    expect(reply.expected?.fate).toBe('delivered');
  });

  it('should expect a localhost connection\'s very first SYN from the socket\'s own tuple its first hop carries', () => {
    const t = withLocalnet(host(NETAVARK), 'node', { all: false, devices: ['br0'] });
    const x = new PathExpectations(t);
    const syn = observed(t, ['node/br0/xmit 10.244.1.1:40000>10.244.1.12:80', 'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80', 'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80'], 0x02);
    const first = syn.hops[0] as Hop;
    // What reconstruction makes of HopEvent.sent: the first hop's NAT from what the socket asked for.
    const sent: Packet = { ...syn, hops: [{ ...first, nat: { kind: 'both', from: { src: '127.0.0.1', dst: '127.0.0.1', sport: 40000, dport: 18080 }, to: { src: first.src, dst: first.dst, sport: first.sport, dport: first.dport } } }, ...syn.hops.slice(1)] };
    const r = x.annotate(sent);
    expect(r.divergence).toBeNull();
    expect(r.expected?.guess).toBe(false);
    expect(r.expected?.flow).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', dport: 18080 });
    expect(r.expected?.hops[0]?.rules.map((h) => h.verdict)).toEqual(['dnat to 10.244.1.12:80', 'masquerade to 10.244.1.1']);
    // Without the socket's tuple the same SYN reads as sent from the bridge's address: no NAT expected.
    const bare = new PathExpectations(t).annotate(syn);
    expect(bare.expected?.flow).toMatchObject({ src: '10.244.1.1', dport: 80 });
  });

  it('should take a local server\'s reply, de-NATed before its first hop, from the socket\'s tuple and its observed NAT', () => {
    const t = podLab().iptables('node', '*nat\n-A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 80\nCOMMIT\n').build();
    const x = new PathExpectations(t);
    // The request was never seen: the reply alone, its first hop carrying the server socket's tuple.
    const reply = observed(t, ['node/eth-node/xmit 10.99.0.1:8080>10.99.0.2:40000', 'ext/eth0/recv 10.99.0.1:8080>10.99.0.2:40000'], 0x12);
    const first = reply.hops[0] as Hop;
    const sent: Packet = { ...reply, hops: [{ ...first, nat: { kind: 'snat', from: { src: '10.99.0.1', dst: '10.99.0.2', sport: 80, dport: 40000 }, to: { src: first.src, dst: first.dst, sport: first.sport, dport: first.dport } } }, ...reply.hops.slice(1)] };
    const r = x.annotate(sent);
    expect(r.expected?.flow).toMatchObject({ src: '10.99.0.1', sport: 80 });
    expect(r.divergence, r.divergence?.summary).toBeNull();
    expect(r.expected?.notes.join('\n')).toContain('taken from this packet\'s observed hops');
  });

  it('should take a localhost connection\'s reply that arrives de-NATed as the reverse of a NAT it did not see start', () => {
    const t = host(NETAVARK);
    const x = new PathExpectations(t);
    const reply = x.annotate(observed(t, [
      'pod2/eth0/xmit 10.244.1.12:80>10.244.1.1:40000',
      'node/veth-pod2/recv 10.244.1.12:80>10.244.1.1:40000',
      'node/br0/recv 10.244.1.12:80>127.0.0.1:40000',
      'node//consume 127.0.0.1:18080>127.0.0.1:40000',
    ], 0x12));
    expect(reply.divergence).toBeNull();
    expect(reply.expected?.guess).toBe(true);
    // The client's next packet is first seen on br0, already NATed: its path starts from what
    // curl sent (127.0.0.1:18080), so the localhost DNAT shows.
    const ack = x.annotate(observed(t, [
      'node/br0/xmit 10.244.1.1:40000>10.244.1.12:80',
      'node/veth-pod2/xmit 10.244.1.1:40000>10.244.1.12:80',
      'pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80',
    ]));
    expect(ack.divergence).toBeNull();
    expect(ack.expected?.flow).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', dport: 18080 });
    expect(ack.expected?.hops[0]?.rules.map((r) => r.verdict)).toEqual(['NAT: destination 10.244.1.12:80', 'NAT: source 10.244.1.1:40000']);
    // Without a consume hop (TCP often frees without one) the reply shows only the destination
    // de-NATed; the port curl connected to comes from the one DNAT rule targeting the server.
    const y = new PathExpectations(t);
    y.annotate(observed(t, [
      'pod2/eth0/xmit 10.244.1.12:80>10.244.1.1:40001',
      'node/veth-pod2/recv 10.244.1.12:80>10.244.1.1:40001',
      'node/br0/recv 10.244.1.12:80>127.0.0.1:40001',
    ], 0x12));
    const next = y.annotate(observed(t, ['node/br0/xmit 10.244.1.1:40001>10.244.1.12:80', 'node/veth-pod2/xmit 10.244.1.1:40001>10.244.1.12:80', 'pod2/eth0/recv 10.244.1.1:40001>10.244.1.12:80']));
    expect(next.divergence).toBeNull();
    expect(next.expected?.flow).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', dport: 18080 });
  });
});

describe('kube-proxy iptables mode (statistic endpoints, KUBE-MARK-MASQ)', () => {
  it('should name both endpoints of a ClusterIP with their shares', () => {
    const p = simulatePath(host(KUBE), { from: 'ext', dst: '10.96.0.10', proto: 'tcp', sport: 40000, dport: 80 });
    expect(p.probability).toBeCloseTo(0.5);
    expect(p.hops.at(-1)).toMatchObject({ ns: 'pod1', dst: '10.244.1.11', dport: 80 });
    expect(p.alternatives).toHaveLength(1);
    expect(p.alternatives?.[0]?.probability).toBeCloseTo(0.5);
    expect(p.alternatives?.[0]?.hops.at(-1)).toMatchObject({ ns: 'pod2', dst: '10.244.1.12', dport: 80 });
    expect(p.via?.[0]).toMatch(/^matched: .*statistic --mode random --probability 0.5/);
    expect(p.alternatives?.[0]?.via[0]).toMatch(/^did not match: /);
    // Not from the pod network: KUBE-MARK-MASQ, then MASQUERADE in KUBE-POSTROUTING.
    expect(p.hops.at(-1)?.src).toBe('10.244.1.1');
  });

  it('should split three endpoints a third each, as kube-proxy\'s probabilities 1/3 then 1/2 do', () => {
    const three = KUBE
      .replace('--probability 0.50000000000 -j KUBE-SEP-LABWEBA', '--probability 0.33333333349 -j KUBE-SEP-LABWEBA\n-A KUBE-SVC-LABWEB -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-LABWEBB');
    const p = simulatePath(host(three), { from: 'ext', dst: '10.96.0.10', proto: 'tcp', sport: 40000, dport: 80 });
    // Endpoint B is reached two ways (second rule, or the last); folded into one with both shares.
    const all = [p.probability ?? 0, ...(p.alternatives ?? []).map((a) => a.probability)];
    expect(all.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    expect(all[0]).toBeCloseTo(1 / 3);
    expect(all[1]).toBeCloseTo(2 / 3);
  });

  it('should check a NodePort packet against the endpoint it took, and its reply against that connection', () => {
    const t = host(KUBE);
    const x = new PathExpectations(t);
    const syn = x.annotate(observed(t, [
      'ext/eth0/xmit 10.99.0.2:40000>10.99.0.1:30080',
      'node/eth-node/recv 10.99.0.2:40000>10.99.0.1:30080',
      'node/br0/xmit 10.244.1.1:51234>10.244.1.12:80',
      'node/veth-pod2/xmit 10.244.1.1:51234>10.244.1.12:80',
      'pod2/eth0/recv 10.244.1.1:51234>10.244.1.12:80',
    ], 0x02));
    expect(syn.divergence).toBeNull();
    expect(syn.expected?.hops.at(-1)?.ns).toBe('pod2');
    expect(syn.expected?.probability).toBeCloseTo(0.5);
    expect(syn.expected?.alternatives?.[0]?.hops.at(-1)?.ns).toBe('pod1');
    // An endpoint no rule leads to is still a divergence.
    const wrong = new PathExpectations(t).annotate(observed(t, [
      'ext/eth0/xmit 10.99.0.2:40000>10.99.0.1:30080',
      'node/eth-node/recv 10.99.0.2:40000>10.99.0.1:30080',
      'node/br0/xmit 10.244.1.1:51234>10.244.1.13:80',
    ], 0x02));
    expect(wrong.divergence).not.toBeNull();
  });
});

describe('the human form of a path with statistic alternatives', () => {
  it('should say how often this way is taken and list the other endpoints with their shares', () => {
    const text = formatPath(simulatePath(host(KUBE), { from: 'ext', dst: '10.96.0.10', proto: 'tcp', sport: 40000, dport: 80 }));
    expect(text).toContain('this way 50 % of new connections (statistic), ending in pod1 (10.244.1.11:80); other ways:');
    expect(text).toContain('     50 %  delivered in pod2 (10.244.1.12:80)');
  });
});

describe('source ports a NAT may pick', () => {
  it('should accept another source port after an nft masquerade (its text keeps no random flag), and remember it for the replies', () => {
    const t = podLab({ bridgeNf: true }).nft('node', [
      { chain: { family: 'ip', table: 'kp', name: 'post', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      { rule: { family: 'ip', table: 'kp', chain: 'post', handle: 2, expr: [
        { match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'eth-node' } },
        { masquerade: { flags: ['fully-random'] } },
      ] } },
    ]).build();
    const x = new PathExpectations(t);
    const req = x.annotate(observed(t, [
      'pod1/eth0/xmit 10.244.1.11:40000>10.99.0.2:443',
      'node/veth-pod1/recv 10.244.1.11:40000>10.99.0.2:443',
      'node/br0/recv 10.244.1.11:40000>10.99.0.2:443',
      'node/eth-node/xmit 10.99.0.1:61234>10.99.0.2:443',
      'ext/eth0/recv 10.99.0.1:61234>10.99.0.2:443',
    ], 0x02));
    expect(req.divergence).toBeNull();
    const reply = x.annotate(observed(t, [
      'ext/eth0/xmit 10.99.0.2:443>10.99.0.1:61234',
      'node/eth-node/recv 10.99.0.2:443>10.99.0.1:61234',
      'node/br0/xmit 10.99.0.2:443>10.244.1.11:40000',
      'node/veth-pod1/xmit 10.99.0.2:443>10.244.1.11:40000',
      'pod1/eth0/recv 10.99.0.2:443>10.244.1.11:40000',
    ], 0x12));
    expect(reply.divergence).toBeNull();
    // From the connection the request made (with the kernel's port), not learned from the reply.
    expect(reply.expected?.guess).toBe(false);
  });
});

describe('kube-proxy nftables mode (numgen vmap)', () => {
  it('should walk every endpoint of a numgen random vmap with its share', () => {
    const ep = (name: string, addr: string): unknown[] => [
      { chain: { family: 'ip', table: 'kube-proxy', name, handle: 1 } },
      { rule: { family: 'ip', table: 'kube-proxy', chain: name, handle: 2, expr: [
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 30080 } },
        { dnat: { family: 'ip', addr, port: 80 } },
      ] } },
    ];
    const t = podLab({ bridgeNf: true }).nft('node', [
      { chain: { family: 'ip', table: 'kube-proxy', name: 'nat-prerouting', handle: 1, type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' } },
      { chain: { family: 'ip', table: 'kube-proxy', name: 'svc', handle: 3 } },
      { rule: { family: 'ip', table: 'kube-proxy', chain: 'nat-prerouting', handle: 4, expr: [
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 30080 } },
        { goto: { target: 'svc' } },
      ] } },
      { rule: { family: 'ip', table: 'kube-proxy', chain: 'svc', handle: 5, expr: [
        { vmap: { key: { numgen: { mode: 'random', mod: 3, offset: 0 } }, data: { set: [[0, { goto: { target: 'ep-a' } }], [1, { goto: { target: 'ep-b' } }], [2, { goto: { target: 'ep-c' } }]] } } },
      ] } },
      ...ep('ep-a', '10.244.1.11'),
      ...ep('ep-b', '10.244.1.12'),
      ...ep('ep-c', '10.244.1.12'),
    ]).build();
    const p = simulatePath(t, { from: 'ext', dst: '10.99.0.1', proto: 'tcp', sport: 40000, dport: 30080 });
    expect(p.hops.at(-1)).toMatchObject({ ns: 'pod1', dst: '10.244.1.11' });
    expect(p.probability).toBeCloseTo(1 / 3);
    // ep-b and ep-c lead to the same pod: one alternative with both shares.
    expect(p.alternatives?.map((a) => [a.hops.at(-1)?.ns, Number(a.probability.toFixed(3))])).toEqual([['pod2', 0.667]]);
    expect(p.guess).toBe(false);
  });
});

/** The model with net.ipv4.conf.{all,<dev>}.route_localnet as discovery reads it in `ns`. */
function withLocalnet(t: Topology, ns: string, rl: { all: boolean; devices: string[] }): Topology {
  return { ...t, namespaces: t.namespaces.map((n) => (n.name === ns ? { ...n, routeLocalnet: rl } : n)) };
}

describe('route_localnet: 127.0.0.0/8 routed off the loopback only where the switch allows it', () => {
  const localhost = { from: 'node', src: '127.0.0.1', dst: '127.0.0.1', proto: 'tcp', sport: 40000, dport: 18080 } as const;

  it('should let the localhost port forward leave through the bridge with route_localnet=1 on it, or on all', () => {
    for (const rl of [{ all: false, devices: ['br0'] }, { all: true, devices: [] }]) {
      const p = simulatePath(withLocalnet(host(NETAVARK), 'node', rl), localhost);
      expect(p.fate).toBe('delivered');
      expect(spots(p).at(-1)).toBe('pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80');
      expect(p.notes.join('\n')).toContain('route_localnet=1 on br0 allows it');
    }
  });

  it('should drop it in OUTPUT, naming the DNAT and the switch, where route_localnet is 0 on the bridge and on all', () => {
    // Set on another device only: the kernel checks the output device (or all).
    const p = simulatePath(withLocalnet(host(NETAVARK), 'node', { all: false, devices: ['eth0'] }), localhost);
    expect(p.fate).toBe('dropped');
    expect(p.drop).toMatchObject({ ns: 'node', hook: 'OUTPUT', table: 'nat', kernelReason: 'NETFILTER_DROP' });
    expect(p.drop?.reason).toBe('127.0.0.1 may not leave node through br0 after the OUTPUT DNAT: route_localnet is 0 on br0 and on all');
    expect(p.drop?.rule).toContain('--to-destination 10.244.1.12:80');
    expect(spots(p)).toEqual(['node//drop 127.0.0.1:40000>10.244.1.12:80']);
    expect(p.hops[0]?.rules.map((r) => `${r.hook} ${r.verdict}`)).toEqual(['OUTPUT dnat to 10.244.1.12:80']);
  });

  it('should keep the old note when the switch was not read, and call 127.0.0.1 arriving on a bridge without it martian', () => {
    const unread = simulatePath(host(NETAVARK), localhost);
    expect(unread.notes.join('\n')).toContain('route_localnet=1 on br0 (not read)');
    expect(unread.guess).toBe(true);
    const off = withLocalnet(host(NETAVARK), 'node', { all: false, devices: [] });
    const martian = simulatePath(off, { from: 'node', iif: 'br0', src: '10.244.1.12', dst: '127.0.0.1', proto: 'tcp', sport: 80, dport: 40000 });
    expect(martian.fate).toBe('dropped');
    expect(martian.drop?.reason).toBe('martian destination 127.0.0.1 on br0 in node: route_localnet is 0 on br0 and on all');
    const on = simulatePath(withLocalnet(host(NETAVARK), 'node', { all: false, devices: ['br0'] }), { from: 'node', iif: 'br0', src: '10.244.1.12', dst: '127.0.0.1', proto: 'tcp', sport: 80, dport: 40000 });
    expect(on.fate).toBe('delivered');
  });
});

describe('hairpin to itself: a bridge port sends a frame back only in hairpin mode', () => {
  const withHairpin = (t: Topology, port: string, on: boolean): Topology => ({
    ...t,
    namespaces: t.namespaces.map((n) => (n.name !== 'node' ? n : { ...n, interfaces: n.interfaces.map((i) => (i.name === port ? { ...i, hairpin: on } : i)) })),
  });
  const self = { from: 'pod2', dst: '10.99.0.1', proto: 'tcp', sport: 40000, dport: 18080 } as const;

  it('should drop a container\'s call to its own published port at its bridge port when hairpin mode is off', () => {
    const p = simulatePath(withHairpin(host(NETAVARK), 'veth-pod2', false), self);
    expect(p.fate).toBe('dropped');
    expect(spots(p)).toEqual([
      'pod2/eth0/xmit 10.244.1.12:40000>10.99.0.1:18080',
      'node/veth-pod2/recv 10.244.1.12:40000>10.99.0.1:18080',
      'node/veth-pod2/drop 10.244.1.12:40000>10.244.1.12:80',
    ]);
    expect(p.drop?.reason).toBe('10.244.1.12 is behind veth-pod2, the port the frame came in on, and veth-pod2 is not in hairpin mode: br0 does not send it back');
    expect(p.drop?.kernelReason).toBe('NOT_SPECIFIED');
  });

  it('should bridge it back, masqueraded, when the port is in hairpin mode (or the mode was not read)', () => {
    for (const t of [withHairpin(host(NETAVARK), 'veth-pod2', true), host(NETAVARK)]) {
      const p = simulatePath(t, self);
      expect(p.fate).toBe('delivered');
      expect(spots(p).at(-1)).toBe('pod2/eth0/recv 10.244.1.1:40000>10.244.1.12:80');
    }
  });
});
