/**
 * `hoptrace trace --notes` end to end on a real lab: a packet that has to wait for its
 * neighbour, is learned by the bridge, queues in a tbf qdisc, is routed by the node and dies at
 * a closed port gets each of those notes, at the hop they explain; without --notes nothing changes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import type { Packet, PacketNote } from '../../shared/packet.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, labInodes, randomPrefix, type CliProcess } from '../helpers/cli.js';

const CLOSED_PORT = 7009;

describe.skipIf(!isRoot)(`trace --notes on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;

  beforeAll(async () => {
    lab = labFor(randomPrefix('nt'));
    await labUp(lab);
    // A qdisc that queues (veth's default is noqueue): time in it becomes a note.
    await execa('ip', ['netns', 'exec', lab.ns.pod1, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '10mbit', 'burst', '32kbit', 'latency', '50ms']);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    if (lab) await labDown(lab);
  });

  async function run(args: string[], traffic: () => Promise<unknown>): Promise<Packet[]> {
    const { child } = await startTrace(['--json', '--no-model', ...args]);
    await traffic();
    await new Promise((r) => setTimeout(r, 300));
    return stop(child);
  }

  async function stop(child: CliProcess): Promise<Packet[]> {
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    return String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));
  }

  /** `role/ifname/event` of the hop a note follows ('-' before the first hop). */
  const at = (p: Packet, n: PacketNote): string => {
    const h = p.hops[n.afterHop];
    return h ? `${roles.get(h.netns)}/${h.ifname}/${h.event}` : '-';
  };

  it('notes the neighbour wait, MAC learning, qdisc time, route lookups and the ICMP error of one packet', async () => {
    const filter = `udp and dst port ${CLOSED_PORT}`;
    const mac = String((await execa('ip', ['-n', lab.ns.pod1, '-br', 'link', 'show', 'eth0'])).stdout).trim().split(/\s+/)[2] ?? '';
    const packets = await run(['--notes', '--filter', filter], async () => {
      // Prime pod1's and the bridge's state, then forget what the test packet should rediscover.
      await sendUdp(lab.ns.pod1, lab.addr.bridge, 9, 1);
      await execa('bridge', ['-n', lab.ns.node, 'fdb', 'del', mac, 'dev', 'veth-pod1', 'master'], { reject: false });
      await execa('ip', ['-n', lab.ns.node, 'neigh', 'del', lab.addr.ext, 'dev', 'eth-node'], { reject: false });
      await sendUdp(lab.ns.pod1, lab.addr.ext, CLOSED_PORT, 1);
    });
    const p = packets.find((x) => x.src === lab.addr.pod1 && x.dport === CLOSED_PORT);
    expect(p?.fate).toBe('dropped');
    const notes = p?.notes ?? [];
    const where = (kind: string): string[] => notes.filter((n) => n.kind === kind).map((n) => at(p as Packet, n));
    expect(where('qdisc')).toEqual(['-']);
    expect(notes.find((n) => n.kind === 'qdisc')?.data.wait_ns).toBeGreaterThan(0);
    expect(where('fdb')).toEqual(['node/veth-pod1/recv']);
    expect(notes.find((n) => n.kind === 'fdb')?.data).toMatchObject({ bridge: 'br0', port: 'veth-pod1', mac: mac.toUpperCase() });
    expect(where('neigh')).toContain('node/br0/recv');
    expect(notes.find((n) => n.kind === 'neigh')?.data).toMatchObject({ addr: lab.addr.ext, dev: 'eth-node', rc: 1 });
    const routes = notes.filter((n) => n.kind === 'fib' && n.data.err === 0 && n.data.dst === lab.addr.ext);
    expect(routes.map((n) => `${at(p as Packet, n)} ${n.data.dev}`)).toEqual(expect.arrayContaining(['node/br0/recv eth-node', 'ext/eth0/recv eth0']));
    expect(where('icmp')).toEqual(['ext/eth0/recv']);
    expect(notes.find((n) => n.kind === 'icmp')?.data).toMatchObject({ type: 3, code: 3, dport: CLOSED_PORT });
    for (const n of notes) expect(roles.has(n.netns)).toBe(true);
  }, 90_000);

  it('notes IPv6 route lookups, and adds no notes field without --notes', async () => {
    const with6 = await run(['--notes', '--filter', `udp and dst port ${CLOSED_PORT}`], () => sendUdp(lab.ns.pod1, lab.addr.pod2v6, CLOSED_PORT, 1));
    const p6 = with6.find((x) => x.family === 6 && x.dport === CLOSED_PORT);
    expect(p6?.notes?.some((n) => n.kind === 'fib6' && n.data.dst === lab.addr.pod2v6)).toBe(true);
    const plain = await run(['--filter', `udp and dst port ${CLOSED_PORT}`], () => sendUdp(lab.ns.pod1, lab.addr.ext, CLOSED_PORT, 1));
    expect(plain.length).toBeGreaterThan(0);
    for (const p of plain) expect('notes' in p).toBe(false);
  }, 90_000);
});
