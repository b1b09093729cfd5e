/**
 * Attaching netfilter steps to reconstructed packets: by namespace, IP id, tuple and time; each
 * step to one packet; placed after the hop it followed; NAT rules named for a connection's later
 * packets; and shown inline by the human format.
 */
import { describe, expect, it } from 'vitest';
import { NetfilterCorrelator, hopBefore } from '../../shared/netfilter/correlate.js';
import { readFileSync } from 'node:fs';
import { EMPTY_HEADERS, TraceAssembler } from '../../shared/netfilter/monitor-parse.js';
import type { NetfilterEvent, NfPacketHeaders } from '../../shared/netfilter/types.js';
import type { Hop, Packet } from '../../shared/packet.js';
import { formatPacket } from '../../shared/format.js';

const POD1 = 101;
const NODE = 102;
const EXT = 103;
const NAMES: Record<number, string> = { [POD1]: 'pod1', [NODE]: 'node', [EXT]: 'ext' };

type HopSpec = [netns: number, ifname: string, event: Hop['event'], t: number, tuple?: Partial<Hop>];

function packet(ipId: number, specs: HopSpec[], base: Partial<Hop> = {}): Packet {
  let prev: Hop | undefined;
  const hops = specs.map(([netns, ifname, event, t, tuple]) => {
    const h: Hop = {
      t, event, netns, ns: NAMES[netns] ?? null, ifname, ifindex: 2, src: '10.244.1.11', dst: '10.99.0.2', sport: 40000, dport: 9999,
      cpu: 0, len: 29, ipId, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null, ...base, ...(tuple ?? {}),
    };
    const rewritten = prev && (h.src !== prev.src || h.dst !== prev.dst || h.sport !== prev.sport || h.dport !== prev.dport);
    const out: Hop = rewritten && prev && event !== 'drop' && event !== 'consume'
      ? { ...h, nat: { kind: h.src !== prev.src || h.sport !== prev.sport ? 'snat' : 'dnat', from: { src: prev.src, dst: prev.dst, sport: prev.sport, dport: prev.dport }, to: { src: h.src, dst: h.dst, sport: h.sport, dport: h.dport } } }
      : h;
    prev = out;
    return out;
  });
  const first = hops[0] as Hop;
  const last = hops[hops.length - 1] as Hop;
  return {
    id: `${first.t}-x`, proto: 'udp', family: 4, src: first.src, dst: first.dst, sport: first.sport, dport: first.dport,
    fate: last.event === 'drop' ? 'dropped' : 'unknown', fateBy: last.event === 'drop' ? 'drop' : 'none',
    drop: last.event === 'drop' ? { reason: 'NETFILTER_DROP', ns: 'node', netns: NODE, ifname: 'br0' } : null, hops, cloneOf: null,
  };
}

function ev(netns: number, t: number, step: Partial<NetfilterEvent>, headers: Partial<NfPacketHeaders>): NetfilterEvent {
  return {
    ns: NAMES[netns] ?? null, netns, t, traceId: 'abc', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward', type: 'policy',
    rule: null, handle: null, verdict: 'accept', nat: null,
    packet: { ...EMPTY_HEADERS, family: 4, proto: 17, src: '10.244.1.11', dst: '10.99.0.2', sport: 40000, dport: 9999, ...headers },
    ...step,
  };
}

const DROPPED: HopSpec[] = [
  [POD1, 'eth0', 'xmit', 1_000], [NODE, 'veth-pod1', 'rx', 1_030], [NODE, 'veth-pod1', 'recv', 1_060], [NODE, 'br0', 'recv', 1_100], [NODE, 'br0', 'drop', 1_130],
];

describe('NetfilterCorrelator', () => {
  it('attaches the steps of the same packet in its namespace, after the hop it followed, in order', () => {
    const c = new NetfilterCorrelator();
    c.add(ev(NODE, 50_000, { table: 'nat', chain: 'PREROUTING', hook: 'prerouting' }, { ipId: 7 }));
    c.add(ev(NODE, 60_000, { type: 'rule', rule: 'udp dport 9999 counter drop', handle: 2, verdict: 'drop' }, { ipId: 7 }));
    // Same headers, other namespace; same namespace, other IP id: neither belongs to it.
    c.add(ev(EXT, 60_000, {}, { ipId: 7 }));
    c.add(ev(NODE, 60_000, {}, { ipId: 8 }));
    const steps = c.stepsFor(packet(7, DROPPED));
    expect(steps.map((s) => `${s.table} ${s.chain} ${s.verdict} @${s.afterHop}`)).toEqual(['nat PREROUTING accept @3', 'filter FORWARD drop @3']);
    expect(steps[1]).toMatchObject({ ns: 'node', netns: NODE, hook: 'forward', type: 'rule', rule: 'udp dport 9999 counter drop', handle: 2 });
    expect(c.stats).toMatchObject({ events: 4, attached: 2 });
  });

  it('gives each step to one packet only, and only inside the packet\'s time in that namespace', () => {
    const c = new NetfilterCorrelator({ afterNs: 1_000_000 });
    c.add(ev(NODE, 1_500, {}, { ipId: 9 }));
    c.add(ev(NODE, 5_000_000, {}, { ipId: 9 }));
    const a = c.stepsFor(packet(9, DROPPED));
    const b = c.stepsFor(packet(9, DROPPED));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(0);
  });

  it('matches steps seen before or after NAT by one unchanged side of the tuple, not reversed tuples', () => {
    const c = new NetfilterCorrelator();
    const masq = packet(11, [
      [POD1, 'eth0', 'xmit', 1_000, { dport: 7000 }], [NODE, 'veth-pod1', 'recv', 1_050, { dport: 7000 }], [NODE, 'br0', 'recv', 1_080, { dport: 7000 }],
      [NODE, 'eth-node', 'xmit', 1_120, { src: '10.99.0.1', dport: 7000 }], [EXT, 'eth0', 'recv', 1_160, { src: '10.99.0.1', dport: 7000 }],
    ]);
    c.add(ev(NODE, 2_000, { table: 'nat', chain: 'POSTROUTING', hook: 'postrouting', type: 'rule', rule: 'masquerade', verdict: 'accept', nat: 'masquerade' }, { ipId: 11, dport: 7000 }));
    c.add(ev(NODE, 2_000, {}, { ipId: 11, src: '10.99.0.2', dst: '10.244.1.11', sport: 7000, dport: 40000 }));
    const steps = c.stepsFor(masq);
    expect(steps.map((s) => s.nat)).toEqual(['masquerade']);
    expect(steps[0]?.afterHop).toBe(2);
  });

  it('names the NAT rule of a connection on its later packets, which conntrack rewrites without rules', () => {
    const c = new NetfilterCorrelator();
    const tcp = { proto: 'tcp' } as const;
    const dnatHops = (ipId: number, t: number): Packet => ({
      ...packet(ipId, [
        [EXT, 'eth0', 'xmit', t, { src: '10.99.0.2', dst: '10.99.0.1', sport: 5555, dport: 8080 }],
        [NODE, 'eth-node', 'recv', t + 50, { src: '10.99.0.2', dst: '10.99.0.1', sport: 5555, dport: 8080 }],
        [NODE, 'br0', 'xmit', t + 90, { src: '10.99.0.2', dst: '10.244.1.12', sport: 5555, dport: 80 }],
      ]),
      ...tcp,
    });
    c.add(ev(NODE, 1_500, { table: 'nat', chain: 'PREROUTING', hook: 'prerouting', type: 'rule', rule: 'tcp dport 8080 dnat to 10.244.1.12:80', handle: 4, verdict: 'accept', nat: 'dnat' },
      { proto: 6, ipId: 1, src: '10.99.0.2', dst: '10.99.0.1', sport: 5555, dport: 8080 }));
    expect(c.stepsFor(dnatHops(1, 1_000)).map((s) => s.type)).toEqual(['rule']);
    const later = c.stepsFor(dnatHops(2, 9_000));
    expect(later).toEqual([expect.objectContaining({ type: 'conntrack', nat: 'dnat', hook: 'prerouting', table: 'nat', chain: 'PREROUTING', handle: 4, afterHop: 1 })]);
    // The reply is de-NATed (its source rewritten back) by the same connection's rule.
    const reply: Packet = {
      ...packet(3, [
        [NODE, 'veth-pod2', 'recv', 20_000, { src: '10.244.1.12', dst: '10.99.0.2', sport: 80, dport: 5555 }],
        [NODE, 'eth-node', 'xmit', 20_050, { src: '10.99.0.1', dst: '10.99.0.2', sport: 8080, dport: 5555 }],
      ]),
      ...tcp,
    };
    expect(c.stepsFor(reply)).toEqual([expect.objectContaining({ type: 'conntrack', hook: 'postrouting', rule: 'tcp dport 8080 dnat to 10.244.1.12:80' })]);
  });

  it('forgets old events and says where a step falls for locally sent packets', () => {
    const c = new NetfilterCorrelator();
    c.add(ev(NODE, 1_000, {}, { ipId: 1 }));
    c.add(ev(NODE, 9_000, {}, { ipId: 2 }));
    c.prune(5_000);
    expect(c.size).toBe(1);
    expect(c.stats.expired).toBe(1);
    const local = packet(5, [[POD1, 'eth0', 'xmit', 1_000], [NODE, 'veth-pod1', 'recv', 1_040]]);
    expect(hopBefore(local.hops, POD1)).toBe(-1);
    expect(hopBefore(local.hops, NODE)).toBe(1);
  });
});

describe('bridged frames (bridge family steps, fixtures/monitor-bridge.txt)', () => {
  /** The capture's 'pure' section (no br_netfilter) through the assembler, stamped just after the hops below. */
  function bridgeCapture(): NetfilterEvent[] {
    const lines = readFileSync(new URL('./fixtures/monitor-bridge.txt', import.meta.url), 'utf8').split('\n')
      .filter((l) => l.startsWith('pure\t')).map((l) => l.slice(5));
    const a = new TraceAssembler({
      ns: 'node', netns: NODE, now: () => 1_200,
      hookOf: (f, t, c) => (f === 'bridge' && t === 'filter' && c === 'forward' ? 'forward' : f === 'bridge' ? 'prerouting' : null),
    });
    return lines.map((l) => a.push(l)).filter((e): e is NetfilterEvent => e !== null);
  }

  /** A frame from pod A (POD1) bridged in the node to pod B (EXT here), or dropped in the node. */
  function bridged(e: NetfilterEvent, dropped: boolean): Packet {
    const tuple = { src: e.packet.src, dst: e.packet.dst, sport: e.packet.sport, dport: e.packet.dport };
    const hops: HopSpec[] = [[POD1, 'eth0', 'xmit', 1_000], [NODE, 'va', 'rx', 1_030], [NODE, 'va', 'recv', 1_060]];
    hops.push(...(dropped ? [[NODE, 'va', 'drop', 1_100]] as HopSpec[] : [[NODE, 'vb', 'xmit', 1_100], [EXT, 'eth0', 'rx', 1_130], [EXT, 'eth0', 'recv', 1_160]] as HopSpec[]));
    const p = packet(e.packet.ipId, hops, tuple);
    return dropped ? { ...p, drop: { reason: 'NETFILTER_DROP', ns: 'node', netns: NODE, ifname: 'va' } } : p;
  }

  it('attaches the bridge chain\'s rule and verdict to the frame it met, after its last hop in the node', () => {
    const events = bridgeCapture();
    const dropEv = events.find((e) => e.verdict === 'drop') as NetfilterEvent;
    const passEv = events.find((e) => e.packet.dport === 7002) as NetfilterEvent;
    expect(dropEv.packet.ipId).not.toBe(passEv.packet.ipId);
    const c = new NetfilterCorrelator();
    for (const e of events) c.add(e);
    const drop = c.stepsFor(bridged(dropEv, true));
    expect(drop).toEqual([expect.objectContaining({ ns: 'node', netns: NODE, family: 'bridge', table: 'filter', chain: 'forward', hook: 'forward', type: 'rule', rule: 'udp dport 7001 counter drop', handle: 2, verdict: 'drop', afterHop: 2 })]);
    const pass = c.stepsFor(bridged(passEv, false));
    expect(pass).toEqual([expect.objectContaining({ family: 'bridge', chain: 'forward', type: 'policy', verdict: 'accept', afterHop: 2 })]);
    // The third frame (7003) had its own IP id: nothing of it went to the other two.
    expect(c.stats).toMatchObject({ events: 3, attached: 2 });
  });

  it('names the bridge family rule in the human output of a dropped frame', () => {
    const events = bridgeCapture();
    const c = new NetfilterCorrelator();
    for (const e of events) c.add(e);
    const text = formatPacket(c.annotate(bridged(events.find((e) => e.verdict === 'drop') as NetfilterEvent, true)), 1);
    expect(text).toMatch(/⛨ forward\s+bridge filter forward: rule 'udp dport 7001 counter drop' \(handle 2\) → drop/);
    expect(text.split('\n').at(-1)).toBe("  dropped in node at va: NETFILTER_DROP, by bridge filter forward rule 'udp dport 7001 counter drop' (handle 2)");
  });
});

describe('human output with netfilter steps', () => {
  it('shows the steps under the hop they followed and names the rule that dropped', () => {
    const c = new NetfilterCorrelator();
    c.add(ev(NODE, 2_000, { table: 'nat', chain: 'PREROUTING', hook: 'prerouting' }, { ipId: 7 }));
    c.add(ev(NODE, 2_100, { type: 'rule', rule: 'udp dport 9999 counter drop', handle: 2, verdict: 'drop' }, { ipId: 7 }));
    const text = formatPacket(c.annotate(packet(7, DROPPED)), 1);
    const lines = text.split('\n');
    const br0 = lines.findIndex((l) => /node\s+br0\s+recv/.test(l));
    expect(lines[br0 + 1]).toMatch(/⛨ passed ip nat PREROUTING \(policy accept\)/);
    expect(lines[br0 + 2]).toMatch(/⛨ forward\s+ip filter FORWARD: rule 'udp dport 9999 counter drop' \(handle 2\) → drop/);
    expect(lines[lines.length - 1]).toBe("  dropped in node at br0: NETFILTER_DROP, by ip filter FORWARD rule 'udp dport 9999 counter drop' (handle 2)");
  });
});
