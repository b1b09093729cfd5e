/**
 * The service against real bpftrace and a real lab (root only): batches streamed over socket.io
 * reconstruct, with the shared engine, into packets that crossed the lab's namespaces; clients and
 * sessions with one filter share one bpftrace; a bpftrace killed mid-session is reported and
 * replaced, with the gap it left; the live topology model reaches clients as it changes; close()
 * leaves no bpftrace behind.
 *
 * Other labs on this machine use the same addresses, so only packets whose every hop is in this
 * file's own namespaces (by netns inode) count.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labFor, labUp } from '../../server/lab/lab.js';
import { sendUdp, startEcho, type Server } from '../../server/lab/traffic.js';
import { startService, type RunningService } from '../../server/service/index.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { decodeBatch } from '../../shared/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { Capabilities, SessionInfo } from '../../shared/api-types.js';
import { batchBytes, type SessionStateMessage, type SubscribeAck, type TopologyMessage } from '../../shared/stream-events.js';
import type { Topology } from '../../shared/topology/model.js';
import { execa } from 'execa';
import { api, connect, isRoot, myBpftracePids, postJson, runCli, waitFor, type TestSocket } from './helpers.js';

const lab = labFor(`t${randomBytes(3).toString('hex')}`);
/** A port of this file's own: other labs' traffic (same addresses) does not match the filter. */
const PORT = 20_000 + (randomBytes(2).readUInt16BE() % 20_000);
const FILTER = `host ${lab.addr.pod2} and udp port ${PORT}`;

interface Client {
  readonly socket: TestSocket;
  readonly ack: Extract<SubscribeAck, { ok: true }>;
  readonly events: HopEvent[];
  readonly seqs: number[];
  readonly states: SessionStateMessage[];
}

async function subscribe(url: string, session: string): Promise<Client> {
  const socket = await connect(url);
  const c = { socket, events: [] as HopEvent[], seqs: [] as number[], states: [] as SessionStateMessage[] };
  socket.on('hops', (m) => {
    const b = decodeBatch(batchBytes(m.batch));
    c.seqs.push(b.seq);
    c.events.push(...b.events);
  });
  socket.on('session-state', (m) => c.states.push(m));
  const ack = await socket.timeout(5000).emitWithAck('subscribe', { session });
  if (!ack.ok) throw new Error(ack.error.message);
  return { ...c, ack };
}

/** Reconstructs what a client received, as the dashboard does, keeping this lab's packets only. */
function labPackets(c: Client, inodes: ReadonlySet<number>): Packet[] {
  const names = new Map(c.ack.namespaces.map((n) => [n.netns, n.name]));
  const packets = new Reconstructor({
    nsName: (ns) => names.get(ns) ?? null,
    dropReason: (code) => c.ack.dropReasons[String(code)] ?? `reason-${code}`,
  });
  for (const ev of c.events) packets.push(ev);
  return packets.flush().filter((p) => p.hops.length > 0 && p.hops.every((h) => inodes.has(h.netns)));
}

/**
 * Sends a few datagrams pod1 → pod2 until `done()`: on a busy host the kernel can lose events
 * (perf buffer full), so the test sends more rather than fail on one lost hop.
 */
async function sendUntil(what: string, done: () => boolean): Promise<void> {
  await waitFor(what, async () => {
    if (done()) return true;
    await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 3, 32, 50);
    await new Promise((r) => setTimeout(r, 300));
    return done();
  }, 30_000, 0);
}

describe.skipIf(!isRoot)('live stream from a real lab', () => {
  let svc: RunningService;
  let echo: Server | undefined;
  let inodes: Set<number>;

  beforeAll(async () => {
    await labUp(lab);
    inodes = new Set(Object.values(lab.ns).map((n) => statSync(`/run/netns/${n}`).ino));
    echo = await startEcho(lab.ns.pod2, 'udp', '0.0.0.0', PORT);
    svc = await startService({ port: 0, webDist: null, log: () => undefined, backoff: { initialMs: 300 } });
  }, 60_000);

  afterAll(async () => {
    await svc?.close();
    await echo?.stop();
    await labDown(lab);
    expect(myBpftracePids()).toEqual([]);
  }, 60_000);

  let session: SessionInfo;
  let a: Client;

  it('streams protobuf batches that reconstruct into packets through the lab', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: FILTER });
    expect(created.status).toBe(201);
    session = created.body;
    expect(session.bpftrace.pid).toBeGreaterThan(0);
    a = await subscribe(svc.url, session.id);
    expect(a.ack.batching.maxEvents).toBeGreaterThan(0);
    // Namespace names and this kernel's drop reasons come with the ack.
    const names = new Map(a.ack.namespaces.map((n) => [n.netns, n.name]));
    expect(names.get(statSync(`/run/netns/${lab.ns.pod1}`).ino)).toBe(lab.ns.pod1);
    expect(Object.values(a.ack.dropReasons)).toContain('NETFILTER_DROP');

    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 5, 32, 50);
    expect(sent.replies).toBe(5);
    const mine = (): Packet[] => labPackets(a, inodes).filter((p) => p.src === lab.addr.pod1 && p.dst === lab.addr.pod2 && p.dport === PORT);
    await sendUntil('lab packets on the stream', () => mine().length >= 5);
    const packets = mine();
    const p = packets[0] as Packet;
    expect(p.proto).toBe('udp');
    expect(new Set(p.hops.map((h) => h.ns))).toEqual(new Set([lab.ns.pod1, lab.ns.node, lab.ns.pod2]));
    // Seqs are consecutive for a client that keeps up.
    expect(a.seqs.every((s, i) => i === 0 || s === (a.seqs[i - 1] ?? 0) + 1)).toBe(true);

    // The server's own reconstruction has them too, in trace --json shape, with names.
    const viaRest = await waitFor('packets endpoint', async () => {
      const r = await api<Packet[]>(svc.url, `/api/sessions/${session.id}/packets?limit=1000`);
      const mine = r.body.filter((x) => x.hops.every((h) => inodes.has(h.netns)) && x.dport === PORT && x.src === lab.addr.pod1);
      return mine.length >= 5 ? mine : undefined;
    }, 10_000, 250);
    expect(viaRest[0]?.hops.some((h) => h.ns === lab.ns.node)).toBe(true);
    // Next to the model, as `trace --json` prints them: delivered where the destination lives,
    // the expected path, and no divergence for a packet that took it.
    const withModel = viaRest[0] as Packet & { expected?: { fate: string; hops: unknown[] } | null; divergence?: unknown };
    expect(withModel.fate).toBe('delivered');
    expect(withModel.expected?.fate).toBe('delivered');
    expect(withModel.expected?.hops.length).toBeGreaterThan(2);
    expect(withModel.divergence).toBeNull();
  }, 60_000);

  it('serves /packets in the shape `trace --json` prints for the same packets', async () => {
    const trace = runCli(['trace', '--json', '--filter', FILTER, '--count', '3', '--duration', '40']);
    try {
      let err = '';
      trace.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      await waitFor('trace ready', () => err.includes('ready'), 40_000, 100);
      const fromTrace: Packet[] = [];
      let out = '';
      trace.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        out = lines.pop() ?? '';
        for (const l of lines) if (l.startsWith('{"id"')) fromTrace.push(JSON.parse(l) as Packet);
      });
      await sendUntil('packets printed by trace --json', () => fromTrace.some((p) => p.src === lab.addr.pod1 && p.hops.every((h) => inodes.has(h.netns))));
      const printed = fromTrace.find((p) => p.src === lab.addr.pod1 && p.hops.every((h) => inodes.has(h.netns))) as Packet;
      // The same packet (same IP id and ports) from the service.
      const served = await waitFor('the same packet from /packets', async () => {
        const r = await api<Packet[]>(svc.url, `/api/sessions/${session.id}/packets?limit=1000`);
        return r.body.find((p) => p.sport === printed.sport && p.hops[0]?.ipId === printed.hops[0]?.ipId);
      }, 10_000, 250);
      const keys = (o: object): string[] => Object.keys(o).sort();
      expect(keys(served)).toEqual(keys(printed));
      expect(served.hops.map(keys)).toEqual(printed.hops.map(keys));
      // Both came from their own bpftrace; what the kernel did is the same.
      expect(served.hops.map((h) => [h.event, h.ns, h.ifname])).toEqual(printed.hops.map((h) => [h.event, h.ns, h.ifname]));
      expect(served.fate).toBe(printed.fate);
    } finally {
      trace.kill('SIGINT');
      await trace;
    }
  }, 90_000);

  it('shares one bpftrace between two clients and two sessions with the same filter', async () => {
    const b = await subscribe(svc.url, session.id);
    const again = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: FILTER.replace(' and ', '  and  ') });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(session.id);
    expect(again.body.bpftrace.pid).toBe(session.bpftrace.pid);
    expect(again.body.bpftrace.sharedBy).toBe(2);
    const c = await subscribe(svc.url, again.body.id);
    expect(myBpftracePids()).toEqual([session.bpftrace.pid]);

    const seqStart = a.seqs.length;
    await sendUntil('both new clients to see the traffic', () => [b, c].every((x) => labPackets(x, inodes).length >= 3));
    // The same batches went to every client.
    const newOnA = a.seqs.slice(seqStart);
    await waitFor('b and c to have a\'s batches', () => newOnA.every((s) => b.seqs.includes(s) && c.seqs.includes(s)), 5000);
    const info = await api<SessionInfo>(svc.url, `/api/sessions/${session.id}`);
    expect(info.body.watchers).toBe(2);
    b.socket.close();
    c.socket.close();
    await api(svc.url, `/api/sessions/${again.body.id}`, { method: 'DELETE' });
    // The other session still uses it: still running.
    expect(myBpftracePids()).toEqual([session.bpftrace.pid]);
  }, 60_000);

  it('reports a bpftrace killed mid-session, restarts it, and streams again', async () => {
    const oldPid = session.bpftrace.pid as number;
    process.kill(oldPid, 'SIGKILL');
    const restarting = await waitFor('restarting', () => a.states.find((m) => m.state === 'restarting'), 10_000);
    expect(restarting.exit?.signal).toBe('SIGKILL');
    expect(restarting.message).toMatch(/bpftrace died/);
    expect(restarting.retryInMs).toBe(300);
    const running = await waitFor('running again', () => a.states.find((m) => m.state === 'running' && m.at >= restarting.at), 30_000);
    // The gap, in the kernel clock of the hops: at least the back-off, during which no bpftrace ran at all.
    expect(running.gap).toBeDefined();
    const gap = running.gap as { fromNs: number; toNs: number };
    expect(gap.toNs - gap.fromNs).toBeGreaterThanOrEqual(300e6);
    expect(gap.toNs).toBeLessThanOrEqual(Number(process.hrtime.bigint()));
    expect(a.events.filter((e) => e.t > gap.fromNs && e.t < gap.fromNs + 300e6)).toEqual([]);
    const info = await api<SessionInfo>(svc.url, `/api/sessions/${session.id}`);
    expect(info.body.state).toBe('running');
    expect(info.body.bpftrace.restarts).toBe(1);
    expect(info.body.bpftrace.lastExit?.signal).toBe('SIGKILL');
    const newPid = info.body.bpftrace.pid;
    expect(newPid).not.toBe(oldPid);
    expect(myBpftracePids()).toEqual([newPid]);

    const before = a.events.length;
    await sendUntil('events from the new bpftrace', () => a.events.slice(before).some((e) => inodes.has(e.netns)));
    a.socket.close();
  }, 60_000);

  it('sends the new topology model to clients when a namespace appears and goes', async () => {
    const c = await connect(svc.url);
    const models: TopologyMessage[] = [];
    c.on('topology', (m) => { if (m.model) models.push(m); });
    const ack = await c.timeout(5000).emitWithAck('subscribe', { session: session.id });
    expect(ack.ok).toBe(true);
    const extra = `${lab.prefix}-x`;
    await execa('ip', ['netns', 'add', extra]);
    try {
      // A veth pair inside it (this kernel has no dummy links): no route anywhere.
      await execa('ip', ['-n', extra, 'link', 'add', 'ht-a', 'type', 'veth', 'peer', 'name', 'ht-b']);
      const added = await waitFor('a model with the new namespace', () => models.find((m) => m.changes?.added.includes(extra)), 20_000, 100);
      const ns = added.model?.namespaces.find((n) => n.name === extra);
      expect(ns?.interfaces.map((i) => i.name)).toEqual(expect.arrayContaining(['ht-a', 'ht-b']));
      expect(added.namespaces.some((n) => n.name === extra)).toBe(true);
      // The same model the REST endpoint serves now.
      const rest = await api<Topology>(svc.url, '/api/topology');
      expect(rest.body.namespaces.some((n) => n.name === extra)).toBe(true);
    } finally {
      await execa('ip', ['netns', 'del', extra], { reject: false });
    }
    await waitFor('a model without it', () => models.find((m) => m.changes?.removed.includes(extra)), 20_000, 100);
    c.close();
  }, 60_000);

  it('reports the capabilities it detected once at start-up, not probed again per request', async () => {
    const first = await api<Capabilities>(svc.url, '/api/capabilities');
    await new Promise((r) => setTimeout(r, 20));
    const again = await api<Capabilities>(svc.url, '/api/capabilities');
    expect(again.body).toEqual(first.body);
    expect(Date.parse(first.body.detectedAt)).toBeLessThan(Date.parse(session.createdAt));
    expect(first.body.canTrace).toBe(true);
    expect(first.body.bpftrace.version).toMatch(/^v?\d+\.\d+/);
    expect(first.body.probes.tracepoint.available).toBe(true);
    // Whatever is missing says why.
    for (const kind of Object.values(first.body.probes)) if (!kind.available) expect(kind.reason).toBeTruthy();
  });

  it('leaves no bpftrace behind after close()', async () => {
    const other = await startService({ port: 0, webDist: null, log: () => undefined, namespaceNames: null });
    const s = await postJson<SessionInfo>(other.url, '/api/sessions', { filter: 'udp and port 9' });
    const pid = s.body.bpftrace.pid as number;
    expect(myBpftracePids()).toContain(pid);
    await other.close();
    expect(myBpftracePids()).not.toContain(pid);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});
