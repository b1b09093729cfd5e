// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import StatusBar from '../../src/ui/StatusBar.vue';
import type { ClusterView } from '../../src/domain/cluster.js';

const base = { connection: 'connected' as const, detail: '', session: null, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false };
const cluster: ClusterView = {
  session: { filter: '' },
  nodes: [
    { name: 'node1', state: 'up', namespaces: [], events: 10, lost: 0 },
    { name: 'node2', state: 'lost', namespaces: [], events: 4, lost: 0 },
  ],
  links: [],
  clockOffsets: [{ node: 'node1', offsetNs: 0, samples: 0, method: 'reference' }, { node: 'node2', offsetNs: -2_000_000_000, samples: 3, method: 'one-way' }],
  packets: 0,
};

describe('StatusBar in hub mode', () => {
  it('should show every node with its clock offset, a lost node in red', () => {
    const w = mount(StatusBar, { props: { ...base, cluster } });
    const nodes = w.findAll('[data-testid="status-node"]');
    expect(nodes.map((n) => n.text())).toEqual(['node1reference clock', 'node2lost · clock −2.00 s']);
    expect(nodes[1]?.classes()).toContain('bad');
    expect(nodes[0]?.classes()).not.toContain('bad');
    // The hub host's own bpftrace and probe tier say nothing of the cluster.
    expect(w.find('[data-testid="status-bpftrace"]').exists()).toBe(false);
  });

  it('should say what an agent dropped and what the hub missed, in red', () => {
    const w = mount(StatusBar, {
      props: {
        ...base,
        cluster: { ...cluster, nodes: [{ name: 'node1', state: 'up', namespaces: [], events: 10, lost: 0, agentDropped: 7, gaps: 2 }, { name: 'node2', state: 'up', namespaces: [], events: 4, lost: 0, agentDropped: 0, gaps: 0 }] },
      },
    });
    const nodes = w.findAll('[data-testid="status-node"]');
    expect(nodes[0]?.find('[data-testid="status-node-loss"]').text()).toBe('· agent dropped 7 batches · 2 batches missed');
    expect(nodes[0]?.classes()).toContain('bad');
    expect(nodes[0]?.attributes('title')).toMatch(/its agent dropped 7 hop batches .*2 batches left the stream's retention/);
    expect(nodes[1]?.find('[data-testid="status-node-loss"]').exists()).toBe(false);
    expect(nodes[1]?.classes()).not.toContain('bad');
  });

  it('should count the stitched packets the hub dropped for this page as dropped, in red', () => {
    const w = mount(StatusBar, { props: { ...base, cluster: { ...cluster, stream: { session: 'hub', droppedPackets: 12, droppedLots: 2, queuedPackets: 0 } } } });
    expect(w.find('[data-testid="status-dropped"]').text()).toBe('12');
    expect(w.find('[data-testid="status-dropped"]').element.parentElement?.classList.contains('bad')).toBe(true);
  });

  it('should show no node on a single host', () => {
    const w = mount(StatusBar, { props: base });
    expect(w.findAll('[data-testid="status-node"]')).toHaveLength(0);
  });
});
