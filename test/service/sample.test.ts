/**
 * Flow-sampled trace sessions of the service (`POST /api/sessions {filter, sample}`): a real
 * server on port 0 with a synthetic source (no root): the rate is validated (400 like every other
 * bad field), reported in the session's JSON, the subscribe ack, every `stats` message and the
 * packets endpoint's header, handed to the source, and part of what sessions share: two rates
 * never share a run. On a real lab (root) with real bpftrace: a sampled session's packets are
 * exactly the flows the kernel hash picks, each whole, while an unsampled session of the same
 * filter, in its own bpftrace, sees every flow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecording } from '../../shared/recording/index.js';
import { startService, type RunningService } from '../../server/service/index.js';
import type { SourceDepth } from '../../server/service/feed.js';
import {
  MAX_SAMPLE, SAMPLE_RATE_HEADER, type ApiErrorBody, type RecordingEntry, type RecordingList, type RecordingStatus, type SampledStats,
  type SessionInfo, type SessionList,
} from '../../shared/api-types.js';
import type { StreamStats } from '../../shared/stream-events.js';
import type { Packet } from '../../shared/packet.js';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { NEEDS_ROOT } from '../helpers/root.js';
import { sampledFlows, sendFlows } from '../helpers/traffic.js';
import { labInodes, randomPrefix } from '../helpers/cli.js';
import { api, connect, isRoot, myBpftracePids, postJson, waitFor, SyntheticSource, SYNTHETIC_CAPS as CAPS } from './helpers.js';

const quiet = (): void => undefined;

describe('sampled trace sessions (synthetic source)', () => {
  /** Every source the service made, with the sample rate it was asked for. */
  const made: Array<{ source: SyntheticSource; filter: string; sampleRate: number }> = [];
  let svc: RunningService;

  beforeAll(async () => {
    svc = await startService({
      port: 0, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, statsIntervalMs: 100,
      source: (filter: string, depth?: SourceDepth) => {
        const source = new SyntheticSource(filter);
        made.push({ source, filter, sampleRate: depth?.sampleRate ?? 1 });
        return source;
      },
    });
  });
  afterAll(async () => {
    await svc.close();
  });

  it.each([
    ['0', 0], ['65537', 65537], ['1.5', 1.5], ['"4"', '4'], ['-4', -4], ['null', null], ['true', true],
  ])('should answer 400 bad-request for sample %s and start nothing', async (_label, sample) => {
    const before = made.length;
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'udp', sample });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-request');
    expect(r.body.error.message).toMatch(/^sample: /);
    expect(made.length).toBe(before);
  });

  it('should report a sampled session\'s rate in its JSON and hand the rate to its source', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 7001', sample: 16 });
    expect(created.status).toBe(201);
    expect(created.body.sampleRate).toBe(16);
    expect(made.at(-1)).toMatchObject({ filter: 'udp and port 7001', sampleRate: 16 });
    const one = await api<SessionInfo>(svc.url, `/api/sessions/${created.body.id}`);
    expect(one.body.sampleRate).toBe(16);
    const list = await api<SessionList>(svc.url, '/api/sessions');
    expect(list.body.sessions.find((s) => s.id === created.body.id)?.sampleRate).toBe(16);
    // The largest rate is taken; without `sample` a session follows every flow.
    const widest = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 7002', sample: MAX_SAMPLE });
    expect(widest.body.sampleRate).toBe(MAX_SAMPLE);
    const all = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 7003' });
    expect(all.body.sampleRate).toBe(1);
    expect(made.at(-1)?.sampleRate).toBe(1);
    for (const id of [created.body.id, widest.body.id, all.body.id]) await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
  });

  it('should share a run only between sessions of equal filter, depth and sample rate', async () => {
    const before = made.length;
    const post = async (body: object): Promise<SessionInfo> => {
      const r = await postJson<SessionInfo>(svc.url, '/api/sessions', body);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    };
    const a16 = await post({ filter: 'udp and port 7010', sample: 16 });
    const b4 = await post({ filter: 'udp  and port 7010', sample: 4 });
    const c16 = await post({ filter: 'udp and port  7010', sample: 16 });
    const dAll = await post({ filter: 'udp and port 7010' });
    const eOne = await post({ filter: 'udp and port 7010', sample: 1 });
    // Three runs: 1 in 16 (a, c), 1 in 4 (b), every flow (d, e: `sample: 1` is the default).
    const runs = made.slice(before);
    expect(runs.map((r) => r.sampleRate)).toEqual([16, 4, 1]);
    const info = async (s: SessionInfo): Promise<SessionInfo> => (await api<SessionInfo>(svc.url, `/api/sessions/${s.id}`)).body;
    expect((await info(a16)).bpftrace.sharedBy).toBe(2);
    expect((await info(c16)).bpftrace.sharedBy).toBe(2);
    expect((await info(b4)).bpftrace.sharedBy).toBe(1);
    expect((await info(dAll)).bpftrace.sharedBy).toBe(2);
    expect((await info(eOne)).sampleRate).toBe(1);
    // Events of the 1-in-4 run reach its session only.
    const b4Source = runs[1]?.source as SyntheticSource;
    b4Source.burst(5);
    await waitFor('b4 events', async () => (await info(b4)).events >= 15);
    expect((await info(a16)).events).toBe(0);
    expect((await info(dAll)).events).toBe(0);
    for (const s of [a16, b4, c16, dAll, eOne]) await api(svc.url, `/api/sessions/${s.id}`, { method: 'DELETE' });
  });

  it('should carry the rate in the subscribe ack, every stats message and the packets header', async () => {
    const sampled = (await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 7020', sample: 64 })).body;
    const full = (await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp and port 7020' })).body;
    const socket = await connect(svc.url);
    try {
      const stats = new Map<string, Array<StreamStats & SampledStats>>();
      socket.on('stats', (m) => stats.set(m.session, [...(stats.get(m.session) ?? []), m]));
      for (const s of [sampled, full]) {
        const ack = await socket.timeout(5000).emitWithAck('subscribe', { session: s.id });
        if (!ack.ok) throw new Error(ack.error.message);
        expect(ack.session.sampleRate).toBe(s === sampled ? 64 : 1);
      }
      made.find((m) => m.filter === 'udp and port 7020' && m.sampleRate === 64)?.source.burst(3);
      await waitFor('two stats messages per session', () => (stats.get(sampled.id)?.length ?? 0) >= 2 && (stats.get(full.id)?.length ?? 0) >= 2);
      expect(stats.get(sampled.id)?.every((m) => m.sampleRate === 64)).toBe(true);
      expect(stats.get(full.id)?.every((m) => m.sampleRate === 1)).toBe(true);

      const packets = await waitFor('the sampled session\'s packets', async () => {
        const r = await api<Packet[]>(svc.url, `/api/sessions/${sampled.id}/packets`);
        return r.body.length >= 3 ? r : undefined;
      });
      // The body stays the array of `trace --json` packets; the rate rides in a header.
      expect(Array.isArray(packets.body)).toBe(true);
      expect(packets.headers.get(SAMPLE_RATE_HEADER)).toBe('64');
      expect((await api(svc.url, `/api/sessions/${full.id}/packets`)).headers.get(SAMPLE_RATE_HEADER)).toBe('1');
    } finally {
      socket.close();
      for (const s of [sampled, full]) await api(svc.url, `/api/sessions/${s.id}`, { method: 'DELETE' });
    }
  });
});

describe('recording a sampled session of the service', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hoptrace-sample-rec-'));
  const sources: SyntheticSource[] = [];
  let svc: RunningService;

  beforeAll(async () => {
    svc = await startService({
      port: 0, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet, dataDir,
      topology: async () => ({ namespaces: [], errors: [], discoveredAt: 1, durationMs: 1 }),
      source: (filter: string) => {
        const s = new SyntheticSource(filter);
        sources.push(s);
        return s;
      },
    });
  });
  afterAll(async () => {
    await svc.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('should write the session\'s rate into the file, and list it with the recording', async () => {
    const session = (await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp', sample: 16 })).body;
    const started = await postJson<RecordingStatus>(svc.url, `/api/sessions/${session.id}/recording`, { name: 'sampled-16' });
    expect(started.status).toBe(201);
    sources.at(-1)?.burst(4);
    await waitFor('events recorded', async () => ((await api<SessionInfo>(svc.url, `/api/sessions/${session.id}`)).body.recordingStatus?.events ?? 0) >= 12);
    const stopped = await api<RecordingEntry>(svc.url, `/api/sessions/${session.id}/recording`, { method: 'DELETE' });
    expect(stopped.status).toBe(200);
    expect(stopped.body.sampleRate).toBe(16);
    const list = await api<RecordingList>(svc.url, '/api/recordings');
    expect(list.body.recordings.find((r) => r.name === 'sampled-16')?.sampleRate).toBe(16);
    expect(decodeRecording(new Uint8Array(readFileSync(join(dataDir, 'sampled-16.hoptrace')))).header.sampleRate).toBe(16);
  });
});

describe.skipIf(!isRoot)(`sampled sessions with real bpftrace on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  let svc: RunningService;
  // A port of our own, so other labs' traffic does not match the filter.
  const port = 20000 + Math.floor(Math.random() * 20000);

  beforeAll(async () => {
    lab = labFor(randomPrefix('ss'));
    await labUp(lab);
    roles = labInodes(lab);
    svc = await startService({ port: 0, webDist: null, log: quiet });
  }, 60_000);

  afterAll(async () => {
    await svc?.close();
    if (lab) await labDown(lab);
    expect(myBpftracePids()).toEqual([]);
  }, 60_000);

  it('should run one bpftrace per rate, the sampled one showing exactly the hashed flows, each whole', async () => {
    const rate = 4;
    const perFlow = 3;
    // Which flows the kernel hash follows (sampledFlows checks it picks some, not all).
    const { sports, expected } = sampledFlows(lab, port, rate);

    const filter = `udp and dst port ${port}`;
    const sampled = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter, sample: rate });
    expect(sampled.status, JSON.stringify(sampled.body)).toBe(201);
    const full = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter });
    expect(full.status, JSON.stringify(full.body)).toBe(201);
    expect(sampled.body.sampleRate).toBe(rate);
    expect(full.body.sampleRate).toBe(1);
    // Two runs of bpftrace: the rates do not share one.
    expect(sampled.body.bpftrace.pid).toBeGreaterThan(0);
    expect(full.body.bpftrace.pid).toBeGreaterThan(0);
    expect(sampled.body.bpftrace.pid).not.toBe(full.body.bpftrace.pid);
    expect(sampled.body.bpftrace.sharedBy).toBe(1);
    expect(myBpftracePids().length).toBeGreaterThanOrEqual(2);

    await sendFlows(lab, port, perFlow, sports);
    const labPackets = async (id: string): Promise<{ packets: Packet[]; header: string | null }> => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${id}/packets?limit=1000`);
      return { packets: r.body.filter((p) => p.hops.every((h) => roles.has(h.netns)) && p.dport === port), header: r.headers.get(SAMPLE_RATE_HEADER) };
    };
    const all = await waitFor('every flow in the unsampled session', async () => {
      const r = await labPackets(full.body.id);
      return r.packets.length >= sports.length * perFlow ? r : undefined;
    }, 20_000, 250);
    expect(new Set(all.packets.map((p) => p.sport)).size).toBe(sports.length);
    expect(all.header).toBe('1');

    const some = await waitFor('the sampled flows in the sampled session', async () => {
      const r = await labPackets(sampled.body.id);
      return r.packets.length >= expected.length * perFlow ? r : undefined;
    }, 20_000, 250);
    // Give late packets a moment: none of another flow may follow.
    await new Promise((r) => setTimeout(r, 500));
    const settled = await labPackets(sampled.body.id);
    expect([...new Set(settled.packets.map((p) => p.sport))].sort((a, b) => a - b)).toEqual(expected);
    expect(settled.packets).toHaveLength(expected.length * perFlow);
    expect(some.header).toBe(String(rate));
    for (const p of settled.packets) {
      expect(p.hops.map((h) => `${roles.get(h.netns)}/${h.ifname}/${h.event}`)).toEqual(expect.arrayContaining(['pod1/eth0/xmit', 'node/veth-pod1/rx', 'pod2/eth0/recv']));
    }
    const info = (await api<SessionInfo>(svc.url, `/api/sessions/${sampled.body.id}`)).body;
    expect(info.sampleRate).toBe(rate);
    expect(info.packets).toBeLessThan((await api<SessionInfo>(svc.url, `/api/sessions/${full.body.id}`)).body.packets);
  }, 120_000);
});
