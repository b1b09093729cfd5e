/**
 * End-to-end latency: from the kernel event (bpf_ktime_get_ns, CLOCK_MONOTONIC) to a socket.io
 * client of the service receiving the batch that carries it (process.hrtime, CLOCK_MONOTONIC on
 * the same machine). Needs root.
 *
 *   npx tsx bench/latency.ts [--json]
 *
 * The service (startService from server/service/) runs in a child process, as in production;
 * one client subscribes to a session filtered to this bench's own UDP port on a lab of its own.
 * Two loads: paced (50 packets/s, where the batcher's 50 ms timer dominates) and a flood
 * (packets back to back, where batches fill at 512 events). Every event's latency is counted.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/stream-events.js';
import { batchBytes } from '../shared/stream-events.js';
import type { SessionInfo } from '../shared/api-types.js';
import { decodeBatch } from '../shared/wire.js';
import { labUp, labDown } from '../server/lab/lab.js';
import { benchLab } from './tiers.js';
import { sendUdp } from '../server/lab/traffic.js';

export interface LatencyLoad {
  readonly load: string;
  readonly events: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LatencyResult {
  readonly batching: string;
  readonly loads: LatencyLoad[];
}

const self = fileURLToPath(import.meta.url);

async function serverRole(): Promise<void> {
  const { startService } = await import('../server/service/index.js');
  const svc = await startService({ port: 0, webDist: null, log: () => undefined });
  process.stdout.write(`URL ${svc.url}\n`);
  const stop = (): void => { void svc.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const pct = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return NaN;
  return Math.round((sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number) * 100) / 100;
};

export async function benchLatency(log: (l: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<LatencyResult> {
  if (process.getuid?.() !== 0) throw new Error('the latency benchmark needs root (it builds a lab and attaches probes)');
  const server = execa(process.execPath, ['--import', 'tsx', self, '--role', 'server'], { reject: false, stderr: 'inherit' });
  const lab = benchLab('bl');
  let socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /URL (\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      void server.then((r) => reject(new Error(`service exited: ${r.exitCode}`)));
    });
    await labUp(lab);
    const port = 20000 + Math.floor(Math.random() * 20000);
    const res = await fetch(new URL('/api/sessions', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ filter: `udp and dst port ${port}` }) });
    const session = (await res.json()) as SessionInfo;
    if (res.status !== 201) throw new Error(`session: ${JSON.stringify(session)}`);
    let current: number[] = [];
    socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    socket.on('hops', (m) => {
      const now = Number(process.hrtime.bigint());
      for (const ev of decodeBatch(batchBytes(m.batch)).events) current.push((now - ev.t) / 1e6);
    });
    await new Promise<void>((resolve, reject) => {
      socket?.once('connect', () => resolve());
      socket?.once('connect_error', reject);
    });
    const ack = await socket.timeout(10_000).emitWithAck('subscribe', { session: session.id });
    if (!ack.ok) throw new Error(ack.error.message);
    // The session attaches bpftrace on first subscribe: wait until it sees traffic.
    for (let i = 0; i < 60 && current.length === 0; i++) await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 1, 32, 0).then(() => new Promise((r) => setTimeout(r, 500)));
    const loads: LatencyLoad[] = [];
    for (const [load, count, gap] of [['paced, 50 packets/s', 300, 20], ['flood, back to back', 20_000, 0]] as const) {
      await new Promise((r) => setTimeout(r, 500));
      current = [];
      await sendUdp(lab.ns.pod1, lab.addr.pod2, port, count, 32, gap);
      await new Promise((r) => setTimeout(r, 1000));
      const s = [...current].sort((a, b) => a - b);
      loads.push({ load, events: s.length, p50Ms: pct(s, 50), p90Ms: pct(s, 90), p99Ms: pct(s, 99), maxMs: pct(s, 100) });
      log(`latency ${load}: ${s.length} events, p50 ${pct(s, 50)} ms, p99 ${pct(s, 99)} ms`);
    }
    return { batching: 'service defaults: a batch leaves at 512 events or 50 ms after its first event', loads };
  } finally {
    socket?.close();
    server.kill('SIGTERM');
    await server;
    await labDown(lab);
  }
}

if (process.argv[1]?.endsWith('latency.ts')) {
  const { values } = parseArgs({ options: { role: { type: 'string', default: 'bench' }, json: { type: 'boolean', default: false } } });
  if (values.role === 'server') {
    await serverRole();
  } else {
    const r = await benchLatency();
    process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`);
  }
}
