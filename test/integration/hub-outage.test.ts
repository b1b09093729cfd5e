/**
 * Many nodes, the bus in trouble (issue 17 §3/§4): agents keep hop batches in a bounded outbox
 * while nats-server is down and send them in order once it is back (packets sent during the
 * outage arrive whole, even when one agent's backlog reaches the hub seconds after the other's:
 * stitching waits on each node's watermark, not the hub's clock); a slow hub (SIGSTOPped during a burst) costs the agents nothing — their
 * memory stays put, the stream's retention bounds the store, and what the hub missed is counted;
 * an outbox too small for the outage drops its oldest batches, counted and shown per node.
 * Real nats-server, real agents and hub (the CLI), two "nodes" of namespaces over VXLAN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { randomPrefix } from '../helpers/cli.js';
import { stopHubCli as kill, startHubCli as startCli, until, type HubProcess as Proc } from '../helpers/hub.js';
import { clusterBase, clusterLabDown, clusterLabFor, clusterLabUp, sendPodDatagrams, type ClusterLab } from '../helpers/cluster-lab.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import type { NodeInfo } from '../../server/hub/hub.js';
import { connectBus, ensureStream, DEFAULT_RETENTION } from '../../server/hub/connect.js';
import { STREAM } from '../../shared/cluster/subjects.js';

const BASE = clusterBase(175);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resident memory of a process (kB), from /proc. */
function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

describe.skipIf(!isRoot || !hasNatsServer)(`cluster bus outage and slow hub (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  let nats: NatsServer;
  let lab: ClusterLab;
  let hub: Proc | undefined;
  let agents: Proc[] = [];
  let dataDir = '';
  let url = '';
  const nodes = async (): Promise<NodeInfo[]> => ((await (await fetch(`${url}api/cluster`)).json()) as { nodes: NodeInfo[] }).nodes;
  const packets = async (port: number): Promise<ClusterPacket[]> => ((await (await fetch(`${url}api/cluster/packets`)).json()) as ClusterPacket[]).filter((p) => p.dport === port);
  const startAgents = async (extra: string[] = []): Promise<void> => {
    agents = [];
    for (const n of lab.nodes) agents.push(await startCli(['agent', '--hub', nats.url, '--node', `node${n.index}`, '--namespaces', n.selector, ...extra], /waiting for a hub/));
  };
  const bothTracing = (): Promise<true> => until('both nodes tracing', async () => ((await nodes()).filter((n) => n.session?.ok && n.state === 'up').length === 2 ? true : undefined), 120_000);

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hre-outage-'));
    nats = await startNatsServer();
    lab = clusterLabFor(randomPrefix('hre').slice(0, 8), 'vxlan', BASE);
    await clusterLabUp(lab);
    await startAgents();
    hub = await startCli(['serve', '--port', '0', '--data-dir', dataDir, '--hub', nats.url, '--durable', 'hreout', '--filter', `net 10.${BASE}.0.0/16`], /listening on (http:\S+)/);
    url = /listening on (http:\S+)/.exec(hub.out())![1]!;
    await bothTracing();
  }, 240_000);

  afterAll(async () => {
    for (const p of [hub, ...agents]) if (p?.child.pid && p.child.exitCode === null) process.kill(p.child.pid, 'SIGCONT');
    await Promise.all(agents.map((a) => kill(a)));
    await kill(hub);
    if (lab) await clusterLabDown(lab);
    await nats?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('nats-server down for seconds: what the agents saw meanwhile arrives whole once it is back, one agent seconds after the other', async () => {
    const outage = nats.restart(6000);
    await sleep(1000);
    // Sent while nothing can be published: both agents keep the batches.
    await sendPodDatagrams(lab.nodes[0], lab.nodes[1], 5176, 3, 40);
    // node2's agent comes back 5 s after the bus (as one whose reconnect backs off, on a busy
    // node): node1's pieces reach the hub seconds before node2's, longer than the 2 s hold.
    const late = agents[1]!.child.pid!;
    process.kill(late, 'SIGSTOP');
    try {
      await outage;
      await sleep(5000);
    } finally {
      process.kill(late, 'SIGCONT');
    }
    const ours = await until('the packets sent during the outage', async () => {
      const got = await packets(5176);
      return got.length >= 3 && got.every((p) => p.nodes.length === 2) ? got : undefined;
    }, 90_000);
    expect(ours).toHaveLength(3);
    for (const p of ours) {
      expect(p.nodes).toEqual(['node1', 'node2']);
      expect(p.hops[0]).toMatchObject({ node: 'node1', ns: lab.nodes[0].podNs, event: 'xmit' });
      expect(p.hops.at(-1)).toMatchObject({ node: 'node2', ns: lab.nodes[1].podNs });
    }
    expect((await nodes()).map((n) => [n.name, n.agentDropped, n.gaps])).toEqual([['node1', 0, 0], ['node2', 0, 0]]);
    expect(agents[0]!.out()).toMatch(/publishing hop batches fails .*keeping up to 4096 batches/);
    expect(agents[0]!.out()).toMatch(/publishing works again/);
  }, 180_000);

  it('a slow hub: the agents\' memory stays put, the retention bounds the stream, and what the hub missed is counted', async () => {
    await bothTracing();
    // A small retention, applied to the existing stream as --retention-mb does.
    const nc = await connectBus({ url: nats.url });
    const maxBytes = 64 * 1024;
    await ensureStream(nc, { maxBytes });
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const jsm = await jetstreamManager(nc);
    try {
      expect((await jsm.streams.info(STREAM)).config.max_bytes).toBe(maxBytes);
      const pids = agents.map((a) => a.child.pid!);
      const before = pids.map(rssKb);
      hub!.child.kill('SIGSTOP');
      const peak = [...before];
      const sampler = setInterval(() => pids.forEach((p, i) => { peak[i] = Math.max(peak[i]!, rssKb(p)); }), 100);
      try {
        // A burst far bigger than the retention while the hub reads nothing: longer than the
        // hub's outstanding pull (256 messages the server may push to it before it stopped), so
        // batches are discarded before the hub could take them.
        await sendPodDatagrams(lab.nodes[0], lab.nodes[1], 5178, 2500, 40, 3);
        await sleep(2000);
      } finally {
        clearInterval(sampler);
        hub!.child.kill('SIGCONT');
      }
      const state = (await jsm.streams.info(STREAM)).state;
      // The store stayed within its bound; older messages were discarded to keep it there.
      expect(state.bytes).toBeLessThanOrEqual(maxBytes);
      expect(state.first_seq).toBeGreaterThan(1);
      const growthMb = peak.map((p, i) => (p - before[i]!) / 1024);
      process.stderr.write(`slow hub: agents' VmRSS before ${before.map((k) => `${(k / 1024).toFixed(1)} MiB`).join(', ')}, growth at peak ${growthMb.map((g) => `${g.toFixed(1)} MiB`).join(', ')}; stream ${state.bytes} bytes, first seq ${state.first_seq}\n`);
      // Nothing waits in the agents: JetStream took every batch (bounded anyway by the outbox's 64 MiB).
      for (const g of growthMb) expect(g).toBeLessThan(64);
      // The hub, running again, finds batches missing in both nodes' sequences: counted and shown.
      const after = await until('the hub counting what it missed', async () => {
        const ns = await nodes();
        return ns.every((n) => n.gaps > 0) ? ns : undefined;
      }, 60_000);
      expect(after.map((n) => n.agentDropped)).toEqual([0, 0]);
      // Fewer packets than sent whole: the loss is real, and it is the one counted.
      expect((await packets(5178)).filter((p) => p.nodes.length === 2).length).toBeLessThan(2500);
    } finally {
      await ensureStream(nc, { maxBytes: DEFAULT_RETENTION.maxBytes });
      await nc.close();
    }
  }, 180_000);

  it('an outage longer than a tiny outbox: the oldest batches are dropped, counted per node and shown', async () => {
    await Promise.all(agents.map((a) => kill(a)));
    await startAgents(['--buffer-batches', '1']);
    // The hub asks the new agents at its next renewal (every 10 s).
    for (const a of agents) await until('the new agent tracing', async () => (/session hub started/.test(a.out()) ? true : undefined), 120_000);
    const outage = nats.restart(6000);
    await sleep(1000);
    await sendPodDatagrams(lab.nodes[0], lab.nodes[1], 5177, 8, 40);
    await outage;
    const after = await until('the agents\' drops at the hub', async () => {
      const ns = await nodes();
      // Two messages tell it: the agent's snapshot (its counters) and the header on its next hop
      // batch (the hub's lost count); on a busy host either may come first.
      return ns.every((n) => n.agentDropped > 0 && n.agentDroppedEvents > 0 && n.lost > 0) ? ns : undefined;
    }, 90_000);
    for (const n of after) {
      // Told by the agent (a header on its next batch, its snapshot), not mistaken for a slow hub's loss.
      expect(n.agentDropped).toBeGreaterThan(0);
      expect(n.lost).toBeGreaterThan(0);
    }
  }, 240_000);
});
