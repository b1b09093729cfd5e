// @vitest-environment happy-dom
/**
 * Tunnels in the dashboard's views (issue 14): the topology draws the vxlan link between the
 * nodes' tunnel devices (and a dangling end for a remote nobody in the model owns), the timeline
 * and the hop table mark encap and decap and show the outer headers on the underlay hops, the
 * list's path chips show where the packet went through the tunnel. Real engine, real layout.
 */
import { describe, expect, it } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import ELK from 'elkjs/lib/elk.bundled.js';
import TopologyView from '../../src/ui/TopologyView.vue';
import HopTimeline from '../../src/ui/HopTimeline.vue';
import PacketDetail from '../../src/ui/PacketDetail.vue';
import PacketList from '../../src/ui/PacketList.vue';
import { toRow } from '../../src/worker/ingest-core.js';
import { overlayLab, overlayPacket, topologyOf } from '../overlay-fixture.js';

const engine = new ELK();
const nsName = (n: number, f: string | null): string => f ?? `netns:${n}`;

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await flushPromises();
    await new Promise((r) => setTimeout(r, 10));
  }
}

function topoProps(topology: ReturnType<typeof topologyOf>, extra: Record<string, unknown> = {}) {
  return { topology, engine, ifaceRates: [], drops: [], facet: null, observed: null, expected: null, divergeNetns: null, ...extra };
}

describe('tunnels in the topology view', () => {
  it('should draw the vxlan link with its label, unlike a veth, and light it on the packet\'s path', async () => {
    const lab = overlayLab(100, 'a');
    const w = mount(TopologyView, { props: topoProps(topologyOf(lab), {
      observed: { ifaces: new Set([`${lab.netns.n1}:5`, `${lab.netns.n2}:5`]), netns: new Set([lab.netns.n1, lab.netns.n2]) },
    }) });
    await settle();
    const link = w.find('[data-testid="link-tunnel"]');
    expect(link.exists()).toBe(true);
    expect(link.classes()).toContain('tunnel');
    expect(link.classes()).toContain('onpath');
    expect(link.classes()).not.toContain('veth');
    expect(link.find('[data-testid="tunnel-label"]').text()).toBe('vxlan vni 42 · udp 4789');
    expect(link.find('title').text()).toContain('vxlan vni 42 · udp 4789 tunnel (underlay 10.77.0.');
    expect(w.findAll('[data-testid="link-veth"]')).toHaveLength(3);
    expect(w.find('[data-testid="topology-legend"]').text()).toContain('tunnel');
    await link.trigger('click');
    const f = w.emitted('facet')?.[0]?.[0] as { kind: string; a: { ifindex: number }; b: { ifindex: number } };
    expect([f.kind, f.a.ifindex, f.b.ifindex]).toEqual(['link', 5, 5]);
  });

  it('should draw an unresolved remote as a dangling end showing its address', async () => {
    const lab = overlayLab(100, 'd', { remote1: '10.77.0.9' });
    const w = mount(TopologyView, { props: topoProps(topologyOf(lab)) });
    await settle();
    const remote = w.find('[data-testid="tunnel-remote"]');
    expect(remote.text()).toContain('10.77.0.9');
    expect(remote.find('title').text()).toContain('no namespace in the model has this address');
    expect(w.findAll('[data-testid="link-tunnel"]')).toHaveLength(2);
  });
});

describe('encap and decap on the packet', () => {
  const N = { n1: 100, n2: 101, p1: 102, p2: 103 };
  const p = overlayPacket(N, 'a');

  it('should badge the tunnel device\'s transmit "encap vxlan vni 42" and its far receive "decap", and ring the underlay hops', () => {
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'compressed' } });
    const enc = w.find('[data-testid="hop-encap"]');
    expect(enc.text()).toBe('encap vxlan vni 42');
    const encHop = w.find('[data-encap="vxlan"]');
    expect([encHop.attributes('data-ns'), encHop.attributes('data-event')]).toEqual(['a-n1', 'xmit']);
    expect(encHop.text()).toContain('vx0');
    const dec = w.find('[data-decap="vxlan"]');
    expect([dec.attributes('data-ns'), dec.attributes('data-event'), dec.find('[data-testid="hop-decap"]').text()]).toEqual(['a-n2', 'recv', 'decap vxlan vni 42']);
    const under = w.findAll('.hop.underlay');
    expect(under.map((h) => h.attributes('data-outer'))).toEqual(Array(3).fill('10.77.0.1:35707 → 10.77.0.2:4789 udp'));
    expect(under[0]?.attributes('title')).toContain('outer (underlay) 10.77.0.1:35707 → 10.77.0.2:4789 udp');
    expect(w.findAll('.links line.tunnel').length).toBe(4);
  });

  it('should show the outer tuple next to the inner one in the hop table, and name the tunnel in the summary', () => {
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: null, nsName } });
    expect(w.find('[data-testid="detail-tunnel"]').text()).toBe('vxlan vni 42');
    const rows = w.findAll('[data-testid="hop-row"]');
    const under = rows.filter((r) => r.find('[data-testid="row-outer"]').exists());
    expect(under).toHaveLength(3);
    for (const r of under) {
      expect(r.text()).toContain('10.42.1.10:40000 → 10.42.2.10:5433');
      expect(r.find('[data-testid="row-outer"]').text()).toBe('outer 10.77.0.1:35707 → 10.77.0.2:4789 udp');
    }
    expect(rows.filter((r) => r.find('[data-testid="row-encap"]').exists()).map((r) => r.text())).toEqual([expect.stringContaining('encap vxlan vni 42')]);
    expect(rows.filter((r) => r.find('[data-testid="row-decap"]').exists())).toHaveLength(1);
  });

  it('should draw the path chips\' step between the two nodes as the tunnel\'s, and badge the row', () => {
    const row = toRow(1, p);
    const w = mount(PacketList, { props: { rows: [row], version: 1, selectedId: null, follow: false, nsName, clock: null, originNs: 0 } });
    const r = w.find('[data-testid="packet-row"]');
    expect(r.findAll('.chip').map((c) => c.text())).toEqual(['a-p1', 'a-n1', 'a-n2', 'a-p2']);
    const arrows = r.findAll('.arrow');
    expect(arrows.map((a) => a.classes().includes('tunnel'))).toEqual([false, true, false]);
    expect(r.find('[data-testid="path-tunnel"]').attributes('title')).toBe('through the vxlan vni 42 tunnel');
    expect(r.find('[data-testid="row-tunnel"]').text()).toBe('VXLAN');
  });
});
