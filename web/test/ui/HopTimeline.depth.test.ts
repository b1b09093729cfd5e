// @vitest-environment happy-dom
/**
 * The packet detail with depth: netfilter steps and notes at the hop they follow. The packet is
 * rebuilt the way the ingest worker rebuilds it (shared engine + NetfilterStepsQueue) from the demo
 * fixture's events plus a note and the FORWARD drop step of its dropped packet.
 */
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import HopTimeline from '../../src/ui/HopTimeline.vue';
import PacketDetail from '../../src/ui/PacketDetail.vue';
import type { Packet } from '../../../shared/packet.js';
import { Reconstructor } from '../../../shared/reconstruct.js';
import { NetfilterStepsQueue } from '../../../shared/netfilter/steps-queue.js';
import { demoRecording } from '../fixture.js';
import { droppedPacketDepth } from '../depth-fixture.js';

function droppedWithDepth(): Packet {
  const rec = demoRecording();
  const fx = droppedPacketDepth();
  const engine = new Reconstructor({ nsName: (n) => rec.names.get(n) ?? null, dropReason: (c) => rec.header.dropReasons.get(c) ?? `reason-${c}` });
  const queue = new NetfilterStepsQueue();
  engine.pushNote(fx.note);
  for (const s of fx.steps) queue.add(s);
  for (const ev of fx.events) engine.push(ev);
  const p = queue.flush(engine.flush()).find((x) => x.id === fx.packetId);
  if (!p) throw new Error('the dropped packet was not rebuilt');
  return p;
}

const nsName = (n: number, f: string | null): string => f ?? `netns:${n}`;

describe('HopTimeline with depth', () => {
  it('should show the netfilter drop step and the note after the hop they follow', () => {
    const p = droppedWithDepth();
    const step = p.netfilter?.[0];
    const note = p.notes?.[0];
    expect(step?.chain).toBe('FORWARD');
    expect(note?.kind).toBe('fib');
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'compressed' } });

    // The step, with hook, table and chain, the rule text and the verdict, under the hop it follows.
    const stepEl = w.find('[data-testid="depth-step"]');
    expect(stepEl.attributes('data-hook')).toBe('forward');
    expect(stepEl.attributes('data-chain')).toBe('ip filter FORWARD');
    expect(stepEl.attributes('data-verdict')).toBe('drop');
    expect(stepEl.find('.rule-text').text()).toBe("'udp dport 9999 counter drop'");
    expect(stepEl.find('.verdict').text()).toBe('→ drop');
    expect(stepEl.classes()).toContain('tone-drop');
    const stepGroup = w.findAll('.depth-group').find((g) => g.find('[data-testid="depth-step"]').exists());
    expect(Number(stepGroup?.attributes('data-after-hop'))).toBe(step?.afterHop);
    const hop = p.hops[step?.afterHop ?? -1];
    expect(stepGroup?.find('.depth-where').text()).toBe(`after #${(step?.afterHop ?? 0) + 1} ${hop?.event} ${hop?.ifname} in demo-node`);

    // The note, in its words (shared/format.ts describeNote), at its hop.
    const noteEl = w.find('[data-testid="depth-note"]');
    expect(noteEl.attributes('data-kind')).toBe('fib');
    expect(noteEl.text()).toContain(`route ${p.dst}: table main → dev eth-node`);
    const noteGroup = w.findAll('.depth-group').find((g) => g.find('[data-testid="depth-note"]').exists());
    expect(Number(noteGroup?.attributes('data-after-hop'))).toBe(note?.afterHop);

    // The hop they follow wears the badge, red for a drop.
    const badged = w.findAll('[data-testid="hop"]').filter((h) => h.find('[data-testid="hop-depth"]').exists());
    expect(badged.map((h) => Number(h.attributes('data-index')))).toEqual([...new Set([step?.afterHop, note?.afterHop])].sort());
    expect(badged.some((h) => h.find('[data-testid="hop-depth"]').classes().includes('tone-drop'))).toBe(true);
  });

  it('should show nothing extra for a packet without depth', () => {
    const p = { ...droppedWithDepth(), netfilter: undefined, notes: undefined };
    const w = mount(HopTimeline, { props: { packet: p, nsName, scale: 'compressed' } });
    expect(w.find('[data-testid="depth-list"]').exists()).toBe(false);
    expect(w.find('[data-testid="hop-depth"]').exists()).toBe(false);
  });

  it('should name the dropping rule in the packet detail', () => {
    const p = droppedWithDepth();
    const w = mount(PacketDetail, { props: { detail: { n: 1, packet: p }, expected: null, nsName } });
    expect(w.find('[data-testid="drop-rule"]').text()).toBe("by rule 'udp dport 9999 counter drop' in ip filter FORWARD (forward) in demo-node");
    expect(w.find('[data-testid="nat-rules"]').exists()).toBe(false);
  });
});
