/**
 * A hub's `canTrace` (issue 17): its nodes' agents trace, not the hub's host, so it summarises
 * what each agent says in its snapshot.
 */
import { describe, expect, it } from 'vitest';
import { clusterCanTrace, parseCapability, type NodeTraceState } from '../../../shared/cluster/capability.js';
import { parseSnapshot } from '../../../shared/cluster/pipeline.js';

const able = { canTrace: true, problems: [], bpftrace: '0.21.2' };
const unable = { canTrace: false, problems: ['bpftrace is not installed: apt install bpftrace'], bpftrace: null };

describe('clusterCanTrace', () => {
  it('should say the cluster can trace when one node up can, whatever the others', () => {
    const nodes: NodeTraceState[] = [
      { name: 'node1', state: 'up', capability: unable },
      { name: 'node2', state: 'up', capability: able },
      { name: 'node3', state: 'lost', capability: able },
    ];
    expect(clusterCanTrace(nodes)).toEqual({ ok: true, problems: [], nodes: ['node2'] });
  });

  it('should take an agent that does not say (older) as able: it only starts when its preflight passes', () => {
    expect(clusterCanTrace([{ name: 'old', state: 'up', capability: null }]).ok).toBe(true);
  });

  it('should say why not, node by node, when no node can', () => {
    const r = clusterCanTrace([
      { name: 'node1', state: 'up', capability: unable },
      { name: 'node2', state: 'lost', capability: able },
      { name: 'node3', state: 'silent', capability: null },
    ]);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'node node1 cannot trace: bpftrace is not installed: apt install bpftrace',
      'node node2 is lost: its agent does not answer the hub (is `hoptrace agent` running there?)',
      'node node3 is silent: nothing came from it for a minute',
    ]);
  });

  it('should name the command to run when no agent has come yet', () => {
    const r = clusterCanTrace([]);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/hoptrace agent --hub URL --node NAME/);
  });
});

describe('a snapshot\'s capability', () => {
  it('should be read from an agent\'s snapshot, and be null from an older agent or a wrong one', () => {
    const topology = { namespaces: [], errors: [], discoveredAt: 1, durationMs: 1 };
    const snap = (extra: object): Uint8Array => new TextEncoder().encode(JSON.stringify({ node: 'n1', t: 1, wallMs: 2, selector: '', topology, ...extra }));
    const a = parseSnapshot('n1', snap({ capability: unable }));
    expect(typeof a !== 'string' && a.capability).toEqual(unable);
    const b = parseSnapshot('n1', snap({}));
    expect(typeof b !== 'string' && b.capability).toBeNull();
    expect(parseCapability({ canTrace: 'yes' })).toBeNull();
    expect(parseCapability({ canTrace: false, problems: [1, 'x'] })).toEqual({ canTrace: false, problems: ['x'], bpftrace: null });
  });
});
