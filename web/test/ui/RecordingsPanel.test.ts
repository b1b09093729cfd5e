// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import RecordingsPanel from '../../src/ui/RecordingsPanel.vue';
import { createRecordings, recordingNameFor, type RecordingNotice } from '../../src/store/recordings.js';
import { restClient } from '../../src/api/rest.js';
import type { RecordingEntry } from '../../src/api/contract.js';

const entry = (over: Partial<RecordingEntry> = {}): RecordingEntry => ({
  name: 'before-fix', file: 'before-fix.hoptrace', startedAt: '2025-03-04T10:11:12.000Z', durationS: 12.5, events: 4200, packets: 610,
  lost: 0, sizeBytes: 345_678, filter: 'udp and port 53', host: 'node-a', kernel: '6.18.0', complete: true, endReason: 'stopped by a client',
  recording: false, ...over,
});

interface Call { method: string; url: string; auth: string | null; type: string | null; body: unknown }

/** The service, as far as the panel talks to it: a list that uploads and deletes change. */
function fakeService(entries: RecordingEntry[]) {
  const calls: Call[] = [];
  let uploadAnswer: { status: number; body: unknown } | null = null;
  const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const fetch = vi.fn(async (input: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    const method = init.method ?? 'GET';
    calls.push({ method, url: input, auth: headers.get('authorization'), type: headers.get('content-type'), body: init.body });
    const u = new URL(input, 'http://svc');
    if (method === 'GET' && u.pathname === '/api/recordings') return json(200, { recordings: entries });
    if (method === 'POST' && u.pathname === '/api/recordings') {
      const a = uploadAnswer ?? { status: 201, body: entry({ name: u.searchParams.get('name') ?? '' }) };
      if (a.status === 201) entries.unshift(a.body as RecordingEntry);
      return json(a.status, a.body);
    }
    const m = /^\/api\/recordings\/(.+)$/.exec(u.pathname);
    if (method === 'DELETE' && m) {
      const name = decodeURIComponent(m[1] ?? '');
      const i = entries.findIndex((e) => e.name === name);
      if (i < 0) return json(404, { error: { code: 'not-found', message: `no recording '${name}'` } });
      entries.splice(i, 1);
      return new Response(null, { status: 204 });
    }
    if (method === 'GET' && m) return new Response(new Uint8Array([1, 2, 3]), { status: 200, headers: { 'content-type': 'application/octet-stream' } });
    return json(404, { error: { code: 'not-found', message: 'no such route' } });
  });
  return { calls, fetch, answerUpload: (status: number, body: unknown) => { uploadAnswer = { status, body }; } };
}

function panel(svc: ReturnType<typeof fakeService>, needsToken = true) {
  vi.stubGlobal('fetch', svc.fetch);
  const notices: RecordingNotice[] = [];
  const recordings = createRecordings(restClient(() => 'tok'), (n) => notices.push(n));
  const w = mount(RecordingsPanel, { props: { recordings, openName: null, needsToken }, attachTo: document.body });
  return { w, recordings, notices };
}

const file = (name: string, bytes = [1, 2, 3, 4]): File => new File([new Uint8Array(bytes)], name, { type: 'application/octet-stream' });

async function pick(w: ReturnType<typeof mount>, f: File): Promise<void> {
  const input = w.find('[data-testid="library-file"]');
  Object.defineProperty(input.element, 'files', { value: [f], configurable: true });
  await input.trigger('change');
}

describe('RecordingsPanel', () => {
  beforeEach(() => vi.unstubAllGlobals());
  afterEach(() => vi.unstubAllGlobals());

  it('should list the library with its metadata, asking with the token', async () => {
    const svc = fakeService([entry(), entry({ name: 'live-1', recording: true, complete: false, packets: null }), entry({ name: 'junk', problem: 'it is not a recording (no hoptrace header)', startedAt: null })]);
    const { w, recordings } = panel(svc);
    await recordings.refresh();
    await flushPromises();
    expect(svc.calls[0]).toMatchObject({ method: 'GET', url: '/api/recordings', auth: 'Bearer tok' });
    const rows = w.findAll('[data-testid="recording-row"]');
    expect(rows.map((r) => r.attributes('data-name'))).toEqual(['before-fix', 'live-1', 'junk']);
    const first = rows[0]?.text() ?? '';
    for (const s of ['before-fix', '13 s', '4.20k', '610', '346 kB', 'udp and port 53', 'node-a', 'complete']) expect(first).toContain(s);
    expect(rows[1]?.text()).toContain('recording');
    expect(rows[1]?.find('[data-testid="delete-recording"]').attributes('disabled')).toBeDefined();
    expect(rows[2]?.find('[data-testid="open-recording"]').attributes('disabled')).toBeDefined();
    expect(w.text()).toContain('no hoptrace header');
    w.unmount();
  });

  it('should open a recording, and download it through the client when a token is needed', async () => {
    const svc = fakeService([entry()]);
    const { w, recordings } = panel(svc);
    await recordings.refresh();
    await flushPromises();
    await w.find('[data-testid="open-recording"]').trigger('click');
    expect(w.emitted('open')).toEqual([['before-fix']]);

    const created: Blob[] = [];
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL: (b: Blob) => { created.push(b); return 'blob:x'; }, revokeObjectURL: () => undefined }));
    const link = w.find('[data-testid="download-recording"]');
    expect(link.attributes('href')).toBe('/api/recordings/before-fix');
    await link.trigger('click');
    await flushPromises();
    const dl = svc.calls.find((c) => c.url === '/api/recordings/before-fix');
    expect(dl).toMatchObject({ method: 'GET', auth: 'Bearer tok' });
    expect(created[0]?.size).toBe(3);
    w.unmount();
  });

  it('should upload a chosen file as raw bytes under the name given, and show the service\'s refusal', async () => {
    const svc = fakeService([]);
    const { w, recordings } = panel(svc);
    await recordings.refresh();
    await flushPromises();
    expect(w.find('[data-testid="library-empty"]').exists()).toBe(true);

    await pick(w, file('my capture (2).hoptrace'));
    const name = w.find('[data-testid="upload-name"]');
    expect((name.element as HTMLInputElement).value).toBe('my-capture-2');

    svc.answerUpload(409, { error: { code: 'conflict', message: "a recording named 'my-capture-2' already exists" } });
    await w.find('[data-testid="upload"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="upload-error"]').text()).toBe("a recording named 'my-capture-2' already exists");
    const up = svc.calls.find((c) => c.method === 'POST');
    expect(up).toMatchObject({ url: '/api/recordings?name=my-capture-2', auth: 'Bearer tok', type: 'application/octet-stream' });
    expect(up?.body).toBeInstanceOf(Blob);

    svc.answerUpload(413, { error: { code: 'payload-too-large', message: 'the upload is larger than this service accepts (1 MiB)' } });
    await w.find('[data-testid="upload"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="upload-error"]').text()).toContain('larger than this service accepts');

    svc.answerUpload(400, { error: { code: 'bad-recording', message: 'not stored: it is not a recording' } });
    await w.find('[data-testid="upload"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="upload-error"]').text()).toBe('not stored: it is not a recording');

    await name.setValue('after-fix');
    svc.answerUpload(201, entry({ name: 'after-fix' }));
    await w.find('[data-testid="upload"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="upload-error"]').exists()).toBe(false);
    expect(w.find('[data-testid="staged"]').exists()).toBe(false);
    expect(w.findAll('[data-testid="recording-row"]').map((r) => r.attributes('data-name'))).toEqual(['after-fix']);
    expect(w.find('[data-testid="recording-row"]').classes()).toContain('fresh');
    w.unmount();
  });

  it('should refuse a name the service would refuse, before sending anything', async () => {
    const svc = fakeService([]);
    const { w } = panel(svc);
    await pick(w, file('x.hoptrace'));
    await w.find('[data-testid="upload-name"]').setValue('../etc');
    expect(w.find('[data-testid="upload"]').attributes('disabled')).toBeDefined();
    expect(svc.calls.filter((c) => c.method === 'POST')).toHaveLength(0);
    w.unmount();
  });

  it('should open a local file without uploading it', async () => {
    const svc = fakeService([]);
    const { w } = panel(svc);
    const f = file('local.hoptrace');
    await pick(w, f);
    await w.find('[data-testid="open-local"]').trigger('click');
    expect(w.emitted('openFile')?.[0]?.[0]).toBe(f);
    expect(svc.calls.filter((c) => c.method === 'POST')).toHaveLength(0);
    w.unmount();
  });

  it('should delete after a confirmation, and say why the library is unavailable', async () => {
    const svc = fakeService([entry(), entry({ name: 'other' })]);
    const { w, recordings } = panel(svc);
    await recordings.refresh();
    await flushPromises();
    await w.find('[data-testid="delete-recording"]').trigger('click');
    expect(svc.calls.some((c) => c.method === 'DELETE')).toBe(false);
    await w.find('[data-testid="confirm-delete"]').trigger('click');
    await flushPromises();
    expect(svc.calls.find((c) => c.method === 'DELETE')).toMatchObject({ url: '/api/recordings/before-fix', auth: 'Bearer tok' });
    expect(w.findAll('[data-testid="recording-row"]').map((r) => r.attributes('data-name'))).toEqual(['other']);

    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ error: { code: 'unavailable', message: 'this service keeps no recordings (start it with --data-dir)' } }), { status: 503 }));
    await recordings.refresh();
    await flushPromises();
    expect(w.find('[data-testid="library-error"]').text()).toContain('start it with --data-dir');
    w.unmount();
  });

  it('should make library names from file names', () => {
    expect(recordingNameFor('capture.hoptrace')).toBe('capture');
    expect(recordingNameFor('..secret..file.HOPTRACE')).toBe('secret.file');
    expect(recordingNameFor('ünïcode name!.hoptrace')).toBe('n-code-name');
    expect(recordingNameFor('.hoptrace')).toBe('recording');
  });
});

describe('RecordingsPanel and flow sampling', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('should say its rate in the library, beside its counts', async () => {
    const list = [entry({ name: 'sampled', sampleRate: 16 }), entry({ name: 'plain', sampleRate: 1 }), entry({ name: 'older' })];
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ recordings: list }), { status: 200, headers: { 'content-type': 'application/json' } }));
    const recordings = createRecordings(restClient(() => null), () => undefined);
    await recordings.refresh();
    const w = mount(RecordingsPanel, { props: { recordings, openName: null, needsToken: false } });
    const row = (name: string) => w.find(`[data-testid="recording-row"][data-name="${name}"]`);
    expect(row('sampled').find('[data-testid="recording-sampling"]').text()).toBe('· 1 in 16 flows');
    expect(row('plain').find('[data-testid="recording-sampling"]').exists()).toBe(false);
    expect(row('older').find('[data-testid="recording-sampling"]').exists()).toBe(false);
  });
});
