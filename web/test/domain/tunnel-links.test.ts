import { describe, expect, it } from 'vitest';
import { tunnelLabel, tunnelLinks } from '../../src/domain/tunnel-links.js';
import { buildGraph } from '../../src/domain/topology-graph.js';
import { overlayLab, topologyOf } from '../overlay-fixture.js';

describe('tunnel links', () => {
  it('should link the two vxlan devices once, through the static remotes both name', () => {
    const lab = overlayLab(100, 'a');
    const links = tunnelLinks(topologyOf(lab));
    expect(links).toHaveLength(1);
    expect(links[0]).toMatchObject({ type: 'vxlan', vni: 42, dstport: 4789, label: 'vxlan vni 42 · udp 4789' });
    expect([links[0]?.from, links[0]?.to].map((r) => r?.netns).sort()).toEqual([lab.netns.n1, lab.netns.n2]);
    expect(links[0]?.from.ifindex).toBe(5);
  });

  it('should follow flannel\'s per-peer FDB entries when the device has no remote', () => {
    const lab = overlayLab(100, 'f', { flannel: true });
    expect(lab.namespaces[0]?.interfaces.find((i) => i.name === 'vx0')?.tunnel?.remote).toBeNull();
    const links = tunnelLinks(topologyOf(lab));
    expect(links).toHaveLength(1);
    expect(links[0]?.to).not.toBeNull();
  });

  it('should find the far end in the lab joined to this one by veths when another lab uses the same underlay addresses', () => {
    const a = overlayLab(100, 'a');
    const b = overlayLab(200, 'b');
    const links = tunnelLinks(topologyOf(a, b));
    expect(links).toHaveLength(2);
    for (const l of links) expect(Math.floor((l.to?.netns ?? 0) / 100)).toBe(Math.floor(l.from.netns / 100));
  });

  it('should leave a dangling end with the remote address when no namespace owns it, or its owner has no tunnel device', () => {
    const lab = overlayLab(100, 'd', { remote1: '10.77.0.9' });
    const links = tunnelLinks(topologyOf(lab));
    const dangling = links.filter((l) => l.to === null);
    expect(dangling.map((l) => l.remote)).toEqual(['10.77.0.9']);
    expect(dangling[0]?.remoteOwner).toBeNull();
    // node2 still names node1, whose device matches: that link stays.
    expect(links.filter((l) => l.to !== null)).toHaveLength(1);
    // The pod owns 10.42.1.10 but has no tunnel device: a dangling end naming its owner.
    const toPod = overlayLab(100, 'e', { remote1: '10.42.2.10' });
    const l = tunnelLinks(topologyOf(toPod)).find((x) => x.remote === '10.42.2.10');
    expect(l).toMatchObject({ to: null, remoteOwner: 'e-p2' });
  });

  it('should label kinds without VNI or port by their kind alone', () => {
    expect(tunnelLabel({ type: 'ipip', vni: null, dstport: null })).toBe('ipip');
    expect(tunnelLabel({ type: 'geneve', vni: 7, dstport: 6081 })).toBe('geneve vni 7 · udp 6081');
  });
});

describe('tunnels in the drawn graph', () => {
  it('should draw a tunnel link between the two vx0 boxes, next to the underlay veth, with the underlay addresses', () => {
    const lab = overlayLab(100, 'a');
    const g = buildGraph(topologyOf(lab));
    const t = g.links.filter((l) => l.kind === 'tunnel');
    expect(t).toHaveLength(1);
    expect([t[0]?.from, t[0]?.to].sort()).toEqual([`if:${lab.netns.n1}:5`, `if:${lab.netns.n2}:5`]);
    expect(t[0]?.label).toBe('vxlan vni 42 · udp 4789');
    expect(t[0]?.detail).toMatch(/^10\.77\.0\.[12] → 10\.77\.0\.[12]$/);
    expect(g.links.filter((l) => l.kind === 'veth')).toHaveLength(3);
  });

  it('should draw a dangling end as a remote box holding the address', () => {
    const lab = overlayLab(100, 'd', { remote1: '10.77.0.9' });
    const g = buildGraph(topologyOf(lab));
    const remote = g.nodes.find((n) => n.type === 'remote');
    expect(remote).toMatchObject({ type: 'remote', addr: '10.77.0.9', label: '10.77.0.9' });
    const l = g.links.find((x) => x.to === remote?.id);
    expect(l).toMatchObject({ kind: 'tunnel', from: `if:${lab.netns.n1}:5`, label: 'vxlan vni 42 · udp 4789' });
  });

  it('should attach a tunnel to the namespace box when its namespace is collapsed', () => {
    const lab = overlayLab(100, 'c');
    const g = buildGraph(topologyOf(lab), { collapsed: new Set([lab.netns.n1]) });
    const t = g.links.find((l) => l.kind === 'tunnel');
    expect([t?.from, t?.to]).toContain(`ns:${lab.netns.n1}`);
  });
});

describe('tunnel labels in the layout', () => {
  it('should keep room for the tunnel\'s label between the layers, clear of every box', async () => {
    const { default: ELK } = await import('elkjs/lib/elk.bundled.js');
    const { layoutGraph, linkLabelSize } = await import('../../src/domain/layout.js');
    const lab = overlayLab(100, 'a');
    const placed = await layoutGraph(buildGraph(topologyOf(lab)), new ELK());
    const t = placed.links.find((l) => l.link.kind === 'tunnel');
    expect(t?.labelAt).toBeDefined();
    const size = linkLabelSize(t?.link.label ?? '');
    const pill = { x0: (t?.labelAt?.x ?? 0) - size.w / 2, x1: (t?.labelAt?.x ?? 0) + size.w / 2, y0: (t?.labelAt?.y ?? 0) - size.h / 2, y1: (t?.labelAt?.y ?? 0) + size.h / 2 };
    for (const n of placed.nodes) {
      for (const i of n.ifaces) {
        const overlaps = pill.x0 < i.x + i.w && i.x < pill.x1 && pill.y0 < i.y + i.h && i.y < pill.y1;
        expect(overlaps, `${t?.link.label} over ${i.iface.name} of ${n.node.id}`).toBe(false);
      }
    }
  });
});
