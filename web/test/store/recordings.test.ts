// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mount } from '@vue/test-utils';
import { createRecordings, type RecordingNotice } from '../../src/store/recordings.js';
import { restClient } from '../../src/api/rest.js';
import type { RecordingStatus } from '../../src/api/contract.js';
import StatusBar from '../../src/ui/StatusBar.vue';

const status = (over: Partial<RecordingStatus> = {}): RecordingStatus => ({
  name: 'r1', session: 's1', startedAt: '2025-01-01T00:00:00.000Z', running: true, elapsedMs: 1200, events: 10, packets: 2, lost: 0,
  bytes: 2048, gaps: 0, error: null, endReason: null, ...over,
});

interface Call { method: string; url: string; body: string | null; auth: string | null }

function service(): { calls: Call[]; session: { recordingStatus: RecordingStatus | null } } {
  const calls: Call[] = [];
  const session = { recordingStatus: null as RecordingStatus | null };
  const json = (s: number, b: unknown): Response => new Response(JSON.stringify(b), { status: s });
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    calls.push({ method, url, body: typeof init.body === 'string' ? init.body : null, auth: new Headers(init.headers).get('authorization') });
    if (url === '/api/sessions/s1/recording' && method === 'POST') {
      const body = JSON.parse(String(init.body)) as { name?: string };
      if (body.name === 'taken') return json(409, { error: { code: 'conflict', message: "a recording named 'taken' already exists" } });
      session.recordingStatus = status({ name: body.name ?? 's1-20250101-000000' });
      return json(201, session.recordingStatus);
    }
    if (url === '/api/sessions/s1/recording' && method === 'DELETE') {
      const r = session.recordingStatus;
      if (!r) return json(404, { error: { code: 'not-found', message: 'session s1 is not recording' } });
      session.recordingStatus = { ...r, running: false, endReason: 'stopped by a client' };
      return json(200, {
        name: r.name, file: `${r.name}.hoptrace`, startedAt: r.startedAt, durationS: 3.2, events: 321, packets: 40, lost: 0, sizeBytes: 45_000,
        filter: '', host: 'h', kernel: 'k', complete: true, endReason: 'stopped by a client', recording: false,
      });
    }
    if (url === '/api/sessions/s1') {
      return json(200, { id: 's1', filter: '', state: 'running', createdAt: '', watchers: 1, recording: !!session.recordingStatus?.running, recordingStatus: session.recordingStatus, bpftrace: { pid: 1, restarts: 0 } });
    }
    return json(404, { error: { code: 'not-found', message: 'no' } });
  });
  return { calls, session };
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('recording the live session', () => {
  it('should start with a name, follow its progress, and stop with the saved file\'s numbers', async () => {
    vi.useFakeTimers();
    const svc = service();
    const notices: RecordingNotice[] = [];
    const rec = createRecordings(restClient(() => 'tok'), (n) => notices.push(n));
    rec.follow('s1', null);
    await rec.start('before-fix');
    expect(svc.calls[0]).toMatchObject({ method: 'POST', url: '/api/sessions/s1/recording', body: '{"name":"before-fix"}', auth: 'Bearer tok' });
    expect(rec.live.status).toMatchObject({ name: 'before-fix', running: true });

    // While it runs, its numbers are refreshed from the session.
    svc.session.recordingStatus = status({ name: 'before-fix', events: 999, bytes: 123_456, elapsedMs: 2500 });
    await vi.advanceTimersByTimeAsync(1100);
    expect(svc.calls.some((c) => c.url === '/api/sessions/s1')).toBe(true);
    expect(rec.live.status).toMatchObject({ events: 999, bytes: 123_456 });

    const w = mount(StatusBar, {
      props: { connection: 'connected', detail: '', session: null, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false, recording: rec.live.status },
    });
    expect(w.find('[data-testid="status-recording"]').text()).toMatch(/REC before-fix.*999 events · 123 kB · 0:02/);

    const entry = await rec.stop();
    expect(entry?.name).toBe('before-fix');
    expect(svc.calls.at(-1)).toMatchObject({ method: 'DELETE', url: '/api/sessions/s1/recording' });
    expect(rec.live.status?.running).toBe(false);
    expect(notices.at(-1)).toMatchObject({ kind: 'info', title: "Recording 'before-fix' saved" });
    expect(notices.at(-1)?.body).toContain('321 events');
    await w.setProps({ recording: rec.live.status });
    expect(w.find('[data-testid="status-recording"]').exists()).toBe(false);
    // Not running: no more polling.
    const n = svc.calls.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(svc.calls.length).toBe(n);
  });

  it('should let the server pick the name, and say why a start is refused', async () => {
    const svc = service();
    const notices: RecordingNotice[] = [];
    const rec = createRecordings(restClient(() => null), (n) => notices.push(n));
    rec.follow('s1', null);
    await rec.start('taken');
    expect(rec.live.status).toBeNull();
    expect(rec.live.error).toBe("a recording named 'taken' already exists");
    expect(notices.at(-1)).toMatchObject({ kind: 'error', title: 'Could not start recording' });
    await rec.start();
    expect(svc.calls.at(-1)?.body).toBe('{}');
    expect(svc.calls.at(-1)?.auth).toBeNull();
    expect(rec.live.status?.name).toBe('s1-20250101-000000');
    rec.dispose();
  });

  it('should surface a recording that stops on its own (disk full), the session going on', () => {
    service();
    const notices: RecordingNotice[] = [];
    const rec = createRecordings(restClient(() => null), (n) => notices.push(n));
    rec.follow('s1', status());
    // Another session's recording (sharing the bpftrace) is not ours.
    rec.onStreamStatus(status({ session: 's2', running: false, error: 'no space left on the device' }), 'x');
    expect(notices).toHaveLength(0);
    rec.onStreamStatus(status({ running: false, error: 'no space left on the device', events: 77 }), "recording 'r1' stopped: no space left on the device (the session goes on)");
    expect(rec.live.status).toMatchObject({ running: false, error: 'no space left on the device' });
    expect(notices[0]).toMatchObject({ kind: 'error', title: 'Recording stopped', body: "recording 'r1' stopped: no space left on the device (the session goes on)" });
    const w = mount(StatusBar, {
      props: { connection: 'connected', detail: '', session: null, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false, recording: rec.live.status },
    });
    const item = w.find('[data-testid="status-recording"]');
    expect(item.text()).toContain('recording stopped: no space left on the device');
    expect(item.classes()).toContain('bad');
    rec.dispose();
  });
});
