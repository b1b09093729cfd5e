// @vitest-environment happy-dom
/** The topology coloured by a stats session's p99: the veth pair a slow segment crosses, and the interface it arrives at. */
import { describe, expect, it } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import ELK from 'elkjs/lib/elk.bundled.js';
import TopologyView from '../../src/ui/TopologyView.vue';
import { ifKey } from '../../src/domain/topology-graph.js';
import { latencyColour } from '../../src/store/stats.js';
import { demoNetns, demoRecording } from '../fixture.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await flushPromises();
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('TopologyView latency colours', () => {
  it('labels the veth pair with the p99 of the segments crossing it and colours the interfaces', async () => {
    const topo = demoRecording().topology;
    const pod1 = demoNetns('pod1');
    const node = demoNetns('node');
    const eth0 = topo?.namespaces.find((n) => n.netns === pod1)?.interfaces.find((i) => i.name === 'eth0')?.ifindex ?? 0;
    const veth = topo?.namespaces.find((n) => n.netns === node)?.interfaces.find((i) => i.name === 'veth-pod1')?.ifindex ?? 0;
    const a = ifKey(pod1, eth0);
    const b = ifKey(node, veth);
    const latency = { ifaces: new Map([[b, 250_000]]), pairs: new Map([[`${a}>${b}`, 250_000], [`${b}>${a}`, 250_000]]) };
    const w = mount(TopologyView, {
      props: { topology: topo, engine: new ELK(), ifaceRates: [], drops: [], facet: null, observed: null, expected: null, divergeNetns: null, latency },
    });
    await settle();
    const labels = w.findAll('[data-testid="link-p99"]');
    expect(labels).toHaveLength(1);
    expect(labels[0]?.text()).toBe('p99 250 µs');
    const bars = w.findAll('[data-testid="iface-p99"]');
    expect(bars).toHaveLength(1);
    expect(bars[0]?.attributes('fill')).toBe(latencyColour(250_000));
    w.unmount();
  });
});
