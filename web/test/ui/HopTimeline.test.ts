// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import HopTimeline from '../../src/ui/HopTimeline.vue';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { demoNetns, demoRecording } from '../fixture.js';

function packets() {
  const rec = demoRecording();
  return reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null, dropReason: (c) => rec.header.dropReasons.get(c) ?? `reason-${c}` });
}
const nsName = (n: number, f: string | null): string => f ?? `netns:${n}`;

describe('HopTimeline', () => {
  it('should draw every hop in its namespace lane with the DNAT rewrite as before → after', () => {
    const p = packets().find((x) => x.hops[0]?.netns === demoNetns('ext') && x.hops.some((h) => h.nat?.kind === 'dnat'));
    if (!p) throw new Error('no DNAT packet');
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'compressed' } });
    const hops = w.findAll('[data-testid="hop"]');
    expect(hops).toHaveLength(p.hops.length);
    expect(new Set(hops.map((h) => h.attributes('data-ns')))).toEqual(new Set(['demo-ext', 'demo-node', 'demo-pod2']));
    expect(w.findAll('.lane-label').map((l) => l.text())).toEqual(['demo-ext', 'demo-node', 'demo-pod2']);
    const nat = w.find('[data-nat="dnat"] .nat-note').text();
    expect(nat).toMatch(/^DNAT dst 10\.99\.0\.1:8080 → 10\.244\.1\.12:80$/);
    // Δt labels on the connectors.
    expect(w.findAll('.dt').length).toBeGreaterThan(0);
    expect(w.find('.dt').text()).toMatch(/(ns|µs|ms)$/);
  });

  it('should mark the drop with the kernel reason', () => {
    const p = packets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p) throw new Error('no dropped packet');
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'linear' } });
    const drop = w.find('[data-event="drop"]');
    expect(drop.exists()).toBe(true);
    expect(drop.find('.drop-note').text()).toBe('NETFILTER_DROP');
    expect(drop.attributes('data-ns')).toBe('demo-node');
  });

  it('should tell which hop was clicked', async () => {
    const p = packets()[0];
    if (!p) throw new Error('empty fixture');
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'compressed' } });
    await w.findAll('[data-testid="hop"]')[0]?.trigger('click');
    expect(w.emitted('hop')?.[0]).toEqual([0]);
  });
});
