// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import ReplayScrubber from '../../src/ui/ReplayScrubber.vue';
import type { ReplayPosition } from '../../src/worker/protocol.js';
import { REPLAY_SPEEDS } from '../../src/store/dashboard.js';

const T0 = 5_000_000_000_000;
const pos = (over: Partial<ReplayPosition> = {}): ReplayPosition => ({
  t0: T0, t1: T0 + 10e9, cursor: T0 + 2.5e9, playing: false, speed: 1, ended: false, round: 0,
  builtTo: T0 + 10e9, building: false, index: 12, total: 100, loadedFrom: T0 + 1e9, current: null, ...over,
});

function scrubber(position: ReplayPosition | null = pos()) {
  return mount(ReplayScrubber, {
    props: {
      position, histogram: { t0: T0, t1: T0 + 10e9, counts: [0, 3, 10, 1], drops: [0, 0, 2, 0] },
      startMonoNs: T0, startWallMs: Date.UTC(2025, 0, 2, 3, 4, 5, 6) + 0.007, speeds: REPLAY_SPEEDS,
    },
    attachTo: document.body,
  });
}

/** Gives the timeline a size (happy-dom lays nothing out): 1000 px from x = 100. */
function sizeBar(el: Element): void {
  Object.defineProperty(el, 'getBoundingClientRect', {
    value: () => ({ left: 100, right: 1100, width: 1000, top: 0, bottom: 24, height: 24, x: 100, y: 0, toJSON: () => ({}) }),
  });
}

describe('ReplayScrubber', () => {
  it('should show where the playhead is, relative to the start and as the recording host\'s clock', () => {
    const w = scrubber();
    expect(w.find('[data-testid="replay-time"]').text()).toContain('+2.500000 s');
    expect(w.find('[data-testid="replay-time"]').text()).toContain('10.00 s');
    const wall = new Date(Date.UTC(2025, 0, 2, 3, 4, 7, 506));
    const p = (v: number): string => String(v).padStart(2, '0');
    expect(w.find('[data-testid="replay-wall"]').text()).toBe(`2025-01-02 ${p(wall.getHours())}:${p(wall.getMinutes())}:07.506007`);
    expect(w.find('[data-testid="replay-count"]').text()).toContain('12 / 100');
    expect(w.find('[data-testid="playhead"]').attributes('style')).toContain('left: 25.000%');
    // The density strip: three non-empty buckets, one with drops.
    expect(w.findAll('rect.d-all')).toHaveLength(3);
    expect(w.findAll('rect.d-drop')).toHaveLength(1);
    w.unmount();
  });

  it('should ask to play when paused and to pause when playing', async () => {
    const w = scrubber();
    await w.find('[data-testid="play"]').trigger('click');
    expect(w.emitted('play')).toHaveLength(1);
    await w.setProps({ position: pos({ playing: true }) });
    await w.find('[data-testid="play"]').trigger('click');
    expect(w.emitted('pause')).toHaveLength(1);
    expect(w.emitted('play')).toHaveLength(1);
    w.unmount();
  });

  it('should seek to the time under the pointer, and keep seeking while dragged', async () => {
    const w = scrubber();
    const bar = w.find('[data-testid="timeline"]');
    sizeBar(bar.element);
    await bar.trigger('pointerdown', { button: 0, clientX: 600, pointerId: 1 });
    expect(w.emitted('seek')?.[0]).toEqual([T0 + 5e9]);
    await bar.trigger('pointerup', { clientX: 850, pointerId: 1 });
    expect(w.emitted('seek')?.[1]).toEqual([T0 + 7.5e9]);
    // Past the ends: clamped to the recording.
    await bar.trigger('pointerdown', { button: 0, clientX: 5000, pointerId: 1 });
    expect(w.emitted('seek')?.at(-1)).toEqual([T0 + 10e9]);
    await bar.trigger('pointerup', { clientX: 0, pointerId: 1 });
    expect(w.emitted('seek')?.at(-1)).toEqual([T0]);
    w.unmount();
  });

  it('should step to the previous and next packet start, and change speed up to max', async () => {
    const w = scrubber();
    await w.find('[data-testid="step-forward"]').trigger('click');
    await w.find('[data-testid="step-back"]').trigger('click');
    expect(w.emitted('step')).toEqual([[1], [-1]]);
    const sel = w.find('[data-testid="speed"]');
    expect(sel.findAll('option').map((o) => o.text())).toEqual(['0.1×', '0.25×', '0.5×', '1×', '2×', '5×', '10×', '25×', '50×', '100×', 'max']);
    await sel.setValue('25');
    await sel.setValue('Infinity');
    expect(w.emitted('speed')).toEqual([[25], [Number.POSITIVE_INFINITY]]);
    w.unmount();
  });

  it('should shade what is still being rebuilt, and show nothing to act on before the recording is read', async () => {
    const w = scrubber(pos({ building: true, builtTo: T0 + 4e9 }));
    expect(w.find('[data-testid="unbuilt"]').attributes('style')).toContain('left: 40.000%');
    await w.setProps({ position: null });
    expect(w.find('[data-testid="play"]').attributes('disabled')).toBeDefined();
    expect(w.find('[data-testid="playhead"]').exists()).toBe(false);
    w.unmount();
  });
});
