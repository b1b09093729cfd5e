/**
 * Sessions through the hub (issue 17): a REST client asks `serve --hub` for sessions as it would
 * ask a single host (POST /api/sessions {filter, notes, netfilter, nodes}); the hub asks the
 * agents over NATS request/reply, and their hops and depth events (notes, netfilter rule-trace
 * steps, on hoptrace.<node>.depth) come back attached to the stitched packets with their node.
 *
 * Real: nats-server with JetStream, a 2-node cluster lab over a routed underlay (namespaces on
 * this kernel), one `hoptrace agent` per node limited to its namespaces, bpftrace and nft. Node 2's
 * agent runs with an `nft` that fails, as on a host without nftables: it refuses netfilter depth,
 * and the session goes on with node 1.
 */
import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { io as ioClient, type Socket } from 'socket.io-client';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS } from '../helpers/nats.js';
import { clusterBase, sendPodDatagrams } from '../helpers/cluster-lab.js';
import { until, useHubCluster } from '../helpers/hub.js';
import { cli } from '../helpers/cli.js';
import type { AnnotatedClusterPacket } from '../../shared/cluster/expect.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import type { ClusterSessionInfo } from '../../server/hub/cluster-session.js';
import type { NodeTopologyChange } from '../../server/hub/hub.js';

/** This file's addresses: 10.176.x (its own range). */
const BASE = clusterBase(176);

describe.skipIf(!isRoot || !hasNatsServer)(`sessions through the hub (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  // An nft that fails, first on node 2's agent's PATH: that node has no usable nftables.
  const bin = (): string => join(c.dir, 'bin');
  const c = useHubCluster({
    tag: 'hct', underlay: 'routed', base: BASE, hub: ['--filter', 'udp port 5175'], timeoutMs: 300_000,
    setup: async (h) => {
      await execa('mkdir', ['-p', bin()]);
      writeFileSync(join(bin(), 'nft'), '#!/bin/sh\necho "nft: not installed on this node (test)" >&2\nexit 127\n');
      chmodSync(join(bin(), 'nft'), 0o755);
      // A rule on node 1's forwarding path, for its netfilter rule trace to name.
      await execa('ip', ['netns', 'exec', h.lab.nodes[0].nodeNs, 'nft', '-f', '-'], {
        input: 'table inet hct {\n chain hctfwd {\n  type filter hook forward priority 0; policy accept;\n  udp dport 5176 counter accept\n }\n}\n',
      });
    },
    agentEnv: (n) => (n.index === 2 ? { PATH: `${bin()}:${process.env.PATH ?? ''}` } : undefined),
  });

  // What the hub's API answers here: an error, a list of sessions, a session, or packets.
  type Body = ClusterSessionInfo & { error: { code: string; message: string; detail?: { offset: number } }; sessions: ClusterSessionInfo[] };
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }> => {
    const r = await fetch(`${c.url}${path}`, {
      method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as Body };
  };

  it('health says the cluster can trace, each real agent saying so for its node', async () => {
    const h = (await api('GET', 'api/health')).body as unknown as { canTrace: boolean; nodes: Array<{ name: string; canTrace?: boolean }> };
    expect(h.canTrace).toBe(true);
    expect(h.nodes.map((n) => [n.name, n.canTrace])).toEqual([['node1', true], ['node2', true]]);
  });

  it('a bad filter is 400 with the caret message, and no agent is asked', async () => {
    const before = c.agents.map((a) => a.out().length);
    const r = await api('POST', 'api/sessions', { filter: 'udp portt 5176' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-filter');
    expect(r.body.error.message).toMatch(/^bad filter: /);
    expect(r.body.error.detail).toMatchObject({ offset: 4 });
    // Nothing reached an agent (each logs every session it is asked for), and no session was made.
    await new Promise((res) => setTimeout(res, 1000));
    expect(c.agents.map((a) => a.out().length)).toEqual(before);
    expect((await api('GET', 'api/sessions')).body.sessions.map((s) => s.id)).toEqual(['hub']);
    // The single-host body contract holds: unknown fields and unknown nodes are refused too.
    expect((await api('POST', 'api/sessions', { filter: '', colour: 'red' })).status).toBe(400);
    const unknown = await api('POST', 'api/sessions', { filter: '', nodes: ['node9'] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain("no node 'node9'");
  });

  let withNetfilter: ClusterSessionInfo;
  let withNotes: ClusterSessionInfo;

  it('two sessions at once: one with netfilter depth runs on node 1 and is refused by node 2 (no nft), one with notes runs on both', async () => {
    const [a, b] = await Promise.all([
      api('POST', 'api/sessions', { filter: 'udp port 5176', netfilter: true, notes: true }),
      api('POST', 'api/sessions', { filter: 'udp and port 5177', notes: true, nodes: ['node1', 'node2'] }),
    ]);
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    // A node whose bpftrace failed to start (it can take longer than bpftrace's 60 s attach limit
    // on a loaded machine) says so and is asked again at the next renewal: polled until settled.
    const settled = async (id: string, want: string[]): Promise<ClusterSessionInfo> => until(`session ${id}: ${want.join(', ')}`, async () => {
      const info = (await api('GET', `api/sessions/${id}`)).body;
      return info.nodes.map((n) => `${n.node}:${n.state}`).join() === want.join() ? info : undefined;
    }, 180_000);
    withNetfilter = await settled(a.body.id, ['node1:running', 'node2:refused']);
    withNotes = await settled(b.body.id, ['node1:running', 'node2:running']);
    expect(withNetfilter).toMatchObject({ filter: 'udp and port 5176', state: 'running', depth: { netfilter: true, notes: true } });
    const [n1, n2] = withNetfilter.nodes;
    expect(n1).toMatchObject({ node: 'node1', state: 'running' });
    expect(n2).toMatchObject({ node: 'node2', state: 'refused' });
    expect(n2!.error).toContain('nft');
    expect(withNotes.nodes.map((n) => [n.node, n.state])).toEqual([['node1', 'running'], ['node2', 'running']]);
    // Listed with the cluster session, each with its nodes.
    const list = (await api('GET', 'api/sessions')).body.sessions as ClusterSessionInfo[];
    expect(list.map((s) => s.id).sort()).toEqual(['hub', withNetfilter.id, withNotes.id].sort());
    expect(list.find((s) => s.id === withNetfilter.id)?.depthWarnings?.[0]).toMatch(/^node2: .*nft/);
  }, 400_000);

  it('packets of each session carry its own traffic, with notes and netfilter steps tagged with their node', async () => {
    const [n1, n2] = c.lab.nodes;
    const socket: Socket = ioClient(`${c.url}cluster`, { transports: ['websocket'] });
    const streamed: ClusterPacket[] = [];
    socket.on('packets', (ps: ClusterPacket[]) => streamed.push(...ps));
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    const ack = await socket.emitWithAck('subscribe', { session: withNotes.id }) as { ok: boolean };
    expect(ack.ok).toBe(true);
    try {
      await Promise.all([sendPodDatagrams(n1, n2, 5176), sendPodDatagrams(n1, n2, 5177)]);
      const packetsOf = async (id: string, port: number): Promise<ClusterPacket[] | undefined> => {
        const r = await api('GET', `api/sessions/${id}/packets?limit=1000`);
        const ours = (r.body as unknown as ClusterPacket[]).filter((p) => p.proto === 'udp' && p.src === n1.pod);
        return ours.filter((p) => p.dport === port).length >= 3 ? ours : undefined;
      };
      // Both polled each time: REST interest keeps a session nobody watches from being reaped.
      const [notesPackets, nfPackets] = await until('both sessions\' packets', async () => {
        const both = await Promise.all([packetsOf(withNotes.id, 5177), packetsOf(withNetfilter.id, 5176)]);
        return both[0] && both[1] ? [both[0], both[1]] as const : undefined;
      }, 120_000);
      // Each session sees only what its filter names.
      expect(notesPackets.every((p) => p.dport === 5177)).toBe(true);
      expect(nfPackets.every((p) => p.dport === 5176)).toBe(true);

      // Notes session: each datagram one packet across both nodes; the routing decisions of
      // both nodes' kernels (fib notes for pod 2's address) on it, each note after a hop of its own node.
      for (const p of notesPackets) {
        expect(p.nodes).toEqual(['node1', 'node2']);
        // A REST session's packets get their expected path across the nodes too (its own ClusterExpectations).
        const { expected, divergence } = p as AnnotatedClusterPacket;
        expect(expected?.nodes).toEqual(['node1', 'node2']);
        expect(divergence?.summary ?? null).toBeNull();
        const fib = (p.notes ?? []).filter((x) => x.kind === 'fib' && x.data.dst === n2.pod);
        expect(fib.map((x) => x.node), JSON.stringify(p.notes)).toEqual(expect.arrayContaining(['node1', 'node2']));
        for (const x of p.notes ?? []) {
          expect(['node1', 'node2']).toContain(x.node);
          if (x.afterHop >= 0) expect(p.hops[x.afterHop]!.node, `${x.kind} after hop ${x.afterHop}`).toBe(x.node);
        }
      }

      // Netfilter session: node 2 refused it, so its packets are node 1's alone, with node 1's
      // FORWARD rule named and the hops before it node 1's; notes from node 1 only.
      for (const p of nfPackets) {
        expect(p.nodes).toEqual(['node1']);
        const rule = (p.netfilter ?? []).find((v) => v.table === 'hct' && v.chain === 'hctfwd' && v.type === 'rule');
        expect(rule, JSON.stringify(p.netfilter)).toMatchObject({ node: 'node1', ns: n1.nodeNs, verdict: 'accept' });
        expect(rule!.rule).toContain('udp dport 5176');
        expect(p.hops[rule!.afterHop]?.node).toBe('node1');
        expect((p.notes ?? []).length).toBeGreaterThan(0);
        expect((p.notes ?? []).every((x) => x.node === 'node1')).toBe(true);
      }

      // The socket following the notes session got its packets, and none of the other's.
      await until('streamed packets', async () => (streamed.filter((p) => p.dport === 5177).length >= 3 ? true : undefined), 10_000);
      expect(streamed.some((p) => p.dport === 5176)).toBe(false);

      // Depth events travelled on their own subject, per node.
      const nc = await connect({ servers: c.nats.url });
      try {
        const info = await (await jetstreamManager(nc)).streams.info('HOPTRACE', { subjects_filter: 'hoptrace.*.depth' });
        expect(Object.keys(info.state.subjects ?? {}).sort()).toEqual(['hoptrace.node1.depth', 'hoptrace.node2.depth']);
      } finally {
        await nc.close();
      }
      // `record --hub --since` of the netfilter session keeps its steps with their node: replay puts
      // node 1's FORWARD rule on node 1's hops, as the live hub did.
      const file = join(c.dir, 'hct-nf.hoptrace');
      const rec = await cli(['record', '--hub', c.nats.url, '--since', '5m', '--session', withNetfilter.id, '-o', file]);
      expect(rec.exitCode, rec.stderr).toBe(0);
      const replayed = await cli(['replay', '--json', file]);
      expect(replayed.exitCode, replayed.stderr).toBe(0);
      const fromFile = replayed.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClusterPacket | { type: string })
        .filter((p): p is ClusterPacket => 'hops' in p && p.dport === 5176 && p.src === n1.pod);
      expect(fromFile.length).toBeGreaterThanOrEqual(3);
      for (const p of fromFile) {
        const rule = (p.netfilter ?? []).find((v) => v.table === 'hct' && v.chain === 'hctfwd' && v.type === 'rule');
        expect(rule, JSON.stringify(p.netfilter)).toMatchObject({ node: 'node1', verdict: 'accept' });
        expect(p.hops[rule!.afterHop]?.node).toBe('node1');
      }

      const info = (await api('GET', `api/sessions/${withNotes.id}`)).body as ClusterSessionInfo;
      expect(info.depthEvents!.notes).toBeGreaterThan(0);
      expect(info.nodes.every((n) => n.notes > 0)).toBe(true);
    } finally {
      socket.close();
    }
  }, 240_000);

  it('a node\'s topology change reaches /cluster subscribers, and DELETE ends a session on its agents', async () => {
    const socket: Socket = ioClient(`${c.url}cluster`, { transports: ['websocket'] });
    const changes: NodeTopologyChange[] = [];
    socket.on('topology', (c: NodeTopologyChange) => changes.push(c));
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    const extra = `${c.lab.prefix}-1-extra`;
    try {
      await execa('ip', ['netns', 'add', extra]);
      const change = await until('the topology change', async () => changes.find((c) => c.added.includes(extra)), 30_000);
      expect(change.node).toBe('node1');
      const topo = (await api('GET', 'api/cluster/topology')).body as unknown as { namespaces: Array<{ name: string; node: string }> };
      expect(topo.namespaces.find((n) => n.name === extra)?.node).toBe('node1');
    } finally {
      socket.close();
      await execa('ip', ['netns', 'del', extra], { reject: false });
    }

    expect((await api('DELETE', `api/sessions/${withNotes.id}`)).status).toBe(204);
    expect((await api('GET', `api/sessions/${withNotes.id}`)).status).toBe(404);
    for (const a of c.agents) await until('the agent stopping it', async () => (a.out().includes(`session ${withNotes.id} stopped`) ? true : undefined), 30_000);
    // The other sessions go on.
    expect((await api('GET', 'api/sessions')).body.sessions.map((s) => s.id).sort()).toEqual(['hub', withNetfilter.id].sort());
  }, 120_000);
});
