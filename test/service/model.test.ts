/**
 * The service's guard in front of topology rediscovery: a hop from a namespace or interface the
 * model does not know asks for a discovery once, not at every hop (a namespace discovery cannot
 * see would otherwise rediscover the host twice a second for as long as its packets flow).
 */
import { describe, expect, it } from 'vitest';
import { UnknownHopNotes } from '../../server/service/model.js';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';

function topology(namespaces: Array<[number, string[]]>): Topology {
  return {
    namespaces: namespaces.map(([netns, ifnames]) => ({ netns, name: `ns${netns}`, interfaces: ifnames.map((name) => ({ name })) }) as unknown as NamespaceModel),
    errors: [], discoveredAt: 0, durationMs: 0,
  };
}

describe('UnknownHopNotes', () => {
  it('should pass an unknown namespace or interface on once per quiet period, and known ones never', () => {
    let now = 1000;
    const noted: Array<[number, string]> = [];
    const notes = new UnknownHopNotes((netns, ifname) => noted.push([netns, ifname]), 30_000, () => now);
    // Before the first model: the first discovery is under way, nothing to ask.
    notes.hop(7, 'eth0');
    expect(noted).toEqual([]);
    notes.learn(topology([[1, ['lo', 'eth0']]]));
    for (let i = 0; i < 1000; i++) notes.hop(1, 'eth0');
    expect(noted).toEqual([]);
    // A namespace the model lacks, at every hop for 29 s: one note.
    for (let i = 0; i < 1000; i++) {
      notes.hop(7, 'eth0');
      now += 29;
    }
    expect(noted).toEqual([[7, 'eth0']]);
    // After the quiet period it may be worth asking again.
    now += 2000;
    notes.hop(7, 'eth0');
    expect(noted).toEqual([[7, 'eth0'], [7, 'eth0']]);
    // A new interface in a known namespace is its own question.
    notes.hop(1, 'veth9');
    expect(noted.at(-1)).toEqual([1, 'veth9']);
    // Once the model knows them, they are never passed on again.
    notes.learn(topology([[1, ['lo', 'eth0', 'veth9']], [7, ['eth0']]]));
    now += 60_000;
    notes.hop(7, 'eth0');
    notes.hop(1, 'veth9');
    expect(noted).toHaveLength(3);
  });

  it('should stay bounded under a flood of distinct unknown namespaces', () => {
    let count = 0;
    const notes = new UnknownHopNotes(() => count++, 30_000, () => 0);
    notes.learn(topology([]));
    for (let ns = 1; ns <= 25_000; ns++) notes.hop(ns, '');
    expect(count).toBe(25_000);
    expect((notes as unknown as { noted: Map<string, number> }).noted.size).toBeLessThanOrEqual(10_000);
  });
});
