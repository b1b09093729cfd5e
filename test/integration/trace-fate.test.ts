/**
 * No false drops on a real kernel (issue 19): TCP rounds through a lab (DNAT into a pod, and pod
 * to pod over the bridge) give no dropped packet — pure ACKs TCP frees after reading them
 * (NOT_SPECIFIED), queues purged at close (QUEUE_PURGE) and the like are delivered, with the
 * discard as a detail — while a closed port (NO_SOCKET, answered with a reset) and the lab's
 * FORWARD drop still are drops. Real lab, real bpftrace, the real CLI.
 */
import { describe, it, expect } from 'vitest';
import { ECHO } from '../../server/lab/rounds.js';
import { sendUdp, sendTcp } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace } from '../helpers/cli.js';

interface Summary { type: 'summary'; packets: number; events: number; lost: number; late: number; splits: number }

describe.skipIf(!isRoot)(`fates on a real lab (${NEEDS_ROOT})`, () => {
  const demo = useLabWithServers('fa');

  it('calls no packet of TCP rounds dropped, and keeps a closed port and the FORWARD drop as drops', async () => {
    const closedPort = 81;
    const { child } = await startTrace(['--json', '--filter', `tcp or (udp and port ${demo.lab.blockedPort})`]);
    const sent = [];
    for (let i = 0; i < 3; i++) {
      sent.push(await sendTcp(demo.lab.ns.ext, demo.lab.addr.nodeExt, demo.lab.dnatPort, 64));
      sent.push(await sendTcp(demo.lab.ns.pod1, demo.lab.addr.pod2, ECHO.podTcp, 100_000));
    }
    const refused = await sendTcp(demo.lab.ns.pod1, demo.lab.addr.pod2, closedPort, 64);
    await sendUdp(demo.lab.ns.pod1, demo.lab.addr.ext, demo.lab.blockedPort, 1);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(sent.every((s) => s.replies === s.sent && !s.error), JSON.stringify(sent)).toBe(true);
    expect(refused.replies).toBe(0);

    const lines = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Packet | Summary | { type: 'lost' });
    // Only this lab's packets: other tests' labs use the same addresses. A free seen alone
    // without a device (netns 0: its earlier hops came too late to be joined) names no place.
    const mine = lines.filter((l): l is Packet => 'id' in l)
      .filter((p) => p.hops.some((h) => demo.roles.has(h.netns)) && p.hops.every((h) => h.netns === 0 || demo.roles.has(h.netns)));
    const tcp = mine.filter((p) => p.proto === 'tcp');
    const toClosed = (p: Packet): boolean => p.hops.some((h) => h.dport === closedPort || h.sport === closedPort);
    const rounds = tcp.filter((p) => !toClosed(p));
    expect(rounds.length).toBeGreaterThan(30);
    const falseDrops = rounds.filter((p) => p.fate === 'dropped');
    expect(falseDrops.map((p) => `${p.drop?.reason} in ${p.drop?.ns}: ${p.hops.map((h) => `${demo.roles.get(h.netns)}/${h.ifname}/${h.event}`).join(' ')}`)).toEqual([]);
    // What the kernel freed after delivery is said, not hidden; never alongside a drop. Bulk
    // transfers make TCP free pure ACKs it has read (NOT_SPECIFIED) every time here.
    const discarded = rounds.filter((x) => x.discard);
    expect(discarded.length).toBeGreaterThan(0);
    for (const p of discarded) {
      expect(p.fate).toBe('delivered');
      expect(p.drop).toBeNull();
      expect(p.hops.at(-1)?.event).toBe('drop');
    }

    // The SYN to a port nobody listens on: dropped in pod2 with NO_SOCKET (pod2 answers with a reset).
    const syn = tcp.find((p) => toClosed(p) && p.dport === closedPort && p.fate === 'dropped');
    expect(syn?.drop).toMatchObject({ reason: 'NO_SOCKET', ns: demo.lab.ns.pod2 });
    expect(tcp.some((p) => toClosed(p) && p.sport === closedPort && p.hops.some((h) => (h.tcpFlags & 0x04) !== 0))).toBe(true);

    const forward = mine.find((p) => p.proto === 'udp' && p.dport === demo.lab.blockedPort);
    expect(forward).toMatchObject({ fate: 'dropped', drop: { reason: 'NETFILTER_DROP', ns: demo.lab.ns.node } });

    // The closing summary line: totals, and how many packets were split off a reused skb.
    const summary = lines.at(-1) as Summary;
    expect(summary).toMatchObject({ type: 'summary' });
    expect(summary.packets).toBe(lines.filter((l) => 'id' in l).length);
    expect(Number.isInteger(summary.splits)).toBe(true);
    expect(String(r.stderr)).toMatch(/hoptrace: \d+ packets, \d+ hop events/);
  }, 120_000);
});
