/**
 * Defects a hostile pass over the service found (issue 16 §3), each reproduced against a real
 * service on port 0 with real HTTP and socket.io clients: a recording started on a nearly full or
 * full disk (a tiny tmpfs), malformed percent-escapes in path parameters, a body that claims gzip
 * and is not, a session created while the service shuts down, a wrong method on /api/stats, a
 * client aborting an upload, the engine.io handshake without the token, and a data folder others
 * can write to.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { chmodSync, closeSync, ftruncateSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startService, type RunningService } from '../../server/service/index.js';
import type { ApiErrorBody, SessionInfo, SessionList } from '../../shared/api-types.js';
import type { SessionStateMessage, SubscribeAck } from '../../shared/stream-events.js';
import type { Topology } from '../../shared/topology/model.js';
import type { BpftraceExit } from '../../server/bpftrace.js';
import { api, connect, isRoot, postJson, syntheticFactory, waitFor, SyntheticSource, SYNTHETIC_CAPS as CAPS } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'hoptrace-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A service on port 0 with a synthetic source whose log lines the test reads. */
async function service(opts: Partial<Parameters<typeof startService>[0]> = {}): Promise<{ svc: RunningService; log: string[]; src: ReturnType<typeof syntheticFactory> }> {
  const log: string[] = [];
  const src = syntheticFactory();
  const svc = await startService({
    port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: (l) => log.push(l),
    topology: async () => ({ namespaces: [], errors: [], discoveredAt: 1, durationMs: 1 }), ...opts,
  });
  return { svc, log, src };
}

/** No log line reads as an internal error or carries a stack frame. */
function expectCleanLog(log: readonly string[]): void {
  expect(log.filter((l) => /internal error|\n\s+at /.test(l))).toEqual([]);
}

/**
 * Fills the filesystem holding `dir` until the kernel refuses (ENOSPC), then gives back `free`
 * bytes: a disk exactly that full. The filler is a dot file (the library ignores those).
 */
function fillDisk(dir: string, free: number): void {
  const fd = openSync(join(dir, '.filler'), 'w');
  try {
    const chunk = Buffer.alloc(4096, 1);
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
    const size = fstatSync(fd).size;
    ftruncateSync(fd, Math.max(0, size - free));
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!isRoot)('starting a recording on a (nearly) full disk (root: a tiny tmpfs)', () => {
  async function withTmpfs(fn: (dir: string) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(root, 'tmpfs-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'hoptrace-hostile', dir]);
    try {
      await fn(dir);
    } finally {
      await execa('umount', [dir], { reject: false });
    }
  }

  it('should answer 507 and leave no file when the header fits but the topology does not', async () => {
    await withTmpfs(async (dir) => {
      // A model larger than the one page left: the header is written, the topology record is not.
      const big: Topology = { namespaces: [], errors: Array.from({ length: 300 }, (_, i) => `problem ${i} ${'x'.repeat(40)}`), discoveredAt: 1, durationMs: 1 };
      const { svc, log, src } = await service({ dataDir: dir, topology: async () => big });
      try {
        const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
        expect(s.status).toBe(201);
        fillDisk(dir, 4096);
        const r = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${s.body.id}/recording`, { name: 'nearly-full' });
        expect(r.status).toBe(507);
        expect(r.body.error).toEqual({ code: 'recording-failed', message: "no space left for recording 'nearly-full'" });
        expect(readdirSync(dir).filter((f) => !f.startsWith('.'))).toEqual([]);
        // The name is free again and the session goes on.
        const info = await api<SessionInfo>(svc.url, `/api/sessions/${s.body.id}`);
        expect(info.body).toMatchObject({ state: 'running', recording: false });
        expect(src.made[0]?.stopped).toBe(false);
        rmSync(join(dir, '.filler'));
        const again = await postJson(svc.url, `/api/sessions/${s.body.id}/recording`, { name: 'nearly-full' });
        expect(again.status).toBe(201);
        expectCleanLog(log);
      } finally {
        await svc.close();
      }
    });
  }, 30_000);

  it('should answer 507 and leave no 0-byte file when not even the header fits', async () => {
    await withTmpfs(async (dir) => {
      const { svc, log } = await service({ dataDir: dir });
      try {
        const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
        fillDisk(dir, 0);
        const r = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${s.body.id}/recording`, { name: 'full' });
        expect(r.status).toBe(507);
        expect(r.body.error.code).toBe('recording-failed');
        // Nothing left behind for the library to list as a problem; a name the server picks too.
        const unnamed = await postJson<ApiErrorBody>(svc.url, `/api/sessions/${s.body.id}/recording`, {});
        expect(unnamed.status).toBe(507);
        expect(readdirSync(dir).filter((f) => !f.startsWith('.'))).toEqual([]);
        const list = await api<{ recordings: unknown[] }>(svc.url, '/api/recordings');
        expect(list.body.recordings).toEqual([]);
        expectCleanLog(log);
      } finally {
        await svc.close();
      }
    });
  }, 30_000);
});

describe('bad requests the service must answer as such', () => {
  it('should answer 400 JSON to a malformed percent-escape in any path parameter', async () => {
    const dataDir = mkdtempSync(join(root, 'data-'));
    const { svc, log } = await service({ dataDir });
    try {
      for (const [method, path] of [
        ['GET', '/api/sessions/%ZZ'], ['DELETE', '/api/sessions/%ZZ'], ['GET', '/api/sessions/%E0%A4%A/packets'],
        ['POST', '/api/sessions/%ZZ/recording'], ['GET', '/api/recordings/%ZZ'], ['DELETE', '/api/recordings/%'],
        ['GET', '/api/stats/%ZZ'], ['GET', '/api/stats/%ZZ/compare'],
      ] as const) {
        const r = await api<ApiErrorBody>(svc.url, path, { method });
        expect({ method, path, status: r.status, type: r.headers.get('content-type') }).toEqual({ method, path, status: 400, type: 'application/json; charset=utf-8' });
        expect(r.body.error.code).toBe('bad-request');
        expect(r.body.error.message).toMatch(/percent/);
      }
      expectCleanLog(log);
    } finally {
      await svc.close();
    }
  });

  it('should answer 400 to a body that says gzip and is not, and take one that is', async () => {
    const { svc, log } = await service();
    try {
      for (const path of ['/api/sessions', '/api/stats']) {
        const bad = await api<ApiErrorBody>(svc.url, path, {
          method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{"filter": "udp"}',
        });
        expect({ path, status: bad.status }).toEqual({ path, status: 400 });
        expect(bad.body.error).toEqual({ code: 'bad-request', message: 'the request body is not valid gzip (Content-Encoding: gzip)' });
      }
      const good = await api<SessionInfo>(svc.url, '/api/sessions', {
        method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{"filter": "udp"}'),
      });
      expect(good.status).toBe(201);
      expect(good.body.filter).toBe('udp');
      expectCleanLog(log);
    } finally {
      await svc.close();
    }
  });

  it('should answer 415 to a compressed recording upload (uploads are taken uncompressed)', async () => {
    const dataDir = mkdtempSync(join(root, 'data-'));
    const { svc, log } = await service({ dataDir });
    try {
      const r = await api<ApiErrorBody>(svc.url, '/api/recordings?name=zipped', {
        method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }, body: gzipSync('HOPTRACE'),
      });
      expect(r.status).toBe(415);
      expect(r.body.error).toEqual({ code: 'unsupported-encoding', message: 'send the recording uncompressed (no Content-Encoding; got gzip)' });
      expect(readdirSync(dataDir)).toEqual([]);
      expectCleanLog(log);
    } finally {
      await svc.close();
    }
  });

  it('should answer 405 with Allow to a method /api/stats does not take', async () => {
    const { svc } = await service();
    try {
      const put = await api<ApiErrorBody>(svc.url, '/api/stats', { method: 'PUT' });
      expect(put.status).toBe(405);
      expect(put.headers.get('allow')).toBe('GET, POST, HEAD');
      expect(put.body.error.code).toBe('method-not-allowed');
      const patch = await api<ApiErrorBody>(svc.url, '/api/stats/abc', { method: 'PATCH' });
      expect(patch.status).toBe(405);
      expect(patch.headers.get('allow')).toBe('GET, DELETE, HEAD');
      const cmp = await api<ApiErrorBody>(svc.url, '/api/stats/abc/compare', { method: 'POST' });
      expect(cmp.status).toBe(405);
      expect(cmp.headers.get('allow')).toBe('GET, HEAD');
    } finally {
      await svc.close();
    }
  });

  it('should not log a client aborting an upload as an internal error', async () => {
    const dataDir = mkdtempSync(join(root, 'data-'));
    const { svc, log } = await service({ dataDir, maxUploadBytes: 1024 * 1024 });
    try {
      await new Promise<void>((resolve) => {
        const req = request(new URL('/api/recordings?name=gone', svc.url), {
          method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(512 * 1024) },
        });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(64 * 1024));
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 300);
      });
      // The server sees the abort, removes its temp file, and says nothing alarming.
      await waitFor('the temp file to go', () => readdirSync(dataDir).length === 0, 5000);
      await new Promise((r) => setTimeout(r, 200));
      expectCleanLog(log);
      expect((await api(svc.url, '/api/health')).status).toBe(200);
    } finally {
      await svc.close();
    }
  });
});

/** A source stuck attaching until stopped, then failing as bpftrace does when SIGINT comes first. */
class StuckSource extends SyntheticSource {
  private release: (() => void) | undefined;

  override async start(): Promise<void> {
    await new Promise<void>((r) => { this.release = r; });
    throw new Error('bpftrace exited (SIGINT) before attaching');
  }

  override async stop(): Promise<BpftraceExit | undefined> {
    this.release?.();
    return super.stop();
  }
}

describe('a session created while the service shuts down', () => {
  it('should answer 503 and tell its subscriber the session stopped', async () => {
    const log: string[] = [];
    const svc = await startService({
      port: 0, source: (filter) => new StuckSource(filter), capabilities: CAPS, namespaceNames: null, webDist: null, log: (l) => log.push(l),
    });
    const created = postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'udp' });
    const id = await waitFor('the starting session', async () => (await api<SessionList>(svc.url, '/api/sessions')).body.sessions[0]?.id);
    const sock = await connect(svc.url);
    const states: SessionStateMessage[] = [];
    sock.on('session-state', (m) => states.push(m));
    const ack = (await sock.timeout(2000).emitWithAck('subscribe', { session: id })) as SubscribeAck;
    expect(ack.ok).toBe(true);
    const closed = svc.close();
    const r = await created;
    expect(r.status).toBe(503);
    expect(r.body.error).toEqual({ code: 'unavailable', message: 'the service is shutting down' });
    await closed;
    await waitFor('the stopped message', () => states.find((s) => s.state === 'stopped'), 5000);
    expect(states.find((s) => s.state === 'stopped')).toMatchObject({ session: id, message: 'the service is shutting down' });
    sock.close();
    expectCleanLog(log);
  });
});

describe('the socket.io handshake with --token', () => {
  it('should refuse the engine.io handshake without the token, before any sid is allocated', async () => {
    const token = 'hostile-token';
    const { svc } = await service({ token });
    try {
      const polling = new URL('/socket.io/?EIO=4&transport=polling', svc.url);
      const none = await fetch(polling);
      const text = await none.text();
      expect(none.status).toBe(403);
      expect(text).not.toMatch(/"sid"/);
      expect(text).toMatch(/unauthorized/);
      const wrong = await fetch(polling, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(403);
      // The token in the handshake: a header (Node clients) or the query (browsers' websockets cannot send headers).
      const header = await fetch(polling, { headers: { authorization: `Bearer ${token}` } });
      expect(header.status).toBe(200);
      expect(await header.text()).toMatch(/"sid"/);
      const query = await fetch(new URL(`/socket.io/?EIO=4&transport=polling&token=${token}`, svc.url));
      expect(query.status).toBe(200);
      // Real clients: auth alone comes too late now; with the token in the handshake they connect.
      await expect(connect(svc.url, { auth: { token } })).rejects.toThrow('websocket error');
      await expect(connect(svc.url, { auth: { token }, transports: ['polling'] })).rejects.toThrow('xhr poll error');
      const viaQuery = await connect(svc.url, { query: { token } });
      expect(viaQuery.connected).toBe(true);
      viaQuery.close();
      const viaHeader = await connect(svc.url, { extraHeaders: { authorization: `Bearer ${token}` } });
      expect(viaHeader.connected).toBe(true);
      viaHeader.close();
    } finally {
      await svc.close();
    }
  });
});

describe('a data folder others can write to', () => {
  it('should be refused with a message naming the fix', async () => {
    for (const mode of [0o1777, 0o777, 0o770, 0o702]) {
      const dir = join(mkdtempSync(join(root, 'shared-')), 'recordings');
      mkdirSync(dir);
      chmodSync(dir, mode);
      await expect(service({ dataDir: dir })).rejects.toThrow(`the data folder ${dir} is writable by other users (mode ${mode.toString(8)}): another user could plant files or links there. Run chmod go-w ${dir}, or pass another --data-dir`);
    }
    // Its own folder, made by the service, is private.
    const fresh = join(mkdtempSync(join(root, 'fresh-')), 'a', 'b');
    const { svc } = await service({ dataDir: fresh });
    await svc.close();
    expect(fstatMode(fresh)).toBe(0o700);
  });
});

function fstatMode(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).mode & 0o7777;
  } finally {
    closeSync(fd);
  }
}
