// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import ELK from 'elkjs/lib/elk.bundled.js';
import TopologyView from '../../src/ui/TopologyView.vue';
import { demoNetns, demoRecording } from '../fixture.js';
import { syntheticTopology } from '../synthetic-topology.js';

const engine = new ELK();

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await flushPromises();
    await new Promise((r) => setTimeout(r, 10));
  }
}

function props(extra: Record<string, unknown> = {}) {
  return { topology: demoRecording().topology, engine, ifaceRates: [], drops: [], facet: null, observed: null, expected: null, divergeNetns: null, ...extra };
}

describe('TopologyView', () => {
  it('should draw each namespace with its interfaces and addresses', async () => {
    const w = mount(TopologyView, { props: props() });
    await settle();
    const ns = w.findAll('[data-testid="ns-node"]');
    expect(ns.map((n) => n.attributes('data-name')).sort()).toEqual(['demo-ext', 'demo-node', 'demo-pod1', 'demo-pod2']);
    const node = ns.find((n) => n.attributes('data-name') === 'demo-node');
    expect(node?.attributes('data-netns')).toBe(String(demoNetns('node')));
    expect(w.findAll('[data-testid="iface-node"]').map((i) => i.attributes('data-name'))).toContain('br0');
    expect(w.text()).toContain('10.244.1.1/24');
    expect(w.findAll('.link.veth')).toHaveLength(3);
  });

  it('should filter by a namespace or a link when clicked, and show traffic and drops', async () => {
    const ext = demoNetns('ext');
    const w = mount(TopologyView, {
      props: props({ ifaceRates: [[ext, 2, 42]], drops: [[demoNetns('node'), 'br0', 'NETFILTER_DROP', 6, 0]] }),
    });
    await settle();
    await w.find(`[data-testid="ns-node"][data-netns="${ext}"] .ns-head`).trigger('click');
    expect(w.emitted('facet')?.[0]).toEqual([{ kind: 'ns', netns: ext }]);
    await w.find('.link.veth.active').trigger('click');
    const link = w.emitted('facet')?.[1]?.[0] as { kind: string; a: { netns: number }; b: { netns: number } };
    expect(link.kind).toBe('link');
    expect([link.a.netns, link.b.netns]).toContain(ext);
    expect(w.find('.rate').text()).toBe('42/s');
    expect(w.find(`[data-netns="${demoNetns('node')}"] .drop-badge`).text()).toContain('6');
  });

  it('should label packets/s on veth pairs only, no two labels on top of each other', async () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    // Traffic on every interface of every namespace: bridge ports too.
    const rates = topo.namespaces.flatMap((n) => n.interfaces.map((i) => [n.netns, i.ifindex, 5] as const));
    const w = mount(TopologyView, { props: props({ ifaceRates: rates }) });
    await settle();
    expect(w.findAll('.link.port [data-testid="link-rate"]')).toHaveLength(0);
    const at = w.findAll('[data-testid="link-rate"]').map((g) => {
      const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(g.attributes('transform') ?? '');
      return { x: Number(m?.[1]), y: Number(m?.[2]) };
    });
    expect(at).toHaveLength(3);
    for (let i = 0; i < at.length; i++) {
      for (let j = i + 1; j < at.length; j++) {
        const a = at[i] as { x: number; y: number };
        const b = at[j] as { x: number; y: number };
        expect(Math.abs(a.x - b.x) >= 44 || Math.abs(a.y - b.y) >= 15).toBe(true);
      }
    }
  });

  it('should stay readable at 80 namespaces by grouping pods', async () => {
    const w = mount(TopologyView, { props: props({ topology: syntheticTopology(4, 20) }) });
    await settle();
    expect(w.findAll('[data-testid="ns-group"]')).toHaveLength(4);
    expect(w.findAll('[data-testid="ns-node"]').length).toBeLessThanOrEqual(5);
    await w.find('[data-testid="ns-group"] .ns-head').trigger('click');
    await settle();
    expect(w.findAll('[data-testid="ns-group"]')).toHaveLength(3);
    expect(w.findAll('[data-testid="ns-node"]').length).toBeGreaterThan(20);
  });
});
