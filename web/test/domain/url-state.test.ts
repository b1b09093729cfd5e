import { describe, expect, it } from 'vitest';
import { formatUrlState, parseUrlState, type UrlState } from '../../src/domain/url-state.js';

describe('url state', () => {
  it('should round-trip session, filter, facet and packet through the query string', () => {
    const states: UrlState[] = [
      { session: 'ab12', replay: null, recording: null, filter: 'udp and port 53', facet: { kind: 'ns', netns: 4026531840 }, packet: 'hc-ffff1' },
      { session: null, replay: 'demo', recording: null, filter: '', facet: { kind: 'iface', netns: 7, ifindex: 3 }, packet: null },
      { session: 'x', replay: null, recording: null, filter: 'host fd00::1', facet: { kind: 'link', a: { netns: 1, ifindex: 2 }, b: { netns: 3, ifindex: 4 } }, packet: null },
      { session: null, replay: null, recording: null, filter: '', facet: null, packet: null },
      { session: null, replay: null, recording: 'before-fix.2024', filter: 'udp', facet: null, packet: 'a-1' },
    ];
    for (const s of states) expect(parseUrlState(formatUrlState(s))).toEqual(s);
  });

  it('should ignore a malformed session id or facet rather than trust it', () => {
    const s = parseUrlState('?session=../../etc&ns=abc&link=1:2&recording=../secret');
    expect(s.session).toBeNull();
    expect(s.recording).toBeNull();
    expect(s.facet).toBeNull();
  });

  it('should round-trip a flow-sampling rate and leave it out for every flow', () => {
    expect(formatUrlState({ session: 'ab', replay: null, recording: null, filter: '', facet: null, packet: null, sample: 16 })).toBe('?session=ab&sample=16');
    expect(parseUrlState('?session=ab&sample=16').sample).toBe(16);
    expect(formatUrlState({ session: 'ab', replay: null, recording: null, filter: '', facet: null, packet: null, sample: 1 })).toBe('?session=ab');
  });

  it.each(['0', '1', '65537', '4x', '-4', '1e3'])('should ignore sample=%s', (v) => {
    expect(parseUrlState(`?sample=${v}`).sample).toBeUndefined();
  });
});
