/**
 * Many nodes, the bus in trouble (issue 17 §3/§4): agents keep hop batches in a bounded outbox
 * while nats-server is down and send them in order once it is back (packets sent during the
 * outage arrive whole, even when one agent's backlog reaches the hub seconds after the other's:
 * stitching waits on each node's watermark, not the hub's clock); a slow hub (SIGSTOPped during a
 * burst) costs the agents nothing — their memory stays put, the stream's retention bounds the
 * store, and what the hub missed is counted; an outbox too small for the outage drops its oldest
 * batches, counted and shown per node. Real nats-server, real agents and hub (the CLI), two "nodes" of namespaces over VXLAN.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS } from '../helpers/nats.js';
import { stopHubCli as kill, until, useHubCluster } from '../helpers/hub.js';
import { clusterBase, sendPodDatagrams } from '../helpers/cluster-lab.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
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
  const c = useHubCluster({ tag: 'hre', underlay: 'vxlan', base: BASE, hub: ['--durable', 'hreout', '--filter', `net 10.${BASE}.0.0/16`] });
  const packets = async (port: number): Promise<ClusterPacket[]> => (await c.packets()).filter((p) => p.dport === port);

  it('nats-server down for seconds: what the agents saw meanwhile arrives whole once it is back, one agent seconds after the other', async () => {
    const outage = c.nats.restart(6000);
    await sleep(1000);
    // Sent while nothing can be published: both agents keep the batches.
    await sendPodDatagrams(c.lab.nodes[0], c.lab.nodes[1], 5176, 3, 40);
    // node2's agent comes back 5 s after the bus (as one whose reconnect backs off, on a busy
    // node): node1's pieces reach the hub seconds before node2's, longer than the 2 s hold.
    const late = c.agents[1]!.child.pid!;
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
      expect(p.hops[0]).toMatchObject({ node: 'node1', ns: c.lab.nodes[0].podNs, event: 'xmit' });
      expect(p.hops.at(-1)).toMatchObject({ node: 'node2', ns: c.lab.nodes[1].podNs });
    }
    expect((await c.nodes()).map((n) => [n.name, n.agentDropped, n.gaps])).toEqual([['node1', 0, 0], ['node2', 0, 0]]);
    expect(c.agents[0]!.out()).toMatch(/publishing hop batches fails .*keeping up to 4096 batches/);
    expect(c.agents[0]!.out()).toMatch(/publishing works again/);
  }, 180_000);

  it('a slow hub: the agents\' memory stays put, the retention bounds the stream, and what the hub missed is counted', async () => {
    await c.allTracing();
    // A small retention, applied to the existing stream as --retention-mb does.
    const nc = await connectBus({ url: c.nats.url });
    const maxBytes = 64 * 1024;
    await ensureStream(nc, { maxBytes });
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const jsm = await jetstreamManager(nc);
    try {
      expect((await jsm.streams.info(STREAM)).config.max_bytes).toBe(maxBytes);
      const pids = c.agents.map((a) => a.child.pid!);
      const before = pids.map(rssKb);
      c.hub!.child.kill('SIGSTOP');
      const peak = [...before];
      const sampler = setInterval(() => pids.forEach((p, i) => { peak[i] = Math.max(peak[i]!, rssKb(p)); }), 100);
      try {
        // A burst far bigger than the retention while the hub reads nothing: longer than the
        // hub's outstanding pull (256 messages the server may push to it before it stopped), so
        // batches are discarded before the hub could take them.
        await sendPodDatagrams(c.lab.nodes[0], c.lab.nodes[1], 5178, 2500, 40, 3);
        await sleep(2000);
      } finally {
        clearInterval(sampler);
        c.hub!.child.kill('SIGCONT');
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
        const ns = await c.nodes();
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
    await Promise.all(c.agents.map((a) => kill(a)));
    await c.startAgents(['--buffer-batches', '1']);
    // The hub asks the new agents at its next renewal (every 10 s).
    for (const a of c.agents) await until('the new agent tracing', async () => (/session hub started/.test(a.out()) ? true : undefined), 120_000);
    const outage = c.nats.restart(6000);
    await sleep(1000);
    await sendPodDatagrams(c.lab.nodes[0], c.lab.nodes[1], 5177, 8, 40);
    await outage;
    const after = await until('the agents\' drops at the hub', async () => {
      const ns = await c.nodes();
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
