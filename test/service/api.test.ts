/**
 * The REST API and the service's safety checks, over a real server on port 0 with a synthetic hop
 * source (no root needed): validation, error shapes, token and origin checks, session sharing,
 * the packets endpoint, grace-period reaping and bpftrace restarts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../server/service/index.js';
import type { ApiErrorBody, Capabilities, HealthResponse, SessionInfo, SessionList } from '../../shared/api-types.js';
import type { Packet } from '../../shared/packet.js';
import { batchBytes, type SessionStateMessage, type StreamStats, type SubscribeAck } from '../../shared/stream-events.js';
import { decodeBatch, type HopBatch } from '../../shared/wire.js';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, connect, postJson, syntheticFactory, waitFor, SyntheticSource, NS_A, NS_B, SYNTHETIC_CAPS as CAPS, type TestSocket } from './helpers.js';

const quiet = (): void => undefined;

describe('service REST API', () => {
  const src = syntheticFactory();
  let svc: RunningService;

  beforeAll(async () => {
    svc = await startService({
      port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet,
      graceMs: 60_000, topology: async () => ({ namespaces: [], errors: [], discoveredAt: 1, durationMs: 2 }),
    });
  });
  afterAll(async () => {
    await svc.close();
  });

  it('listens on the port the OS picked and reports health', async () => {
    expect(svc.port).toBeGreaterThan(0);
    expect(svc.url).toBe(`http://127.0.0.1:${svc.port}/`);
    const r = await api<HealthResponse>(svc.url, '/api/health');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ok');
    expect(r.body.canTrace).toBe(true);
    // Only `serve --hub` says hub (the dashboard then shows the cluster): a single host is as before.
    expect(r.body).not.toHaveProperty('hub');
  });

  it('sets security headers via helmet and no x-powered-by', async () => {
    const r = await api(svc.url, '/api/health');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(r.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
    // The dashboard decodes protobuf with static code (shared/wire-generated.js): no eval needed.
    const scriptSrc = r.headers.get('content-security-policy')?.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src '));
    expect(scriptSrc).toBe("script-src 'self'");
    expect(r.headers.get('content-security-policy')).not.toContain('unsafe-eval');
    expect(r.headers.get('x-powered-by')).toBeNull();
  });

  it('reports capabilities detected at start-up', async () => {
    const r = await api<Capabilities>(svc.url, '/api/capabilities');
    expect(r.status).toBe(200);
    expect(r.body.probes.kprobe).toEqual({ available: false, reason: 'no kprobe_events' });
  });

  it('serves the topology from the discovery provider', async () => {
    const r = await api<{ durationMs: number }>(svc.url, '/api/topology');
    expect(r.status).toBe(200);
    expect(r.body.durationMs).toBe(2);
  });

  it('creates, lists, reads and deletes a session', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp  and   port 5000' });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^[a-z0-9]+$/);
    expect(created.body.filter).toBe('udp and port 5000');
    expect(created.body.state).toBe('running');
    expect(created.headers.get('location')).toBe(`/api/sessions/${created.body.id}`);
    const list = await api<SessionList>(svc.url, '/api/sessions');
    expect(list.body.sessions.map((s) => s.id)).toContain(created.body.id);
    const one = await api<SessionInfo>(svc.url, `/api/sessions/${created.body.id}`);
    expect(one.body.filter).toBe('udp and port 5000');
    const del = await api(svc.url, `/api/sessions/${created.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const gone = await api<ApiErrorBody>(svc.url, `/api/sessions/${created.body.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not-found');
    // Its only session is gone, so its source was stopped.
    const source = src.made.find((s) => s.filter === 'udp and port 5000');
    expect(source?.stopped).toBe(true);
  });

  it('shares one source between sessions whose filters are the same once canonical', async () => {
    const before = src.made.length;
    const a = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'host 10.250.0.2 and tcp' });
    const b = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'host   10.250.0.2  and  tcp' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.id).not.toBe(b.body.id);
    expect(src.made.length - before).toBe(1);
    const info = await api<SessionInfo>(svc.url, `/api/sessions/${b.body.id}`);
    expect(info.body.bpftrace.sharedBy).toBe(2);
    // Deleting one keeps the source for the other.
    await api(svc.url, `/api/sessions/${a.body.id}`, { method: 'DELETE' });
    expect(src.made.at(-1)?.stopped).toBe(false);
    await api(svc.url, `/api/sessions/${b.body.id}`, { method: 'DELETE' });
    expect(src.made.at(-1)?.stopped).toBe(true);
  });

  it('returns the last N reconstructed packets in trace --json shape', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
    const source = src.made.at(-1);
    if (!source) throw new Error('no source');
    source.burst(30);
    // Packets finish once the reorder window has passed on the kernel clock.
    const packets = await waitFor('packets', async () => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${created.body.id}/packets?limit=20`);
      return r.body.length === 20 ? r.body : undefined;
    });
    expect(packets).toHaveLength(20);
    const p = packets[19] as Packet;
    expect(p.proto).toBe('udp');
    expect(p.fate).toBe('delivered');
    expect(p.hops.map((h) => [h.event, h.netns])).toEqual([['xmit', NS_A], ['recv', NS_B], ['consume', NS_B]]);
    // The newest last: ip ids grow with the synthetic packet number.
    expect((packets[19]?.hops[0]?.ipId ?? 0) > (packets[0]?.hops[0]?.ipId ?? 0)).toBe(true);
    const all = await api<Packet[]>(svc.url, `/api/sessions/${created.body.id}/packets`);
    expect(all.body).toHaveLength(30);
    await api(svc.url, `/api/sessions/${created.body.id}`, { method: 'DELETE' });
  });

  it.each([
    ['a number for filter', { filter: 5 }, 'bad-request', /filter: .*expected string/],
    ['a missing filter', {}, 'bad-request', /filter: /],
    ['an unknown field', { filter: '', colour: 'red' }, 'bad-request', /unknown field 'colour'/],
    ['a filter that does not parse', { filter: 'host 10.0.0.1 and' }, 'bad-filter', /bad filter/],
    ['an array body', [1, 2], 'bad-request', /expected object/],
  ])('rejects %s with 400 and a useful message', async (_what, body, code, message) => {
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toMatch(message);
    expect(JSON.stringify(r.body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it('points at the bad span of a filter', async () => {
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'host nope' });
    expect(r.status).toBe(400);
    expect(r.body.error.detail).toEqual({ offset: 5, length: 4 });
  });

  it('rejects malformed JSON, non-JSON bodies and oversized bodies', async () => {
    const bad = await api<ApiErrorBody>(svc.url, '/api/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"filter": ' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({ code: 'bad-request', message: 'the request body is not valid JSON' });
    const text = await api<ApiErrorBody>(svc.url, '/api/sessions', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'host 10.0.0.1' });
    expect(text.status).toBe(400);
    expect(text.body.error.message).toMatch(/Content-Type: application\/json/);
    const big = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
    expect(big.body.error).toEqual({ code: 'payload-too-large', message: 'the request body is too large (at most 16 KiB)' });
    // Valid JSON that is not an object says so, rather than "not valid JSON".
    for (const body of ['null', '"udp"', '5']) {
      const r = await api<ApiErrorBody>(svc.url, '/api/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status, body).toBe(400);
      expect(r.body.error.message, body).toMatch(/must be a JSON object/);
    }
    const array = await postJson<ApiErrorBody>(svc.url, '/api/sessions', ['udp']);
    expect(array.status).toBe(400);
    expect(array.body.error.message).toMatch(/expected object, received array/);
    const extra = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'udp', filtr: 'tcp' });
    expect(extra.body.error).toEqual({ code: 'bad-request', message: "unknown field 'filtr'" });
  });

  it('answers 405 with Allow for a method a known path does not take, 404 for unknown paths', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 405' });
    const cases: Array<[string, string, string]> = [
      ['PUT', '/api/sessions', 'GET, POST, HEAD'],
      ['DELETE', '/api/health', 'GET, HEAD'],
      ['POST', `/api/sessions/${created.body.id}`, 'GET, DELETE, HEAD'],
      ['POST', `/api/sessions/${created.body.id}/packets`, 'GET, HEAD'],
      ['PATCH', '/api/recordings', 'GET, POST, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await api<ApiErrorBody>(svc.url, path, { method });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get('allow')).toBe(allow);
      expect(r.body.error.code).toBe('method-not-allowed');
      expect(r.body.error.message).toContain(`${method} is not allowed`);
    }
    const unknown = await api<ApiErrorBody>(svc.url, '/api/sessions/abc/nothing', { method: 'PUT' });
    expect(unknown.status).toBe(404);
    await api(svc.url, `/api/sessions/${created.body.id}`, { method: 'DELETE' });
  });

  it('validates the packets query and session ids', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'icmp' });
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'limit=2.5']) {
      const r = await api<ApiErrorBody>(svc.url, `/api/sessions/${created.body.id}/packets?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.message).toMatch(/^limit: /);
    }
    const bad = await api<ApiErrorBody>(svc.url, '/api/sessions/..%2f..%2fetc/packets');
    expect(bad.status).toBe(404);
    const none = await api<ApiErrorBody>(svc.url, '/api/nothing-here');
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('not-found');
    await api(svc.url, `/api/sessions/${created.body.id}`, { method: 'DELETE' });
  });

  it('refuses requests from another origin or addressed to a non-loopback name (DNS rebinding)', async () => {
    const other = await api<ApiErrorBody>(svc.url, '/api/health', { headers: { origin: 'http://evil.example' } });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden-origin');
    const own = await api(svc.url, '/api/health', { headers: { origin: `http://127.0.0.1:${svc.port}` } });
    expect(own.status).toBe(200);
    const localhost = await api(svc.url.replace('127.0.0.1', 'localhost'), '/api/health', { headers: { origin: `http://localhost:${svc.port}` } });
    expect(localhost.status).toBe(200);
    // fetch will not forge Host; a raw request does.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: svc.port, path: '/api/health', headers: { host: `rebound.example:${svc.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('refuses a socket.io handshake from another origin', async () => {
    await expect(connect(svc.url, { extraHeaders: { origin: 'http://evil.example' } })).rejects.toThrow();
    await expect(connect(svc.url, { transports: ['polling'], extraHeaders: { origin: 'http://evil.example' } })).rejects.toThrow();
    const ok = await connect(svc.url, { extraHeaders: { origin: `http://127.0.0.1:${svc.port}` } });
    expect(ok.connected).toBe(true);
    ok.close();
  });

  it('acks subscribe errors for bad payloads and unknown sessions', async () => {
    const sock = await connect(svc.url);
    const bad = await sock.timeout(2000).emitWithAck('subscribe', { session: 'NOT AN ID' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    const unknown = await sock.timeout(2000).emitWithAck('subscribe', { session: 'abc123' });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'not-found' } });
    const weird = await sock.timeout(2000).emitWithAck('subscribe', 'abc' as unknown as { session: string });
    expect(weird.ok).toBe(false);
    sock.close();
  });
});

describe('live stream basics', () => {
  const src = syntheticFactory();
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, statsIntervalMs: 100 });
  });
  afterAll(async () => {
    await svc.close();
  });

  it.each([['websocket'], ['polling']])('delivers decodable batches and stats over %s', async (transport) => {
    const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `udp and port ${transport === 'polling' ? 1 : 2}` });
    const sock = await connect(svc.url, { transports: [transport] });
    expect(sock.io.engine.transport.name).toBe(transport);
    const monoBefore = Number(process.hrtime.bigint());
    const wallBefore = Date.now();
    const ack = await sock.timeout(2000).emitWithAck('subscribe', { session: s.body.id });
    const [monoAfter, wallAfter] = [Number(process.hrtime.bigint()), Date.now()];
    if (!ack.ok) throw new Error(ack.error.message);
    expect(ack.session.id).toBe(s.body.id);
    expect(ack.dropReasons['12']).toBe('NETFILTER_DROP');
    // The host's clock pair (same machine: the same CLOCK_MONOTONIC as bpftrace's nsecs).
    const clock = ack.clock;
    expect(clock?.monotonicNs).toBeGreaterThanOrEqual(monoBefore);
    expect(clock?.monotonicNs).toBeLessThanOrEqual(monoAfter);
    expect(clock?.epochMs).toBeGreaterThanOrEqual(wallBefore);
    expect(clock?.epochMs).toBeLessThanOrEqual(wallAfter + 1);
    const batches: HopBatch[] = [];
    sock.on('hops', (m) => {
      expect(m.session).toBe(s.body.id);
      batches.push(decodeBatch(batchBytes(m.batch)));
    });
    const stats = new Promise<StreamStats>((resolve) => sock.on('stats', (st) => st.events > 0 && resolve(st)));
    src.made.at(-1)?.burst(10);
    await waitFor('30 events', () => batches.reduce((a, b) => a + b.events.length, 0) === 30);
    expect(batches[0]?.seq).toBe(1);
    expect(batches[0]?.events[0]).toMatchObject({ kind: 'xmit', src: '10.250.0.1', dst: '10.250.0.2', dport: 5000, netns: NS_A });
    const st = await stats;
    expect(st).toMatchObject({ session: s.body.id, events: 30, droppedBatches: 0, bpftrace: { state: 'running', restarts: 0 } });
    // Unsubscribed: no more batches.
    expect(await sock.timeout(2000).emitWithAck('unsubscribe', { session: s.body.id })).toEqual({ ok: true });
    const n = batches.length;
    src.made.at(-1)?.burst(10);
    await new Promise((r) => setTimeout(r, 300));
    expect(batches.length).toBe(n);
    sock.close();
  });
});

describe('the service\'s own traffic', () => {
  it('is left out of sessions, so a broad filter does not stream its own stream', async () => {
    const src = syntheticFactory();
    const svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet });
    try {
      const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: '' });
      const sock = await connect(svc.url);
      await sock.timeout(2000).emitWithAck('subscribe', { session: s.body.id });
      const got: HopBatch[] = [];
      sock.on('hops', (m) => got.push(decodeBatch(batchBytes(m.batch))));
      const self = statSync('/proc/self/ns/net').ino;
      const source = src.made[0] as SyntheticSource;
      source.emitHop({ netns: self, sport: svc.port, dport: 50000 });
      source.emitHop({ netns: self, sport: 50000, dport: svc.port });
      source.emitHop({ netns: self, sport: 50000, dport: 8080 });
      source.emitHop({ netns: NS_A, sport: svc.port, dport: 50000 });
      await waitFor('a batch', () => got.length > 0);
      await new Promise((r) => setTimeout(r, 200));
      const events = got.flatMap((b) => b.events);
      expect(events.map((e) => [e.netns === self, e.sport, e.dport])).toEqual([[true, 50000, 8080], [false, svc.port, 50000]]);
      sock.close();
    } finally {
      await svc.close();
    }
  });
});

describe('dashboard files', () => {
  let svc: RunningService;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ht-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>hoptrace</title>');
    writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
    svc = await startService({ port: 0, capabilities: CAPS, namespaceNames: null, webDist: dir, log: quiet });
  });
  afterAll(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves web/dist, index.html for client-side routes, and JSON 404s under /api', async () => {
    const index = await api<string>(svc.url, '/');
    expect(index.status).toBe(200);
    expect(index.body).toContain('<title>hoptrace</title>');
    const asset = await api<string>(svc.url, '/assets/app-1234.js');
    expect(asset.body).toBe('console.log(1)');
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    const route = await api<string>(svc.url, '/sessions/abc');
    expect(route.body).toContain('<title>hoptrace</title>');
    expect(route.headers.get('cache-control')).toBe('no-cache');
    const apiMiss = await api<ApiErrorBody>(svc.url, '/api/nope');
    expect(apiMiss.body.error.code).toBe('not-found');
    const post = await api<ApiErrorBody>(svc.url, '/anything', { method: 'POST' });
    expect(post.status).toBe(404);
    expect(post.body.error.code).toBe('not-found');
  });
});

describe('service with a token', () => {
  const src = syntheticFactory();
  let svc: RunningService;
  const token = 'correct-horse-battery';

  beforeAll(async () => {
    svc = await startService({ port: 0, token, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet });
  });
  afterAll(async () => {
    await svc.close();
  });

  it('answers 401 without the bearer token and 200 with it', async () => {
    const none = await api<ApiErrorBody>(svc.url, '/api/health');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await api(svc.url, '/api/health', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const basic = await api(svc.url, '/api/health', { headers: { authorization: `Basic ${token}` } });
    expect(basic.status).toBe(401);
    const right = await api(svc.url, '/api/health', { headers: { authorization: `Bearer ${token}` } });
    expect(right.status).toBe(200);
    const post = await postJson(svc.url, '/api/sessions', { filter: '' });
    expect(post.status).toBe(401);
  });

  it('refuses a socket.io connection without the token in its handshake', async () => {
    // Refused by allowRequest, before the handshake: the client only sees the transport fail.
    await expect(connect(svc.url)).rejects.toThrow('websocket error');
    await expect(connect(svc.url, { query: { token: 'wrong' } })).rejects.toThrow('websocket error');
    const ok = await connect(svc.url, { query: { token } });
    expect(ok.connected).toBe(true);
    ok.close();
  });
});

describe('service start-up safety', () => {
  it('refuses a non-loopback address without a token', async () => {
    await expect(startService({ host: '0.0.0.0', port: 0, capabilities: CAPS, namespaceNames: null, log: quiet })).rejects.toThrow(/without a token/);
  });

  it('reports a port in use', async () => {
    const a = await startService({ port: 0, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet });
    try {
      await expect(startService({ port: a.port, capabilities: CAPS, namespaceNames: null, log: quiet })).rejects.toThrow(/already in use/);
    } finally {
      await a.close();
    }
  });
});

describe('session lifecycle', () => {
  let svc: RunningService | undefined;
  afterEach(async () => {
    await svc?.close();
    svc = undefined;
  });

  it('stops a session nobody watches after the grace period, but not a watched one', async () => {
    const src = syntheticFactory();
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, graceMs: 1000 });
    const lonely = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'tcp' });
    const watched = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
    const sock = await connect(svc.url);
    const ack = (await sock.timeout(2000).emitWithAck('subscribe', { session: watched.body.id })) as SubscribeAck;
    expect(ack.ok).toBe(true);
    // Polled through the list, which (unlike GET /api/sessions/:id) does not count as interest.
    const listed = async (id: string): Promise<boolean> => (await api<SessionList>(svc!.url, '/api/sessions')).body.sessions.some((x) => x.id === id);
    await waitFor('the unwatched session to be reaped', async () => !(await listed(lonely.body.id)), 10_000);
    expect(src.made.find((s) => s.filter === 'tcp')?.stopped).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    const still = await api<SessionInfo>(svc.url, `/api/sessions/${watched.body.id}`);
    expect(still.status).toBe(200);
    expect(still.body.watchers).toBe(1);
    // Once its watcher leaves, it goes too — and the subscriber of a deleted session is told.
    sock.close();
    await waitFor('the watched session to be reaped after its watcher left', async () => !(await listed(watched.body.id)), 10_000);
    expect((await api(svc.url, `/api/sessions/${watched.body.id}`)).status).toBe(404);
  });

  it('keeps a session the service started itself (pinned) past the grace period; DELETE still ends it', async () => {
    const src = syntheticFactory();
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, graceMs: 300 });
    const pinned = await svc.registry.create('udp', undefined, 1, { pinned: true });
    const plain = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'tcp' });
    const listed = async (): Promise<SessionInfo[]> => [...(await api<SessionList>(svc!.url, '/api/sessions')).body.sessions];
    await waitFor('the unpinned session to be reaped', async () => !(await listed()).some((x) => x.id === plain.body.id), 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const still = (await listed()).find((x) => x.id === pinned.id);
    expect(still?.pinned).toBe(true);
    expect(still?.state).toBe('running');
    expect((await api(svc.url, `/api/sessions/${pinned.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(src.made.find((x) => x.filter === 'udp')?.stopped).toBe(true);
  });

  it('tells subscribers when a session is deleted', async () => {
    const src = syntheticFactory();
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet });
    const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: '' });
    const sock = await connect(svc.url);
    await sock.timeout(2000).emitWithAck('subscribe', { session: s.body.id });
    const stopped = new Promise<SessionStateMessage>((resolve) => sock.on('session-state', (m) => m.state === 'stopped' && resolve(m)));
    await api(svc.url, `/api/sessions/${s.body.id}`, { method: 'DELETE' });
    expect((await stopped).session).toBe(s.body.id);
    sock.close();
  });

  it('reports a source that dies, restarts it with back-off, and streams again', async () => {
    const src = syntheticFactory();
    svc = await startService({
      port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet,
      backoff: { initialMs: 100, maxMs: 400, stableMs: 60_000 },
    });
    const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: '' });
    const sock: TestSocket = await connect(svc.url);
    const states: SessionStateMessage[] = [];
    sock.on('session-state', (m) => states.push(m));
    await sock.timeout(2000).emitWithAck('subscribe', { session: s.body.id });
    src.made[0]?.die('ERROR: something broke in the kernel');
    await waitFor('restarting', () => states.find((m) => m.state === 'restarting'));
    const restarting = states.find((m) => m.state === 'restarting');
    expect(restarting?.exit?.stderr).toBe('ERROR: something broke in the kernel');
    expect(restarting?.retryInMs).toBe(100);
    const running = await waitFor('running again', () => states.find((m) => m.state === 'running'));
    expect(src.made).toHaveLength(2);
    // The gap is told in the hops' own clock: from the death to the new attach, at least the back-off.
    expect(running.gap).toBeDefined();
    expect((running.gap?.toNs ?? 0) - (running.gap?.fromNs ?? 0)).toBeGreaterThanOrEqual(100e6);
    expect(running.gap?.toNs).toBeLessThanOrEqual(Number(process.hrtime.bigint()));
    expect(running.message).toMatch(/were not seen/);
    // Dies again at once: the back-off doubles.
    src.made[1]?.die('again');
    await waitFor('second restart', () => states.filter((m) => m.state === 'restarting').length === 2);
    expect(states.filter((m) => m.state === 'restarting')[1]?.retryInMs).toBe(200);
    await waitFor('running again', () => states.filter((m) => m.state === 'running').length === 2);
    const info = await api<SessionInfo>(svc.url, `/api/sessions/${s.body.id}`);
    expect(info.body.bpftrace.restarts).toBe(2);
    expect(info.body.bpftrace.lastExit?.stderr).toBe('again');
    // And events flow from the new source.
    const got = new Promise<void>((resolve) => sock.once('hops', () => resolve()));
    src.made[2]?.burst(5);
    await got;
    sock.close();
  });

  it('answers 500 trace-failed with bpftrace stderr when the first start fails', async () => {
    svc = await startService({
      port: 0, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet,
      source: (f) => new SyntheticSource(f, 'ERROR: Looks like the BPF stack limit of 512 bytes is exceeded'),
    });
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: '' });
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('trace-failed');
    expect(r.body.error.message).toMatch(/BPF stack limit/);
    expect((await api<SessionList>(svc.url, '/api/sessions')).body.sessions).toHaveLength(0);
  });

  it('answers 503 cannot-trace when the host cannot trace', async () => {
    svc = await startService({
      port: 0, capabilities: { ...CAPS, canTrace: false, problems: ['hoptrace must run as root to attach kernel probes: run it with sudo.'] },
      namespaceNames: null, webDist: null, log: quiet,
    });
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: '' });
    expect(r.status).toBe(503);
    expect(r.body.error).toEqual({ code: 'cannot-trace', message: 'hoptrace must run as root to attach kernel probes: run it with sudo.' });
  });

  it('limits the number of bpftrace processes', async () => {
    const src = syntheticFactory();
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, maxFeeds: 2 });
    expect((await postJson(svc.url, '/api/sessions', { filter: 'tcp' })).status).toBe(201);
    expect((await postJson(svc.url, '/api/sessions', { filter: 'udp' })).status).toBe(201);
    // Same filter as an existing feed: fine.
    expect((await postJson(svc.url, '/api/sessions', { filter: 'tcp' })).status).toBe(201);
    const third = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'icmp' });
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('too-many-sessions');
  });

  it('stops every source on close()', async () => {
    const src = syntheticFactory();
    svc = await startService({ port: 0, source: src.factory, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet });
    await postJson(svc.url, '/api/sessions', { filter: 'tcp' });
    await postJson(svc.url, '/api/sessions', { filter: 'udp' });
    await svc.close();
    expect(src.made.map((s) => s.stopped)).toEqual([true, true]);
    await expect(api(svc.url, '/api/health')).rejects.toThrow();
  });
});
