// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import PacketList from '../../src/ui/PacketList.vue';
import type { PacketRow } from '../../src/worker/protocol.js';

function rows(n: number): PacketRow[] {
  return Array.from({ length: n }, (_, i) => ({
    n: i, id: `p${i}`, t: 1_000_000 + i * 1000, proto: i % 2 ? 'udp' : 'tcp', family: 4 as const,
    src: '10.244.1.11', dst: '10.99.0.2', sport: 40000 + (i % 1000), dport: 7000,
    path: [1, 2, 3], pathNames: ['pod1', 'node', 'ext'], hops: 7, latencyNs: 120_000,
    fate: i % 10 === 0 ? 'dropped' as const : 'delivered' as const, dropReason: i % 10 === 0 ? 'NETFILTER_DROP' : null,
    nat: i % 3 === 0 ? 'snat' as const : null, clone: false,
  }));
}

function mountList(list: PacketRow[], selectedId: string | null = null) {
  return mount(PacketList, {
    props: { rows: list, version: 1, selectedId, follow: false, nsName: (n: number, f: string | null) => f ?? String(n), clock: null, originNs: 1_000_000 },
  });
}

describe('PacketList', () => {
  it('should render only the rows in view for 100,000 packets', () => {
    const w = mountList(rows(100_000));
    const shown = w.findAll('[data-testid="packet-row"]');
    expect(shown.length).toBeGreaterThan(10);
    expect(shown.length).toBeLessThan(100);
    expect(w.find('[role="grid"]').attributes('aria-rowcount')).toBe('100000');
  });

  it('should show time, protocol, tuple, namespace path, hops, latency and fate in a row', () => {
    const w = mountList(rows(50));
    const first = w.find('[data-testid="packet-row"]');
    const text = first.text();
    expect(text).toContain('+0.000000');
    expect(text).toContain('tcp');
    expect(text).toContain('10.244.1.11:40000 → 10.99.0.2:7000');
    expect(first.findAll('.chip').map((c) => c.text())).toEqual(['pod1', 'node', 'ext']);
    expect(text).toContain('120 µs');
    expect(text).toContain('dropped');
    expect(first.find('.chip.drop').text()).toBe('ext');
    expect(first.find('.badge.nat').text()).toBe('SNAT');
  });

  it('should move the selection with the arrow keys and clear it with Escape', async () => {
    const list = rows(50);
    const w = mountList(list, 'p5');
    const grid = w.find('[role="grid"]');
    await grid.trigger('keydown', { key: 'ArrowDown' });
    await grid.trigger('keydown', { key: 'k' });
    await grid.trigger('keydown', { key: 'Home' });
    await grid.trigger('keydown', { key: 'Escape' });
    expect(w.emitted('select')?.map((e) => e[0])).toEqual(['p6', 'p4', 'p0', null]);
  });

  it('should select a row on click and stop following the tail when moving up', async () => {
    const w = mount(PacketList, {
      props: { rows: rows(50), version: 1, selectedId: null, follow: true, nsName: () => 'x', clock: null, originNs: 0 },
    });
    const row = w.find('[data-testid="packet-row"]');
    const id = row.attributes('data-id');
    await row.trigger('click');
    expect(w.emitted('select')?.[0]?.[0]).toBe(id);
    // Reading a packet stops the tail from scrolling it away.
    expect(w.emitted('update:follow')?.[0]).toEqual([false]);
    await w.setProps({ follow: false, selectedId: id ?? null });
    await w.find('[role="grid"]').trigger('keydown', { key: 'End' });
    expect(w.emitted('update:follow')?.at(-1)).toEqual([true]);
  });

  it('should label path chips with the short name and keep the full one in the tooltip', () => {
    const full = new Map([[1, 'htdemo-pod1'], [2, 'htdemo-node'], [3, 'htdemo-ext']]);
    const w = mount(PacketList, {
      props: {
        rows: rows(12), version: 1, selectedId: null, follow: false, clock: null, originNs: 0,
        nsName: (n: number) => full.get(n) ?? String(n),
        nsLabel: (n: number) => (full.get(n) ?? String(n)).replace('htdemo-', ''),
      },
    });
    const chips = w.find('[data-testid="packet-row"]').findAll('.chip');
    expect(chips.map((c) => c.text())).toEqual(['pod1', 'node', 'ext']);
    expect(chips.map((c) => c.attributes('title'))).toEqual(['htdemo-pod1', 'htdemo-node', 'htdemo-ext']);
  });

  it('should keep the picked row in place when a packet that started earlier is listed above it', async () => {
    const list = rows(100);
    const w = mountList(list, 'p50');
    const el = w.find('[role="grid"]').element as HTMLElement;
    await w.setProps({ version: 2 });
    // The test DOM lays nothing out: give the scroller a height and a plain scroll position.
    Object.defineProperty(el, 'clientHeight', { configurable: true, value: 480 });
    Object.defineProperty(el, 'scrollTop', { configurable: true, writable: true, value: 40 * 24 });
    // Two packets that started before p50 finish now and are merged in above it.
    const late = rows(2).map((r, i) => ({ ...r, n: 1000 + i, id: `late${i}`, t: (list[10]?.t ?? 0) + 1 }));
    list.splice(11, 0, ...late);
    await w.setProps({ version: 3 });
    expect(el.scrollTop).toBe(42 * 24);
  });
});
