/**
 * A sender's own fragments in `stats` (probes/stats/README.md "Fragments", probes/README.md "A
 * sender's own fragments"): a 4000-byte UDP datagram leaves pod1 as three skbs; the node
 * (conntrack loaded, bridged frames defragmented by br_netfilter) reassembles it into the last
 * fragment's skb and sends it on to pod2 in fragments again. Each segment counts each datagram
 * once — the first fragment's way, then the reassembled datagram's — and a port filter, which only
 * the first fragment's header can match, still follows the others (their bytes count on the
 * interfaces). Before: three times the segments on the first hops from pod1 (unfiltered), the
 * reassembled datagram a packet of its own, and the head fragment's free a `consume` in the node.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix, startReady } from '../helpers/cli.js';
import { TIERS_HERE } from '../helpers/tiers.js';

const N = 10;

describe.skipIf(!isRoot)(`stats: a sender's own IP fragments are one packet (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let echo: Server | undefined;
  const port = 21000 + Math.floor(Math.random() * 20000);

  beforeAll(async () => {
    lab = labFor(randomPrefix('sfr'));
    await labUp(lab);
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, port);
  }, 60_000);

  afterAll(async () => {
    await echo?.stop();
    if (lab) await labDown(lab);
  });

  it.each(TIERS_HERE.map((t) => [t.tier, t.env] as const))('%s tier: 4000-byte datagrams pod1 → pod2 and back, filtered by port', async (_tier, env) => {
    const { child } = await startReady(['stats', '--json', '--filter', `udp and host ${lab.addr.pod2} and port ${port}`], env, 180_000);
    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, port, N, 4000, 20);
    expect(sent.replies).toBe(N);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const doc = JSON.parse(String(r.stdout).trim().split('\n').at(-1) ?? '{}') as StatsDocument;
    const count = (from: string, to: string): number => doc.segments
      .filter((g) => `${g.from.ns}/${g.from.ifname}/${g.from.event}` === from && `${g.to.ns}/${g.to.ifname}/${g.to.event}` === to)
      .reduce((n, g) => n + g.count, 0);
    const seen = doc.segments.map((g) => `${g.from.ns}/${g.from.ifname}/${g.from.event} → ${g.to.ns}/${g.to.ifname}/${g.to.event} ${g.count}`);
    const { node, pod1, pod2 } = lab.ns;
    for (const [a, pa, b, pb] of [[pod1, 'veth-pod1', pod2, 'veth-pod2'], [pod2, 'veth-pod2', pod1, 'veth-pod1']] as const) {
      expect(count(`${a}/eth0/xmit`, `${node}/${pa}/rx`), `${a} → node, once per datagram: ${seen.join('; ')}`).toBe(N);
      expect(count(`${node}/${pa}/rx`, `${node}/${pa}/recv`)).toBe(N);
      // Reassembled in the node: the datagram goes on from its last fragment's arrival.
      expect(count(`${node}/${pa}/recv`, `${node}/${pb}/xmit`), `reassembled in the node and sent on: ${seen.join('; ')}`).toBe(N);
      expect(count(`${node}/${pa}/recv`, `${node}/${pa}/consume`), 'the head fragment joined the datagram: not an end').toBe(0);
      expect(count(`${node}/${pb}/xmit`, `${b}/eth0/rx`)).toBe(N);
      expect(count(`${b}/eth0/rx`, `${b}/eth0/recv`)).toBe(N);
    }
    // The later fragments were followed for their bytes: every fragment's IP bytes on pod1's eth0
    // transmit (3 per datagram: 1500 + 1500 + 1068), not only the first one's.
    const tx = doc.interfaces.find((i) => i.ns === pod1 && i.ifname === 'eth0');
    expect(tx?.tx_packets).toBe(3 * N);
    expect(tx?.tx_bytes).toBe(N * (1500 + 1500 + 1068));
  }, 300_000);
});
