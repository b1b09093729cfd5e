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
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix, startReady } from '../helpers/cli.js';
import { TIERS_HERE } from '../helpers/tiers.js';

const N = 10;

// Malformed fragments, sent from pod1 with a raw socket to pod2's echo port: two overlapping ones
// (offset 0 with MF, then offset 64 bytes without it, covering part of the first) and a last
// fragment whose offset plus length passes 65535. argv: src dst port.
const BAD_FRAGMENTS = String.raw`
import socket, struct, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def frag(fid, off8, more, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), fid, (more << 13) | off8, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(h + payload, (dst, 0))
udp = struct.pack('!HHHH', 40321, port, 8 + 1200, 0) + b'o' * 1200
frag(4242, 0, 1, udp[:1000])
frag(4242, 8, 0, udp[64:600])
frag(4243, 0, 1, udp[:1000])
frag(4243, 8190, 0, b'f' * 400)
`;

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

  /** `stats --json` of this lab's datagrams on `port` while `send` runs: its last document. */
  const statsDuring = async (env: Record<string, string>, send: () => Promise<void>): Promise<StatsDocument> => {
    const { child } = await startReady(['stats', '--json', '--filter', `udp and host ${lab.addr.pod2} and port ${port}`], env, 180_000);
    await send();
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    return JSON.parse(String(r.stdout).trim().split('\n').at(-1) ?? '{}') as StatsDocument;
  };
  /** How many packets a document counts from one place to another (`ns/ifname/event`). */
  const segmentCount = (doc: StatsDocument) => (from: string, to: string): number => doc.segments
    .filter((g) => `${g.from.ns}/${g.from.ifname}/${g.from.event}` === from && `${g.to.ns}/${g.to.ifname}/${g.to.event}` === to)
    .reduce((n, g) => n + g.count, 0);

  it.each(TIERS_HERE.map((t) => [t.tier, t.env] as const))('%s tier: 4000-byte datagrams pod1 → pod2 and back, filtered by port', async (_tier, env) => {
    const doc = await statsDuring(env, async () => {
      const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, port, N, 4000, 20);
      expect(sent.replies).toBe(N);
    });
    const count = segmentCount(doc);
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

  it('malformed fragments (overlapping, past 65535) do not break the counts of the datagrams around them', async () => {
    const tier = TIERS_HERE[0];
    if (!tier) throw new Error('no probe tier on this host');
    const doc = await statsDuring(tier.env, async () => {
      const first = await sendUdp(lab.ns.pod1, lab.addr.pod2, port, N, 4000, 20);
      await execa('ip', ['netns', 'exec', lab.ns.pod1, 'python3', '-c', BAD_FRAGMENTS, lab.addr.pod1, lab.addr.pod2, String(port)]);
      const second = await sendUdp(lab.ns.pod1, lab.addr.pod2, port, N, 4000, 20);
      expect([first.replies, second.replies]).toEqual([N, N]);
    });
    const count = segmentCount(doc);
    const { node, pod1, pod2 } = lab.ns;
    // The good datagrams, once each, both ways; the malformed first fragments are followed too
    // (their header matched), so pod1 → node counts them: 2 more, never a crash or a lost snapshot.
    expect(count(`${pod1}/eth0/xmit`, `${node}/veth-pod1/rx`)).toBe(2 * N + 2);
    expect(count(`${pod2}/eth0/xmit`, `${node}/veth-pod2/rx`)).toBe(2 * N);
    expect(count(`${node}/veth-pod1/recv`, `${node}/veth-pod2/xmit`)).toBe(2 * N);
  }, 300_000);
});

