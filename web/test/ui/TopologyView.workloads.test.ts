// @vitest-environment happy-dom
/** A container's or pod's namespace box is headed by its workload's name; the namespace name stays in its data and tooltip. */
import { describe, expect, it } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import ELK from 'elkjs/lib/elk.bundled.js';
import TopologyView from '../../src/ui/TopologyView.vue';
import { demoNetns, demoRecording } from '../fixture.js';

const engine = new ELK();

describe('TopologyView with workloads', () => {
  it('should head a namespace box with its pod or container name', async () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    const pod2 = demoNetns('pod2');
    const named = { ...topo, namespaces: topo.namespaces.map((n) => (n.netns === pod2 ? { ...n, workload: 'shop/web-7d4b', workloads: [] } : n)) };
    const w = mount(TopologyView, { props: { topology: named, engine, ifaceRates: [], drops: [], facet: null, observed: null, expected: null, divergeNetns: null } });
    for (let i = 0; i < 5; i++) {
      await flushPromises();
      await new Promise((r) => setTimeout(r, 10));
    }
    const box = w.find(`[data-testid="ns-node"][data-netns="${pod2}"]`);
    expect(box.attributes('data-name')).toBe('demo-pod2');
    expect(box.find('.ns-name').text()).toBe('shop/web-7d4b');
    expect(box.find('.ns-head title').text()).toContain('shop/web-7d4b · demo-pod2');
    // The others keep their namespace names.
    expect(w.find(`[data-testid="ns-node"][data-netns="${demoNetns('pod1')}"] .ns-name`).text()).toBe('demo-pod1');
  });
});
