/**
 * `record --hub --since` (issue 17 §3): a recording cut from the cluster's JetStream stream after
 * the fact. A hub asks the agents for the cluster session and is then killed: the agents keep
 * tracing (their lease outlives it) and publish into the stream with no hub reading. `record
 * --hub --since` then cuts the window, and `replay` shows each pod(node1) → pod(node2) datagram
 * as one stitched packet with hops on both nodes; `export` reads the same file. Bad input gets
 * one line: a bad duration, no server, no stream, nothing in the window.
 * Real nats-server, real agents (the CLI), two "nodes" of namespaces over VXLAN.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS, startNatsServer } from '../helpers/nats.js';
import { cli } from '../helpers/cli.js';
import { stopHubCli as kill, useHubCluster } from '../helpers/hub.js';
import { clusterBase, sendPodDatagrams } from '../helpers/cluster-lab.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import { connectBus, ensureStream } from '../../server/hub/connect.js';

const BASE = clusterBase(175);

describe.skipIf(!isRoot || !hasNatsServer)(`record --hub --since (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  // A hub asks the agents for the cluster session, then dies: nothing reads the stream while
  // the traffic goes. The agents keep tracing for their lease (30 s).
  const c = useHubCluster({ tag: 'hre', underlay: 'vxlan', base: BASE, hub: ['--durable', 'hre', '--filter', `net 10.${BASE}.0.0/16`] });

  beforeAll(async () => {
    await kill(c.hub, 'SIGKILL');
    await sendPodDatagrams(c.lab.nodes[0], c.lab.nodes[1], 5175, 3, 44);
    // Batches go out every 50 ms; leave room for the last free on node2.
    await new Promise((r) => setTimeout(r, 2000));
  }, 60_000);

  const replayJson = async (file: string): Promise<ClusterPacket[]> => {
    const r = await cli(['replay', '--json', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClusterPacket | { type: string })
      .filter((p): p is ClusterPacket => 'hops' in p);
  };

  it('cuts the window into a recording whose replay has the stitched packets, hops on both nodes', async () => {
    const file = join(c.dir, 'cut.hoptrace');
    const r = await cli(['record', '--hub', c.nats.url, '--since', '2m', '-o', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/record: node1: \d+ events/);
    expect(r.stderr).toMatch(/wrote .*cut\.hoptrace: \d+ events, \d+ packets \([1-9]\d* across nodes\)/);
    const ours = (await replayJson(file)).filter((p) => p.dport === 5175);
    expect(ours).toHaveLength(3);
    for (const p of ours) {
      expect(p.nodes).toEqual(['node1', 'node2']);
      expect(p.hops[0]).toMatchObject({ node: 'node1', ns: c.lab.nodes[0].podNs, event: 'xmit' });
      expect(p.hops.at(-1)).toMatchObject({ node: 'node2', ns: c.lab.nodes[1].podNs });
      // Nothing listens on pod2: the kernel there drops it, as the live hub shows it.
      expect(p.fate).toBe('dropped');
      expect(p.drop?.reason).toMatch(/NO_SOCKET/);
      // The tunnel: encapsulated on node1, decapsulated on node2, stitched on the outer packet.
      expect(p.stitches).toHaveLength(1);
      expect(p.stitches[0]).toMatchObject({ from: 'node1', to: 'node2', via: 'tunnel' });
      expect(p.hops.some((h) => h.node === 'node1' && h.ns === c.lab.nodes[0].nodeNs)).toBe(true);
      expect(p.hops.some((h) => h.node === 'node2' && h.ns === c.lab.nodes[1].nodeNs)).toBe(true);
    }
    // The file's stats and a pcapng export read it too.
    const stats = await cli(['replay', '--stats', '--json', file]);
    expect(stats.exitCode, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ host: expect.stringContaining('cluster node1, node2') });
    const pcap = join(c.dir, 'cut.pcapng');
    const ex = await cli(['export', file, '--pcapng', pcap]);
    expect(ex.exitCode, ex.stderr).toBe(0);
    expect(statSync(pcap).size).toBeGreaterThan(1000);
  }, 120_000);

  it('--node keeps one node: the same packets, only that node\'s pieces', async () => {
    const file = join(c.dir, 'node2.hoptrace');
    const r = await cli(['record', '--hub', c.nats.url, '--since', '2m', '--node', 'node2', '-o', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    const ours = (await replayJson(file)).filter((p) => p.dport === 5175);
    expect(ours).toHaveLength(3);
    for (const p of ours) {
      expect(p.nodes).toEqual(['node2']);
      expect(p.hops.every((h) => h.node === 'node2')).toBe(true);
    }
  }, 120_000);

  it('bad input gets one line each: a duration, no server, no stream, an empty window', async () => {
    const out = join(c.dir, 'bad.hoptrace');
    const bad = await cli(['record', '--hub', c.nats.url, '--since', '10 minutes', '-o', out]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^hoptrace: --since takes a duration such as 90s, 10m/);
    const none = await cli(['record', '--hub', 'nats://127.0.0.1:1', '--since', '10m', '-o', out]);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/^hoptrace: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    // A server of its own: first without the stream, then with it but nothing in it.
    const other = await startNatsServer();
    try {
      const noStream = await cli(['record', '--hub', other.url, '--since', '10m', '-o', out]);
      expect(noStream.exitCode).toBe(1);
      expect(noStream.stderr).toMatch(/^hoptrace: there is no HOPTRACE stream on nats:\/\/127\.0\.0\.1:\d+ .*no agent has published there yet/);
      const nc = await connectBus({ url: other.url });
      await ensureStream(nc);
      await nc.close();
      const empty = await cli(['record', '--hub', other.url, '--since', '10m', '-o', out]);
      expect(empty.exitCode).toBe(1);
      expect(empty.stderr).toMatch(/^hoptrace: nothing in the stream since .*it is empty/);
    } finally {
      await other.stop();
    }
    for (const r of [bad, none]) expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(() => statSync(out)).toThrow();
  }, 120_000);
});
