/**
 * A packet that reached its socket is not a drop in `stats`, as it is not in `trace`
 * (shared/fate.ts): the kernel frees packets a socket already had through kfree_skb, with a drop
 * reason (a closed socket's unread queue; TCP's read pure ACKs with NOT_SPECIFIED, duplicates
 * with TCP_OLD_DATA). On a real lab, UDP datagrams queued on a socket in pod2 that closes unread,
 * TCP connections pod1 → pod2 and UDP datagrams the node's FORWARD chain drops run under `stats`
 * and `trace --json` at once: trace reads the unread datagrams' frees as discards after delivery,
 * and stats must count exactly the packets trace calls dropped, where it calls them dropped,
 * with the same reasons.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startEcho, sendTcp, sendUdp, type Server } from '../../server/lab/traffic.js';
import { StatsSession, discardReasonCodes } from '../../server/stats/session.js';
import { buildStatsProgram } from '../../probes/stats/assemble.js';
import { dropReasonsFrom } from '../../server/drop-reasons.js';
import type { Packet } from '../../shared/packet.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { labInodes, randomPrefix, startTrace } from '../helpers/cli.js';

describe('discards after delivery in the stats program', () => {
  it('should count a free of a delivered packet as its consume, from this kernel\'s numbers only', () => {
    const codes = discardReasonCodes(dropReasonsFrom(new Map([[2, 'NOT_SPECIFIED'], [3, 'NO_SOCKET'], [7, 'QUEUE_PURGE'], [40, 'TCP_OLD_DATA'], [41, 'SOCKET_RCVBUFF']])));
    expect(codes).toEqual({ bySocket: [40], afterArrival: [2, 7] });
    const p = buildStatsProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, discardReasons: codes });
    expect(p).toContain('(uint64)(($reason == 40) || (($reason == 2 || $reason == 7) && $cont && ($st.1 & 0xff) == 3) ? 5 : 4)');
    expect(p).toContain('if (($cont || $real) && ($loc & 0xff) == 4) { @drops[$netns, $ifindex, $reason] = count(); }');
    // Without the table every free with a reason stays a drop.
    expect(buildStatsProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 })).toMatch(/\$loc = \(\$netns << 32\) \| \(\$ifindex << 8\) \| 4;/);
    expect(() => buildStatsProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, discardReasons: { bySocket: [-1], afterArrival: [] } })).toThrow(/non-negative/);
  });
});

describe.skipIf(!isRoot)(`stats and trace agree on drops after delivery (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  let echo: Server | undefined;
  const port = 21000 + Math.floor(Math.random() * 20000);
  const unread = port + 1;
  /**
   * A UDP socket in pod2 that takes datagrams until told to close (a line on stdin), then closes
   * without reading them: soon, since both programs follow a packet for a second after its last hop.
   */
  const UNREAD = 'import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(("0.0.0.0", int(sys.argv[1])))\nprint("listening", flush=True)\nsys.stdin.readline()\ns.close()\n';

  beforeAll(async () => {
    lab = labFor(randomPrefix('h6l'));
    await labUp(lab);
    roles = labInodes(lab);
    echo = await startEcho(lab.ns.pod2, 'tcp', '0.0.0.0', port);
  }, 60_000);

  afterAll(async () => {
    await echo?.stop();
    if (lab) await labDown(lab);
  });

  it('should count the drops trace calls drops, where and why, and none of the packets it calls discarded after delivery', async () => {
    const filter = `(tcp and port ${port}) or (udp and port ${unread}) or (udp and port ${lab.blockedPort} and host ${lab.addr.pod1})`;
    const stats = new StatsSession({ filter });
    await stats.start();
    let doc: StatsDocument | null;
    // With the model: trace knows pod2 owns the address the unread datagrams were freed at. Its
    // discovery reads every namespace of the host, slow on a loaded machine.
    const { child } = await startTrace(['--json', '--filter', filter], {}, 150_000);
    try {
      const sink = execa('ip', ['netns', 'exec', lab.ns.pod2, 'python3', '-c', UNREAD, String(unread)]);
      await new Promise<void>((resolve) => sink.stdout?.once('data', () => resolve()));
      await sendUdp(lab.ns.pod1, lab.addr.pod2, unread, 10, 32, 2);
      sink.stdin?.end('close\n');
      await sink;
      for (let i = 0; i < 8; i++) expect((await sendTcp(lab.ns.pod1, lab.addr.pod2, port, 3000)).error).toBeUndefined();
      await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 6, 32, 5);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      child.kill('SIGINT');
      doc = await stats.stop();
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const packets = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Packet | { type: string })
      .filter((p): p is Packet => 'id' in p && p.hops.every((h) => roles.has(h.netns)));
    const where = (ns: number, ifname: string, reason: string): string => `${roles.get(ns)}/${ifname} ${reason}`;
    const pod2 = [...roles].find(([, role]) => role === 'pod2')?.[0];
    const dropped = packets.filter((p) => p.fate === 'dropped' && p.drop).map((p) => where(p.drop?.netns ?? 0, p.drop?.ifname ?? '', p.drop?.reason ?? ''));
    const discarded = packets.filter((p) => p.fate === 'delivered' && p.discard);
    const summary = packets.map((p) => `${p.proto} ${p.sport}>${p.dport} ${p.fate}/${p.fateBy} ${p.discard?.reason ?? ''} ${p.drop?.reason ?? ''} last=${p.hops.at(-1)?.event}@${roles.get(p.hops.at(-1)?.netns ?? 0)}`).join('\n');
    // Trace: the unread datagrams reached pod2's socket, freed with a reason at its close: discards.
    expect(discarded.filter((p) => p.dport === unread && p.hops.at(-1)?.netns === pod2).length, summary).toBe(10);
    expect(dropped.filter((d) => d.endsWith('NETFILTER_DROP')).length, summary).toBeGreaterThan(0);
    // Stats: the FORWARD drops, every one (kernel counters lose nothing), and not one drop in pod2.
    const counted = (doc?.drops ?? []).filter((d) => roles.has(d.netns));
    const text = counted.map((d) => `${where(d.netns, d.ifname, d.reason)} ${d.count}`).join('\n');
    expect(counted.filter((d) => d.reason === 'NETFILTER_DROP').reduce((n, d) => n + d.count, 0), text).toBe(6);
    expect(counted.filter((d) => d.netns === pod2), text).toEqual([]);
    // And the two agree on where packets were dropped and why (trace may miss events on a loaded
    // machine: the places and reasons are compared, the counts above).
    expect([...new Set(counted.map((d) => where(d.netns, d.ifname, d.reason)))].sort(), `${text}\n--\n${summary}`).toEqual([...new Set(dropped)].sort());
  }, 240_000);
});
