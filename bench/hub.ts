/**
 * Many nodes (issue 17 item 6): events/s through agent → NATS JetStream → hub → socket.io client,
 * the hub's CPU per 100k events/s, end-to-end latency p50/p99, and how they grow from 1 to 4 agents.
 *
 *   npx tsx bench/hub.ts [--sources synthetic,kernel] [--agents 1,2,3,4] [--rates 10000,25000]
 *                        [--pps 2000] [--seconds 10] [--json]
 *   npm run bench -- --only hub [--hub-sources …] [--hub-agents …] [--hub-rates …] [--hub-pps …] [--seconds …]
 *
 * Every piece is the real one, each in its own process: a nats-server with JetStream (a free port,
 * its store in a temporary folder: test/helpers/nats.ts), one agent per node, the hub
 * (`hoptrace serve --hub`), and a socket.io client of the hub's /cluster namespace here, which
 * counts the hops of the stitched packets it receives and takes each hop's latency from its
 * `tNode` (the event's time on its node's CLOCK_MONOTONIC) to receipt (process.hrtime, the same
 * clock: one machine). Each step gets a fresh nats-server, so a new hub never replays the last
 * step's batches.
 *
 * Two sources feed the agents:
 *  - kernel (root): a cluster lab of 4 "nodes" on this kernel (test/helpers/cluster-lab.ts, VXLAN),
 *    `hoptrace agent --namespaces <its node>` on the first N, and iperf3 sending paced 64-byte UDP
 *    datagrams from each of those nodes' pods to the next one's (pod 1 → node 1's bridge when
 *    N = 1), --pps datagrams/s per sender. The hub's session filter is `udp port 5201`.
 *  - synthetic: the same Agent class (server/hub/agent.ts), run by this file's `--role agent`,
 *    with its bpftrace replaced by a generator (the Agent's `traceFactory`, the hook its tests use;
 *    no hidden CLI flag) that makes --rates events/s per agent: for each packet number n, the
 *    leaving piece of pod k → pod k+1 (xmit, recv, tunnel xmit with the VXLAN outer header, driver
 *    free: 4 events) and the entering piece of pod k−1 → pod k (tunnel recv, xmit, recv, consume:
 *    4 events), so the hub reconstructs and stitches cross-node packets as it does a real
 *    cluster's. The agents share a start time and a packet clock, so piece n of one agent meets
 *    piece n of the next. With one agent, n is a node-local round trip (6 events). This finds
 *    the hub's ceiling without the kernel (bpftrace, the probes) as the limit.
 *
 * Measured over --seconds after a warm-up (the hub's holding windows filled): events the sources
 * made (synthetic) or the hub took in, events delivered to the client, packets and the share
 * stitched across nodes, hub CPU (utime+stime from /proc/PID/stat) as % of a core and as CPU-s per
 * 100k events, agent CPU (and their bpftrace's, kernel), latency p50/p99/max, and losses by where:
 * the kernel or the agent (`lost` the agents report with their batches), batches missing in a
 * node's sequence (the bus), bus messages the hub dropped as bad, and the JetStream backlog the
 * hub's consumer had left at the end (a hub that cannot keep up leaves it growing), plus packets
 * the hub sent on /cluster that the client missed (volatile emits), nats-server's CPU.
 *
 * --base REV runs every step a second time with the hub of commit REV (its files from git archive
 * beside this checkout's node_modules): a before/after in one run. HOPTRACE_BENCH_HUB_PROFILE=DIR
 * makes the hub write a V8 CPU profile there when it stops.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { NatsConnection } from '@nats-io/transport-node';
import type { HopEvent } from '../shared/hop-event.js';
import type { ClusterPacket } from '../shared/cluster/stitch.js';
import type { NodeInfo } from '../server/hub/hub.js';
import type { TraceSession } from '../server/trace-session.js';
import { kernelNowNs } from '../server/clock.js';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../test/helpers/nats.js';
import { cli, REPO } from '../test/helpers/cli.js';
import { clusterLabDown, clusterLabFor, clusterLabUp, type ClusterLab, type ClusterNode } from '../test/helpers/cluster-lab.js';

export type HubSource = 'synthetic' | 'kernel';

export interface HubStep {
  readonly source: HubSource;
  /** Which hub ran: 'this tree', or 'base <rev>' (--hub-base: the same step on an earlier commit's hub). */
  readonly hubTree: string;
  readonly agents: number;
  /** synthetic: events/s asked of each agent; kernel: datagrams/s asked of each sender. */
  readonly asked: number;
  readonly seconds: number;
  readonly loadavg: string;
  /** Events the generators made (synthetic) or the hub took in plus those reported lost (kernel), per second. */
  readonly offeredEventsPerSec: number;
  /** Events the hub took off the bus, per second. */
  readonly hubInEventsPerSec: number;
  /** Hops in the stitched packets the socket.io client received, per second. */
  readonly deliveredEventsPerSec: number;
  readonly packetsPerSec: number;
  /** Share of delivered packets made of pieces from more than one node. */
  readonly stitchedShare: number;
  /** CPU-s per 100k events delivered to the client, and per 100k taken off the bus (the same when it keeps up). */
  readonly hub: { readonly cpuPercent: number; readonly cpuSecPer100kEvents: number; readonly cpuSecPer100kIn: number; readonly rssMb: number };
  /** Mean and highest CPU % of the agents' own processes; their bpftrace's (kernel source) apart. */
  readonly agentCpuPercent: { readonly mean: number; readonly max: number };
  readonly tracerCpuPercent: { readonly mean: number; readonly max: number } | null;
  /** nats-server's CPU % (JetStream stores, acknowledges and delivers every batch). */
  readonly natsCpuPercent: number;
  /** Of the bench process, which runs the client (so a reader knows whether it was the limit). */
  readonly clientCpuPercent: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly lost: {
    /** Events the kernel lost or the agents dropped for a slow bus (reported in their batches). */
    readonly kernelOrAgent: number;
    /** Batches the agents could not publish (JetStream did not acknowledge them in time; synthetic: counted, kernel: agents that said so). */
    readonly publishFailed: number;
    /** Batches missing in the nodes' sequences. */
    readonly seqGaps: number;
    /** Bus messages the hub dropped as bad, by reason (only reasons that happened). */
    readonly hubBad: Record<string, number>;
    /** Packets the hub sent on /cluster that the client did not get (sent volatile: dropped while the client's socket was not writable). */
    readonly hubToClientPackets: number;
    /** Messages the hub's durable consumer had not taken yet when the step ended. */
    readonly backlogAtEnd: number;
  };
}

export interface HubResult {
  readonly method: string;
  readonly steps: HubStep[];
  /** Steps that could not be measured (e.g. the hub not ready in time on a loaded machine); the others are kept. */
  readonly failed: Array<{ readonly source: HubSource; readonly hubTree: string; readonly agents: number; readonly error: string }>;
}

export interface HubBenchOptions {
  readonly sources: readonly HubSource[];
  readonly agents: readonly number[];
  readonly rates: readonly number[];
  readonly pps: number;
  readonly seconds: number;
  /** A git revision: every step also runs with the hub of that commit (before/after in one run). */
  readonly base?: string;
  readonly log?: (l: string) => void;
}

const self = fileURLToPath(import.meta.url);
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HZ = 100;
const IPERF_PORT = 5201;

// ---------------------------------------------------------------- synthetic agent (--role agent)

/** Inode-like numbers for the synthetic nodes' namespaces (no real namespace has them). */
const podNs = (k: number): number => 4_026_600_000 + 2 * k;
const nodeNs = (k: number): number => 4_026_600_001 + 2 * k;
const podAddr = (k: number): string => `10.250.${k}.10`;
const underlay = (k: number): string => `10.250.0.${k}`;

/**
 * What one synthetic agent's "kernel" sees for packet number `n` (see the file's comment). Pure,
 * so that agent k's leaving piece and agent k+1's entering piece carry the same crossing key.
 */
export function ringEvents(k: number, agents: number, n: number, t: number): HopEvent[] {
  const skb = (role: number): string => (0x10000000 * (k * 4 + role) + (n % 0x1000000)).toString(16);
  const base = {
    cpu: 0, family: 4 as const, proto: 17, len: 92, ipId: n & 0xffff, sport: 20000 + (Math.floor(n / 65536) % 40000), dport: IPERF_PORT,
    icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
  if (agents === 1) {
    const out = { ...base, skb: skb(0), src: podAddr(k), dst: `10.250.${k}.1` };
    const back = { ...base, skb: skb(1), src: `10.250.${k}.1`, dst: podAddr(k), sport: IPERF_PORT, dport: base.sport };
    return [
      { ...out, kind: 'xmit', t, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
      { ...out, kind: 'recv', t: t + 4000, netns: nodeNs(k), ifindex: 3, ifname: 'vp0' },
      { ...out, kind: 'consume', t: t + 9000, netns: nodeNs(k), ifindex: 3, ifname: 'vp0' },
      { ...back, kind: 'xmit', t: t + 20000, netns: nodeNs(k), ifindex: 3, ifname: 'vp0' },
      { ...back, kind: 'recv', t: t + 24000, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
      { ...back, kind: 'consume', t: t + 29000, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
    ];
  }
  const next = (k % agents) + 1;
  const prev = ((k + agents - 2) % agents) + 1;
  const outer = (from: number, to: number): HopEvent['outer'] => ({ family: 4, proto: 17, src: underlay(from), dst: underlay(to), sport: 30000 + (n % 20000), dport: 4789, vni: 42, innerRead: true });
  const leave = { ...base, skb: skb(0), src: podAddr(k), dst: podAddr(next) };
  const enter = { ...base, skb: skb(1), src: podAddr(prev), dst: podAddr(k) };
  return [
    { ...leave, kind: 'xmit', t, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
    { ...leave, kind: 'recv', t: t + 4000, netns: nodeNs(k), ifindex: 3, ifname: 'vp0' },
    { ...leave, kind: 'xmit', t: t + 9000, netns: nodeNs(k), ifindex: 5, ifname: 'ul0', outer: outer(k, next) },
    { ...leave, kind: 'consume', t: t + 11000, netns: nodeNs(k), ifindex: 5, ifname: 'ul0' },
    { ...enter, kind: 'recv', t: t + 20000, netns: nodeNs(k), ifindex: 5, ifname: 'ul0', outer: outer(prev, k) },
    { ...enter, kind: 'xmit', t: t + 25000, netns: nodeNs(k), ifindex: 3, ifname: 'vp0' },
    { ...enter, kind: 'recv', t: t + 29000, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
    { ...enter, kind: 'consume', t: t + 33000, netns: podNs(k), ifindex: 2, ifname: 'eth0' },
  ];
}

async function agentRole(v: { hub: string; node: string; index: number; agents: number; rate: number; t0: number }): Promise<void> {
  const { Agent } = await import('../server/hub/agent.js');
  const { SyntheticSource } = await import('../test/service/helpers.js');
  const perPacket = v.agents === 1 ? 6 : 8;
  const gapNs = 1e9 / (v.rate / perPacket);
  let produced = 0;
  class RingSource extends SyntheticSource {
    private tick: NodeJS.Timeout | undefined;
    private n = -1;
    override run(): void {
      clearInterval(this.tick);
      this.n = Math.floor((kernelNowNs() - v.t0) / gapNs);
      this.tick = setInterval(() => {
        // Packet numbers follow the shared clock, so every agent makes packet n at the same time;
        // a stalled process catches up at most a second's worth.
        const upTo = Math.floor((kernelNowNs() - v.t0) / gapNs);
        this.n = Math.max(this.n, upTo - Math.ceil(1e9 / gapNs));
        for (; this.n < upTo; this.n++) {
          for (const ev of ringEvents(v.index, v.agents, this.n, v.t0 + this.n * gapNs)) this.emit('hop', ev);
          produced += perPacket;
        }
      }, 10);
    }

    override stop(): ReturnType<InstanceType<typeof SyntheticSource>['stop']> {
      clearInterval(this.tick);
      return super.stop();
    }
  }
  const agent = new Agent({
    bus: { url: v.hub }, node: v.node,
    // A selector naming no namespace: the agent discovers (and publishes) an empty node, cheaply.
    namespaces: 'hoptrace-bench-none',
    traceFactory: (o) => {
      const s = new RingSource(o.filter);
      const start = s.start.bind(s);
      s.start = async () => {
        await start();
        s.run();
      };
      return s as unknown as TraceSession;
    },
    log: (l) => process.stderr.write(`${l}\n`),
  });
  await agent.start();
  process.stdout.write('READY\n');
  setInterval(() => {
    process.stdout.write(`STAT ${JSON.stringify({ produced, dropped: agent.outbox.droppedEvents, failedBatches: agent.failedAttempts })}\n`);
  }, 250).unref();
  const stop = (): void => { void agent.stop().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---------------------------------------------------------------- the bench

interface Proc {
  readonly child: ResultPromise;
  out(): string;
  /** Latest STAT line (synthetic agents). */
  stat: { produced: number; dropped: number; failedBatches: number } | null;
}

function started(child: ResultPromise, ready: RegExp, what: string, ms = 300_000): Promise<Proc> {
  let out = '';
  const p: Proc = { child, out: () => out, stat: null };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${ms / 1000} s: ${out.slice(-500)}`)), ms);
    const onData = (d: Buffer): void => {
      const s = d.toString();
      out = (out + s).slice(-20_000);
      for (const m of s.matchAll(/^STAT (.*)$/gm)) p.stat = JSON.parse(m[1]!) as Proc['stat'];
      if (ready.test(out)) { clearTimeout(timer); resolve(p); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${what} exited: ${out.slice(-500)}`)); });
  });
}

async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 40_000);
  await p.child.catch(() => undefined);
  clearTimeout(t);
}

/** utime + stime of a process in clock ticks (0 once it is gone). */
function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(f[11] ?? 0) + Number(f[12] ?? 0);
  } catch {
    return 0;
  }
}

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function tracerPids(pid: number): Promise<number[]> {
  const r = await execa('pgrep', ['-l', '-P', String(pid)], { reject: false });
  return String(r.stdout).split('\n').filter((l) => /bpftrace/.test(l)).map((l) => Number(l.split(' ')[0]));
}

const pct = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? NaN : Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;

interface ClusterView { nodes: NodeInfo[]; badMessages: Record<string, number>; packets: number }

async function until<T>(what: string, get: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/** Paced 64-byte UDP with iperf3 from `from`'s pod to `to` (a node: its pod; null: `from`'s own bridge). */
function iperf(lab: ClusterLab, from: ClusterNode, to: ClusterNode | null, pps: number, seconds: number): { done: Promise<void>; stop(): void } {
  const [ns, addr] = to ? [to.podNs, to.pod] : [from.nodeNs, `10.${lab.base}.${from.index}.1`];
  const server = execa('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-1', '-p', String(IPERF_PORT)], { reject: false });
  let client: ResultPromise | undefined;
  const done = sleep(500).then(async () => {
    client = execa('ip', ['netns', 'exec', from.podNs, 'iperf3', '-c', addr, '-p', String(IPERF_PORT), '-u', '-l', '64', '-b', String(pps * 64 * 8), '-t', String(seconds)], { reject: false });
    await client;
    server.kill('SIGTERM');
    await server;
  });
  return {
    done,
    stop: () => { server.kill('SIGTERM'); client?.kill('SIGTERM'); },
  };
}

async function step(o: { source: HubSource; agents: number; asked: number; seconds: number; lab: ClusterLab | undefined; log: (l: string) => void; hubTree: { label: string; dir: string } }): Promise<HubStep> {
  let nats: NatsServer | undefined;
  const agents: Proc[] = [];
  /** Every child as soon as it is spawned: one still starting when the run is interrupted is stopped too. */
  const spawned: ResultPromise[] = [];
  const track = (c: ResultPromise): ResultPromise => { spawned.push(c); return c; };
  let hub: Proc | undefined;
  let socket: Socket | undefined;
  let traffic: Array<{ done: Promise<void>; stop(): void }> = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'hbe-hub-'));
  let bus: NatsConnection | undefined;
  hookInterrupt();
  onInterrupt.add(cleanup);
  try {
    nats = await startNatsServer();
    const n = nats;
    const t0 = kernelNowNs() + 2e9;
    const warmS = o.source === 'kernel' ? 5 : 4;
    for (let k = 1; k <= o.agents; k++) {
      if (o.source === 'synthetic') {
        const child = execa(process.execPath, ['--import', 'tsx', self, '--role', 'agent', '--hub', n.url, '--node', `node${k}`, '--index', String(k), '--agents', String(o.agents), '--rate', String(o.asked), '--t0', String(t0)], { reject: false, cwd: REPO });
        agents.push(await started(track(child), /READY/, `synthetic agent ${k}`));
      } else {
        const node = o.lab!.nodes[k - 1]!;
        agents.push(await started(track(cli(['agent', '--hub', n.url, '--node', `node${k}`, '--namespaces', node.selector])), /waiting for a hub/, `agent node${k}`));
      }
    }
    const filter = o.source === 'kernel' ? ['--filter', `udp port ${IPERF_PORT}`] : [];
    // HOPTRACE_BENCH_HUB_PROFILE=DIR: the hub writes a V8 CPU profile there when it stops (finding its hot spots).
    const prof = process.env.HOPTRACE_BENCH_HUB_PROFILE;
    const hubArgv = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), '--import', 'tsx', 'server/cli.ts', 'serve', '--port', '0', '--data-dir', dataDir, '--hub', n.url, ...filter];
    hub = await started(track(execa(process.execPath, hubArgv, { reject: false, cwd: o.hubTree.dir })), /listening on (http:\S+)/, 'the hub');
    const url = /listening on (http:\S+)/.exec(hub.out())![1]!;
    const hubPid = hub.child.pid!;
    const cluster = async (): Promise<ClusterView> => (await (await fetch(`${url}api/cluster`)).json()) as ClusterView;
    await until(`${o.agents} agents to trace the hub's session`, async () => {
      const v = await cluster();
      return v.nodes.length === o.agents && v.nodes.every((x) => x.session?.ok) ? v : undefined;
    }, 300_000);

    let counting = false;
    let events = 0;
    let packets = 0;
    let stitched = 0;
    let lat = new Float64Array(1 << 20);
    let nLat = 0;
    socket = ioClient(`${url}cluster`, { transports: ['websocket'], forceNew: true, reconnection: false });
    socket.on('packets', (ps: ClusterPacket[]) => {
      if (!counting) return;
      const now = Number(process.hrtime.bigint());
      for (const p of ps) {
        packets++;
        if (p.nodes.length > 1) stitched++;
        for (const h of p.hops) {
          events++;
          if (nLat === lat.length) {
            const grown = new Float64Array(lat.length * 2);
            grown.set(lat);
            lat = grown;
          }
          lat[nLat++] = (now - h.tNode) / 1e6;
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      socket!.once('connect', () => resolve());
      socket!.once('connect_error', reject);
    });

    if (o.source === 'kernel') {
      const lab = o.lab!;
      const total = warmS + o.seconds + 3;
      traffic = o.agents === 1
        ? [iperf(lab, lab.nodes[0], null, o.asked, total)]
        : Array.from({ length: o.agents }, (_v, i) => iperf(lab, lab.nodes[i]!, lab.nodes[(i + 1) % o.agents]!, o.asked, total));
    }
    await sleep(warmS * 1000);

    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    bus = await connect({ servers: n.url });
    const jsm = await jetstreamManager(bus);
    const tracers = await Promise.all(agents.map((a) => tracerPids(a.child.pid!)));
    // nats-server's pid, found by its own config file's path (test/helpers/nats.ts writes it beside the store).
    const natsPid = Number(String((await execa('pgrep', ['-f', '-n', join(dirname(n.storeDir), 'nats.conf')], { reject: false })).stdout).trim()) || 0;
    const snap = async (): Promise<{ at: number; hub: number; nats: number; agents: number[]; tracers: number[]; me: number; view: ClusterView; produced: number; dropped: number; failed: number }> => ({
      at: performance.now(), hub: cpuTicks(hubPid), nats: natsPid ? cpuTicks(natsPid) : NaN, agents: agents.map((a) => cpuTicks(a.child.pid!)),
      tracers: tracers.map((ps) => ps.reduce((s, p) => s + cpuTicks(p), 0)),
      me: process.cpuUsage().user + process.cpuUsage().system,
      view: await cluster(), produced: agents.reduce((s, a) => s + (a.stat?.produced ?? 0), 0), dropped: agents.reduce((s, a) => s + (a.stat?.dropped ?? 0), 0),
      failed: agents.reduce((s, a) => s + (a.stat?.failedBatches ?? 0), 0),
    });
    const before = await snap();
    counting = true;
    await sleep(o.seconds * 1000);
    counting = false;
    const after = await snap();
    const backlog = (await jsm.consumers.info('HOPTRACE', 'hoptrace-hub').catch(() => null))?.num_pending ?? NaN;
    const rss = rssMb(hubPid);
    const elapsed = (after.at - before.at) / 1000;
    const sum = (v: ClusterView, f: (x: NodeInfo) => number): number => v.nodes.reduce((s, x) => s + f(x), 0);
    const hubIn = sum(after.view, (x) => x.events) - sum(before.view, (x) => x.events);
    const lostKA = sum(after.view, (x) => x.lost) - sum(before.view, (x) => x.lost);
    const cpu = (a: number, b: number): number => ((b - a) / HZ / elapsed) * 100;
    const agentCpu = agents.map((_a, i) => cpu(before.agents[i]!, after.agents[i]!));
    const tracerCpu = tracers.map((_t, i) => cpu(before.tracers[i]!, after.tracers[i]!));
    const hubCpu = cpu(before.hub, after.hub);
    const delivered = events / elapsed;
    const sorted = lat.subarray(0, nLat).sort();
    const bad = Object.fromEntries(Object.entries(after.view.badMessages).map(([k, v]) => [k, v - (before.view.badMessages[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    const r: HubStep = {
      source: o.source, hubTree: o.hubTree.label, agents: o.agents, asked: o.asked, seconds: Math.round(elapsed * 10) / 10, loadavg: loadavg(),
      offeredEventsPerSec: Math.round((o.source === 'synthetic' ? after.produced - before.produced : hubIn + lostKA) / elapsed),
      hubInEventsPerSec: Math.round(hubIn / elapsed),
      deliveredEventsPerSec: Math.round(delivered),
      packetsPerSec: Math.round(packets / elapsed),
      stitchedShare: packets ? Math.round((stitched / packets) * 1000) / 1000 : 0,
      hub: { cpuPercent: Math.round(hubCpu), cpuSecPer100kEvents: delivered > 0 ? Math.round(((hubCpu / 100) / (delivered / 1e5)) * 100) / 100 : NaN,
        cpuSecPer100kIn: hubIn > 0 ? Math.round(((hubCpu / 100) / (hubIn / elapsed / 1e5)) * 100) / 100 : NaN, rssMb: Math.round(rss) },
      agentCpuPercent: { mean: Math.round(agentCpu.reduce((s, x) => s + x, 0) / agentCpu.length), max: Math.round(Math.max(...agentCpu)) },
      tracerCpuPercent: o.source === 'kernel' ? { mean: Math.round(tracerCpu.reduce((s, x) => s + x, 0) / tracerCpu.length), max: Math.round(Math.max(...tracerCpu)) } : null,
      natsCpuPercent: Math.round(cpu(before.nats, after.nats)),
      clientCpuPercent: Math.round(((after.me - before.me) / 1e6 / elapsed) * 100),
      latencyMs: { p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99), max: pct(sorted, 100) },
      lost: {
        kernelOrAgent: lostKA,
        publishFailed: o.source === 'synthetic' ? after.failed - before.failed : agents.filter((a) => /publishing hop batches fails/.test(a.out())).length,
        seqGaps: sum(after.view, (x) => x.gaps) - sum(before.view, (x) => x.gaps),
        hubBad: bad as Record<string, number>,
        hubToClientPackets: Math.max(0, (after.view.packets - before.view.packets) - packets),
        backlogAtEnd: backlog,
      },
    };
    o.log(`hub (${o.hubTree.label}) ${o.source} ${o.agents} agent(s) × ${o.asked}: offered ${r.offeredEventsPerSec}/s, hub in ${r.hubInEventsPerSec}/s, delivered ${r.deliveredEventsPerSec}/s; hub CPU ${r.hub.cpuPercent}% (${r.hub.cpuSecPer100kEvents} CPU-s per 100k events); latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms; lost ${r.lost.kernelOrAgent}, gaps ${r.lost.seqGaps}, backlog ${r.lost.backlogAtEnd} (load ${r.loadavg})`);
    return r;
  } finally {
    await cleanup();
    onInterrupt.delete(cleanup);
  }

  async function cleanup(): Promise<void> {
    socket?.close();
    for (const t of traffic) t.stop();
    await Promise.all(traffic.map((t) => t.done.catch(() => undefined)));
    await bus?.close().catch(() => undefined);
    await stopProc(hub);
    await Promise.all(agents.map(stopProc));
    await Promise.all(spawned.map((child) => stopProc({ child, out: () => '', stat: null })));
    await nats?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * What an interrupted run must still undo (Ctrl-C, SIGTERM): agents, hub, nats-server and its
 * store, the lab, temporary folders. Each step and the lab add theirs while they live.
 */
const onInterrupt = new Set<() => Promise<void>>();
let interruptHooked = false;
function hookInterrupt(): void {
  if (interruptHooked) return;
  interruptHooked = true;
  const undo = (sig: NodeJS.Signals): void => {
    process.stderr.write(`bench/hub: ${sig}: stopping agents, hub and nats-server, removing the lab\n`);
    void Promise.all([...onInterrupt].map((f) => f().catch(() => undefined))).finally(() => process.exit(130));
  };
  process.once('SIGINT', undo);
  process.once('SIGTERM', undo);
}

export async function benchHub(opts: HubBenchOptions): Promise<HubResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!hasNatsServer) throw new Error(`the hub benchmark ${NEEDS_NATS}`);
  const steps: HubStep[] = [];
  const failed: HubResult['failed'] = [];
  const trees = [{ label: 'this tree', dir: REPO }];
  let baseDir: string | undefined;
  if (opts.base) {
    // The earlier commit's files beside this checkout's node_modules; only the hub runs from it.
    baseDir = mkdtempSync(join(tmpdir(), 'hbe-base-'));
    const dir = baseDir;
    hookInterrupt();
    onInterrupt.add(async () => rmSync(dir, { recursive: true, force: true }));
    const rev = String((await execa('git', ['rev-parse', '--short', opts.base], { cwd: REPO })).stdout).trim();
    await execa('sh', ['-c', 'git archive "$1" | tar -x -C "$2"', 'sh', rev, baseDir], { cwd: REPO });
    await execa('ln', ['-s', join(REPO, 'node_modules'), join(baseDir, 'node_modules')]);
    trees.unshift({ label: `base ${rev}`, dir: baseDir });
  }
  const each = async (source: HubSource, agents: number, f: (t: { label: string; dir: string }) => Promise<HubStep>): Promise<void> => {
    for (const t of trees) {
      try {
        steps.push(await f(t));
      } catch (err) {
        // One step that cannot be measured does not throw the others away.
        const error = (err as Error).message.split('\n')[0]!.slice(0, 300);
        log(`hub (${t.label}) ${source} ${agents} agent(s): not measured: ${error}`);
        failed.push({ source, hubTree: t.label, agents, error });
      }
    }
  };
  try {
    await runSteps();
  } finally {
    if (baseDir) rmSync(baseDir, { recursive: true, force: true });
  }
  return {
    method: 'fresh nats-server (JetStream, temp store) per step; agents and `serve --hub` in processes of their own; one socket.io client on /cluster; latency per hop from its tNode (CLOCK_MONOTONIC) to receipt',
    steps,
    failed,
  };

  async function runSteps(): Promise<void> {
  if (opts.sources.includes('synthetic')) {
    for (const rate of opts.rates) for (const n of opts.agents) await each('synthetic', n, (t) => step({ source: 'synthetic', agents: n, asked: rate, seconds: opts.seconds, lab: undefined, log, hubTree: t }));
  }
  if (opts.sources.includes('kernel')) {
    if (process.getuid?.() !== 0) throw new Error('the hub benchmark\'s kernel source needs root (a cluster lab and bpftrace); --hub-sources synthetic runs without');
    const prefix = `${process.env.HOPTRACE_TEST_PREFIX ?? ''}hb${randomBytes(2).toString('hex')}`.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 8);
    const lab = clusterLabFor(prefix, 'vxlan', Number(process.env.HOPTRACE_LAB_NET ?? 168), Math.max(2, ...opts.agents));
    const down = (): Promise<void> => clusterLabDown(lab);
    hookInterrupt();
    onInterrupt.add(down);
    try {
      await clusterLabUp(lab);
      for (const n of opts.agents) await each('kernel', n, (t) => step({ source: 'kernel', agents: n, asked: opts.pps, seconds: opts.seconds, lab, log, hubTree: t }));
    } finally {
      await clusterLabDown(lab);
    }
  }
  }
}

/** The table rows for run.ts and this file's own output. */
export function hubTable(r: HubResult): string[] {
  const fmt = (x: number): string => x.toLocaleString('en-US');
  const lines = [`  hub: ${[...new Set(r.steps.map((s) => s.hubTree))].join(' vs ')}`, '  source     agents  asked/agent  offered/s  hub in/s  delivered/s  stitched  hub CPU  CPU-s/100k  agent CPU  bpftrace  nats CPU  latency p50 / p99 ms   lost  pub✗  gaps  →client  backlog  load'];
  for (const s of r.steps) {
    lines.push(`  ${(r.steps.some((x) => x.hubTree !== 'this tree') ? `${s.source.slice(0, 5)}/${s.hubTree.startsWith('base') ? 'base' : 'new'}` : s.source).padEnd(10)} ${String(s.agents).padStart(6)}  ${fmt(s.asked).padStart(11)}  ${fmt(s.offeredEventsPerSec).padStart(9)}  ${fmt(s.hubInEventsPerSec).padStart(8)}  ${fmt(s.deliveredEventsPerSec).padStart(11)}  ${`${Math.round(s.stitchedShare * 100)} %`.padStart(8)}  ${`${s.hub.cpuPercent} %`.padStart(7)}  ${String(s.hub.cpuSecPer100kEvents).padStart(10)}  ${`${s.agentCpuPercent.mean} %`.padStart(9)}  ${(s.tracerCpuPercent ? `${s.tracerCpuPercent.mean} %` : '—').padStart(8)}  ${`${s.natsCpuPercent} %`.padStart(8)}  ${`${s.latencyMs.p50} / ${s.latencyMs.p99}`.padStart(20)}  ${fmt(s.lost.kernelOrAgent).padStart(5)}  ${String(s.lost.publishFailed).padStart(4)}  ${String(s.lost.seqGaps).padStart(4)}  ${String(s.lost.hubToClientPackets).padStart(6)}  ${String(s.lost.backlogAtEnd).padStart(7)}  ${s.loadavg.split(' ')[0]}${Object.keys(s.lost.hubBad).length ? `  bad: ${JSON.stringify(s.lost.hubBad)}` : ''}`);
  }
  for (const f of r.failed) lines.push(`  ${f.source} ${f.agents} agent(s) (${f.hubTree}): not measured: ${f.error}`);
  return lines;
}

if (process.argv[1]?.endsWith('hub.ts')) {
  const { values } = parseArgs({
    options: {
      role: { type: 'string', default: 'bench' },
      hub: { type: 'string' }, node: { type: 'string' }, index: { type: 'string' }, rate: { type: 'string' }, t0: { type: 'string' },
      sources: { type: 'string', default: process.getuid?.() === 0 ? 'synthetic,kernel' : 'synthetic' },
      agents: { type: 'string', default: '1,2,3,4' },
      rates: { type: 'string', default: '10000,25000' },
      pps: { type: 'string', default: '2000' },
      seconds: { type: 'string', default: '10' },
      base: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.role === 'agent') {
    await agentRole({ hub: values.hub!, node: values.node!, index: Number(values.index), agents: Number(values.agents), rate: Number(values.rate), t0: Number(values.t0) });
  } else {
    try {
      const r = await benchHub({
        sources: values.sources.split(',') as HubSource[], agents: values.agents.split(',').map(Number), rates: values.rates.split(',').map(Number),
        pps: Number(values.pps), seconds: Number(values.seconds), ...(values.base ? { base: values.base } : {}),
      });
      process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${hubTable(r).join('\n')}\n`);
    } catch (err) {
      process.stderr.write(`bench/hub.ts: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
