/**
 * The NAT real runtimes write, on the real kernel with real bpftrace (`hoptrace trace --json`):
 * - rootful podman/netavark publishing a port (`-p HOSTPORT:80`), reached from the host through
 *   127.0.0.1 (OUTPUT DNAT, route_localnet, masqueraded by netavark's mark), through the host's
 *   own address, and by hairpin from another container of the same network (bridged DNAT,
 *   masqueraded by mark);
 * - a kube-proxy iptables-mode ruleset (test/topology/fixtures/kube-proxy-nat.txt: KUBE-SERVICES →
 *   KUBE-SVC with statistic → KUBE-SEP DNAT, KUBE-MARK-MASQ/KUBE-POSTROUTING) for a ClusterIP and
 *   a NodePort, in a lab of namespaces of its own.
 * Every ordinary packet must carry an expected path and no divergence. Podman's rules live in the
 * root namespace: the test uses its own network (10.89.77.0/24), a random host port and the
 * host's own address (local delivery, never routed out), and removes everything it made.
 */
import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, labInodes, randomPrefix } from '../helpers/cli.js';
import { httpGet, podmanMissing, usePublishedWeb } from '../helpers/podman.js';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startEcho, sendTcp, type Server } from '../../server/lab/traffic.js';

type Annotated = Packet & PacketExpectation;

function parsePackets(stdout: string): Annotated[] {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated | { type: string }).filter((p): p is Annotated => 'id' in p);
}

const what = (p: Annotated): string => `${p.proto} ${p.src}:${p.sport} > ${p.dst}:${p.dport} [${p.hops.map((h) => `${h.ns ?? h.netns}/${h.ifname}/${h.event} ${h.src}:${h.sport}>${h.dst}:${h.dport}`).join(', ')}]`;


async function getFromHost(addr: string, port: number): Promise<string> {
  const r = await fetch(`http://${addr}:${port}/`, { signal: AbortSignal.timeout(10_000) });
  return r.text();
}

const missing = isRoot ? podmanMissing() : NEEDS_ROOT;

describe.skipIf(missing !== null)(`podman/netavark port forwarding on the real kernel (${missing ?? 'root, podman'})`, () => {
  const published = usePublishedWeb('htnat', '10.89.77.0/24', { client: true });

  it('should expect every packet of a published port reached through 127.0.0.1, the host address and by hairpin', async () => {
    const { lab, web, client: cli, host, port } = published;
    const { child } = await startTrace(['--json', '--filter', `net ${lab.net.subnet} or tcp port ${port}`]);
    try {
      expect(await getFromHost('127.0.0.1', port)).toContain('hello');
      expect(await getFromHost(host, port)).toContain('hello');
      expect(await lab.exec(cli.name, httpGet(host, port))).toContain('hello');
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const mine = new Set([web.netns, cli.netns]);
    const packets = parsePackets(String(r.stdout)).filter((p) => p.proto === 'tcp' && p.cloneOf === null &&
      p.hops.some((h) => mine.has(h.netns)) && p.hops.every((h) => mine.has(h.netns) || h.ns === 'host'));
    // Three connections, each with handshake, request, response and teardown both ways.
    expect(packets.length).toBeGreaterThanOrEqual(3 * 6);
    for (const p of packets) {
      expect(p.expected, what(p)).not.toBeNull();
      expect(p.divergence, `${what(p)}: ${p.divergence?.summary}`).toBeNull();
    }
    // Localhost: its replies arrive on the bridge already de-NATed to 127.0.0.1.
    const local = packets.filter((p) => p.hops.some((h) => h.ifname === lab.net.bridge && h.event === 'recv' && h.dst === '127.0.0.1'));
    expect(local.length).toBeGreaterThan(0);
    // ...and curl's own packets (first seen on the bridge, already NATed) are expected from what
    // curl sent: 127.0.0.1:PORT, DNATed in OUTPUT. The first SYN from the rules (its first hop
    // carries the socket's own tuple), the later ones from the connection the model remembers.
    const sent = packets.filter((p) => p.expected?.flow.dst === '127.0.0.1' && p.expected.flow.dport === port && p.hops[0]?.ifname === lab.net.bridge);
    const verdicts = sent.map((p) => p.expected?.hops[0]?.rules.map((x) => x.verdict) ?? []);
    expect(verdicts.filter((v) => v.includes(`dnat to ${web.addr}:80`)).length).toBeGreaterThanOrEqual(1);
    expect(verdicts.filter((v) => v.includes(`NAT: destination ${web.addr}:80`)).length).toBeGreaterThan(0);
    // Hairpin: into cli's bridge port for the host address, out to web masqueraded by netavark's mark.
    const hairpinSyn = packets.find((p) => p.hops[0]?.netns === cli.netns && p.hops.some((h) => h.netns === web.netns) && (p.hops[0]?.tcpFlags ?? 0) === 0x02);
    expect(hairpinSyn, 'the hairpin SYN').toBeDefined();
    const masq = hairpinSyn?.expected?.hops.flatMap((h) => h.rules).find((x) => x.verdict.startsWith('masquerade'));
    expect(masq?.rule).toContain('--mark 0x2000/0x2000');
    expect(hairpinSyn?.hops.at(-1)).toMatchObject({ netns: web.netns, src: lab.net.gateway, dst: web.addr, dport: 80 });
  }, 180_000);
});

const KUBE = readFileSync(new URL('../topology/fixtures/kube-proxy-nat.txt', import.meta.url), 'utf8');

describe.skipIf(!isRoot)(`kube-proxy-style ClusterIP and NodePort on the real kernel (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];

  beforeAll(async () => {
    lab = labFor(randomPrefix('kp'));
    await labUp(lab);
    try {
      await execa('ip', ['netns', 'exec', lab.ns.node, 'iptables-restore', '--noflush'], { input: KUBE });
      // The ClusterIP range is reached through the node (a route of ext's own; nothing leaves the lab).
      await execa('ip', ['-n', lab.ns.ext, 'route', 'add', '10.96.0.0/16', 'via', lab.addr.nodeExt]);
      servers = [await startEcho(lab.ns.pod1, 'tcp', '0.0.0.0', 80), await startEcho(lab.ns.pod2, 'tcp', '0.0.0.0', 80)];
    } catch (e) {
      await Promise.all(servers.map((s) => s.stop()));
      await labDown(lab);
      throw e;
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
  });

  it('should land every connection on the endpoint it took, with no divergence', async () => {
    const roles = labInodes(lab);
    const { child } = await startTrace(['--json', '--filter', 'tcp port 30080 or tcp port 80']);
    try {
      for (let i = 0; i < 10; i++) {
        expect((await sendTcp(lab.ns.ext, lab.addr.nodeExt, 30080, 32)).replies).toBeGreaterThan(0);
        expect((await sendTcp(lab.ns.ext, '10.96.0.10', 80, 32)).replies).toBeGreaterThan(0);
      }
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const packets = parsePackets(String(r.stdout)).filter((p) => p.proto === 'tcp' && p.cloneOf === null && p.hops.every((h) => roles.has(h.netns)));
    expect(packets.length).toBeGreaterThanOrEqual(20 * 6);
    for (const p of packets) {
      expect(p.expected, what(p)).not.toBeNull();
      expect(p.divergence, `${what(p)}: ${p.divergence?.summary}`).toBeNull();
    }
    const syns = packets.filter((p) => p.hops[0]?.tcpFlags === 0x02 && roles.get(p.hops[0]?.netns ?? 0) === 'ext');
    expect(syns).toHaveLength(20);
    const endpoints = new Set<string>();
    for (const s of syns) {
      expect(s.expected?.probability, what(s)).toBeCloseTo(0.5);
      expect(s.expected?.alternatives, what(s)).toHaveLength(1);
      const last = s.hops.at(-1);
      endpoints.add(roles.get(last?.netns ?? 0) ?? '?');
      // The path shown is the endpoint taken.
      expect(s.expected?.hops.at(-1)?.netns).toBe(last?.netns);
    }
    expect([...endpoints].sort()).toEqual(['pod1', 'pod2']);
  }, 120_000);
});
