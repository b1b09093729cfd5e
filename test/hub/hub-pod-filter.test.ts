/**
 * `serve --hub --filter 'pod NAME'` (issue 17), against a real nats-server with stand-in agents
 * (they answer the hub's control requests as agents do and publish snapshots into JetStream): the
 * cluster session waits, asking no agent and saying so in health, until a node that has the pod
 * sends its topology; then every node is asked for the pod's address; and again for its new
 * address when a snapshot moves the pod.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { until } from '../helpers/hub.js';
import { Hub } from '../../server/hub/hub.js';
import { ensureStream } from '../../server/hub/connect.js';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';

const BASE = Number(process.env.HOPTRACE_TEST_ADDRESS_BASE ?? 206);
const enc = new TextEncoder();

const ns = (netns: number, name: string, addr: string, pod: string | null): NamespaceModel => ({
  netns, name, path: `/run/netns/${name}`, pids: [], routes: [], rules: [], forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
  netfilter: { chains: [], rules: [] }, errors: [],
  interfaces: [{ ifindex: 2, name: 'eth0', kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs: [`${addr}/24`], master: null, peer: null, link: null }],
  workloads: pod ? [{ runtime: 'podman', id: `${pod}-id`, name: `${pod}-c`, pod, k8sNamespace: null, image: 'busybox' }] : [],
  workload: pod,
});
const topo = (namespaces: NamespaceModel[]): Topology => ({ namespaces, errors: [], discoveredAt: 1, durationMs: 1 });

describe.skipIf(!hasNatsServer)(`serve --hub --filter 'pod NAME' (${hasNatsServer ? 'nats-server' : NEEDS_NATS})`, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let hub: Hub;
  const asked: Array<{ node: string; op: string; session: string; filter?: string }> = [];
  const lines: string[] = [];

  const agent = (node: string): void => {
    nc.subscribe(`hoptrace.${node}.control`, {
      callback: (_err, m) => {
        const body = JSON.parse(new TextDecoder().decode(m.data)) as { op: string; session: string; filter?: string };
        asked.push({ node, ...body });
        m.respond(enc.encode(JSON.stringify({ ok: true })));
      },
    });
  };
  const publishSnapshot = async (node: string, topology: Topology): Promise<void> => {
    await jetstream(nc).publish(`hoptrace.${node}.topology`, enc.encode(JSON.stringify({ node, t: 1, wallMs: Date.now(), selector: '', topology })));
  };
  const starts = (filter: string): string[] => [...new Set(asked.filter((a) => a.session === 'hub' && a.op === 'start' && a.filter === filter).map((a) => a.node))].sort();

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureStream(nc);
    agent('node1');
    agent('node2');
    hub = new Hub({ bus: { url: nats.url }, filter: 'udp and pod web', durable: 'h-podf', holdMs: 0, log: (l) => lines.push(l) });
    await hub.start();
  }, 60_000);

  afterAll(async () => {
    await hub?.stop();
    await nc?.drain().catch(() => undefined);
    await nats?.stop();
  }, 30_000);

  it('should wait, asking no agent, while no node that has the pod is known, and say so in health', async () => {
    expect(hub.clusterSessionWaiting).toMatch(/waits for a node that has the workload .*no node yet/);
    await publishSnapshot('node1', topo([ns(1101, 'n1-pod', `10.${BASE}.1.10`, 'shop')]));
    await until('node1 known', async () => (hub.nodeInfo().length === 1 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.filter((a) => a.session === 'hub')).toEqual([]);
    const h = hub.health();
    expect(h.clusterSession).toEqual({ filter: 'udp and pod web', waiting: expect.stringMatching(/nodes so far: node1.*shop \(node1\)/) });
    expect(hub.filterText).toBe('udp and pod web');
  });

  it('should ask every node for the pod\'s address once the node that has it sends its topology', async () => {
    await publishSnapshot('node2', topo([ns(2201, 'n2-pod', `10.${BASE}.2.10`, 'web')]));
    const filter = `udp and host 10.${BASE}.2.10`;
    await until('both nodes asked', async () => (starts(filter).length === 2 ? true : undefined), 20_000);
    expect(starts(filter)).toEqual(['node1', 'node2']);
    expect(hub.clusterSessionWaiting).toBeNull();
    expect(hub.health().clusterSession).toBeUndefined();
    expect(hub.filterText).toBe(filter);
  });

  it('should ask every node again for the new address when a snapshot moves the pod', async () => {
    await publishSnapshot('node2', topo([ns(2201, 'n2-pod', `10.${BASE}.2.77`, 'web')]));
    const filter = `udp and host 10.${BASE}.2.77`;
    await until('both nodes asked again', async () => (starts(filter).length === 2 ? true : undefined), 20_000);
    expect(hub.filterText).toBe(filter);
    expect(lines.some((l) => l.includes(`now runs as '${filter}'`))).toBe(true);
  });
});
