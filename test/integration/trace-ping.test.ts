/**
 * A root ping's echo replies, on a real lab through the real CLI. The kernel hands each reply to
 * ping's raw socket as a clone, then frees the original with NO_SOCKET (no ICMP socket wanted
 * it): the probes follow the data into the clone (probes/kfree_skb.bt), so the reply ends as
 * consumed where ping read it. A reply nobody asked for is still the drop it is.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { ping } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, labInodes, randomPrefix } from '../helpers/cli.js';

/** Sends one ICMP echo reply nobody asked for, from `ns` to `dst` (python3: Node has no raw sockets). */
const UNSOLICITED_REPLY = String.raw`
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
body = struct.pack('!BBHHH', 0, 0, 0, 4242, 1) + b'hoptrace'
msg = body[:2] + struct.pack('!H', csum(body)) + body[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(msg, (sys.argv[1], 0))
`;

describe('the raw-socket copy in the program', () => {
  const base = { filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 };
  it('should follow raw sockets\' copies only when it knows NO_SOCKET and both free probes are attached', () => {
    expect(buildHopProgram({ ...base, reasonNoSocket: 3 })).toMatch(/@rawcopy\[\(uint64\)0\]/);
    expect(buildHopProgram({ ...base, reasonNoSocket: 3 })).toMatch(/\$reason == 3\b/);
    expect(buildHopProgram({ ...base, reasonNoSocket: 3 })).not.toMatch(/^\/\/ @(end )?raw-copy$/m);
    for (const opts of [{ ...base }, { ...base, reasonNoSocket: 3, skip: new Set(['consume'] as const) }]) {
      const program = buildHopProgram(opts);
      // (consume_skb reads skb->cloned for its own reason: a copy that goes on; only the raw-copy map is this feature's.)
      expect(program).not.toMatch(/@rawcopy\[/);
    }
  });
});

describe.skipIf(!isRoot)(`trace of a root ping on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;

  beforeAll(async () => {
    lab = labFor(randomPrefix('tp'));
    await labUp(lab);
    roles = labInodes(lab);
  });

  afterAll(async () => {
    if (lab) await labDown(lab);
  });

  async function traceDuring(filter: string, traffic: () => Promise<unknown>): Promise<Packet[]> {
    const { child } = await startTrace(['--json', '--no-model', '--filter', filter]);
    await traffic();
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    return String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));
  }

  const path = (p: Packet | undefined): string[] => (p?.hops ?? []).map((h) => `${roles.get(h.netns)}/${h.ifname}/${h.event}`);

  it('should end an IPv4 echo reply as consumed in the pinging pod, not dropped', async () => {
    let replies = 0;
    const packets = await traceDuring(`icmp and host ${lab.addr.pod2}`, async () => { replies = (await ping(lab.ns.pod1, lab.addr.pod2, 2)).replies; });
    expect(replies).toBe(2);
    const echoReplies = packets.filter((p) => p.src === lab.addr.pod2 && p.hops[0]?.icmpType === 0);
    expect(echoReplies).toHaveLength(2);
    for (const p of echoReplies) {
      expect(p).toMatchObject({ fate: 'delivered', fateBy: 'consume', drop: null });
      expect(path(p)).toEqual(['pod2/eth0/xmit', 'node/veth-pod2/rx', 'node/veth-pod2/recv', 'node/veth-pod1/xmit', 'pod1/eth0/rx', 'pod1/eth0/recv', 'pod1//consume']);
    }
  });

  it('should end an IPv6 echo reply as consumed in the pinging pod', async () => {
    const packets = await traceDuring(`icmp6 and host ${lab.addr.pod2v6}`, () => ping(lab.ns.pod1, lab.addr.pod2v6, 1));
    const reply = packets.find((p) => p.src === lab.addr.pod2v6 && p.hops[0]?.icmpType === 129);
    expect(reply).toMatchObject({ fate: 'delivered', fateBy: 'consume' });
    expect(path(reply).slice(-2)).toEqual(['pod1/eth0/recv', 'pod1//consume']);
  });

  it('should end an echo reply through MASQUERADE\'s reverse NAT as consumed in the pod', async () => {
    const packets = await traceDuring(`icmp and host ${lab.addr.ext}`, () => ping(lab.ns.pod1, lab.addr.ext, 1));
    const reply = packets.find((p) => p.src === lab.addr.ext && p.hops[0]?.icmpType === 0);
    expect(reply?.hops.find((h) => h.nat)?.nat).toMatchObject({ kind: 'dnat', to: { dst: lab.addr.pod1 } });
    expect(reply).toMatchObject({ fate: 'delivered', fateBy: 'consume' });
    expect(path(reply).at(-1)).toBe('pod1//consume');
  });

  it('should still show an echo reply nobody asked for as dropped with NO_SOCKET', async () => {
    const packets = await traceDuring(`icmp and dst host ${lab.addr.pod1}`, () =>
      execa('ip', ['netns', 'exec', lab.ns.pod2, 'python3', '-c', UNSOLICITED_REPLY, lab.addr.pod1]));
    const reply = packets.find((p) => p.src === lab.addr.pod2 && p.hops[0]?.icmpId === 4242);
    expect(reply).toMatchObject({ fate: 'dropped', drop: { reason: 'NO_SOCKET', ns: lab.ns.pod1, ifname: 'eth0' } });
    expect(path(reply).at(-1)).toBe('pod1/eth0/drop');
  });
});
