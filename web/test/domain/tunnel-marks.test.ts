import { describe, expect, it } from 'vitest';
import { decapText, encapText, outerText, pathTunnel, tunnelName } from '../../src/domain/tunnel-marks.js';
import { toRow } from '../../src/worker/ingest-core.js';
import { overlayPacket } from '../overlay-fixture.js';

const N = { n1: 100, n2: 101, p1: 102, p2: 103 };

describe('tunnel marks', () => {
  it('should name encap, decap and the outer headers in the words users know', () => {
    const p = overlayPacket(N, 'a');
    const enc = p.hops.find((h) => h.encap)?.encap;
    if (!enc) throw new Error('no encap');
    expect(encapText(enc)).toBe('encap vxlan vni 42');
    expect(decapText(enc)).toBe('decap vxlan vni 42');
    expect(outerText(enc.outer)).toBe('10.77.0.1:35707 → 10.77.0.2:4789 udp');
    expect(outerText({ family: 4, proto: 4, src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0 })).toBe('10.0.0.1 → 10.0.0.2 ipip');
    expect(tunnelName({ type: 'unknown', vni: null })).toBe('encapsulated (unknown kind)');
  });

  it('should put the tunnel between the two nodes on the packet\'s path, for the list\'s chips', () => {
    const p = overlayPacket(N, 'a');
    const row = toRow(1, p);
    expect(row.path).toEqual([N.p1, N.n1, N.n2, N.p2]);
    expect(row.tunnel).toEqual({ name: 'vxlan vni 42', from: 1, to: 2 });
  });

  it('should run the tunnel to the end of the path when the packet never came out, and leave packets without one alone', () => {
    const p = overlayPacket(N, 'a');
    const cut = p.hops.slice(0, 6);
    const pathOf = [0, 1, 1, 1, 1, 2];
    expect(pathTunnel(cut, pathOf)).toEqual({ name: 'vxlan vni 42', from: 1, to: 2 });
    const plain = p.hops.slice(0, 3).map(({ encap: _e, outer: _o, decap: _d, ...h }) => h);
    expect(pathTunnel(plain, [0, 1, 1])).toBeNull();
    expect(toRow(1, { ...p, hops: plain }).tunnel).toBeUndefined();
  });
});
