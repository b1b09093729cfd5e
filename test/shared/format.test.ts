/**
 * The human output of `hoptrace trace` / `replay`, on packets rebuilt from a real capture of one
 * round of demo-lab traffic (probes/fixtures/lab-round.txt): one block per packet, one line per
 * hop with +Δt, namespace, interface, event and tuple, NAT rewrites marked, the drop at the end.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseProbeLine } from '../../probes/hop-line.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { formatPacket, hasIcmpId, PacketNumbers } from '../../shared/format.js';
import type { Packet } from '../../shared/packet.js';

const lines = readFileSync(new URL('../../probes/fixtures/lab-round.txt', import.meta.url), 'utf8').split('\n').filter(Boolean);
const events = lines.map(parseProbeLine).flatMap((l) => (l.type === 'hop' ? [l.hop] : []));
// The capture's namespace inodes, named by the roles the lab gave them (the hop-line test reads them so too).
const roles = new Map<number, string>([[4026532246, 'pod1'], [4026532177, 'node'], [4026532315, 'pod2']]);
const packets = reconstructAll(events, {
  nsName: (n) => roles.get(n) ?? null,
  dropReason: (c) => (c === 12 ? 'NETFILTER_DROP' : `reason-${c}`),
});

/** A block's hop lines as [Δt, namespace, interface, event, rest]. */
function hopLines(p: Packet | undefined): string[][] {
  const text = formatPacket(p as Packet, 1).split('\n').slice(1).filter((l) => /^\s+\+/.test(l));
  return text.map((l) => {
    const m = /^\s+(\+\S+)\s{2}(\S+)\s+(\S+)\s+(\S+)\s{2,}(.*)$/.exec(l);
    return m ? m.slice(1) : [l];
  });
}

describe('formatPacket', () => {
  it('should head each block with the packet number, protocol, first tuple, fate and hop count', () => {
    const p = packets.find((x) => x.proto === 'udp' && x.dport === 5000);
    expect(p).toBeDefined();
    expect(formatPacket(p as Packet, 3).split('\n')[0]).toMatch(
      new RegExp(`^packet 3  udp 10\\.244\\.1\\.11:${p?.sport} → 10\\.244\\.1\\.12:5000  ${p?.fate}  \\(${p?.hops.length} hops, [\\d.]+µs\\)$`),
    );
  });

  it('should print one line per hop with +Δt, namespace, interface, event and the tuple there', () => {
    const p = packets.find((x) => x.proto === 'udp' && x.dport === 5000) as Packet;
    const rows = hopLines(p);
    expect(rows).toHaveLength(p.hops.length);
    const tuple = `10.244.1.11:${p.sport} → 10.244.1.12:5000`;
    expect(rows.slice(0, 6).map((r) => r.slice(1).join(' '))).toEqual([
      `pod1 eth0 xmit ${tuple}`, `node veth-pod1 rx ${tuple}`, `node veth-pod1 recv ${tuple}`,
      `node veth-pod2 xmit ${tuple}`, `pod2 eth0 rx ${tuple}`, `pod2 eth0 recv ${tuple}`,
    ]);
    expect(rows[0]?.[0]).toBe('+0');
    // +Δt is the time since the previous hop, as measured by the kernel.
    const dt = (p.hops[1]?.t ?? 0) - (p.hops[0]?.t ?? 0);
    expect(rows[1]?.[0]).toBe(`+${(dt / 1000).toFixed(dt < 10_000 ? 1 : 0)}µs`);
  });

  it('should mark a DNAT on the hop that first shows it, with the tuple before', () => {
    const syn = packets.find((x) => x.proto === 'tcp' && x.dport === 8080 && x.hops[0]?.tcpFlags === 2) as Packet;
    const rows = hopLines(syn);
    const before = `10.99.0.2:${syn.sport} → 10.99.0.1:8080`;
    const after = `10.99.0.2:${syn.sport} → 10.244.1.12:80`;
    expect(rows[2]?.[4]).toBe(before);
    expect(rows[3]?.slice(1, 4)).toEqual(['node', 'br0', 'xmit']);
    expect(rows[3]?.[4]).toBe(`${after}  DNAT, was ${before}`);
    expect(rows[4]?.[4]).toBe(after);
    expect(formatPacket(syn, 1).split('\n')[0]).toContain('[SYN]');
  });

  it('should mark the SNAT of a reply leaving through the node', () => {
    const synAck = packets.find((x) => x.proto === 'tcp' && x.src === '10.244.1.12' && x.hops[0]?.tcpFlags === 18) as Packet;
    const natRow = hopLines(synAck).find((r) => r[4]?.includes('SNAT'));
    expect(natRow?.slice(2, 4)).toEqual(['eth-node', 'xmit']);
    expect(natRow?.[4]).toMatch(new RegExp(`^10\\.99\\.0\\.1:8080 → 10\\.99\\.0\\.2:${synAck.dport}\\s+SNAT, was 10\\.244\\.1\\.12:80 → 10\\.99\\.0\\.2:${synAck.dport}$`));
  });

  it('should end a dropped packet with the reason on its last hop and where it was dropped', () => {
    const dropped = packets.find((x) => x.fate === 'dropped') as Packet;
    const text = formatPacket(dropped, 1).split('\n');
    expect(text[0]).toMatch(/ DROPPED /);
    expect(hopLines(dropped).at(-1)?.slice(1, 4)).toEqual(['node', 'br0', 'drop']);
    expect(hopLines(dropped).at(-1)?.[4]).toMatch(/:9999\s+✗ NETFILTER_DROP$/);
    expect(text.at(-1)).toBe('  dropped in node at br0: NETFILTER_DROP');
  });

  it('should call a packet its socket freed after delivery delivered, with the discard, not a drop', () => {
    // A pure ACK received in pod2 (which owns its destination), then freed by TCP (NOT_SPECIFIED).
    const base = { t: 1, cpu: 0, skb: 'ab', netns: 4026532315, ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 6, len: 52, ipId: 7, src: '10.99.0.2', dst: '10.244.1.12', sport: 55416, dport: 80, icmpType: 0, icmpId: 0, tcpFlags: 16, tcpSeq: 5, reason: 0 };
    const [ack] = reconstructAll([{ ...base, kind: 'recv' }, { ...base, t: 2, kind: 'drop', ifindex: 0, ifname: '', reason: 2 }], {
      nsName: (n) => roles.get(n) ?? null,
      dropReason: (c) => (c === 2 ? 'NOT_SPECIFIED' : `reason-${c}`),
      isLocal: (n, a) => n === 4026532315 && a === '10.244.1.12',
    });
    const text = formatPacket(ack as Packet, 1).split('\n');
    expect(text[0]).toMatch(/ {2}delivered; discarded by TCP: NOT_SPECIFIED {2}\(2 hops/);
    expect(text.join('\n')).not.toMatch(/DROPPED|✗|dropped in/);
    expect(hopLines(ack).at(-1)?.slice(1, 4)).toEqual(['pod2', '-', 'drop']);
    expect(hopLines(ack).at(-1)?.[4]).toMatch(/\(discarded by TCP: NOT_SPECIFIED\)$/);
  });

  it('should name a clone\'s original by the number it was printed with', () => {
    // The packed capture's IPv6 multicast the bridge floods: each copy sent out of a port is a clone.
    const packed = readFileSync(new URL('../../probes/fixtures/lab-round-packed.txt', import.meta.url), 'utf8').split('\n');
    const all = reconstructAll(packed.map(parseProbeLine).flatMap((l) => (l.type === 'hop' ? [l.hop] : [])));
    const clone = all.find((x) => x.cloneOf !== null) as Packet;
    expect(clone).toBeDefined();
    const numbers = new PacketNumbers();
    for (const p of all) if (p.id === clone.cloneOf) numbers.next(p.id);
    numbers.next('other');
    expect(formatPacket(clone, numbers.next(clone.id), numbers.of).split('\n')[0]).toMatch(/ {2}clone of packet 1$/);
    // Not printed (or long forgotten): its id.
    expect(formatPacket(clone, 9, new PacketNumbers().of).split('\n')[0]).toMatch(new RegExp(` {2}clone of ${clone.cloneOf}$`));
    const few = new PacketNumbers(2);
    for (const id of ['a', 'b', 'c']) few.next(id);
    expect([few.of('a'), few.of('b'), few.of('c')]).toEqual([undefined, 2, 3]);
  });

  it('should name the ICMP id only for types that carry one', () => {
    expect([0, 8, 13, 128, 129].map((t) => hasIcmpId(t < 128 ? 'icmp' : 'icmpv6', t))).toEqual([true, true, true, true, true]);
    // A neighbour advertisement's bytes 4-5 are its flags, a port unreachable's are unused.
    expect([hasIcmpId('icmpv6', 136), hasIcmpId('icmpv6', 135), hasIcmpId('icmp', 3), hasIcmpId('udp', 8)]).toEqual([false, false, false, false]);
  });
});
