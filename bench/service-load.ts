/**
 * Load test for the service (bounded in time; not a test): N socket.io clients on one busy
 * session. Reports events/s delivered per client and in total, per-client lag (kernel time of the
 * newest event in a batch → when the client got it; both sides read CLOCK_MONOTONIC), batches
 * dropped for slow clients, and the server's memory (RSS, JS heap, buffers) and CPU.
 *
 *   npx tsx bench/service-load.ts [--clients 50] [--duration 20] [--source lab|synthetic] [--rate 50000] [--stalled 0]
 *
 * The server runs in a child process (so its memory and CPU are its own); the clients run here.
 * --source lab (root): a real bpftrace on a lab of its own, flooded with UDP pod1→pod2 and echoed
 * back. --source synthetic: the service fed by a generator at --rate events/s (no root needed),
 * which measures the service alone. --stalled K: K of the clients stop reading their TCP socket
 * after subscribing, to see what slow clients cost the others (figures are for the rest).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import protobuf from 'protobufjs/light.js';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, StreamStats } from '../shared/stream-events.js';
import { batchBytes } from '../shared/stream-events.js';
import type { SessionInfo } from '../shared/api-types.js';
import type { Lab } from '../server/lab/lab.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'client' },
    clients: { type: 'string', default: '50' },
    duration: { type: 'string', default: '20' },
    source: { type: 'string', default: process.getuid?.() === 0 ? 'lab' : 'synthetic' },
    rate: { type: 'string', default: '50000' },
    json: { type: 'boolean', default: false },
    /** Clients (of --clients) that stop reading their socket once subscribed. */
    stalled: { type: 'string', default: '0' },
  },
});

type LongLike = number | { toNumber(): number };
const num = (v: LongLike): number => (typeof v === 'number' ? v : v.toNumber());

/** Reads a HopBatch's seq, event count and newest event time without decoding every event. */
function peek(buf: Uint8Array): { seq: number; events: number; lastT: number } {
  const r = protobuf.Reader.create(buf);
  let seq = 0;
  let events = 0;
  let last: [number, number] | null = null;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) {
      const len = r.uint32();
      last = [r.pos, len];
      r.skip(len);
      events++;
    } else if (tag >>> 3 === 2 && (tag & 7) === 0) {
      seq = num(r.uint64() as unknown as LongLike);
    } else {
      r.skipType(tag & 7);
    }
  }
  let lastT = 0;
  if (last) {
    const e = protobuf.Reader.create(buf.subarray(last[0], last[0] + last[1]));
    while (e.pos < e.len) {
      const tag = e.uint32();
      if (tag >>> 3 === 2 && (tag & 7) === 0) {
        lastT = num(e.uint64() as unknown as LongLike);
        break;
      }
      e.skipType(tag & 7);
    }
  }
  return { seq, events, lastT };
}

// ---- server role: the service in its own process ----

async function serverRole(): Promise<void> {
  const { startService } = await import('../server/service/index.js');
  let source;
  if (values.source === 'synthetic') {
    const { SyntheticSource } = await import('../test/service/helpers.js');
    const rate = Number(values.rate);
    source = (filter: string) => {
      const s = new SyntheticSource(filter);
      const start = s.start.bind(s);
      s.start = async () => {
        await start();
        s.run(rate);
      };
      return s;
    };
  }
  const svc = await startService({
    port: 0, webDist: null, log: (l) => process.stderr.write(`server: ${l}\n`),
    ...(source ? { source, capabilities: { detectedAt: '', root: true, kernel: '', bpftrace: { version: null }, btf: true, tracefs: null, probes: { tracepoint: { available: true, reason: null }, kprobe: { available: false, reason: null }, kfunc: { available: false, reason: null } }, tracepoints: {}, canTrace: true, problems: [] } } : {}),
  });
  process.stdout.write(`URL ${svc.url}\n`);
  // The heap as the server sees it (RSS alone mixes in the code, tsx's compiler and freed-but-kept pages).
  setInterval(() => {
    const m = process.memoryUsage();
    process.stdout.write(`MEM ${JSON.stringify({ heapMb: m.heapUsed / 2 ** 20, externalMb: (m.external + m.arrayBuffers) / 2 ** 20 })}\n`);
  }, 1000).unref();
  const stop = (): void => {
    void svc.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---- client role: the load ----

interface ClientStats {
  events: number;
  batches: number;
  gaps: number;
  lastSeq: number;
  lagsMs: number[];
  stats: StreamStats | undefined;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function procStats(pid: number): { rssMb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssMb: rss, cpuTicks: Number(stat[11] ?? 0) + Number(stat[12] ?? 0) };
}

async function clientRole(): Promise<void> {
  const clients = Number(values.clients);
  const durationS = Number(values.duration);
  const self = fileURLToPath(import.meta.url);
  const server = execa(process.execPath, ['--import', 'tsx', self, '--role', 'server', '--source', String(values.source), '--rate', String(values.rate)], { reject: false, stderr: 'inherit' });
  /** The server's heap and external memory, as it reports them once a second. */
  const heap: Array<{ heapMb: number; externalMb: number }> = [];
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let rest = '';
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /URL (\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('MEM ')) heap.push(JSON.parse(l.slice(4)) as { heapMb: number; externalMb: number });
    });
    void server.then((r) => reject(new Error(`server exited: ${r.exitCode}`)));
  });
  const serverPid = server.pid as number;

  let lab: Lab | undefined;
  const stops: Array<() => Promise<void>> = [];
  let filter = '';
  if (values.source === 'lab') {
    const { labFor, labUp } = await import('../server/lab/lab.js');
    const { startEcho } = await import('../server/lab/traffic.js');
    lab = labFor(`ld${randomBytes(3).toString('hex')}`);
    await labUp(lab);
    const echo = await startEcho(lab.ns.pod2, 'udp', '0.0.0.0', 5000);
    stops.push(() => echo.stop());
    filter = `host ${lab.addr.pod2} and udp port 5000`;
  }

  const res = await fetch(new URL('/api/sessions', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ filter }) });
  const session = (await res.json()) as SessionInfo;
  if (res.status !== 201) throw new Error(`session: ${JSON.stringify(session)}`);

  const all: ClientStats[] = [];
  /** bpftrace's own lag as the server saw it, from the first client's stats (once a second). */
  const sourceLags: number[] = [];
  const sockets: Array<Socket<ServerToClientEvents, ClientToServerEvents>> = [];
  for (let i = 0; i < clients; i++) {
    const s: Socket<ServerToClientEvents, ClientToServerEvents> = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    const c: ClientStats = { events: 0, batches: 0, gaps: 0, lastSeq: 0, lagsMs: [], stats: undefined };
    s.on('hops', (m) => {
      const now = Number(process.hrtime.bigint());
      const b = peek(batchBytes(m.batch));
      c.events += b.events;
      c.batches++;
      if (c.lastSeq !== 0 && b.seq > c.lastSeq + 1) c.gaps += b.seq - c.lastSeq - 1;
      c.lastSeq = b.seq;
      if (b.lastT > 0 && c.lagsMs.length < 50_000) c.lagsMs.push((now - b.lastT) / 1e6);
    });
    s.on('stats', (st) => {
      c.stats = st;
      if (i === 0) sourceLags.push(st.sourceLagMs);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    const ack = await s.timeout(5000).emitWithAck('subscribe', { session: session.id });
    if (!ack.ok) throw new Error(ack.error.message);
    all.push(c);
    sockets.push(s);
  }
  const stalled = Math.min(Number(values.stalled), clients);
  for (const s of sockets.slice(0, stalled)) (s.io.engine.transport as unknown as { ws: { _socket: { pause(): void } } }).ws._socket.pause();

  // Load: the lab floods pod1 → pod2 with small datagrams (echoed back) until time is up.
  const end = Date.now() + durationS * 1000;
  if (lab) {
    const { sendUdp } = await import('../server/lab/traffic.js');
    const l = lab;
    const flood = async (): Promise<void> => {
      while (Date.now() < end - 1500) await sendUdp(l.ns.pod1, l.addr.pod2, 5000, 20_000, 64, 0);
    };
    const floods = [flood()];
    stops.push(async () => {
      await Promise.all(floods);
    });
  }

  const sessionInfo = async (): Promise<SessionInfo> => (await (await fetch(new URL(`/api/sessions/${session.id}`, url))).json()) as SessionInfo;
  const infoStart = await sessionInfo();
  const t0 = Date.now();
  const base = procStats(serverPid);
  const heapFrom = heap.length;
  const eventsAtStart = all.map((c) => c.events);
  let maxRss = base.rssMb;
  const samples: Array<{ t: number; rssMb: number }> = [];
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 1000));
    const p = procStats(serverPid);
    maxRss = Math.max(maxRss, p.rssMb);
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rssMb: Math.round(p.rssMb) });
  }
  const elapsed = (Date.now() - t0) / 1000;
  const after = procStats(serverPid);
  const info = await sessionInfo();
  const eventsAtEnd = all.map((c) => c.events);
  await Promise.all(stops.map((s) => s()));

  const live = all.slice(stalled);
  const perClient = live.map((_c, i) => ((eventsAtEnd[i + stalled] ?? 0) - (eventsAtStart[i + stalled] ?? 0)) / elapsed);
  const lags = live.flatMap((c) => c.lagsMs).sort((a, b) => a - b);
  const perClientP99 = live.map((c) => percentile([...c.lagsMs].sort((a, b) => a - b), 99)).sort((a, b) => a - b);
  const dropped = live.map((c) => c.stats?.droppedBatches ?? 0);
  // Stalled clients read again: the stats they then get say how many batches were dropped for them.
  // A client stalled past socket.io's heartbeat (ping every 25 s, 20 s to answer) has been
  // disconnected by the server, which then keeps nothing for it: counted apart.
  const stalledSockets = sockets.slice(0, stalled);
  const disconnected = stalledSockets.filter((s) => !s.connected || !(s.io.engine.transport as unknown as { ws: unknown }).ws).length;
  for (const s of stalledSockets) (s.io.engine.transport as unknown as { ws: { _socket: { resume(): void } } | null }).ws?._socket.resume();
  const stillThere = all.slice(0, stalled).filter((_c, i) => stalledSockets[i]?.connected === true);
  const settle = Date.now() + 10_000;
  while (stillThere.length > 0 && Date.now() < settle && !stillThere.every((c) => c.stats && c.stats.seq === c.lastSeq && c.stats.queuedBatches === 0)) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const stalledDropped = stillThere.map((c) => c.stats?.droppedBatches ?? 0);
  const hz = 100;
  const report = {
    source: values.source,
    clients,
    durationS: Math.round(elapsed),
    session: { filter: info.filter, events: info.events, lostKernel: info.lostKernel, packetsReconstructed: info.packets },
    producedEventsPerSec: Math.round((info.events - infoStart.events) / elapsed),
    deliveredEventsPerSecPerClient: { min: Math.round(Math.min(...perClient)), median: Math.round(percentile([...perClient].sort((a, b) => a - b), 50)), max: Math.round(Math.max(...perClient)) },
    deliveredEventsPerSecTotal: Math.round(perClient.reduce((a, b) => a + b, 0)),
    sourceLagMs: { p50: percentile([...sourceLags].sort((a, b) => a - b), 50), max: Math.max(...sourceLags) },
    lagMs: { p50: +percentile(lags, 50).toFixed(1), p90: +percentile(lags, 90).toFixed(1), p99: +percentile(lags, 99).toFixed(1), max: +(lags.at(-1) ?? NaN).toFixed(1), worstClientP99: +(perClientP99.at(-1) ?? NaN).toFixed(1) },
    droppedBatches: { total: dropped.reduce((a, b) => a + b, 0), clientsWithDrops: dropped.filter((d) => d > 0).length, seqGapsSeen: live.reduce((a, c) => a + c.gaps, 0) },
    stalledClients: stalled,
    stalledDisconnectedByHeartbeat: disconnected,
    stalledDroppedBatches: { min: Math.min(...stalledDropped), max: Math.max(...stalledDropped), seqGapsSeen: stillThere.reduce((a, c) => a + c.gaps, 0) },
    server: {
      rssMbStart: Math.round(base.rssMb), rssMbMax: Math.round(maxRss), rssMbEnd: Math.round(after.rssMb), cpuPercent: Math.round(((after.cpuTicks - base.cpuTicks) / hz / elapsed) * 100),
      heapMbStart: Math.round(heap[heapFrom - 1]?.heapMb ?? NaN), heapMbMax: Math.round(Math.max(...heap.slice(heapFrom).map((h) => h.heapMb))),
      externalMbMax: Math.round(Math.max(...heap.slice(heapFrom).map((h) => h.externalMb))),
    },
    rssSamples: samples,
  };

  for (const s of sockets) s.close();
  server.kill('SIGTERM');
  await server;
  if (lab) {
    const { labDown } = await import('../server/lab/lab.js');
    await labDown(lab);
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const r = report;
  process.stdout.write([
    `service load: ${r.clients} clients${r.stalledClients ? ` (${r.stalledClients} stalled; figures below are for the others)` : ''}, ${r.durationS} s, source ${r.source} (filter '${r.session.filter}')`,
    `  produced:   ${r.producedEventsPerSec} events/s (${r.session.events} events, ${r.session.lostKernel} lost in the kernel, ${r.session.packetsReconstructed} packets reconstructed by the server)`,
    `  delivered:  ${r.deliveredEventsPerSecPerClient.median} events/s per client (min ${r.deliveredEventsPerSecPerClient.min}, max ${r.deliveredEventsPerSecPerClient.max}); ${r.deliveredEventsPerSecTotal} events/s in total`,
    `  source:     behind the kernel by p50 ${r.sourceLagMs.p50} ms, max ${r.sourceLagMs.max} ms (sampled once a second when batches reach the server)`,
    `  lag:        p50 ${r.lagMs.p50} ms, p90 ${r.lagMs.p90} ms, p99 ${r.lagMs.p99} ms, max ${r.lagMs.max} ms; worst client p99 ${r.lagMs.worstClientP99} ms`,
    `  dropped:    ${r.droppedBatches.total} batches for ${r.droppedBatches.clientsWithDrops} slow clients (seq gaps seen: ${r.droppedBatches.seqGapsSeen})`,
    ...(r.stalledClients ? [`  stalled:    ${r.stalledClients} clients${r.stalledDisconnectedByHeartbeat ? ` (${r.stalledDisconnectedByHeartbeat} disconnected by the heartbeat)` : ''} lost ${r.stalledDroppedBatches.min}–${r.stalledDroppedBatches.max} batches each (told by stats; seq gaps they saw: ${r.stalledDroppedBatches.seqGapsSeen} in total)`] : []),
    `  server:     RSS ${r.server.rssMbStart} → max ${r.server.rssMbMax} → ${r.server.rssMbEnd} MB (JS heap ${r.server.heapMbStart} → max ${r.server.heapMbMax} MB, buffers max ${r.server.externalMbMax} MB); CPU ${r.server.cpuPercent}% of one core`,
    '',
  ].join('\n'));
}

if (values.role === 'server') {
  await serverRole();
} else {
  await clientRole();
}
