/**
 * Many nodes, faults (issue 17): a hub killed and restarted on its durable consumer gets the
 * packets sent while it was down (agents keep publishing into the stream's retention); a
 * restarted nats-server is reconnected to by all; an agent killed is reported lost while the
 * other node goes on. Real nats-server, real agents and hub
 * (the CLI), two "nodes" of namespaces over VXLAN (test/helpers/cluster-lab.ts).
 */
import { describe, expect, it } from 'vitest';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS } from '../helpers/nats.js';
import { stopHubCli as kill, until, useHubCluster } from '../helpers/hub.js';
import { clusterBase, sendPodDatagrams } from '../helpers/cluster-lab.js';

/** This file's addresses: 10.168.x unless HOPTRACE_TEST_ADDRESS_BASE says otherwise. */
const BASE = clusterBase(168);


describe.skipIf(!isRoot || !hasNatsServer)(`cluster faults (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  const hubArgs = ['--durable', 'h6hfaults', '--filter', `net 10.${BASE}.0.0/16`];
  const c = useHubCluster({ tag: 'h6h', underlay: 'vxlan', base: BASE, hub: hubArgs, timeoutMs: 180_000 });
  const send = (from: 0 | 1, port: number): Promise<unknown> => {
    const [a, b] = from === 0 ? c.lab.nodes : [c.lab.nodes[1], c.lab.nodes[0]];
    return sendPodDatagrams(a, b, port, 3, 40);
  };

  it('a hub killed and restarted on its durable consumer gets the packets sent while it was down', async () => {
    // Packets the first hub took (and acknowledged) before it died...
    await send(0, 5168);
    await until('the first hub\'s packets', async () => ((await c.packets()).filter((p) => p.dport === 5168).length >= 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    await kill(c.hub, 'SIGKILL');
    // The agents keep their sessions (their lease outlives the restart) and keep publishing.
    await send(0, 5169);
    await c.startHub(hubArgs);
    const ours = await until('the packets sent while the hub was down', async () => {
      const ps = (await c.packets()).filter((p) => p.dport === 5169);
      return ps.length >= 3 ? ps : undefined;
    });
    expect(ours).toHaveLength(3);
    // ...are not given again: the durable consumer resumed after them (a new consumer would
    // start a minute back and replay them).
    expect((await c.packets()).filter((p) => p.dport === 5168)).toEqual([]);
    for (const p of ours) {
      expect(p.nodes).toEqual(['node1', 'node2']);
      // Named: the restarted hub read each node's latest topology from the stream.
      expect(p.hops[0]).toMatchObject({ node: 'node1', ns: c.lab.nodes[0].podNs });
      expect(p.hops.at(-1)?.ns).toBe(c.lab.nodes[1].podNs);
    }
  }, 120_000);

  it('nats-server restarted: agents and hub reconnect, and packets across nodes are stitched again', async () => {
    await c.nats.restart();
    // Sent until whole packets come through again: bursts sent while one agent is back and the
    // other not yet arrive as one node's piece (the other's batch could not be published).
    await until('whole packets after the restart', async () => {
      if ((await c.packets()).some((p) => p.dport === 5171 && p.nodes.length === 2)) return true;
      await send(0, 5171);
      return undefined;
    }, 60_000);
    // Both agents and the hub are back: every packet of a new burst is whole.
    await new Promise((r) => setTimeout(r, 2000));
    await send(0, 5172);
    const ours = await until('the next burst', async () => {
      const got = (await c.packets()).filter((p) => p.dport === 5172);
      return got.length >= 3 ? got : undefined;
    });
    expect(ours.map((p) => p.nodes)).toEqual([['node1', 'node2'], ['node1', 'node2'], ['node1', 'node2']]);
    expect(c.agents.map((a) => a.child.exitCode)).toEqual([null, null]);
  }, 120_000);

  it('an agent killed: its node is reported lost, the other node goes on', async () => {
    await until('both nodes tracing again', async () => ((await c.nodes()).filter((n) => n.session?.ok).length === 2 ? true : undefined));
    await kill(c.agents[0], 'SIGKILL');
    // Found at the next session renewal (every 10 s).
    const after = await until('node1 lost', async () => {
      const ns = await c.nodes();
      return ns.find((n) => n.name === 'node1')?.state === 'lost' ? ns : undefined;
    }, 30_000);
    expect(after.find((n) => n.name === 'node2')).toMatchObject({ state: 'up', session: { ok: true } });
    // node2 still traces: a packet from its pod is seen there (node1's side of it no longer is).
    await send(1, 5170);
    const ps = await until('node2\'s packets', async () => {
      const got = (await c.packets()).filter((p) => p.dport === 5170);
      return got.length >= 3 ? got : undefined;
    });
    for (const p of ps) {
      expect(p.nodes).toEqual(['node2']);
      expect(p.hops[0]).toMatchObject({ node: 'node2', ns: c.lab.nodes[1].podNs, event: 'xmit' });
    }
  }, 120_000);
});
