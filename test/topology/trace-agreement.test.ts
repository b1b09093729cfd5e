/**
 * `path` and `trace` agree on real traffic: a real lab, the real CLI, real bpftrace. Every packet
 * of a lab traffic round (pod to pod, pod to ext through MASQUERADE and its de-NATed reply, a
 * DNAT port forward with the whole TCP exchange both ways, a FORWARD drop, IPv6) carries an
 * expected path whose hops are the ones the kernel showed, and no divergence. A drop the model
 * cannot foresee (a netdev ingress rule, which it does not evaluate) is called out, prominently
 * in the human output.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { trafficRound } from '../../server/lab/rounds.js';
import { sendUdp } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace } from '../helpers/cli.js';

type Annotated = Packet & PacketExpectation;

describe.skipIf(!isRoot)(`path agrees with trace on a real lab (${NEEDS_ROOT})`, () => {
  const demo = useLabWithServers('pa');

  const spot = (h: { netns: number; ifname: string; event: string }): string => `${demo.roles.get(h.netns)}/${h.ifname}/${h.event}`;

  it('should expect every hop of every packet of a traffic round, replies through conntrack included', async () => {
    const { child } = await startTrace(['--json', '--filter', 'net 10.244.1.0/24 or net 10.99.0.0/24 or net fd00:244:1::/64']);
    const rounds = await trafficRound(demo.lab);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    // Every kind got its reply, but the blocked one.
    expect(rounds.map((x) => x.result.replies > 0)).toEqual([true, true, true, false, true]);
    const packets = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated | { type: string })
      .filter((p): p is Annotated => 'id' in p)
      // This lab's packets only (other tests' labs use the same addresses), and IP traffic of
      // the round (neighbour discovery to link-local addresses is not what this is about).
      .filter((p) => p.hops.every((h) => demo.roles.has(h.netns)) && (p.proto === 'udp' || p.proto === 'tcp'));
    const kinds = {
      bridged: packets.filter((p) => p.family === 4 && p.proto === 'udp' && (p.dport === 5000 || p.sport === 5000)),
      masq: packets.filter((p) => p.proto === 'udp' && (p.dport === 7000 || p.sport === 7000)),
      dnat: packets.filter((p) => p.proto === 'tcp'),
      blocked: packets.filter((p) => p.dport === demo.lab.blockedPort),
      v6: packets.filter((p) => p.family === 6),
    };
    // Each kind both ways (the blocked one has no reply); TCP: handshake, data, teardown.
    expect(kinds.bridged.length).toBe(2);
    expect(kinds.masq.length).toBe(2);
    expect(kinds.dnat.length).toBeGreaterThanOrEqual(6);
    expect(kinds.blocked.length).toBe(1);
    expect(kinds.v6.length).toBe(2);
    for (const p of packets) {
      const what = `${p.proto} ${p.src}:${p.sport} > ${p.dst}:${p.dport}`;
      expect(p.expected, what).not.toBeNull();
      expect(p.divergence, `${what}: ${p.divergence?.summary}`).toBeNull();
      // The hops the kernel showed are the expected ones, in order (rx is the veth backlog
      // half of a receive, which the model folds into recv; after a delivery the kernel frees).
      const seen = p.hops.filter((h) => h.event !== 'rx' && h.event !== 'consume' && h.event !== 'drop').map(spot);
      const want = (p.expected?.hops ?? []).filter((h) => h.event !== 'drop').map(spot);
      expect(seen, what).toEqual(want);
    }
    const reply = kinds.masq.find((p) => p.sport === 7000);
    expect(reply?.expected?.hops.find((h) => h.hook === 'PREROUTING')?.rules[0]?.verdict).toMatch(/^reverse NAT: destination 10\.244\.1\.11:/);
    const synAck = kinds.dnat.find((p) => p.sport === 80);
    expect(synAck?.expected?.hops.find((h) => h.ifname === 'eth-node')).toMatchObject({ hook: 'POSTROUTING', src: demo.lab.addr.nodeExt, sport: demo.lab.dnatPort });
    expect(kinds.blocked[0]?.expected).toMatchObject({ fate: 'dropped', drop: { hook: 'FORWARD', table: 'filter' } });
  }, 120_000);

  it('should call out a drop the model did not expect, in the JSON and prominently in the human output', async () => {
    const table = `ht${demo.lab.prefix}`;
    await execa('ip', ['netns', 'exec', demo.lab.ns.node, 'nft', '-f', '-'], {
      input: `table netdev ${table} {\n chain i {\n  type filter hook ingress device "veth-pod1" priority 0;\n  udp dport 7101 drop\n }\n}\n`,
    });
    try {
      const json = await startTrace(['--json', '--filter', 'udp port 7101']);
      const human = await startTrace(['--filter', 'udp port 7101']);
      await sendUdp(demo.lab.ns.pod1, demo.lab.addr.ext, 7101, 1);
      await new Promise((r) => setTimeout(r, 500));
      json.child.kill('SIGINT');
      human.child.kill('SIGINT');
      const [j, h] = await Promise.all([json.child, human.child]);
      const p = String(j.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated).find((x) => 'id' in x && x.hops.every((hp) => demo.roles.has(hp.netns)));
      expect(p?.fate).toBe('dropped');
      expect(p?.expected?.fate).toBe('delivered');
      // The model says it did not evaluate the netdev chain: its expectation was a guess.
      expect(p?.expected?.notes.join('\n')).toContain('netdev');
      expect(p?.divergence).toMatchObject({ kind: 'drop', observed: { ifname: 'veth-pod1', event: 'drop' } });
      expect(p?.divergence?.summary).toBe(`expected to arrive in ${demo.lab.ns.node} on br0 (recv), was dropped in ${demo.lab.ns.node} (reason NETFILTER_DROP)`);
      const block = String(h.stdout).split('\n\n').find((b) => b.includes(demo.lab.ns.pod1));
      expect(block).toContain(`⚠ off the expected path: ${p?.divergence?.summary ?? '?'}`);
    } finally {
      await execa('ip', ['netns', 'exec', demo.lab.ns.node, 'nft', 'delete', 'table', 'netdev', table]);
    }
  }, 120_000);
});

if (!isRoot) {
  describe('path agrees with trace on a real lab', () => {
    it.skip(NEEDS_ROOT, () => undefined);
  });
}
