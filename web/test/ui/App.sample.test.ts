// @vitest-environment happy-dom
/**
 * Flow sampling in the dashboard: the new-session popover offers the flows choices and posts
 * `sample`; a sampled live session (its info, its stats messages) is said next to every count —
 * status bar events/s and packets, the packet list's header — and kept in the address bar, so a
 * link whose session is gone starts one sampled the same way; a sampled recording says its rate in
 * the replay view. (The status bar, address bar and library have their own tests.) The live stream is replaced by a fake (no socket here); the
 * replay runs the real ingest host.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import ELK from 'elkjs/lib/elk.bundled.js';
import App from '../../src/App.vue';
import { createDashboard, type Dashboard, type WorkerLike } from '../../src/store/dashboard.js';
import { createIngestHost } from '../../src/worker/ingest-host.js';
import type { FromWorker, ToWorker } from '../../src/worker/protocol.js';
import type { RestClient } from '../../src/api/rest.js';
import type { LiveHandlers } from '../../src/api/live-source.js';
import type { LiveStats, SessionInfo } from '../../src/api/contract.js';
import { formatSampling } from '../../src/domain/format.js';
import { RecordingEncoder } from '../../../shared/recording/index.js';
import { demoRecording } from '../fixture.js';

/** The fake live stream: who subscribed, with the handlers the test drives. */
const live = vi.hoisted(() => ({ subscribed: [] as Array<{ session: string; h: LiveHandlers }> }));
vi.mock('../../src/api/live-source.js', () => ({
  connectLive: (session: string, _token: string | null, h: LiveHandlers) => {
    live.subscribed.push({ session, h });
    h.connection('connected', '');
    return { close: () => undefined };
  },
}));

function session(over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: 'aa11', filter: '', state: 'running', createdAt: '2026-01-01T00:00:00.000Z', watchers: 0, recording: false,
    bpftrace: { pid: 4242, restarts: 0, lastExit: null, sharedBy: 1 }, events: 0, lostKernel: 0, packets: 0, depth: { netfilter: false, notes: false },
    ...over,
  };
}

/** The service as the store sees it: sessions listed, posts recorded and answered with a session. */
function fakeRest(sessions: SessionInfo[]): RestClient & { posts: Array<{ path: string; body: unknown }> } {
  const posts: Array<{ path: string; body: unknown }> = [];
  const answer = (v: unknown, guard: (v: unknown) => boolean): unknown => {
    if (!guard(v)) throw new Error('bad fake answer');
    return v;
  };
  return {
    posts,
    get: async (path, guard) => {
      if (path === '/api/health') return answer({ status: 'ok', version: 't', uptimeS: 1, sessions: 0, bpftraceProcesses: 0, canTrace: true }, guard) as never;
      if (path === '/api/capabilities') return answer({ canTrace: true, problems: [] }, guard) as never;
      if (path === '/api/sessions') return answer({ sessions }, guard) as never;
      if (path === '/api/topology') return answer({ namespaces: [] }, guard) as never;
      throw new Error(`no ${path} here`);
    },
    post: async (path, body, guard) => {
      posts.push({ path, body });
      const b = body as { filter: string; sample?: number };
      return answer(session({ id: `s${posts.length}`, filter: b.filter, ...(b.sample ? { sampleRate: b.sample } : { sampleRate: 1 }) }), guard) as never;
    },
    del: async () => undefined as never,
    bytes: async () => new ArrayBuffer(0),
    upload: async () => { throw new Error('no uploads here'); },
  };
}

function fakeWorker(): WorkerLike {
  return { onmessage: null, postMessage() { /* the live tests need no packets */ }, terminate() { /* nothing runs */ } };
}

/** A worker that runs the real ingest host here, as App.replay.test.ts does. */
function inPageWorker(): WorkerLike {
  const w: WorkerLike = {
    onmessage: null,
    postMessage(msg: ToWorker) {
      const copy = structuredClone(msg);
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
  live.subscribed.length = 0;
  vi.unstubAllGlobals();
});

async function openLive(query: string, sessions: SessionInfo[]) {
  history.replaceState(null, '', `/${query}`);
  const rest = fakeRest(sessions);
  const d = createDashboard({ createWorker: fakeWorker, rest, demoRecordingUrl: '/demo.hoptrace' });
  const w = mount(App, { props: { dash: d, engine: new ELK() }, attachTo: document.body });
  mounted = { w, d };
  d.start();
  await vi.waitFor(() => expect(live.subscribed.length).toBeGreaterThan(0));
  return { w, d, rest };
}

const STATS: LiveStats = {
  session: 'aa11', at: 0, eventsPerSec: 900, sourceLagMs: 1, events: 5000, lostKernel: 0, seq: 3, droppedBatches: 0, queuedBatches: 0,
  bpftrace: { state: 'running', pid: 4242, restarts: 0 },
};

describe('sampling label', () => {
  it('should say nothing for every flow and the rate, unscaled, otherwise', () => {
    expect(formatSampling(1)).toBe('');
    expect(formatSampling(undefined)).toBe('');
    expect(formatSampling(16)).toBe('sampled 1 in 16 flows — counts not scaled');
  });
});

describe('App with live sessions', () => {
  it('should start a session with the flows chosen in the new-session popover, and show its rate wherever counts are', async () => {
    const { w, d, rest } = await openLive('', [session()]);
    expect(live.subscribed[0]?.session).toBe('aa11');
    expect(w.find('[data-testid="packets-sampling"]').exists()).toBe(false);
    expect(location.search).toBe('?session=aa11');

    await w.find('button[title="new session with a kernel-side filter"]').trigger('click');
    const flows = w.find('[data-testid="new-sample"]');
    expect(flows.findAll('option').map((o) => o.text())).toEqual(['all', '1 in 4', '1 in 16', '1 in 64', '1 in 256']);
    await flows.setValue('16');
    await w.find('[data-testid="new-session-start"]').trigger('click');
    await flushPromises();
    expect(rest.posts.at(-1)).toEqual({ path: '/api/sessions', body: { filter: '', sample: 16 } });
    await vi.waitFor(() => expect(live.subscribed.at(-1)?.session).toBe('s1'));
    expect(d.sampleRate.value).toBe(16);
    expect(w.find('[data-testid="packets-sampling"]').text()).toBe('sampled 1 in 16 flows — counts not scaled');
    expect(w.find('[data-testid="status-sampling"]').text()).toBe('sampled 1 in 16 flows — counts not scaled');
    expect(w.find('[data-testid="status-packets-sampling"]').exists()).toBe(true);
    await flushPromises();
    expect(new URLSearchParams(location.search).get('sample')).toBe('16');
  });

  it('should take the rate from stats messages when the session info has none', async () => {
    const { w, d } = await openLive('?session=aa11', [session()]);
    live.subscribed[0]?.h.stats({ ...STATS, sampleRate: 64 });
    await flushPromises();
    expect(d.sampleRate.value).toBe(64);
    expect(w.find('[data-testid="status-sampling"]').text()).toBe('sampled 1 in 64 flows — counts not scaled');
  });

  it('should start a session sampled as the link says when the link\'s session is gone, not reuse one of every flow', async () => {
    const { rest, d } = await openLive('?session=gone1&sample=16', [session(), session({ id: 'bb22', sampleRate: 4 })]);
    expect(rest.posts).toEqual([{ path: '/api/sessions', body: { filter: '', sample: 16 } }]);
    expect(d.state.session?.sampleRate).toBe(16);
  });

  it('should reuse an open session of the rate the link asks for', async () => {
    const { rest } = await openLive('?sample=4', [session(), session({ id: 'bb22', sampleRate: 4 })]);
    expect(rest.posts).toEqual([]);
    expect(live.subscribed[0]?.session).toBe('bb22');
  });
});

describe('a sampled recording', () => {
  /** The demo recording written again with a header that says 1 in 16 flows. */
  function sampledDemo(): Uint8Array {
    const demo = demoRecording();
    const enc = new RecordingEncoder({ ...demo.header, sampleRate: 16 });
    enc.topology({ t: demo.header.startMonoNs, snapshot: true, namespaces: [...demo.names].map(([netns, name]) => ({ netns, name })), model: demo.topology, removed: [] });
    for (const ev of demo.fileEvents) enc.event(ev);
    const last = demo.events.at(-1)?.t ?? demo.header.startMonoNs;
    enc.end({ t: last + 1000, wallNs: demo.header.startWallNs, packets: 0, reason: 'duration' });
    return enc.take();
  }

  it('should show its rate in the replay view, the packet list header and the status bar', async () => {
    history.replaceState(null, '', '/?replay=demo&loop=0&speed=max');
    const bytes = sampledDemo();
    vi.stubGlobal('fetch', async (url: string) => (url === '/demo.hoptrace'
      ? new Response(bytes.slice())
      : new Response(JSON.stringify({ error: { code: 'unavailable', message: 'no service here' } }), { status: 503 })));
    const d = createDashboard({ createWorker: inPageWorker, demoRecordingUrl: '/demo.hoptrace' });
    const w = mount(App, { props: { dash: d, engine: new ELK() }, attachTo: document.body });
    mounted = { w, d };
    d.start();
    await vi.waitFor(() => expect(d.state.recordingInfo?.sampleRate).toBe(16), { timeout: 5000 });
    await vi.waitFor(() => expect(d.rows.value.length).toBeGreaterThan(0), { timeout: 5000 });
    expect(w.find('[data-testid="replay-sampling"]').text()).toBe('· 1 in 16 flows');
    expect(w.find('[data-testid="packets-sampling"]').text()).toBe('sampled 1 in 16 flows — counts not scaled');
    expect(w.find('[data-testid="status-sampling"]').text()).toBe('sampled 1 in 16 flows — counts not scaled');
  });
});
