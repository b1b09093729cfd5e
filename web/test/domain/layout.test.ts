import { describe, expect, it } from 'vitest';
import ELK from 'elkjs/lib/elk.bundled.js';
import { buildGraph } from '../../src/domain/topology-graph.js';
import { layoutGraph, type PlacedNode } from '../../src/domain/layout.js';
import { demoRecording } from '../fixture.js';
import { syntheticTopology } from '../synthetic-topology.js';

const engine = new ELK();

function overlaps(a: PlacedNode, b: PlacedNode): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

describe('layoutGraph', () => {
  it('should place every namespace and interface without overlaps, interfaces inside their namespace', async () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    const p = await layoutGraph(buildGraph(topo), engine);
    expect(p.nodes).toHaveLength(4);
    for (const a of p.nodes) {
      for (const b of p.nodes) if (a !== b) expect(overlaps(a, b)).toBe(false);
      for (const i of a.ifaces) {
        expect(i.x).toBeGreaterThanOrEqual(a.x);
        expect(i.y).toBeGreaterThanOrEqual(a.y);
        expect(i.x + i.w).toBeLessThanOrEqual(a.x + a.w + 0.5);
        expect(i.y + i.h).toBeLessThanOrEqual(a.y + a.h + 0.5);
      }
    }
    expect(p.links).toHaveLength(5);
    for (const l of p.links) expect(l.points.length).toBeGreaterThanOrEqual(2);
  });

  it('should keep 60 namespaces readable: packed to the panel shape, nothing overlapping', async () => {
    const topo = syntheticTopology(12, 4);
    expect(topo.namespaces.length).toBeGreaterThanOrEqual(60);
    const p = await layoutGraph(buildGraph(topo), engine, 1.6);
    for (let i = 0; i < p.nodes.length; i++) {
      for (let j = i + 1; j < p.nodes.length; j++) expect(overlaps(p.nodes[i] as PlacedNode, p.nodes[j] as PlacedNode)).toBe(false);
    }
    // Components are packed in rows: the drawing is not one tall column.
    expect(p.width / p.height).toBeGreaterThan(0.8);
    expect(p.width / p.height).toBeLessThan(4);
  });
});
