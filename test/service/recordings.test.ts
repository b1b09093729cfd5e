/**
 * Recordings in the service, over a real server on port 0: recording a session's feed (start,
 * 409, stop with metadata, across a bpftrace restart, a file removed mid-recording, the session
 * deleted, the service closing), reaping, and the library (list, download, upload with
 * validation and size limits, delete, names that must not leave the data folder). Most tests use
 * a synthetic source; one (root only) records a real lab and replays the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { join } from 'node:path';
import { startService, type RunningService } from '../../server/service/index.js';
import { defaultDataDir } from '../../server/recording/library.js';
import { RecordingFile, replayRecording } from '../../server/recording/index.js';
import { labDown, labFor, labUp } from '../../server/lab/lab.js';
import { sendUdp, startEcho, type Server } from '../../server/lab/traffic.js';
import type { ApiErrorBody, RecordingEntry, RecordingList, RecordingStatus, SessionInfo } from '../../shared/api-types.js';
import type { SessionStateMessage, SubscribeAck } from '../../shared/stream-events.js';
import type { Packet } from '../../shared/packet.js';
import { buildRecording } from '../recording/fixtures.js';
import { syntheticEvents } from '../recording/synthetic.js';
import { api, connect, isRoot, postJson, syntheticFactory, waitFor, SYNTHETIC_CAPS as CAPS, type SyntheticSource, type TestSocket } from './helpers.js';

const TOPOLOGY = async () => ({ namespaces: [], errors: [], discoveredAt: 1, durationMs: 2 });
const quiet = (): void => undefined;
const MAX_UPLOAD = 64 * 1024;

const root = mkdtempSync(join(tmpdir(), 'hoptrace-svc-rec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function synthetic(opts: { dataDir?: string; graceMs?: number } = {}) {
  const src = syntheticFactory();
  const dataDir = opts.dataDir ?? mkdtempSync(join(root, 'data-'));
  const started = startService({
    port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, topology: TOPOLOGY,
    graceMs: opts.graceMs ?? 60_000, dataDir, maxUploadBytes: MAX_UPLOAD, backoff: { initialMs: 50, maxMs: 50, stableMs: 60_000 },
  });
  return { src, dataDir, started };
}

async function newSession(svc: RunningService, src: { made: SyntheticSource[] }, filter = 'udp'): Promise<{ id: string; source: SyntheticSource }> {
  const before = src.made.length;
  const r = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter });
  expect(r.status).toBe(201);
  const source = src.made.length > before ? src.made.at(-1) : src.made.find((s) => s.filter === r.body.filter && !s.stopped);
  if (!source) throw new Error('no source');
  return { id: r.body.id, source };
}

async function sessionInfo(svc: RunningService, id: string): Promise<SessionInfo> {
  const r = await api<SessionInfo>(svc.url, `/api/sessions/${id}`);
  expect(r.status).toBe(200);
  return r.body;
}

function upload(svc: RunningService, name: string, body: Uint8Array | string, type = 'application/octet-stream') {
  return api<RecordingEntry & ApiErrorBody>(svc.url, `/api/recordings?name=${encodeURIComponent(name)}`, {
    // Copied into a plain ArrayBuffer-backed array: fetch's BodyInit does not take every Uint8Array.
    method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body),
  });
}

async function download(svc: RunningService, name: string): Promise<{ status: number; bytes: Uint8Array; headers: Headers }> {
  const res = await fetch(new URL(`/api/recordings/${encodeURIComponent(name)}`, svc.url));
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers };
}

async function replayFile(path: string) {
  const file = await RecordingFile.open(path);
  try {
    const packets: Packet[] = [];
    const res = await replayRecording(file, { onPacket: (p) => { packets.push(p); } });
    return { res, packets, header: file.header };
  } finally {
    await file.close();
  }
}

/** Files in a folder that are not recordings the test made (upload temp files, strays). */
function strays(dir: string, keep: readonly string[]): string[] {
  return readdirSync(dir).filter((f) => !keep.includes(f));
}

describe('recording a session', () => {
  const { src, dataDir, started } = synthetic();
  let svc: RunningService;
  let socket: TestSocket;
  const states: SessionStateMessage[] = [];

  beforeAll(async () => {
    svc = await started;
    socket = await connect(svc.url);
    socket.on('session-state', (m) => states.push(m));
  });
  afterAll(async () => {
    socket.close();
    await svc.close();
  });

  it('should record every event and lost count of the feed, refuse a second start, and stop with the metadata', async () => {
    const { id, source } = await newSession(svc, src);
    const ack = await socket.timeout(5000).emitWithAck('subscribe', { session: id }) as SubscribeAck;
    expect(ack.ok).toBe(true);
    const start = await postJson<RecordingStatus>(svc.url, `/api/sessions/${id}/recording`, { name: 'first' });
    expect(start.status).toBe(201);
    expect(start.headers.get('location')).toBe('/api/recordings/first');
    expect(start.body).toMatchObject({ name: 'first', session: id, running: true, error: null, endReason: null, gaps: 0 });
    const again = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { name: 'second' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
    await waitFor('a recording-started message', () => states.find((m) => m.session === id && m.recording?.running === true));

    source.burst(50);
    source.emit('lost', 7);
    const during = await waitFor('recorded events', async () => {
      const info = await sessionInfo(svc, id);
      return info.recordingStatus && info.recordingStatus.events === 150 && info.recordingStatus.bytes > 0 ? info : undefined;
    });
    expect(during.recording).toBe(true);
    expect(during.recordingStatus).toMatchObject({ name: 'first', running: true, lost: 7 });

    const stop = await api<RecordingEntry>(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({
      name: 'first', file: 'first.hoptrace', events: 150, lost: 7, packets: 50, filter: 'udp', complete: true,
      endReason: 'stopped by a client', recording: false,
    });
    expect(stop.body.sizeBytes).toBe(statSync(join(dataDir, 'first.hoptrace')).size);
    const after = await sessionInfo(svc, id);
    expect(after.recording).toBe(false);
    expect(after.recordingStatus).toMatchObject({ name: 'first', running: false, events: 150, endReason: 'stopped by a client' });
    const stopped = await waitFor('a recording-stopped message', () => states.find((m) => m.session === id && m.recording?.running === false));
    expect(stopped.state).toBe('running');
    expect(stopped.message).toMatch(/recording 'first' stopped/);

    // The file replays into the packets the session saw.
    const { res, packets, header } = await replayFile(join(dataDir, 'first.hoptrace'));
    expect(header.filter).toBe('udp');
    expect(res).toMatchObject({ events: 150, packets: 50, lost: 7, complete: true, damagedRegions: 0 });
    expect(packets.every((p) => p.hops.length === 3 && p.src === '10.250.0.1')).toBe(true);

    const notNow = await api<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    expect(notNow.status).toBe(404);
    expect(notNow.body.error.message).toMatch(/not recording.*'first' ended: stopped by a client/);
    // A name that exists is refused, on start as on upload.
    const taken = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { name: 'first' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('conflict');
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should pick a name when none is given, with or without a body', async () => {
    const { id } = await newSession(svc, src, 'tcp');
    const bare = await api<RecordingStatus>(svc.url, `/api/sessions/${id}/recording`, { method: 'POST' });
    expect(bare.status).toBe(201);
    expect(bare.body.name).toMatch(new RegExp(`^${id}-\\d{8}-\\d{6}$`));
    await api(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    const empty = await postJson<RecordingStatus>(svc.url, `/api/sessions/${id}/recording`, {});
    expect(empty.status).toBe(201);
    // Same session, same second: a suffix keeps it from clashing.
    expect(empty.body.name).not.toBe(bare.body.name);
    await api(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should validate the start request', async () => {
    const { id } = await newSession(svc, src, 'icmp');
    for (const name of ['../x', 'a/b', '.hidden', '', 'a..b', 'x'.repeat(101), 'sp ace', 'ends-with.']) {
      const r = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { name });
      expect(r.status, name).toBe(400);
      expect(r.body.error.code).toBe('bad-request');
    }
    const extra = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { name: 'ok', other: 1 });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toMatch(/unknown field 'other'/);
    const text = await api<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'name=x' });
    expect(text.status).toBe(400);
    const missing = await postJson<ApiErrorBody>(svc.url, '/api/sessions/abc123/recording', { name: 'nope' });
    expect(missing.status).toBe(404);
    expect((await api(svc.url, '/api/sessions/abc123/recording', { method: 'DELETE' })).status).toBe(404);
    // Nothing was created by any of them.
    expect(existsSync(join(dataDir, 'ok.hoptrace'))).toBe(false);
    expect(existsSync(join(dataDir, 'nope.hoptrace'))).toBe(false);
    expect((await sessionInfo(svc, id)).recordingStatus).toBeNull();
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should go on recording across a bpftrace restart and count the gap', async () => {
    const { id, source } = await newSession(svc, src, 'udp port 5000');
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'restart' })).status).toBe(201);
    source.burst(10);
    source.die('simulated crash');
    await waitFor('the feed back up', async () => (await sessionInfo(svc, id)).state === 'running' && src.made.at(-1) !== source);
    const next = src.made.at(-1) as SyntheticSource;
    next.burst(20);
    const info = await waitFor('events from both', async () => {
      const i = await sessionInfo(svc, id);
      return i.recordingStatus?.events === 90 ? i : undefined;
    });
    expect(info.recordingStatus?.gaps).toBe(1);
    expect(info.recordingStatus?.running).toBe(true);
    const stop = await api<RecordingEntry>(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    expect(stop.body).toMatchObject({ events: 90, packets: 30, complete: true });
    const { res } = await replayFile(join(dataDir, 'restart.hoptrace'));
    expect(res.packets).toBe(30);
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should stop the recording, not the session, when the file is removed, and say why', async () => {
    const { id, source } = await newSession(svc, src, 'udp port 6000');
    expect((await socket.timeout(5000).emitWithAck('subscribe', { session: id }) as SubscribeAck).ok).toBe(true);
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'doomed' })).status).toBe(201);
    source.burst(5);
    unlinkSync(join(dataDir, 'doomed.hoptrace'));
    const info = await waitFor('the recording to fail', async () => {
      const i = await sessionInfo(svc, id);
      return i.recordingStatus?.running === false ? i : undefined;
    }, 10_000, 100);
    expect(info.recording).toBe(false);
    expect(info.state).toBe('running');
    expect(info.recordingStatus?.error).toMatch(/deleted while recording/);
    // The server's path stays on the server.
    expect(info.recordingStatus?.error).not.toContain(dataDir);
    expect(info.recordingStatus?.error).toContain('doomed.hoptrace');
    const msg = await waitFor('a failure message', () => states.find((m) => m.session === id && m.recording?.error));
    expect(msg.message).toMatch(/recording 'doomed' stopped: .*deleted.*the session goes on/);
    // The session still streams.
    source.burst(1);
    await waitFor('more events', async () => (await sessionInfo(svc, id)).events >= 18);
    // And can record again under the same name, now free.
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'doomed' })).status).toBe(201);
    await api(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should finish the file with the reason when the session is deleted', async () => {
    const { id, source } = await newSession(svc, src, 'udp port 7000');
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'deleted-session' })).status).toBe(201);
    source.burst(4);
    await waitFor('events', async () => (await sessionInfo(svc, id)).recordingStatus?.events === 12);
    expect((await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' })).status).toBe(204);
    const list = await waitFor('the finished file', async () => {
      const r = await api<RecordingList>(svc.url, '/api/recordings');
      return r.body.recordings.find((e) => e.name === 'deleted-session' && e.complete);
    });
    expect(list).toMatchObject({ events: 12, packets: 4, recording: false, endReason: 'the session ended: the session was deleted' });
  });

  it('should list recordings newest first with their metadata, flag unreadable files, and mark running ones', async () => {
    writeFileSync(join(dataDir, 'junk.hoptrace'), 'not a recording at all');
    writeFileSync(join(dataDir, 'notes.txt'), 'ignored');
    const { id, source } = await newSession(svc, src, 'udp port 8000');
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'live-one' })).status).toBe(201);
    source.burst(3);
    await waitFor('events', async () => (await sessionInfo(svc, id)).recordingStatus?.events === 9);
    const r = await api<RecordingList>(svc.url, '/api/recordings');
    expect(r.status).toBe(200);
    const byName = new Map(r.body.recordings.map((e) => [e.name, e]));
    expect(byName.has('notes')).toBe(false);
    expect(byName.get('junk')).toMatchObject({ file: 'junk.hoptrace', complete: false, recording: false, startedAt: null });
    expect(byName.get('junk')?.problem).toMatch(/.+/);
    expect(byName.get('junk')?.sizeBytes).toBe(22);
    const first = byName.get('first');
    expect(first).toMatchObject({ events: 150, packets: 50, lost: 7, filter: 'udp', complete: true, recording: false, kernel: expect.any(String) as string });
    expect(first?.problem).toBeUndefined();
    expect(first?.host).not.toBe('');
    expect(Date.parse(first?.startedAt ?? '')).toBeGreaterThan(Date.now() - 600_000);
    expect(first?.durationS).toBeGreaterThanOrEqual(0);
    const live = byName.get('live-one');
    expect(live).toMatchObject({ recording: true, complete: false, events: 9 });
    // Newest first (unreadable ones last).
    const starts = r.body.recordings.filter((e) => e.startedAt).map((e) => Date.parse(e.startedAt ?? ''));
    expect(starts).toEqual([...starts].sort((a, b) => b - a));
    // A file being written cannot be deleted, but can be downloaded (a valid prefix).
    const del = await api<ApiErrorBody>(svc.url, '/api/recordings/live-one', { method: 'DELETE' });
    expect(del.status).toBe(409);
    const partial = await download(svc, 'live-one');
    expect(partial.status).toBe(200);
    const up = await upload(svc, 'live-copy', partial.bytes);
    expect(up.status).toBe(201);
    await api(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
    unlinkSync(join(dataDir, 'notes.txt'));
  });

  it('should download a recording as an attachment, byte for byte', async () => {
    const d = await download(svc, 'first');
    expect(d.status).toBe(200);
    expect(d.headers.get('content-type')).toBe('application/octet-stream');
    expect(d.headers.get('content-disposition')).toBe('attachment; filename="first.hoptrace"');
    expect(Buffer.from(d.bytes).equals(readFileSync(join(dataDir, 'first.hoptrace')))).toBe(true);
    const withExt = await download(svc, 'first.hoptrace');
    expect(withExt.bytes.length).toBe(d.bytes.length);
    const missing = await api<ApiErrorBody>(svc.url, '/api/recordings/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not-found');
    // ('..' alone is resolved away by the URL itself before it is sent.)
    for (const bad of ['../x', 'a/b', '.hidden', '...', 'a..b', '%2e%2e']) {
      const r = await api<ApiErrorBody>(svc.url, `/api/recordings/${encodeURIComponent(bad)}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('bad-request');
    }
    // A symlink planted in the folder is not followed.
    symlinkSync('/etc/hostname', join(dataDir, 'planted.hoptrace'));
    expect((await download(svc, 'planted')).status).toBe(404);
    expect((await api(svc.url, '/api/recordings/planted', { method: 'DELETE' })).status).toBe(404);
    expect(existsSync('/etc/hostname')).toBe(true);
    unlinkSync(join(dataDir, 'planted.hoptrace'));
  });

  it('should store an upload only after it validates', async () => {
    const good = readFileSync(join(dataDir, 'first.hoptrace'));
    const ok = await upload(svc, 'copy', good);
    expect(ok.status).toBe(201);
    expect(ok.headers.get('location')).toBe('/api/recordings/copy');
    expect(ok.body).toMatchObject({ name: 'copy', events: 150, packets: 50, complete: true, filter: 'udp' });
    expect(readFileSync(join(dataDir, 'copy.hoptrace')).equals(good)).toBe(true);

    // Cut short (a crashed recorder's file): replayable up to the cut, so accepted.
    const cut = await upload(svc, 'cut', good.subarray(0, good.length - 150));
    expect(cut.status).toBe(201);
    expect(cut.body.complete).toBe(false);
    expect(cut.body.events).toBeLessThanOrEqual(150);

    const garbage = await upload(svc, 'garbage', randomBytes(4000));
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.code).toBe('bad-recording');
    expect(garbage.body.error.message).toMatch(/^not stored: .+/);
    const damaged = Buffer.from(good);
    damaged.fill(0x55, Math.floor(good.length / 2), Math.floor(good.length / 2) + 40);
    const dmg = await upload(svc, 'damaged', damaged);
    expect(dmg.status).toBe(400);
    expect(dmg.body.error.message).toMatch(/damaged/);
    const empty = await upload(svc, 'empty', new Uint8Array(0));
    expect(empty.status).toBe(400);

    const exists = await upload(svc, 'copy', good);
    expect(exists.status).toBe(409);
    expect(exists.body.error.code).toBe('conflict');
    expect(readFileSync(join(dataDir, 'copy.hoptrace')).equals(good)).toBe(true);

    for (const bad of ['../x', 'a/b', '.hidden', '', '/etc/x', 'dot.']) {
      const r = await upload(svc, bad, good);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('bad-request');
    }
    const noName = await api<ApiErrorBody>(svc.url, '/api/recordings', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: good });
    expect(noName.status).toBe(400);
    const json = await upload(svc, 'json', '{}', 'application/json');
    expect(json.status).toBe(400);
    for (const name of ['garbage', 'damaged', 'empty', 'json']) expect(existsSync(join(dataDir, `${name}.hoptrace`)), name).toBe(false);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('should answer 413 to an upload over the limit, declared or streamed, and keep nothing', async () => {
    const big = new Uint8Array(MAX_UPLOAD + 1);
    const declared = await upload(svc, 'big', big);
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe('payload-too-large');
    // No Content-Length: counted as it arrives.
    const chunk = new Uint8Array(16 * 1024);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 4 * MAX_UPLOAD) controller.close();
        else {
          sent += chunk.length;
          controller.enqueue(chunk);
        }
      },
    });
    const streamed = await fetch(new URL('/api/recordings?name=big', svc.url), {
      method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, duplex: 'half',
    } as RequestInit).then(async (r) => ({ status: r.status, body: await r.json() as ApiErrorBody }), (err: unknown) => ({ status: 0, body: null, err }));
    expect(streamed.status).toBe(413);
    expect(streamed.body?.error.code).toBe('payload-too-large');
    expect(existsSync(join(dataDir, 'big.hoptrace'))).toBe(false);
    await waitFor('no temp file left', () => readdirSync(dataDir).every((f) => !f.startsWith('.')), 5000);
    // The service still answers.
    expect((await api(svc.url, '/api/recordings')).status).toBe(200);
  });

  it('should delete a recording, once', async () => {
    expect((await api(svc.url, '/api/recordings/copy', { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(join(dataDir, 'copy.hoptrace'))).toBe(false);
    const again = await api<ApiErrorBody>(svc.url, '/api/recordings/copy', { method: 'DELETE' });
    expect(again.status).toBe(404);
    const list = await api<RecordingList>(svc.url, '/api/recordings');
    expect(list.body.recordings.map((e) => e.name)).not.toContain('copy');
    expect((await api(svc.url, `/api/recordings/${encodeURIComponent('../first')}`, { method: 'DELETE' })).status).toBe(400);
  });

  it('should keep every name inside the data folder (random names over HTTP)', async () => {
    const parent = join(root, `confine-${randomBytes(3).toString('hex')}`);
    const inner = join(parent, 'data');
    mkdirSync(inner, { recursive: true });
    // A second service whose folder sits inside one we watch for strays.
    const other = synthetic({ dataDir: inner });
    const svc2 = await other.started;
    try {
      const good = buildRecording(syntheticEvents(20, 2)).bytes;
      const made: string[] = [];
      const name = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.constantFrom('..', '../x', '..%2Fx', '%2e%2e', 'a/b', 'a\\b', '.hidden', '/etc/passwd', 'x\0y', '~', '...', './a', 'a/../../b', 'x.', 'x.hoptrace'),
        // Mostly-valid names, so that many uploads are stored and every stored one is checked.
        fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/),
        fc.array(fc.constantFrom('..', '.', '/', 'a', '%2f', '\\', '.hoptrace'), { maxLength: 8 }).map((parts) => parts.join('')),
      );
      await fc.assert(fc.asyncProperty(name, async (n) => {
        const up = await upload(svc2, n, good);
        expect([201, 400, 409], n).toContain(up.status);
        if (up.status === 201) {
          made.push(up.body.file);
          expect(up.body.file).not.toContain('/');
          expect(existsSync(join(inner, up.body.file))).toBe(true);
        }
        const get = await fetch(new URL(`/api/recordings/${encodeURIComponent(n)}`, svc2.url));
        await get.arrayBuffer();
        // URLs the client normalises ('', '.', '..') reach other routes (the list, a 404): only a
        // download must be a file we stored.
        expect([200, 400, 404], n).toContain(get.status);
        if (get.headers.get('content-type') === 'application/octet-stream') expect(made.some((f) => f === `${n}.hoptrace` || f === n), n).toBe(true);
      }), { numRuns: 150 });
      expect(readdirSync(parent)).toEqual(['data']);
      expect(strays(inner, made)).toEqual([]);
      for (const f of made) expect((await api(svc2.url, `/api/recordings/${encodeURIComponent(f)}`, { method: 'DELETE' })).status, f).toBe(204);
      expect(readdirSync(inner)).toEqual([]);
    } finally {
      await svc2.close();
    }
  });
});

describe('recorded sessions and the grace period', () => {
  it('should not reap a recorded session, and reap it after the recording stops', async () => {
    const { src, started } = synthetic({ graceMs: 300 });
    const svc = await started;
    try {
      const kept = await newSession(svc, src, 'udp port 1');
      const dropped = await newSession(svc, src, 'udp port 2');
      expect((await postJson(svc.url, `/api/sessions/${kept.id}/recording`, { name: 'kept' })).status).toBe(201);
      await new Promise((r) => setTimeout(r, 1500));
      expect(svc.registry.get(dropped.id)).toBeUndefined();
      expect(svc.registry.get(kept.id)?.recording).toBe(true);
      expect(kept.source.stopped).toBe(false);
      // The grace period counts from the end of the recording.
      const stop = await api<RecordingEntry>(svc.url, `/api/sessions/${kept.id}/recording`, { method: 'DELETE' });
      expect(stop.status).toBe(200);
      expect(svc.registry.get(kept.id)?.recording).toBe(false);
      await waitFor('the session reaped', () => svc.registry.get(kept.id) === undefined, 5000);
      expect(kept.source.stopped).toBe(true);
    } finally {
      await svc.close();
    }
  });

  it('should finish running recordings when the service closes', async () => {
    const { src, dataDir, started } = synthetic();
    const svc = await started;
    const { id, source } = await newSession(svc, src);
    expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'at-close' })).status).toBe(201);
    source.burst(2);
    await waitFor('events', async () => (await sessionInfo(svc, id)).recordingStatus?.events === 6);
    await svc.close();
    const { res } = await replayFile(join(dataDir, 'at-close.hoptrace'));
    expect(res).toMatchObject({ complete: true, events: 6, packets: 2 });
  });
});

describe('recordings and the service configuration', () => {
  it('should answer 503 without a data folder', async () => {
    const src = syntheticFactory();
    const svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, topology: TOPOLOGY });
    try {
      const list = await api<ApiErrorBody>(svc.url, '/api/recordings');
      expect(list.status).toBe(503);
      expect(list.body.error.code).toBe('unavailable');
      const { id } = await newSession(svc, src);
      const start = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${id}/recording`, {});
      expect(start.status).toBe(503);
      expect(svc.registry.get(id)?.recording).toBe(false);
    } finally {
      await svc.close();
    }
  });

  it('should apply the token and origin checks to the recording routes', async () => {
    const src = syntheticFactory();
    const svc = await startService({
      port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, topology: TOPOLOGY,
      token: 'sekrit-token', dataDir: mkdtempSync(join(root, 'tok-')),
    });
    try {
      expect((await api(svc.url, '/api/recordings')).status).toBe(401);
      expect((await api(svc.url, '/api/recordings/x')).status).toBe(401);
      expect((await upload(svc, 'x', new Uint8Array(10))).status).toBe(401);
      const auth = { authorization: 'Bearer sekrit-token' };
      expect((await api(svc.url, '/api/recordings', { headers: auth })).status).toBe(200);
      const foreign = await api<ApiErrorBody>(svc.url, '/api/recordings', { headers: { ...auth, origin: 'http://evil.example' } });
      expect(foreign.status).toBe(403);
      expect(foreign.body.error.code).toBe('forbidden-origin');
    } finally {
      await svc.close();
    }
  });

  it('should default the data folder by user', () => {
    expect(defaultDataDir({}, 0)).toBe('/var/lib/hoptrace/recordings');
    expect(defaultDataDir({ XDG_DATA_HOME: '/x/data' }, 1000)).toBe('/x/data/hoptrace/recordings');
    expect(defaultDataDir({ XDG_DATA_HOME: 'relative' }, 1000)).toMatch(/\/\.local\/share\/hoptrace\/recordings$/);
  });
});

describe.skipIf(!isRoot)('a full disk (root: a tiny tmpfs)', () => {
  it('should stop the recording with "no space", keep the session, and leave a readable file', async () => {
    const dir = mkdtempSync(join(root, 'full-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
    const { src, started } = synthetic({ dataDir: dir });
    const svc = await started;
    try {
      const { id, source } = await newSession(svc, src);
      expect((await postJson(svc.url, `/api/sessions/${id}/recording`, { name: 'full' })).status).toBe(201);
      const info = await waitFor('the disk to fill', async () => {
        source.burst(300);
        const i = await sessionInfo(svc, id);
        return i.recordingStatus?.running === false ? i : undefined;
      }, 20_000, 250);
      expect(info.recordingStatus?.error).toMatch(/no space left/);
      expect(info.recordingStatus?.error).not.toContain(dir);
      expect(info.state).toBe('running');
      expect(info.recording).toBe(false);
      // What was written replays (cut short, not damaged) and is listed as incomplete.
      const list = await api<RecordingList>(svc.url, '/api/recordings');
      expect(list.body.recordings.find((e) => e.name === 'full')).toMatchObject({ complete: false, recording: false });
      const { res } = await replayFile(join(dir, 'full.hoptrace'));
      expect(res.events).toBeGreaterThan(0);
      expect(res.damagedRegions).toBe(0);
      // An upload into the full folder fails cleanly and leaves no temp file.
      const up = await upload(svc, 'more', buildRecording(syntheticEvents(20, 3)).bytes);
      expect(up.status).toBe(507);
      expect(up.body.error).toEqual({ code: 'recording-failed', message: 'no space left to store the upload' });
      expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    } finally {
      await svc.close();
      await execa('umount', [dir]);
    }
  }, 60_000);
});

const lab = labFor(`r${randomBytes(3).toString('hex')}`);
const PORT = 20_000 + (randomBytes(2).readUInt16BE() % 20_000);

describe.skipIf(!isRoot)('recording a real lab (root)', () => {
  let svc: RunningService;
  let echo: Server | undefined;
  const dataDir = mkdtempSync(join(root, 'lab-'));

  beforeAll(async () => {
    await labUp(lab);
    echo = await startEcho(lab.ns.pod2, 'udp', '0.0.0.0', PORT);
    svc = await startService({ port: 0, webDist: null, log: quiet, dataDir });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await echo?.stop();
    await labDown(lab);
  }, 60_000);

  it('should record a TraceSession\'s packets through the lab into a file that replays them', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `host ${lab.addr.pod2} and udp port ${PORT}` });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const start = await postJson<RecordingStatus>(svc.url, `/api/sessions/${id}/recording`, { name: 'lab' });
    expect(start.status).toBe(201);
    await waitFor('recorded packets', async () => {
      await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 3, 32, 50);
      await new Promise((r) => setTimeout(r, 400));
      const info = await sessionInfo(svc, id);
      return (info.recordingStatus?.packets ?? 0) >= 6;
    }, 30_000, 0);
    const stop = await api<RecordingEntry>(svc.url, `/api/sessions/${id}/recording`, { method: 'DELETE' });
    expect(stop.status).toBe(200);
    expect(stop.body.complete).toBe(true);
    expect(stop.body.packets).toBeGreaterThanOrEqual(6);

    const { res, packets, header } = await replayFile(join(dataDir, 'lab.hoptrace'));
    expect(header.filter).toBe(created.body.filter);
    // The header names the tier the service's feed ran on and the probe points it attached in that tier's names.
    expect(header.probeTier).toMatch(/^(fast|classic)$/);
    expect(header.probes).toContain(header.probeTier === 'fast' ? 'rawtracepoint:net_dev_start_xmit' : 'tracepoint:net:net_dev_start_xmit');
    expect(header.probes.some((p) => (header.probeTier === 'fast' ? /^tracepoint:(net|skb):/ : /^rawtracepoint:/).test(p))).toBe(false);
    expect(res.complete).toBe(true);
    expect(res.packets).toBe(stop.body.packets);
    const mine = packets.filter((p) => p.src === lab.addr.pod1 && p.dst === lab.addr.pod2 && p.dport === PORT);
    expect(mine.length).toBeGreaterThanOrEqual(3);
    // Namespace names come from the recording: the packet crossed pod1, the node and pod2.
    const crossed = mine.find((p) => new Set(p.hops.map((h) => h.ns)).size >= 3);
    expect(new Set(crossed?.hops.map((h) => h.ns))).toEqual(new Set([lab.ns.pod1, lab.ns.node, lab.ns.pod2]));
    await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  }, 90_000);
});
