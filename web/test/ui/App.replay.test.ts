// @vitest-environment happy-dom
/**
 * The dashboard replaying the demo recording with the real ingest host (engine and replay player)
 * running in the page's thread: the scrubber's buttons and keys become the worker messages the
 * player acts on, and the packet list follows.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { readFileSync } from 'node:fs';
import ELK from 'elkjs/lib/elk.bundled.js';
import App from '../../src/App.vue';
import { createDashboard, type Dashboard, type WorkerLike } from '../../src/store/dashboard.js';
import { createIngestHost } from '../../src/worker/ingest-host.js';
import type { FromWorker, ReplayControl, ToWorker } from '../../src/worker/protocol.js';
import { FIXTURE_PATH } from '../fixture.js';

/** A worker that runs the real ingest host here; messages are cloned as postMessage would. */
function inPageWorker(): WorkerLike & { sent: ToWorker[] } {
  const w: WorkerLike & { sent: ToWorker[] } = {
    sent: [],
    onmessage: null,
    postMessage(msg: ToWorker) {
      const copy = structuredClone(msg);
      w.sent.push(copy);
      setTimeout(() => host.onMessage(copy), 0);
    },
    terminate() {
      host.dispose();
    },
  };
  const host = createIngestHost((m: FromWorker) => {
    const copy = structuredClone(m);
    setTimeout(() => w.onmessage?.({ data: copy } as MessageEvent<FromWorker>), 0);
  });
  return w;
}

let mounted: { w: VueWrapper; d: Dashboard } | null = null;
afterEach(() => {
  mounted?.w.unmount();
  mounted?.d.stop();
  mounted = null;
  vi.unstubAllGlobals();
});

async function open(query: string): Promise<{ w: VueWrapper; d: Dashboard; worker: ReturnType<typeof inPageWorker> }> {
  history.replaceState(null, '', `/${query}`);
  const bytes = readFileSync(FIXTURE_PATH);
  vi.stubGlobal('fetch', async (url: string) => (url === '/demo.hoptrace'
    ? new Response(new Uint8Array(bytes))
    : new Response(JSON.stringify({ error: { code: 'unavailable', message: 'no service here' } }), { status: 503 })));
  const worker = inPageWorker();
  const d = createDashboard({ createWorker: () => worker, demoRecordingUrl: '/demo.hoptrace' });
  const w = mount(App, { props: { dash: d, engine: new ELK() }, attachTo: document.body });
  mounted = { w, d };
  d.start();
  await vi.waitFor(() => expect(d.state.replay?.building).toBe(false), { timeout: 5000 });
  return { w, d, worker };
}

const controls = (worker: { sent: ToWorker[] }): ReplayControl[] =>
  worker.sent.flatMap((m) => (m.type === 'replay-control' ? [m.control] : []));

function key(k: string): void {
  window.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true }));
}

describe('App replaying a recording', () => {
  it('should play, pause, seek and step through the worker, the list following the playhead', async () => {
    const { w, d, worker } = await open('?replay=demo&loop=0&paused=1');
    const replay = worker.sent.find((m) => m.type === 'replay');
    expect(replay).toMatchObject({ paused: true, loop: false, speed: 1 });
    expect(d.rows.value).toHaveLength(0);
    const r0 = d.state.replay;
    if (!r0) throw new Error('no position');

    // Seek: a click in the middle of the timeline.
    const bar = w.find('[data-testid="timeline"]');
    Object.defineProperty(bar.element, 'getBoundingClientRect', { value: () => ({ left: 0, width: 1000, right: 1000, top: 0, bottom: 20, height: 20 }) });
    await bar.trigger('pointerdown', { button: 0, clientX: 500, pointerId: 1 });
    const mid = r0.t0 + Math.round((r0.t1 - r0.t0) / 2);
    expect(controls(worker).at(-1)).toEqual({ op: 'seek', t: mid });
    await vi.waitFor(() => expect(d.state.replay?.cursor).toBe(mid));
    await vi.waitFor(() => expect(d.rows.value.length).toBe(d.state.replay?.index));
    const atMid = d.rows.value.length;
    expect(atMid).toBeGreaterThan(0);
    expect(d.rows.value.every((r) => r.t <= mid)).toBe(true);
    const timeAtMid = w.find('[data-testid="replay-time"]').text();

    // Step forward ('.'): one more packet, the newest, selected and shown.
    key('.');
    expect(controls(worker).at(-1)).toEqual({ op: 'step', dir: 1 });
    await vi.waitFor(() => expect(d.rows.value.length).toBe(atMid + 1));
    const newest = d.rows.value[d.rows.value.length - 1];
    expect(newest && newest.t > mid).toBe(true);
    expect(d.state.replay?.cursor).toBe(newest?.t);
    await vi.waitFor(() => expect(d.state.selectedId).toBe(newest?.id));
    await vi.waitFor(() => expect(w.find('[data-testid="hop-timeline"]').exists()).toBe(true));
    await flushPromises();
    expect(w.find('[data-testid="replay-time"]').text()).not.toBe(timeAtMid);

    // And back (','): the packet leaves the list again.
    await w.find('[data-testid="step-back"]').trigger('click');
    expect(controls(worker).at(-1)).toEqual({ op: 'step', dir: -1 });
    await vi.waitFor(() => expect(d.rows.value.length).toBe(atMid));
    expect(d.rows.value.some((r) => r.id === newest?.id)).toBe(false);

    // Play (space) at 10× (']' from 5×... set it directly), then pause with the button.
    await w.find('[data-testid="speed"]').setValue('10');
    expect(controls(worker).at(-1)).toEqual({ op: 'speed', speed: 10 });
    key(' ');
    expect(controls(worker).at(-1)).toEqual({ op: 'play' });
    const before = d.state.replay?.cursor ?? 0;
    await vi.waitFor(() => expect(d.state.replay?.playing).toBe(true));
    await vi.waitFor(() => expect((d.state.replay?.cursor ?? 0) - before).toBeGreaterThan(1e9), { timeout: 3000 });
    await w.find('[data-testid="play"]').trigger('click');
    expect(controls(worker).at(-1)).toEqual({ op: 'pause' });
    await vi.waitFor(() => expect(d.state.replay?.playing).toBe(false));
    const held = d.state.replay?.cursor;
    await new Promise((r) => setTimeout(r, 300));
    expect(d.state.replay?.cursor).toBe(held);
    await vi.waitFor(() => expect(d.rows.value.length).toBe(d.state.replay?.index));

    // Keys: ']' faster, '[' slower, ← / → one second.
    key(']');
    expect(controls(worker).at(-1)).toEqual({ op: 'speed', speed: 25 });
    key('[');
    expect(controls(worker).at(-1)).toEqual({ op: 'speed', speed: 5 });
    const c = d.state.replay?.cursor ?? 0;
    key('ArrowLeft');
    expect(controls(worker).at(-1)).toEqual({ op: 'seek', t: Math.max(r0.t0, c - 1e9) });
  });

  it('should finish a max-speed replay with every packet listed', async () => {
    const { d } = await open('?replay=demo&loop=0&speed=max');
    await vi.waitFor(() => expect(d.state.replayDone).toBe(true), { timeout: 5000 });
    await vi.waitFor(() => expect(d.rows.value.length).toBe(d.state.replay?.total));
    expect(d.state.replay?.cursor).toBe(d.state.replay?.t1);
  });
});
