/**
 * The model follows the host without a restart, on real namespaces: a namespace created or
 * deleted while the watcher runs, and a veth added inside a namespace it already knows (seen
 * the way a trace sees it: an interface name the model lacks).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { TopologyChange } from '../../server/topology/watch.js';
import { TopologyWatcher } from '../../server/topology/watch.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const P = `ht-${randomBytes(3).toString('hex')}`;
const A = `${P}-wa`;
const B = `${P}-wb`;

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** The next change that satisfies `pred` (changes for other tests' namespaces come and go too). */
function nextChange(w: TopologyWatcher, pred: (c: TopologyChange) => boolean): Promise<TopologyChange> {
  return new Promise((resolve) => {
    const on = (c: TopologyChange): void => {
      if (!pred(c)) return;
      w.off('change', on);
      resolve(c);
    };
    w.on('change', on);
  });
}

describe.skipIf(!isRoot)('TopologyWatcher on real namespaces (root)', () => {
  const watcher = new TopologyWatcher({ refreshMs: 0 });
  afterAll(async () => {
    watcher.stop();
    for (const ns of [A, B]) await ip('netns', 'del', ns).catch(() => undefined);
  });

  it('should pick up a namespace created, a veth added inside it, and the namespace deleted', async () => {
    await ip('netns', 'add', A);
    const first = await watcher.start();
    expect(first.namespaces.some((n) => n.name === A)).toBe(true);
    expect(first.namespaces.some((n) => n.name === B)).toBe(false);

    // A new namespace: seen through /run/netns (inotify) or the 1 s namespace-set check.
    const added = nextChange(watcher, (c) => c.added.includes(B));
    await ip('netns', 'add', B);
    await added;
    expect(watcher.current?.namespaces.some((n) => n.name === B)).toBe(true);

    // A veth pair between two namespaces the model knows: no namespace appears, so only the
    // trace's hint (an interface name it has not seen) brings it in before the periodic refresh.
    const changed = nextChange(watcher, (c) => c.changed.includes(A) && c.changed.includes(B));
    await ip('-n', A, 'link', 'add', 'wa0', 'type', 'veth', 'peer', 'name', 'wb0', 'netns', B);
    const inodeA = watcher.current?.namespaces.find((n) => n.name === A)?.netns ?? 0;
    watcher.noteUnknown(inodeA, 'wa0');
    const c = await changed;
    const nsA = c.topology.namespaces.find((n) => n.name === A);
    const nsB = c.topology.namespaces.find((n) => n.name === B);
    const wa0 = nsA?.interfaces.find((i) => i.name === 'wa0');
    expect(wa0?.peer).toMatchObject({ netns: nsB?.netns, name: 'wb0' });

    const removed = nextChange(watcher, (x) => x.removed.includes(B));
    await ip('netns', 'del', B);
    await removed;
    expect(watcher.current?.namespaces.some((n) => n.name === B)).toBe(false);
  }, 60_000);
});

if (!isRoot) {
  describe('TopologyWatcher on real namespaces', () => {
    it.skip('needs root to create network namespaces (run as root, as CI does)', () => undefined);
  });
}
