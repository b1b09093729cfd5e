/**
 * Sessions with depth (`POST /api/sessions {filter, netfilter, notes}`): validated at the
 * boundary, never sharing a feed with sessions of another depth, notes and netfilter events on
 * the socket as `depth` batches, and packets in /packets carrying `netfilter` steps and `notes`
 * as `trace --json` prints them.
 *
 * The first part stands in for bpftrace and nft (synthetic sources, no root). The second runs
 * the real thing on a lab of its own (root): the node's FORWARD drop rule is named on the socket,
 * in /packets, and in `hoptrace replay --json` of a recording of the session; no hoptrace table
 * outlives the service.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiErrorBody, Capabilities, RecordingList, RecordingStatus, SessionInfo } from '../../shared/api-types.js';
import type { FilterAst } from '../../shared/filter/index.js';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { decodeDepthBatch, type DepthBatch } from '../../shared/netfilter/wire.js';
import { NetfilterStepsQueue } from '../../shared/netfilter/steps-queue.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { decodeBatch } from '../../shared/wire.js';
import { batchBytes, type SubscribeAck } from '../../shared/stream-events.js';
import { startService, type RunningService } from '../../server/service/index.js';
import type { NetfilterSource, NetfilterSourceEvents } from '../../server/service/depth.js';
import { CannotTraceError } from '../../server/trace-session.js';
import { labDown, labFor, labUp, type Lab } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import { hoptraceTables, ownTables } from '../../server/netfilter/nft.js';
import { NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix } from '../helpers/cli.js';
import type { SyntheticSource } from './helpers.js';
import {
  NS_A, NS_B, api, connect, isRoot, myBpftracePids, postJson, runCli, syntheticFactory, waitFor, type TestSocket,
} from './helpers.js';

const CAPS: Capabilities = {
  detectedAt: new Date(0).toISOString(), root: true, kernel: '6.18.0-test', bpftrace: { version: 'v0.17.0' }, btf: true,
  tracefs: '/sys/kernel/tracing',
  probes: { tracepoint: { available: true, reason: null }, kprobe: { available: false, reason: 'test' }, kfunc: { available: false, reason: 'test' } },
  tracepoints: {}, canTrace: true, problems: [],
};

/** Stands in for nft: the test says which events it "saw". */
class FakeNetfilter extends EventEmitter<NetfilterSourceEvents> implements NetfilterSource {
  /** The next start fails as nft's preflight does on a host without nftables. */
  static failNext = false;
  filter: FilterAst | undefined;
  stopped = false;
  readonly netns = new Set<number>();
  async start(filter: FilterAst): Promise<void> {
    this.filter = filter;
    if (FakeNetfilter.failNext) {
      FakeNetfilter.failNext = false;
      throw new CannotTraceError(['netfilter tracing needs nft (nftables): install it with `apt-get install nftables`.']);
    }
    if (filter.kind === 'all') this.emit('warning', 'netfilter tracing without a filter: limited to 100 packets/s per namespace');
    await new Promise((r) => setTimeout(r, 5));
  }
  noteNetns(netns: number): void {
    this.netns.add(netns);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

interface Client {
  readonly socket: TestSocket;
  readonly ack: Extract<SubscribeAck, { ok: true }>;
  readonly events: HopEvent[];
  readonly depth: DepthBatch[];
}

async function subscribe(url: string, session: string): Promise<Client> {
  const socket = await connect(url);
  const events: HopEvent[] = [];
  const depth: DepthBatch[] = [];
  socket.on('hops', (m) => { events.push(...decodeBatch(batchBytes(m.batch)).events); });
  socket.on('depth', (m) => { depth.push(decodeDepthBatch(batchBytes(m.batch))); });
  const ack = await socket.timeout(5000).emitWithAck('subscribe', { session });
  if (!ack.ok) throw new Error(ack.error.message);
  return { socket, ack, events, depth };
}

const nowNs = (): number => Number(process.hrtime.bigint());

describe('sessions with depth (synthetic sources)', () => {
  let svc: RunningService;
  const hops = syntheticFactory();
  const nfs: FakeNetfilter[] = [];
  const clients: TestSocket[] = [];

  beforeAll(async () => {
    svc = await startService({
      port: 0, webDist: null, log: () => undefined, capabilities: CAPS, namespaceNames: null,
      source: hops.factory,
      netfilterSource: () => {
        const f = new FakeNetfilter();
        nfs.push(f);
        return f;
      },
      detectNotes: () => Promise.resolve({ deep: false, missingTracepoints: new Set(), notes: [] }),
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await svc?.close();
  });

  it('should refuse depth flags that are not booleans, naming the field', async () => {
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'udp', netfilter: 'yes' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-request');
    expect(r.body.error.message).toContain('netfilter');
  });

  it('should give each depth its own feed, and share one between sessions of equal filter and depth', async () => {
    const plain = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
    const deep = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp', netfilter: true, notes: true });
    const deep2 = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: ' udp ', netfilter: true, notes: true });
    const nfOnly = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp', netfilter: true });
    for (const r of [plain, deep, deep2, nfOnly]) expect(r.status).toBe(201);
    expect(plain.body.depth).toEqual({ netfilter: false, notes: false });
    expect(deep.body.depth).toEqual({ netfilter: true, notes: true });
    expect(nfOnly.body.depth).toEqual({ netfilter: true, notes: false });
    // plain, deep (shared by deep2), nfOnly: three hop sources and two netfilter traces.
    expect(hops.made).toHaveLength(3);
    expect(nfs).toHaveLength(2);
    const info = await api<SessionInfo>(svc.url, `/api/sessions/${deep2.body.id}`);
    expect(info.body.bpftrace.sharedBy).toBe(2);
    expect((await api<SessionInfo>(svc.url, `/api/sessions/${plain.body.id}`)).body.bpftrace.sharedBy).toBe(1);
    // The nft trace got the session's filter, compiled from the same canonical text.
    expect(nfs[0]?.filter?.kind).not.toBe('all');
    for (const id of [plain.body.id, deep.body.id, deep2.body.id, nfOnly.body.id]) await api(svc.url, `/api/sessions/${id}`, { method: 'DELETE' });
    expect(nfs.every((f) => f.stopped)).toBe(true);
  });

  it('should stream notes and netfilter events as depth batches and attach them in /packets', async () => {
    const plain = (await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'host 10.250.0.2' })).body;
    const deep = (await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'host 10.250.0.2', netfilter: true, notes: true })).body;
    const a = await subscribe(svc.url, deep.id);
    const b = await subscribe(svc.url, plain.id);
    clients.push(a.socket, b.socket);
    const hopSource = hops.made[hops.made.length - 1] as SyntheticSource;
    const nf = nfs[nfs.length - 1] as FakeNetfilter;
    const plainSource = hops.made[hops.made.length - 2] as SyntheticSource;

    // One packet NS_A → NS_B (xmit, recv, consume), a route-lookup note on its skb in NS_B, and
    // the INPUT rule it met there, as nft would report it a moment later.
    const t = nowNs();
    const base = {
      cpu: 0, skb: 'abc123', ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 17, len: 60, ipId: 4242,
      src: '10.250.0.1', dst: '10.250.0.2', sport: 40000, dport: 5000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
    };
    const evs: HopEvent[] = [
      { ...base, kind: 'xmit', t, netns: NS_A },
      { ...base, kind: 'recv', t: t + 10_000, netns: NS_B },
      { ...base, kind: 'consume', t: t + 30_000, netns: NS_B },
    ];
    const note: HopNote = { kind: 'fib', t: t + 20_000, cpu: 0, skb: 'abc123', netns: NS_B, data: { table: 255, err: 0, dst: '10.250.0.2', dev: 'eth0' } };
    const step: NetfilterEvent = {
      ns: 'b', netns: NS_B, t: t + 40_000, traceId: 'c1b3cb05', family: 'ip', table: 'filter', chain: 'INPUT', hook: 'input',
      type: 'rule', rule: 'udp dport 5000 counter accept', handle: 7, verdict: 'accept', nat: null,
      packet: { iif: 'eth0', oif: null, family: 4, proto: 17, src: base.src, dst: base.dst, sport: base.sport, dport: base.dport, ipId: 4242, len: 60, tcpSeq: 0, icmpId: 0 },
    };
    hopSource.emit('hop', evs[0] as HopEvent);
    hopSource.emit('hop', evs[1] as HopEvent);
    hopSource.emit('note', note);
    hopSource.emit('hop', evs[2] as HopEvent);
    nf.emit('event', step);
    for (const ev of evs) plainSource.emit('hop', ev);
    // The feed told the nft trace about the namespaces its hops were seen in.
    expect([...nf.netns].sort()).toEqual([NS_A, NS_B]);

    await waitFor('a depth batch', () => a.depth.some((d) => d.netfilter.length > 0) && a.depth.some((d) => d.notes.length > 0));
    expect(a.depth.flatMap((d) => d.notes)).toEqual([note]);
    expect(a.depth.flatMap((d) => d.netfilter)).toEqual([step]);
    await waitFor('the hops', () => a.events.length >= 3 && b.events.length >= 3);

    // The client rebuilds the packet as the dashboard's worker does: the same steps come out.
    const rec = new Reconstructor({ nsName: () => null, dropReason: (c) => `reason-${c}` });
    const queue = new NetfilterStepsQueue();
    for (const ev of a.events) rec.push(ev);
    for (const n of a.depth.flatMap((d) => d.notes)) rec.pushNote(n);
    for (const e of a.depth.flatMap((d) => d.netfilter)) queue.add(e);
    const [rebuilt] = queue.flush(rec.flush());
    expect(rebuilt?.netfilter).toEqual([expect.objectContaining({ chain: 'INPUT', rule: 'udp dport 5000 counter accept', verdict: 'accept', afterHop: 1 })]);
    expect(rebuilt?.notes?.map((n) => [n.kind, n.afterHop])).toEqual([['fib', 1]]);

    // /packets: the server's reconstruction, with the same steps and notes (after the steps' wait).
    const viaRest = await waitFor('the packet with its steps', async () => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${deep.id}/packets`);
      return r.body.find((p) => p.hops.length === 3 && p.netfilter !== undefined);
    }, 5000, 100);
    expect(viaRest.netfilter).toEqual(rebuilt?.netfilter);
    expect(viaRest.notes).toEqual(rebuilt?.notes);
    const info = (await api<SessionInfo>(svc.url, `/api/sessions/${deep.id}`)).body;
    expect(info.depthEvents).toEqual({ notes: 1, netfilter: 1 });

    // The session without depth saw the same hops, and neither depth batches nor steps.
    const plainPackets = await waitFor('plain packets', async () => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${plain.id}/packets`);
      return r.body.length > 0 ? r.body : undefined;
    }, 5000, 100);
    expect(plainPackets[0]?.netfilter).toBeUndefined();
    expect(plainPackets[0]?.notes).toBeUndefined();
    expect(b.depth).toEqual([]);
  });

  it('should refuse a netfilter session the host cannot trace, naming the fix, and stop its bpftrace', async () => {
    FakeNetfilter.failNext = true;
    const before = hops.made.length;
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'tcp port 4242', netfilter: true });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('cannot-trace');
    expect(r.body.error.message).toContain('apt-get install nftables');
    // Its bpftrace started beside the failed nft trace, and was stopped with it.
    const src = hops.made[before];
    expect(src?.stopped).toBe(true);
    const list = await api<{ sessions: SessionInfo[] }>(svc.url, '/api/sessions');
    expect(list.body.sessions.some((x) => x.filter === 'tcp port 4242')).toBe(false);
    // The filter is free again: a retry gets a fresh feed.
    const again = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'tcp port 4242', netfilter: true });
    expect(again.status).toBe(201);
    expect(hops.made.length).toBe(before + 2);
  });

  it('should keep the CLI rule without a filter: the netfilter trace is rate-limited and the session says so', async () => {
    const r = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: '', netfilter: true });
    expect(r.status).toBe(201);
    expect(nfs[nfs.length - 1]?.filter?.kind).toBe('all');
    expect(r.body.depthWarnings?.join(' ')).toMatch(/limited to 100 packets\/s/);
  });
});

describe.skipIf(!isRoot)(`sessions with netfilter on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let svc: RunningService;
  let inodes: Set<number>;
  let dataDir: string;
  let client: Client | undefined;

  beforeAll(async () => {
    lab = labFor(randomPrefix('sd'));
    await labUp(lab);
    inodes = new Set(Object.values(lab.ns).map((n) => statSync(`/run/netns/${n}`).ino));
    dataDir = mkdtempSync(join(tmpdir(), 'hoptrace-depth-'));
    svc = await startService({ port: 0, webDist: null, log: () => undefined, dataDir });
  }, 60_000);

  afterAll(async () => {
    client?.socket.close();
    await svc?.close();
    // Every table this process added, of either family, is gone once the service closed.
    if (lab) {
      for (const ns of Object.values(lab.ns)) {
        expect((await ownTables(`/run/netns/${ns}`)).filter((t) => t.name.startsWith(`hoptrace_${process.pid}_`))).toEqual([]);
      }
      await labDown(lab);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    expect(myBpftracePids()).toEqual([]);
  }, 60_000);

  const forwardDrop = (blockedPort: number) => expect.objectContaining({
    hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD', type: 'rule', verdict: 'drop', rule: `udp dport ${blockedPort} counter drop`,
  });

  it('should name the FORWARD drop rule on the socket, in /packets and in a replay of its recording; notes in a notes session', async () => {
    // A notes session with the same filter: a feed (bpftrace) of its own.
    const withNotes = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `udp and dst port ${lab.blockedPort}`, notes: true });
    expect(withNotes.status, JSON.stringify(withNotes.body)).toBe(201);
    expect(withNotes.body.depth).toEqual({ netfilter: false, notes: true });
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `udp and dst port ${lab.blockedPort}`, netfilter: true });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const session = created.body;
    expect(session.depth).toEqual({ netfilter: true, notes: false });
    expect(session.bpftrace.pid).not.toBe(withNotes.body.bpftrace.pid);
    // The trace's table is in the lab's namespaces.
    for (const ns of Object.values(lab.ns)) {
      expect((await hoptraceTables(`/run/netns/${ns}`)).some((t) => t.startsWith(`hoptrace_${process.pid}_`))).toBe(true);
    }
    // The node's bridge (br0) gets a bridge-family table too.
    await expect.poll(async () => (await hoptraceTables(`/run/netns/${lab.ns.node}`, 'bridge')).some((t) => t.startsWith(`hoptrace_${process.pid}_`)), { timeout: 10_000 }).toBe(true);
    const c = await subscribe(svc.url, session.id);
    client = c;
    const rec = await postJson<RecordingStatus>(svc.url, `/api/sessions/${session.id}/recording`, { name: `depth-${lab.prefix}` });
    expect(rec.status).toBe(201);

    const node = statSync(`/run/netns/${lab.ns.node}`).ino;
    const onSocket = (): NetfilterEvent | undefined => c.depth.flatMap((d) => d.netfilter)
      .find((e) => e.netns === node && e.chain === 'FORWARD' && e.verdict === 'drop');
    const inRest = async (): Promise<Packet | undefined> => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${session.id}/packets?limit=1000`);
      return r.body.find((p) => p.fate === 'dropped' && p.dport === lab.blockedPort && p.hops.every((h) => inodes.has(h.netns))
        && (p.netfilter ?? []).some((s) => s.verdict === 'drop'));
    };
    const noted = async (): Promise<Packet | undefined> => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${withNotes.body.id}/packets?limit=1000`);
      return r.body.find((p) => p.fate === 'dropped' && p.dport === lab.blockedPort && p.hops.every((h) => inodes.has(h.netns))
        && (p.notes ?? []).some((n) => n.kind === 'fib' && n.ns === lab.ns.node));
    };
    let dropped: Packet | undefined;
    let withNote: Packet | undefined;
    await waitFor('the drop on the socket and in /packets', async () => {
      await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
      await new Promise((r) => setTimeout(r, 700));
      dropped = await inRest();
      withNote = await noted();
      return onSocket() !== undefined && dropped !== undefined && withNote !== undefined;
    }, 40_000, 0);
    // The notes session: the node's route lookup toward ext, at the node hop it followed; no steps.
    const fib = withNote?.notes?.find((n) => n.kind === 'fib' && n.ns === lab.ns.node);
    expect(fib?.data.dst).toBe(lab.addr.ext);
    expect(withNote?.hops[fib?.afterHop ?? -1]?.ns).toBe(lab.ns.node);
    expect(withNote?.netfilter).toBeUndefined();
    // ... and the netfilter session has no notes.
    expect(dropped?.notes).toBeUndefined();

    expect(onSocket()).toMatchObject({ ns: lab.ns.node, table: 'filter', chain: 'FORWARD', rule: `udp dport ${lab.blockedPort} counter drop`, verdict: 'drop' });
    const step = dropped?.netfilter?.find((s) => s.verdict === 'drop');
    expect(step).toEqual(forwardDrop(lab.blockedPort));
    expect(step?.ns).toBe(lab.ns.node);
    // Placed after the node hop the packet was last seen at.
    expect(dropped?.hops[step?.afterHop ?? -1]?.ns).toBe(lab.ns.node);

    // The recording keeps the steps: `replay --json` attaches them as the session did live.
    const stopped = await api<{ name: string }>(svc.url, `/api/sessions/${session.id}/recording`, { method: 'DELETE' });
    expect(stopped.status).toBe(200);
    const library = await api<RecordingList>(svc.url, '/api/recordings');
    expect(library.body.recordings.find((x) => x.name === `depth-${lab.prefix}`)?.depth).toEqual({ netfilter: true, notes: false });
    const r = await runCli(['replay', '--json', join(dataDir, `depth-${lab.prefix}.hoptrace`)]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const replayed = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => inodes.has(h.netns)) && p.dport === lab.blockedPort && p.fate === 'dropped');
    expect(replayed.length).toBeGreaterThan(0);
    expect(replayed.every((p) => Array.isArray(p.netfilter))).toBe(true);
    expect(replayed.some((p) => p.netfilter?.some((s) => s.verdict === 'drop' && s.chain === 'FORWARD'))).toBe(true);
    const again = replayed.find((p) => p.id === dropped?.id);
    if (again) expect(again.netfilter?.find((s) => s.verdict === 'drop')).toEqual(step);
  }, 90_000);
});
