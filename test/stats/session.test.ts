/**
 * Stats against known traffic on a real lab: exact counts per segment for a known number of
 * packets over known paths (bridge, MASQUERADE, FORWARD drop), queueing delay from a tbf qdisc
 * showing up in the one segment that crosses it, and flow sampling choosing exactly the flows
 * the hash says. Only segments inside this lab's namespaces are counted: other labs on the host
 * use the same addresses.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import { StatsSession } from '../../server/stats/session.js';
import type { SegmentStats, StatsDocument } from '../../shared/stats/types.js';
import { isSampled } from '../../shared/stats/sampling.js';
import { portToRaw, v4ToRaw } from '../../shared/filter/index.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { MULTI_SENDER } from '../helpers/traffic.js';
import { labInodes, randomPrefix } from '../helpers/cli.js';

describe.skipIf(!isRoot)(`stats on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  const servers: Server[] = [];
  // Ports of our own, so that other labs' traffic does not match the filter.
  const base = 20000 + Math.floor(Math.random() * 20000);
  const podPort = base;
  const extPort = base + 1;

  beforeAll(async () => {
    lab = labFor(randomPrefix('st'));
    await labUp(lab);
    roles = labInodes(lab);
    servers.push(await startEcho(lab.ns.pod2, 'udp', '0.0.0.0', podPort));
    servers.push(await startEcho(lab.ns.ext, 'udp', lab.addr.ext, extPort));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
  });

  /** Runs a stats session (one document for the whole run) around `traffic`. */
  async function statsDuring(filter: string, traffic: () => Promise<unknown>, sampleRate = 1): Promise<StatsDocument> {
    const session = new StatsSession({ filter, sampleRate });
    await session.start();
    try {
      await traffic();
      await new Promise((r) => setTimeout(r, 300));
    } catch (err) {
      await session.stop();
      throw err;
    }
    const doc = await session.stop();
    expect(doc).not.toBeNull();
    return doc as StatsDocument;
  }

  const id = (s: SegmentStats): string => `${roles.get(s.from.netns)}/${s.from.ifname}/${s.from.event}>${roles.get(s.to.netns)}/${s.to.ifname}/${s.to.event}`;
  /** Segment id → count, for segments inside this lab only. */
  const counts = (doc: StatsDocument): Map<string, number> => new Map(doc.segments.filter((s) => roles.has(s.from.netns) && roles.has(s.to.netns)).map((s) => [id(s), s.count]));

  it('counts a known number of packets once per segment of their known paths', async () => {
    const doc = await statsDuring(`udp and (port ${podPort} or port ${extPort} or port ${lab.blockedPort})`, async () => {
      const toPod = await sendUdp(lab.ns.pod1, lab.addr.pod2, podPort, 50, 32, 2);
      const toExt = await sendUdp(lab.ns.pod1, lab.addr.ext, extPort, 40, 32, 2);
      await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 30, 32, 2);
      expect([toPod.replies, toExt.replies]).toEqual([50, 40]);
    });
    const c = counts(doc);
    // Out of pod1: everything.
    expect(c.get('pod1/eth0/xmit>node/veth-pod1/rx')).toBe(120);
    expect(c.get('node/veth-pod1/rx>node/veth-pod1/recv')).toBe(120);
    // Bridged to pod2 and back.
    expect(c.get('node/veth-pod1/recv>node/veth-pod2/xmit')).toBe(50);
    expect(c.get('node/veth-pod2/xmit>pod2/eth0/rx')).toBe(50);
    expect(c.get('pod2/eth0/xmit>node/veth-pod2/rx')).toBe(50);
    // Routed out through MASQUERADE (and the FORWARD drop), via the bridge device.
    expect(c.get('node/veth-pod1/recv>node/br0/recv')).toBe(70);
    expect(c.get('node/br0/recv>node/eth-node/xmit')).toBe(40);
    expect(c.get('node/eth-node/xmit>ext/eth0/rx')).toBe(40);
    expect(c.get('ext/eth0/xmit>node/eth-node/rx')).toBe(40);
    expect(c.get('node/br0/recv>node/br0/drop')).toBe(30);
    const drops = doc.drops.filter((d) => roles.get(d.netns) === 'node');
    expect(drops.map((d) => [d.ifname, d.reason, d.count])).toEqual([['br0', 'NETFILTER_DROP', 30]]);
    const pod1 = doc.interfaces.find((i) => roles.get(i.netns) === 'pod1' && i.ifname === 'eth0');
    expect([pod1?.tx_packets, pod1?.rx_packets]).toEqual([120, 90]);
    expect(pod1?.tx_bytes).toBe(120 * 60);
    // Through the node and out again: 50 + 50 bridged, 40 + 40 NATed.
    expect(doc.transit.find((t) => roles.get(t.netns) === 'node')?.count).toBe(180);
    for (const s of doc.segments) expect(s.p50_ns).toBeLessThanOrEqual(s.max_ns);
  }, 120_000);

  it('shows queueing delay from a tbf rate limit in the segment that crosses it, and not elsewhere', async () => {
    const port = base + 2;
    const load = () => sendUdp(lab.ns.pod1, lab.addr.pod2, port, 3000, 64, 0);
    const p50 = (doc: StatsDocument): Map<string, number> => new Map(doc.segments.filter((s) => roles.has(s.from.netns) && roles.has(s.to.netns)).map((s) => [id(s), s.p50_ns]));
    const before = p50(await statsDuring(`udp and port ${port}`, load));
    await execa('ip', ['netns', 'exec', lab.ns.node, 'tc', 'qdisc', 'add', 'dev', 'veth-pod2', 'root', 'tbf', 'rate', '1mbit', 'burst', '4kb', 'latency', '200ms']);
    let after: Map<string, number>;
    try {
      after = p50(await statsDuring(`udp and port ${port}`, load));
    } finally {
      await execa('ip', ['netns', 'exec', lab.ns.node, 'tc', 'qdisc', 'del', 'dev', 'veth-pod2', 'root'], { reject: false });
    }
    const queued = 'node/veth-pod1/recv>node/veth-pod2/xmit';
    if (process.env.HOPTRACE_TEST_VERBOSE) console.log({ before: Object.fromEntries(before), after: Object.fromEntries(after) });
    expect(before.get(queued)).toBeDefined();
    expect(after.get(queued) ?? 0).toBeGreaterThan(1_000_000);
    expect(after.get(queued) ?? 0).toBeGreaterThan(20 * (before.get(queued) ?? Infinity));
    for (const seg of ['pod1/eth0/xmit>node/veth-pod1/rx', 'node/veth-pod1/rx>node/veth-pod1/recv', 'node/veth-pod2/xmit>pod2/eth0/rx', 'pod2/eth0/rx>pod2/eth0/recv']) {
      // The segment name goes into the assertion so a failure says which one.
      expect({ seg, slow: (after.get(seg) ?? Infinity) >= Math.max(10 * (before.get(seg) ?? 0), 200_000) }).toEqual({ seg, slow: false });
    }
  }, 180_000);

  it('survives snapshots every 100 ms under load (no map clearing), and the intervals add up exactly', async () => {
    const port = base + 4;
    const session = new StatsSession({ filter: `udp and port ${port}`, intervalMs: 100 });
    const docs: StatsDocument[] = [];
    let died = false;
    session.on('interval', (d) => docs.push(d));
    session.on('exit', (e) => { died = !e.requested; });
    await session.start();
    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 5000, 64, 0);
    // At least ten snapshots under load, however fast the sender finished on this machine.
    const until = Date.now() + 10_000;
    while (docs.length < 10 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await session.stop();
    expect(died).toBe(false);
    expect(docs.length).toBeGreaterThanOrEqual(10);
    expect(docs[docs.length - 1]?.final).toBe(true);
    const total = docs.reduce((n, d) => n + (counts(d).get('pod1/eth0/xmit>node/veth-pod1/rx') ?? 0), 0);
    expect(total).toBe(sent.sent);
  }, 120_000);

  it('with --sample N follows exactly the flows the hash picks', async () => {
    const port = base + 3;
    const sports = Array.from({ length: 48 }, (_, i) => base + 100 + i);
    const rate = 4;
    const flow = (sp: number) => ({ s0: BigInt(v4ToRaw(lab.addr.pod1)), s1: 0n, d0: BigInt(v4ToRaw(lab.addr.pod2)), d1: 0n, sp: portToRaw(sp), dp: portToRaw(port), proto: 17 });
    const sampled = sports.filter((sp) => isSampled(flow(sp), rate));
    expect(sampled.length).toBeGreaterThan(0);
    expect(sampled.length).toBeLessThan(sports.length);
    const doc = await statsDuring(`udp and port ${port}`, () => execa('ip', ['netns', 'exec', lab.ns.pod1, process.execPath, '-e', MULTI_SENDER, '--',
      lab.addr.pod1, lab.addr.pod2, String(port), '5', ...sports.map(String)]), rate);
    expect(doc.sample_rate).toBe(rate);
    expect(counts(doc).get('pod1/eth0/xmit>node/veth-pod1/rx')).toBe(sampled.length * 5);
  }, 120_000);
});
