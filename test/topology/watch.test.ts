import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Topology } from '../../shared/topology/model.js';
import { diffTopology, TopologyWatcher } from '../../server/topology/watch.js';
import type { TopologyChange } from '../../server/topology/watch.js';
import { podLab } from './builder.js';

function without(t: Topology, name: string): Topology {
  return { ...t, namespaces: t.namespaces.filter((n) => n.name !== name) };
}

describe('diffTopology', () => {
  it('should list namespaces added, removed and changed, ignoring process churn', () => {
    const a = podLab().build();
    const b = without(a, 'ext');
    const c: Topology = {
      ...b,
      namespaces: b.namespaces.map((n) => (n.name === 'pod1' ? { ...n, pids: [42] } : n.name === 'pod2' ? { ...n, forwarding: { ipv4: true, ipv6: false } } : n)),
    };
    expect(diffTopology(a, c)).toEqual({ added: [], removed: ['ext'], changed: ['pod2'] });
    expect(diffTopology(c, a)).toEqual({ added: ['ext'], removed: [], changed: ['pod2'] });
  });
});

describe('TopologyWatcher', () => {
  let watcher: TopologyWatcher | null = null;
  afterEach(() => {
    watcher?.stop();
    watcher = null;
  });

  it('should rediscover when the namespace set changes and emit what changed', async () => {
    const full = podLab().build();
    let current = without(full, 'ext');
    let discoveries = 0;
    watcher = new TopologyWatcher({
      pollMs: 20,
      refreshMs: 0,
      minGapMs: 0,
      discover: async () => {
        discoveries++;
        return current;
      },
      list: async () => current.namespaces.map((n) => ({ netns: n.netns, name: n.name, path: n.path, pids: [] })),
    });
    const first = await watcher.start();
    expect(first.namespaces.map((n) => n.name)).toEqual(['node', 'pod1', 'pod2']);
    const changed = new Promise<TopologyChange>((resolve) => watcher?.once('change', resolve));
    current = full;
    const change = await changed;
    expect(change.added).toEqual(['ext']);
    expect(change.removed).toEqual([]);
    expect(watcher.current?.namespaces).toHaveLength(4);
    expect(discoveries).toBe(2);
  });

  it('should refresh soon for an inode it does not know, and coalesce concurrent refreshes', async () => {
    const t = podLab().build();
    // Counted when a discovery finishes: a step waits for the one it caused before the next
    // (on a loaded machine a refresh can outlast a fixed sleep and coalesce with the next).
    let discoveries = 0;
    watcher = new TopologyWatcher({
      pollMs: 60_000,
      refreshMs: 0,
      minGapMs: 0,
      discover: async () => {
        await new Promise((r) => setTimeout(r, 10));
        discoveries++;
        return t;
      },
      list: async () => [],
    });
    await watcher.start();
    const [a, b] = await Promise.all([watcher.refresh(), watcher.refresh()]);
    expect(a).toBe(b);
    const before = discoveries;
    const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    watcher.noteUnknown(t.namespaces[0]?.netns ?? 0);
    await quiet();
    expect(discoveries).toBe(before);
    watcher.noteUnknown(123);
    await vi.waitFor(() => expect(discoveries).toBe(before + 1));
    await quiet();
    expect(discoveries).toBe(before + 1);
    // A known namespace with an interface the model has not seen (a veth added since).
    watcher.noteUnknown(t.namespaces[0]?.netns ?? 0, 'lo');
    await quiet();
    expect(discoveries).toBe(before + 1);
    watcher.noteUnknown(t.namespaces[0]?.netns ?? 0, 'veth-new');
    await vi.waitFor(() => expect(discoveries).toBe(before + 2));
  });

  it('should refresh periodically, backing off to 20 times a discovery that takes long', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const t = podLab().build();
      let durationMs = 1;
      let discoveries = 0;
      watcher = new TopologyWatcher({
        pollMs: 60_000,
        refreshMs: 1000,
        discover: async () => {
          discoveries++;
          return { ...t, durationMs };
        },
        list: async () => [],
      });
      await watcher.start();
      expect(discoveries).toBe(1);
      // Quick discoveries: every refreshMs.
      await vi.advanceTimersByTimeAsync(1000);
      expect(discoveries).toBe(2);
      durationMs = 200; // from now on a discovery "takes" 200 ms: the gap becomes 4 s
      await vi.advanceTimersByTimeAsync(1000);
      expect(discoveries).toBe(3);
      await vi.advanceTimersByTimeAsync(3900);
      expect(discoveries).toBe(3);
      await vi.advanceTimersByTimeAsync(100);
      expect(discoveries).toBe(4);
      watcher.stop();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(discoveries).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });
});
