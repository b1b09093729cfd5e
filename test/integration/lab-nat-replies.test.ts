/**
 * Issue 19, finding 3, on the demo lab with real bpftrace: replies through NAT are on their
 * expected path and explained as conntrack reversing the NAT, also when the trace never saw the
 * packet that made the connection (the model then takes the NAT from the reply's own hops and
 * says it guessed):
 * - the UDP reply 10.99.0.2:7000 → 10.99.0.1:<port> through the node's MASQUERADE;
 * - the TCP replies of a DNAT with a port change (10.244.1.12:80 leaves as 10.99.0.1:8080):
 *   the reverse of the DNAT, not "masquerade to 10.99.0.1" (which would keep port 80).
 * The filters name only the replies' sources, so the requests are never traced.
 */
import { describe, it, expect } from 'vitest';
import { ECHO } from '../../server/lab/rounds.js';
import { sendUdp, sendTcp } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace } from '../helpers/cli.js';

type Annotated = Packet & PacketExpectation;

describe.skipIf(!isRoot)(`NATed replies on the demo lab (${NEEDS_ROOT})`, () => {
  const demo = useLabWithServers('nr');

  async function traced(filter: string, traffic: () => Promise<unknown>): Promise<Annotated[]> {
    const { child } = await startTrace(['--json', '--filter', filter]);
    try {
      await traffic();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    return String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated | { type: string })
      .filter((p): p is Annotated => 'id' in p && p.hops.every((h) => demo.roles.has(h.netns)));
  }

  it('should put the UDP reply through MASQUERADE on its path, de-NATed by conntrack', async () => {
    const packets = await traced(`udp and src host ${demo.lab.addr.ext} and src port ${ECHO.extUdp}`, () => sendUdp(demo.lab.ns.pod1, demo.lab.addr.ext, ECHO.extUdp, 3));
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p.dst).toBe(demo.lab.addr.nodeExt);
      expect(p.hops.at(-1)).toMatchObject({ netns: [...demo.roles].find(([, r]) => r === 'pod1')?.[0], dst: demo.lab.addr.pod1 });
      expect(p.divergence, p.divergence?.summary).toBeNull();
      const rule = p.expected?.hops.flatMap((h) => h.rules).find((x) => x.hook === 'PREROUTING');
      expect(rule?.verdict).toMatch(/^reverse NAT: destination 10\.244\.1\.11:\d+$/);
    }
  }, 120_000);

  it('should explain the TCP replies of the DNAT as its reverse, port change included, not as MASQUERADE', async () => {
    const packets = await traced(`tcp and src host ${demo.lab.addr.pod2} and src port 80`, () => sendTcp(demo.lab.ns.ext, demo.lab.addr.nodeExt, demo.lab.dnatPort, 64));
    // SYN-ACK, data and FIN at least.
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p.divergence, p.divergence?.summary).toBeNull();
      const out = p.expected?.hops.find((h) => h.ifname === 'eth-node' && h.event === 'xmit');
      expect(out).toMatchObject({ src: demo.lab.addr.nodeExt, sport: demo.lab.dnatPort });
      const verdicts = (out?.rules ?? []).map((x) => x.verdict);
      expect(verdicts).toContain(`reverse NAT: source ${demo.lab.addr.nodeExt}:${demo.lab.dnatPort}`);
      expect(verdicts.some((v) => v.startsWith('masquerade'))).toBe(false);
    }
  }, 120_000);
});
