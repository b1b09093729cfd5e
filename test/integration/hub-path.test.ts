/**
 * The expected path of a packet across nodes, and a node whose clock is off, end to end
 * (issue 17): the two-node cluster lab (test/helpers/cluster-lab.ts), a real nats-server, an
 * agent per node, `serve --hub`. Pod(node1) → pod(node2) requests and their replies come out of
 * /api/cluster/packets stitched, each with an expected path over both nodes' models (every
 * expected hop with its node) that the packet followed; a real firewall rule on node2 against the
 * tunnel's port is expected there, naming node2 and the rule.
 *
 * A clock 2 s off: node2's agent runs in a time namespace whose monotonic clock is 2 s ahead
 * (`unshare --time --monotonic 2`), and the agent publishes hops on its own clock, so node2's hop
 * times really are 2 s ahead of node1's though both nodes share one kernel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { randomPrefix, type CliProcess } from '../helpers/cli.js';
import { startHubCli as start, stopHubCli as stop, until, type HubProcess as Started } from '../helpers/hub.js';
import { clusterBase, clusterLabDown, clusterLabFor, clusterLabUp, type ClusterLab, type ClusterNode, type ClusterUnderlay } from '../helpers/cluster-lab.js';
import type { AnnotatedClusterPacket } from '../../shared/cluster/expect.js';
import type { ClockOffset } from '../../shared/cluster/stitch.js';
import type { ClusterTopology } from '../../shared/cluster/model.js';

/** Namespaces hpaXXX{v,r}-N-{node,pod}: this file's own, never another test's. */
const PREFIX = randomPrefix('hp').slice(0, 7);
const BASE = clusterBase(177);
const SKEW_S = 2;
const hasTimeNs = spawnSync('unshare', ['--time', '--fork', '--monotonic', '1', 'true'], { stdio: 'ignore' }).status === 0;

/** A UDP echo in a pod: every datagram goes back to its sender. */
const ECHO = String.raw`
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(Number(process.argv[2]), process.argv[1], () => process.stdout.write('echo ready\n'));
`;

/** `count` datagrams to an echo, 150 ms apart, each waiting (≤ 1 s) for its echo; exits 0 when all came back. */
const ASK = String.raw`
const s = require('node:dgram').createSocket('udp4');
const [src, dst, port, count] = process.argv.slice(1);
let got = 0, sent = 0;
s.on('message', () => { got++; });
const next = () => {
  if (sent >= Number(count)) { setTimeout(() => { s.close(); process.exit(got === Number(count) ? 0 : 3); }, 1000); return; }
  sent++;
  s.send(Buffer.alloc(40, 97), Number(port), dst, () => setTimeout(next, 150));
};
s.bind(0, src, next);
`;

async function ask(from: ClusterNode, to: ClusterNode, port: number, count: number, expectEcho: boolean): Promise<void> {
  const r = await execa('ip', ['netns', 'exec', from.podNs, process.execPath, '-e', ASK, '--', from.pod, to.pod, String(port), String(count)], { reject: false });
  expect(r.exitCode === 0, `echoes came back: ${r.exitCode} ${String(r.stderr)}`).toBe(expectEcho);
}

interface Cluster {
  nats: NatsServer;
  lab: ClusterLab;
  agents: Started[];
  hub: Started | undefined;
  echo: CliProcess | undefined;
  url: string;
  dataDir: string;
}

/** nats-server, the lab with an echo on node2's pod, an agent per node (node2's behind `wrap2`), the hub. */
function useCluster(underlay: ClusterUnderlay, port: number, wrap2: string[] = []): Cluster {
  const c = { agents: [], hub: undefined, echo: undefined, url: '', dataDir: '' } as unknown as Cluster;
  beforeAll(async () => {
    c.dataDir = mkdtempSync(join(tmpdir(), `${PREFIX}-hubdata-`));
    c.nats = await startNatsServer();
    c.lab = clusterLabFor(`${PREFIX}${underlay === 'vxlan' ? 'v' : 'r'}`, underlay, BASE);
    await clusterLabUp(c.lab);
    const n2 = c.lab.nodes[1];
    c.echo = execa('ip', ['netns', 'exec', n2.podNs, process.execPath, '-e', ECHO, '--', n2.pod, String(port)], { reject: false }) as CliProcess;
    for (const n of c.lab.nodes) {
      c.agents.push(await start(['agent', '--hub', c.nats.url, '--node', `node${n.index}`, '--namespaces', n.selector, '--topology-every', '2'], /waiting for a hub/, { wrap: n.index === 2 ? wrap2 : [] }));
    }
    c.hub = await start(['serve', '--port', '0', '--data-dir', c.dataDir, '--hub', c.nats.url, '--filter', `net 10.${BASE}.0.0/16`], /listening on (http:\S+)/);
    c.url = /listening on (http:\S+)/.exec(c.hub.out())![1]!;
    await until('both nodes tracing', async () => {
      const v = (await (await fetch(`${c.url}api/cluster`)).json()) as { nodes: Array<{ session: { ok: boolean } | null }> };
      return v.nodes.length === 2 && v.nodes.every((n) => n.session?.ok) ? true : undefined;
    });
  }, 240_000);
  afterAll(async () => {
    await stop(c.hub);
    await Promise.all(c.agents.map((a) => stop(a)));
    c.echo?.kill('SIGTERM');
    await c.echo;
    if (c.lab) await clusterLabDown(c.lab);
    await c.nats?.stop();
    if (c.dataDir) rmSync(c.dataDir, { recursive: true, force: true });
  }, 60_000);
  return c;
}

async function packets(c: Cluster, port: number, want: number): Promise<{ requests: AnnotatedClusterPacket[]; replies: AnnotatedClusterPacket[] }> {
  const [n1, n2] = c.lab.nodes;
  return until(`${want} stitched requests and replies`, async () => {
    const ps = (await (await fetch(`${c.url}api/cluster/packets`)).json()) as AnnotatedClusterPacket[];
    const requests = ps.filter((p) => p.src === n1.pod && p.dport === port);
    const replies = ps.filter((p) => p.src === n2.pod && p.sport === port);
    return requests.length >= want && replies.length >= want ? { requests, replies } : undefined;
  });
}

function expectOnPath(p: AnnotatedClusterPacket, nodes: string[]): void {
  const hops = p.hops.map((h) => `${h.node}:${h.ns}/${h.ifname}/${h.event}`).join(' ');
  expect(p.nodes, hops).toEqual(nodes);
  expect(p.expected, hops).not.toBeNull();
  expect(p.divergence?.summary ?? null, `${hops}\nexpected ${p.expected!.hops.map((h) => `${h.node}:${h.ns}/${h.ifname}/${h.event}`).join(' ')}`).toBeNull();
  expect(p.expected!.fate).toBe('delivered');
  expect(p.expected!.nodes).toEqual(nodes);
  // Every expected hop carries its node, and the namespaces it names are that node's.
  for (const h of p.expected!.hops) expect(h.ns.startsWith(`${p.hops[0]!.ns!.split('-')[0]}-${h.node === 'node1' ? 1 : 2}-`), `${h.node} ${h.ns}`).toBe(true);
}

describe.skipIf(!isRoot || !hasNatsServer)(`expected path across nodes (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  describe('over a VXLAN overlay', () => {
    const port = 5177;
    const c = useCluster('vxlan', port);

    it('pod(node1) → pod(node2) requests and their replies: one packet each, on their expected path across both nodes', async () => {
      await ask(c.lab.nodes[0], c.lab.nodes[1], port, 3, true);
      const { requests, replies } = await packets(c, port, 3);
      expect(requests).toHaveLength(3);
      expect(replies).toHaveLength(3);
      for (const p of requests) {
        expectOnPath(p, ['node1', 'node2']);
        expect(p.expected!.hops.find((h) => h.encap)).toMatchObject({ node: 'node1', ifname: 'vx0' });
        expect(p.expected!.hops.find((h) => h.decap)).toMatchObject({ node: 'node2', ifname: 'vx0' });
      }
      for (const p of replies) expectOnPath(p, ['node2', 'node1']);
    }, 180_000);

    it('node2\'s firewall drops the tunnel\'s port: the path expects the drop on node2, naming the rule, and the packet agrees', async () => {
      const n2 = c.lab.nodes[1];
      // The tunnel's datagrams are for node2's own address: its INPUT is where a host firewall meets them.
      const rule = ['-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP'];
      const r = await execa('ip', ['netns', 'exec', n2.nodeNs, 'iptables', ...rule], { reject: false });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      // The agent publishes its model every 2 s: wait until the hub's has the rule.
      await until('node2\'s model with the rule', async () => {
        const t = (await (await fetch(`${c.url}api/cluster/topology`)).json()) as ClusterTopology;
        return t.namespaces.some((ns) => ns.node === 'node2' && ns.netfilter.rules.some((x) => x.text.includes('4789'))) ? true : undefined;
      });
      const before = ((await (await fetch(`${c.url}api/cluster/packets`)).json()) as AnnotatedClusterPacket[]).length;
      await ask(c.lab.nodes[0], n2, port, 2, false);
      const dropped = await until('the dropped requests', async () => {
        const ps = ((await (await fetch(`${c.url}api/cluster/packets`)).json()) as AnnotatedClusterPacket[]).slice(before);
        const d = ps.filter((p) => p.dport === port && p.fate === 'dropped');
        return d.length >= 2 ? d : undefined;
      });
      for (const p of dropped) {
        const hops = p.hops.map((h) => `${h.node}:${h.ns}/${h.ifname}/${h.event}`).join(' ');
        expect(p.nodes, hops).toEqual(['node1', 'node2']);
        expect(p.expected?.fate, hops).toBe('dropped');
        expect(p.expected?.drop).toMatchObject({ node: 'node2', ns: n2.nodeNs, hook: 'INPUT' });
        // iptables-nft: the model reads the rule as nft shows it.
        expect(p.expected?.drop?.rule).toMatch(/dport 4789 .*drop/i);
        expect(p.divergence?.summary ?? null, hops).toBeNull();
      }
    }, 180_000);
  });

  describe.runIf(hasTimeNs)(`over a routed underlay, node2's clock ${SKEW_S} s ahead (a time namespace)`, () => {
    const port = 5178;
    const c = useCluster('routed', port, ['unshare', '--time', '--fork', '--monotonic', String(SKEW_S)]);

    it('stitched whole, hops in order, on their expected path; node2\'s offset is reported', async () => {
      expect(c.agents[1]!.out()).toMatch(/monotonic clock is 2 s off the kernel's/);
      await ask(c.lab.nodes[0], c.lab.nodes[1], port, 4, true);
      const { requests, replies } = await packets(c, port, 4);
      expect(requests).toHaveLength(4);
      expect(replies).toHaveLength(4);
      for (const p of requests) expectOnPath(p, ['node1', 'node2']);
      for (const p of replies) expectOnPath(p, ['node2', 'node1']);
      for (const p of [...requests, ...replies]) {
        expect(p.stitches).toHaveLength(1);
        // On the reference clock (node1's) the hops are in order across the nodes, though node2's own times are 2 s ahead.
        for (let i = 1; i < p.hops.length; i++) expect(p.hops[i]!.t).toBeGreaterThanOrEqual(p.hops[i - 1]!.t);
        for (const h of p.hops) expect(h.tNode - h.t).toBeCloseTo(h.node === 'node2' ? SKEW_S * 1e9 : 0, -7);
      }
      const offsets = ((await (await fetch(`${c.url}api/cluster`)).json()) as { clockOffsets: ClockOffset[] }).clockOffsets;
      const o2 = offsets.find((o) => o.node === 'node2')!;
      expect(o2.method).toBe('two-way');
      expect(o2.samples).toBeGreaterThanOrEqual(8);
      // Within 10 ms of the 2 s the time namespace puts node2's clock ahead (both ways cancel the wire time).
      expect(Math.abs(o2.offsetNs - SKEW_S * 1e9)).toBeLessThan(10_000_000);
    }, 180_000);
  });
});
