import { describe, expect, it } from 'vitest';
import { depthSubject, hopsSubject, parseSessionRequest, parseSubject, checkNodeName } from '../../../shared/cluster/subjects.js';

describe('bus subjects', () => {
  it('names a node\'s subjects and reads them back', () => {
    expect(hopsSubject('node-1')).toBe('hoptrace.node-1.hops');
    expect(parseSubject('hoptrace.node-1.hops')).toEqual({ node: 'node-1', kind: 'hops' });
    expect(parseSubject('hoptrace.n_2.topology')).toEqual({ node: 'n_2', kind: 'topology' });
    expect(depthSubject('node-1')).toBe('hoptrace.node-1.depth');
    expect(parseSubject('hoptrace.node-1.depth')).toEqual({ node: 'node-1', kind: 'depth' });
  });

  it('refuses node names that are not one subject token, and foreign subjects', () => {
    for (const bad of ['a.b', 'a*', '>', '', 'a b', 'x'.repeat(65)]) expect(() => checkNodeName(bad)).toThrow(/node name/);
    for (const s of ['hoptrace.a.b.hops', 'other.node.hops', 'hoptrace.node.control', 'hoptrace.bad$name.hops', 'hoptrace.node']) expect(parseSubject(s)).toBeNull();
  });

  it('validates session requests', () => {
    expect(parseSessionRequest({ op: 'start', session: 'hub', filter: 'udp', sample: 4, leaseMs: 30000 })).toEqual({ op: 'start', session: 'hub', filter: 'udp', sample: 4, leaseMs: 30000 });
    expect(parseSessionRequest({ op: 'start', session: 'a1', notes: true, netfilter: false })).toEqual({ op: 'start', session: 'a1', notes: true });
    expect(parseSessionRequest({ op: 'start', session: 'a1', netfilter: 'yes' })).toMatch(/netfilter must be true or false/);
    expect(parseSessionRequest(null)).toMatch(/object/);
    expect(parseSessionRequest({ op: 'rm', session: 'x' })).toMatch(/op/);
    expect(parseSessionRequest({ op: 'start', session: 'a.b' })).toMatch(/session/);
    expect(parseSessionRequest({ op: 'start', session: 'a', sample: 0 })).toMatch(/sample/);
    expect(parseSessionRequest({ op: 'start', session: 'a', filter: 'x'.repeat(5000) })).toMatch(/filter/);
    expect(parseSessionRequest({ op: 'start', session: 'a', leaseMs: 10 })).toMatch(/leaseMs/);
  });
});
