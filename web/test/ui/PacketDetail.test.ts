// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import PacketDetail from '../../src/ui/PacketDetail.vue';
import { expectedFor } from '../../src/domain/expected.js';
import { PathExpectations } from '../../../shared/expectation.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { demoNetns, demoPackets, demoRecording } from '../fixture.js';

const packets = demoPackets;
const nsName = (n: number, f: string | null): string => f ?? `netns:${n}`;

describe('PacketDetail', () => {
  it('should say where and why a packet was dropped, next to the expected path', () => {
    const p = packets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p) throw new Error('no dropped packet');
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: expectedFor(p, demoRecording().topology), nsName } });
    const drop = w.find('[data-testid="drop-reason"]').text();
    expect(drop).toContain('demo-node');
    expect(drop).toContain('NETFILTER_DROP');
    expect(w.find('[data-testid="divergence"]').exists()).toBe(false);
    expect(w.text()).toContain('Matches the expected path');
    const expected = w.findAll('[data-testid="expected-hop"]');
    expect(expected.length).toBeGreaterThan(0);
    expect(expected[expected.length - 1]?.text()).toContain('FORWARD');
    expect(w.findAll('[data-testid="hop"]')).toHaveLength(p.hops.length);
  });

  it('should show a packet its socket freed after delivery as delivered, with the discard and no red drop callout (issue 19)', () => {
    const pod2 = demoNetns('pod2');
    const base = { cpu: 0, skb: 'a1', netns: pod2, ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 6, len: 52, ipId: 1, src: '10.99.0.2', dst: '10.244.1.12', sport: 55416, dport: 80, icmpType: 0, icmpId: 0, tcpFlags: 16, tcpSeq: 9, reason: 0 };
    const [p] = reconstructAll([{ ...base, kind: 'recv', t: 1 }, { ...base, kind: 'drop', t: 2, ifindex: 0, ifname: '', reason: 2 }], {
      nsName: (n) => demoRecording().names.get(n) ?? null, dropReason: (c) => (c === 2 ? 'NOT_SPECIFIED' : `reason-${c}`), isLocal: (n, a) => n === pod2 && a === '10.244.1.12',
    });
    if (!p) throw new Error('no packet');
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: null, nsName } });
    expect(w.find('[data-testid="fate"]').text()).toBe('✓ delivered; discarded by TCP: NOT_SPECIFIED');
    expect(w.find('[data-testid="drop-reason"]').exists()).toBe(false);
    const last = w.findAll('table.hops tbody tr').at(-1);
    expect(last?.text()).toContain('discarded by TCP: NOT_SPECIFIED');
    expect(last?.classes()).not.toContain('drop');
    // The timeline draws the free as the packet's end, not a red ✕.
    const hop = w.findAll('[data-testid="hop"]').at(-1);
    expect(hop?.attributes('data-event')).toBe('drop');
    expect(hop?.classes()).toContain('ev-consume');
    expect(hop?.find('.drop-note').exists()).toBe(false);
  });

  it('should call out where a packet left its expected path', () => {
    // The FORWARD drop, put next to a model without the filter rule that drops it: the model
    // expects the datagram to go on, the kernel dropped it in the node.
    const dropped = packets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    const recorded = demoRecording().topology;
    if (!dropped || !recorded) throw new Error('no FORWARD drop in the fixture');
    const topo = { ...recorded, namespaces: recorded.namespaces.map((n) => ({ ...n, netfilter: { ...n.netfilter, rules: n.netfilter.rules.filter((r) => r.table !== 'filter') } })) };
    const { expected: _e, divergence: _d, ...bare } = dropped;
    const p = new PathExpectations(topo).annotate(bare);
    const v = expectedFor(p, topo);
    expect(v.divergence).not.toBeNull();
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: v, nsName } });
    expect(w.find('[data-testid="divergence"]').text()).toContain(v.divergence?.summary ?? '-');
    expect(w.find('.hop.diverge').exists() || v.divergence?.observedIndex === null).toBe(true);
  });

  it('should list every hop with its headers and the NAT rewrite as before ⇒ after', () => {
    const p = packets().find((x) => x.hops.some((h) => h.nat?.kind === 'snat'));
    if (!p) throw new Error('no SNAT packet');
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: null, nsName } });
    const rows = w.findAll('table.hops tbody tr');
    expect(rows).toHaveLength(p.hops.length);
    const natRow = rows.find((r) => r.find('.after').exists());
    expect(natRow?.find('.before').text()).toContain('10.244.1.');
    expect(natRow?.find('.badge.nat').text()).toBe('SNAT');
  });

  it('should not say "matches" when the model found no way through but the packet went on', () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    // The model as if pod1's routes were added after discovery: it sees no route out of pod1.
    const stale = { ...topo, namespaces: topo.namespaces.map((n) => (n.netns === demoNetns('pod1') ? { ...n, routes: [] } : n)) };
    const found = packets().find((x) => x.hops[0]?.netns === demoNetns('pod1') && x.fate === 'delivered' && x.hops.length > 2);
    if (!found) throw new Error('no delivered packet from pod1');
    const { expected: _e, divergence: _d, ...bare } = found;
    const p = new PathExpectations(stale).annotate(bare);
    const v = expectedFor(p, stale);
    expect(v.path?.fate).toBe('unreachable');
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: v, nsName } });
    expect(w.text()).not.toContain('Matches the expected path');
    const says = w.find('[data-testid="model-stuck"]');
    expect(says.text()).toContain('unreachable');
    expect(says.text()).toContain(`${p.hops.length} hops`);
    expect(w.find('[data-testid="divergence"]').text()).toContain('(unreachable)');
  });
});
