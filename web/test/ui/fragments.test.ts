// @vitest-environment happy-dom
/**
 * A datagram sent as IP fragments in the hop table: each hop of a fragment says which one
 * (`fragment` on the hop, shared/reconstruct.ts). The packet is rebuilt by the real engine from
 * the lab's real events (test/shared/fixtures/own-fragments.ndjson).
 */
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import fixture from '../../../test/shared/fixtures/own-fragments.ndjson?raw';
import PacketDetail from '../../src/ui/PacketDetail.vue';
import type { HopEvent } from '../../../shared/hop-event.js';
import { reconstructAll } from '../../../shared/reconstruct.js';

const nsName = (n: number, f: string | null): string => f ?? `netns:${n}`;

describe('fragments in the hop table', () => {
  it('should mark each hop of a fragment with its number, and leave the whole datagram\'s unmarked', () => {
    const events = fixture.trim().split('\n').map((l) => JSON.parse(l) as HopEvent);
    const p = reconstructAll(events).find((x) => x.dport === 7000);
    expect(p).toBeDefined();
    if (!p) return;
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: null, nsName } });
    const rows = w.findAll('[data-testid="hop-row"]');
    expect(rows).toHaveLength(p.hops.length);
    const marks = rows.map((r) => r.find('[data-testid="row-fragment"]')).map((m) => (m.exists() ? m.text() : '-'));
    expect(marks).toEqual(p.hops.map((h) => (h.fragment === undefined ? '-' : `fragment ${h.fragment}`)));
    expect(new Set(marks)).toEqual(new Set(['fragment 1', 'fragment 2', 'fragment 3', '-']));
  });
});
