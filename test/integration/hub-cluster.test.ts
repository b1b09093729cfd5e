/**
 * Many nodes, end to end (issue 17): two "nodes" as groups of namespaces on this kernel (each a
 * node namespace with a bridge and a pod namespace), joined by an underlay veth and either a
 * VXLAN overlay or plain routes; a real nats-server with JetStream; `hoptrace agent` per node
 * limited to its group with --namespaces (in the kernel); `hoptrace serve --hub`. A UDP packet
 * pod(node1) → pod(node2) must come out of the hub's REST API as ONE packet with hops on both
 * nodes, each hop's `node` the one whose namespaces it is in.
 *
 * On one kernel, a single reconstruction would join the pieces by skb address by itself; the
 * hub reconstructs each node on its own (as on real machines), so only stitching can make the
 * packet whole here.
 */
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { io as ioClient, type Socket } from 'socket.io-client';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS } from '../helpers/nats.js';
import { stopHubCli as stopCli, until, useHubCluster } from '../helpers/hub.js';
import { clusterBase, sendPodDatagrams, type ClusterUnderlay } from '../helpers/cluster-lab.js';
import type { ClusterPacket, ClockOffset } from '../../shared/cluster/stitch.js';
import type { NodeInfo } from '../../server/hub/hub.js';
import type { ClusterLink } from '../../shared/cluster/model.js';

/** This file's addresses: 10.168.x unless HOPTRACE_TEST_ADDRESS_BASE says otherwise. */
const BASE = clusterBase(168);


interface ClusterView {
  nodes: NodeInfo[];
  links: ClusterLink[];
  clockOffsets: ClockOffset[];
  badMessages: Record<string, number>;
}

for (const underlay of ['vxlan', 'routed'] as const satisfies readonly ClusterUnderlay[]) {
  describe.skipIf(!isRoot || !hasNatsServer)(`cluster over ${underlay === 'vxlan' ? 'a VXLAN overlay' : 'a routed underlay'} (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
    // Agents only: the hub starts in the first test, after them.
    const c = useHubCluster({ tag: 'h6h', underlay, base: BASE, timeoutMs: 120_000 });

    const cluster = async (): Promise<ClusterView> => (await (await fetch(`${c.url}api/cluster`)).json()) as ClusterView;

    it('agents trace nothing until a hub asks for a session', async () => {
      await new Promise((r) => setTimeout(r, 1500));
      for (const a of c.agents) expect(await children(a.child.pid!), a.out()).toEqual([]);
      // The hub starts after the agents: it learns of them from the topology they published.
      await c.startHub(['--filter', `net 10.${BASE}.0.0/16`]);
    }, 120_000);

    it('one UDP packet pod(node1) → pod(node2) is one packet at the hub, with hops on both nodes', async () => {
      // Both agents traced the hub's session (their reply comes once bpftrace is attached).
      const view = await until('both nodes tracing', async () => {
        const v = await cluster();
        return v.nodes.length === 2 && v.nodes.every((n) => n.session?.ok) ? v : undefined;
      });
      expect(view.nodes.map((n) => n.name)).toEqual(['node1', 'node2']);
      for (const [i, n] of view.nodes.entries()) {
        // Each node's namespaces are its group's only (the selector), each tagged with the node.
        expect(n.namespaces.map((x) => x.name).sort()).toEqual([c.lab.nodes[i]!.nodeNs, c.lab.nodes[i]!.podNs].sort());
        expect(n.namespaces.every((x) => x.node === n.name)).toBe(true);
      }
      expect(view.links.some((l) => l.kind === 'underlay' && l.from.node === 'node1' && l.to.node === 'node2')).toBe(true);
      if (underlay === 'vxlan') expect(view.links.some((l) => l.kind === 'tunnel' && l.from.node === 'node1' && l.to.node === 'node2' && l.tunnel?.type === 'vxlan')).toBe(true);

      // The same packets reach a socket.io client of the hub's /cluster namespace as they are made.
      const socket: Socket = ioClient(`${c.url}cluster`, { transports: ['websocket'] });
      const streamed: ClusterPacket[] = [];
      socket.on('packets', (ps: ClusterPacket[]) => streamed.push(...ps));
      await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
      const [n1, n2] = c.lab.nodes;
      await sendPodDatagrams(n1, n2, 5168);
      const packets = await until('the stitched packets', async () => {
        const ps = (await (await fetch(`${c.url}api/cluster/packets`)).json()) as ClusterPacket[];
        const ours = ps.filter((p) => p.proto === 'udp' && p.dport === 5168 && p.src === n1.pod);
        return ours.length >= 3 ? ours : undefined;
      });
      // Each datagram is exactly one packet, whole: no piece of it left alone.
      expect(packets).toHaveLength(3);
      for (const p of packets) {
        expect(p.nodes).toEqual(['node1', 'node2']);
        expect(p.hops[0]).toMatchObject({ node: 'node1', ns: n1.podNs, event: 'xmit' });
        expect(p.hops.some((h) => h.node === 'node2' && h.ns === n2.podNs)).toBe(true);
        // The node on every hop is the node whose namespaces the hop is in.
        for (const h of p.hops) expect(h.ns?.startsWith(`${c.lab.prefix}-${h.node === 'node1' ? 1 : 2}-`), `${h.node} ${h.ns} ${h.ifname} ${h.event}`).toBe(true);
        expect(p.stitches).toHaveLength(1);
        expect(p.stitches[0]).toMatchObject({ from: 'node1', to: 'node2', via: underlay === 'vxlan' ? 'tunnel' : 'routed' });
        const st = p.stitches[0]!;
        expect(p.hops[st.leave]).toMatchObject({ node: 'node1', ifname: 'ul0', event: 'xmit' });
        expect(p.hops[st.enter]).toMatchObject({ node: 'node2', ifname: 'ul0' });
        if (underlay === 'vxlan') {
          expect(p.hops[st.leave]!.outer).toMatchObject({ src: n1.underlay, dst: n2.underlay, dport: 4789 });
          expect(p.hops.some((h) => h.encap?.type === 'vxlan' && h.node === 'node1')).toBe(true);
          expect(p.hops.some((h) => h.decap?.type === 'vxlan' && h.node === 'node2')).toBe(true);
        }
        // Hops in time order on the reference clock (one kernel: the offset is the wire time).
        for (let i = 1; i < p.hops.length; i++) expect(p.hops[i]!.t).toBeGreaterThanOrEqual(p.hops[i - 1]!.t);
      }
      await until('the packets on socket.io', async () => (streamed.filter((p) => p.dport === 5168).length >= 3 ? true : undefined), 10_000);
      socket.close();
      expect(streamed.filter((p) => p.dport === 5168).map((p) => p.hops.map((h) => `${h.node}/${h.ns}/${h.ifname}/${h.event}`)))
        .toEqual(packets.map((p) => p.hops.map((h) => `${h.node}/${h.ns}/${h.ifname}/${h.event}`)));
      const offsets = (await cluster()).clockOffsets;
      const o2 = offsets.find((o) => o.node === 'node2')!;
      expect(o2.samples).toBeGreaterThanOrEqual(3);
      // Same kernel, same clock: the estimate is the wire time across one veth, well under 1 ms.
      expect(Math.abs(o2.offsetNs)).toBeLessThan(1_000_000);
      expect((await cluster()).badMessages).toMatchObject({ 'bad-protobuf': 0, 'foreign-subject': 0, oversize: 0 });
      // Each agent runs one bpftrace now: the one the hub asked for.
      for (const a of c.agents) expect(await children(a.child.pid!)).toHaveLength(1);
    }, 120_000);

    it('the hub going away ends the agents\' sessions and their bpftrace', async () => {
      await stopCli(c.hub);
      for (const a of c.agents) {
        await until('the agent to stop its session', async () => (/session hub stopped/.test(a.out()) ? true : undefined), 20_000);
        await until('bpftrace to exit', async () => ((await children(a.child.pid!)).length === 0 ? true : undefined), 20_000);
      }
    }, 60_000);
  });
}

/**
 * Names of a process's tracer children (bpftrace runs under setpriv, which execs it). Other
 * children are not the agent's work: tsx, which runs the CLI in tests, keeps an esbuild service.
 */
async function children(pid: number): Promise<string[]> {
  const r = await execa('pgrep', ['-l', '-P', String(pid)], { reject: false });
  return String(r.stdout).split('\n').filter(Boolean).map((l) => l.split(' ')[1] ?? '').filter((c) => /bpftrace|setpriv|^ld/.test(c));
}
