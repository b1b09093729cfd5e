/**
 * The fate rules (shared/fate.ts through shared/reconstruct.ts): a packet that reached the stack
 * it was addressed to and was then freed by its socket with a drop reason was delivered, with the
 * socket's discard as a detail; drops on the way, or before the socket layer, stay drops. Hop
 * sequences are the ones measured on a lab and on the host (see shared/fate.ts).
 */
import { describe, it, expect } from 'vitest';
import { reconstructAll } from '../../shared/reconstruct.js';
import { readFree, reachedItsStack } from '../../shared/fate.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';

const NS = { host: 100, pod1: 101, node: 102, pod2: 103, ext: 104 };
const names = new Map<number, string>([[100, 'host'], [101, 'pod1'], [102, 'node'], [103, 'pod2'], [104, 'ext']]);
const nsName = (n: number): string | null => names.get(n) ?? null;
const REASONS = ['NOT_SPECIFIED', 'NO_SOCKET', 'NETFILTER_DROP', 'QUEUE_PURGE', 'TCP_OLD_DATA', 'TCP_ABORT_ON_DATA', 'TCP_CLOSE', 'SOCKET_RCVBUFF', 'NEIGH_FAILED', 'TCP_LISTEN_OVERFLOW'];
const code = (name: string): number => REASONS.indexOf(name) + 2;
const dropReason = (c: number): string => REASONS[c - 2] ?? `reason-${c}`;
const LOCAL = new Map<number, string[]>([[NS.pod2, ['10.244.1.12']], [NS.node, ['10.99.0.1', '10.244.1.1']], [NS.ext, ['10.99.0.2']], [NS.host, ['192.0.2.2']]]);
const isLocal = (netns: number, addr: string): boolean => LOCAL.get(netns)?.includes(addr) ?? false;

function ev(over: Partial<HopEvent>): HopEvent {
  return {
    kind: 'xmit', t: 1_000_000, cpu: 0, skb: 'ffff0001', netns: NS.ext, ifindex: 2, ifname: 'eth0', family: 4,
    proto: 6, len: 52, ipId: 4242, src: '10.99.0.2', dst: '10.99.0.1', sport: 55416, dport: 8080,
    icmpType: 0, icmpId: 0, tcpFlags: 0x10, tcpSeq: 77, reason: 0, ...over,
  };
}

/** ext → node:8080, DNAT to pod2:80, taken in by pod2's stack: as the lab's TCP round shows it. */
function extToPod2(skb: string, t0: number, over: Partial<HopEvent> = {}): HopEvent[] {
  const dnat = { dst: '10.244.1.12', dport: 80 };
  return [
    ev({ skb, t: t0, kind: 'xmit', netns: NS.ext, ifname: 'eth0', ...over }),
    ev({ skb, t: t0 + 10_000, kind: 'rx', netns: NS.node, ifname: 'eth-node', ...over }),
    ev({ skb, t: t0 + 20_000, kind: 'recv', netns: NS.node, ifname: 'eth-node', ...over }),
    ev({ skb, t: t0 + 30_000, kind: 'xmit', netns: NS.node, ifname: 'br0', ...dnat, ...over }),
    ev({ skb, t: t0 + 40_000, kind: 'xmit', netns: NS.node, ifname: 'veth-pod2', ...dnat, ...over }),
    ev({ skb, t: t0 + 50_000, kind: 'rx', netns: NS.pod2, ifname: 'eth0', ...dnat, ...over }),
    ev({ skb, t: t0 + 60_000, kind: 'recv', netns: NS.pod2, ifname: 'eth0', ...dnat, ...over }),
  ];
}

function freed(skb: string, t: number, reason: string, over: Partial<HopEvent> = {}): HopEvent {
  // TCP's frees carry no device: the probe reports the socket's namespace or none.
  return ev({ skb, t, kind: 'drop', netns: NS.pod2, ifindex: 0, ifname: '', dst: '10.244.1.12', dport: 80, reason: code(reason), ...over });
}

/** The one packet `events` make; `local` null: no model (nothing says who owns an address). */
function one(events: HopEvent[], local: typeof isLocal | null = isLocal): Packet {
  const packets = reconstructAll(events, { nsName, dropReason, ...(local ? { isLocal: local } : {}) });
  expect(packets).toHaveLength(1);
  return packets[0] as Packet;
}

describe('fate: a socket discard after delivery is not a drop', () => {
  it('calls a pure ACK that pod2 took in and TCP freed (NOT_SPECIFIED) delivered, with the discard as a detail', () => {
    const p = one([...extToPod2('a1', 1_000_000), freed('a1', 1_070_000, 'NOT_SPECIFIED')]);
    expect(p.fate).toBe('delivered');
    expect(p.fateBy).toBe('local-address');
    expect(p.drop).toBeNull();
    expect(p.discard).toEqual({ reason: 'NOT_SPECIFIED', ns: 'pod2', netns: NS.pod2, ifname: 'eth0' });
    // The free stays in the hops: what the kernel did is shown, only not called a drop.
    expect(p.hops.at(-1)?.event).toBe('drop');
  });

  it('calls a FIN freed by QUEUE_PURGE at close delivered, also when the free has no namespace', () => {
    const p = one([...extToPod2('b1', 1_000_000, { tcpFlags: 0x11 }), freed('b1', 1_070_000, 'QUEUE_PURGE', { netns: 0, tcpFlags: 0x11 })]);
    expect(p.fate).toBe('delivered');
    expect(p.discard).toMatchObject({ reason: 'QUEUE_PURGE', ns: 'pod2', ifname: 'eth0' });
  });

  it('reads reasons only a receiving socket gives as delivered wherever the packet was last seen (TCP_OLD_DATA, TCP_ABORT_ON_DATA, TCP_CLOSE)', () => {
    for (const reason of ['TCP_OLD_DATA', 'TCP_ABORT_ON_DATA', 'TCP_CLOSE']) {
      // No model: nothing says pod2 owns the address, the reason alone does.
      const p = one([...extToPod2('c1', 1_000_000), freed('c1', 1_070_000, reason)], null);
      expect(p.fate, reason).toBe('delivered');
      expect(p.fateBy).toBe('socket');
      expect(p.discard?.reason).toBe(reason);
    }
    // Host loopback is not traced: a loopback segment shows only as its free.
    const lo = one([ev({ skb: 'c2', kind: 'drop', netns: 0, ifindex: 0, ifname: '', src: '127.0.0.1', dst: '127.0.0.1', reason: code('TCP_OLD_DATA') })]);
    expect(lo.fate).toBe('delivered');
  });

  it('counts the loopback device and loopback addresses as the stack the packet was addressed to', () => {
    const onLo = [
      ev({ skb: 'd1', t: 1, kind: 'xmit', netns: NS.pod1, ifname: 'lo', src: '10.244.1.11', dst: '10.244.1.11' }),
      ev({ skb: 'd1', t: 2, kind: 'recv', netns: NS.pod1, ifname: 'lo', src: '10.244.1.11', dst: '10.244.1.11' }),
      ev({ skb: 'd1', t: 3, kind: 'drop', netns: NS.pod1, ifindex: 0, ifname: '', src: '10.244.1.11', dst: '10.244.1.11', reason: code('NOT_SPECIFIED') }),
    ];
    expect(one(onLo, null).fate).toBe('delivered');
    // Received on loopback with no free seen: delivered too, without a model.
    expect(one(onLo.slice(0, 2), null)).toMatchObject({ fate: 'delivered', fateBy: 'local-address' });
    const lone = ev({ skb: 'd2', kind: 'drop', netns: 0, ifindex: 0, ifname: '', src: '::1', dst: '::1', family: 6, ipId: 0, reason: code('QUEUE_PURGE') });
    expect(one([lone]).fate).toBe('delivered');
  });

  it('keeps real drops: a closed port (NO_SOCKET), INPUT or FORWARD firewall drops, full buffers', () => {
    for (const reason of ['NO_SOCKET', 'NETFILTER_DROP', 'SOCKET_RCVBUFF', 'TCP_LISTEN_OVERFLOW']) {
      const p = one([...extToPod2('e1', 1_000_000), freed('e1', 1_070_000, reason)]);
      expect(p.fate, reason).toBe('dropped');
      expect(p.drop?.reason).toBe(reason);
      expect(p.discard).toBeUndefined();
    }
    const forward = one([...extToPod2('e2', 1_000_000).slice(0, 3), ev({ skb: 'e2', t: 1_030_000, kind: 'drop', netns: NS.node, ifname: 'eth-node', reason: code('NETFILTER_DROP') })]);
    expect(forward.fate).toBe('dropped');
  });

  it('keeps NOT_SPECIFIED and QUEUE_PURGE as drops on the way: not received by the stack owning the destination', () => {
    // Freed in the node, which forwards to pod2: on the way (a neighbour queue purged, say).
    const onTheWay = one([...extToPod2('f1', 1_000_000).slice(0, 5), ev({ skb: 'f1', t: 1_045_000, kind: 'drop', netns: NS.node, ifname: 'veth-pod2', dst: '10.244.1.12', dport: 80, reason: code('QUEUE_PURGE') })]);
    expect(onTheWay.fate).toBe('dropped');
    // Received in the node, but addressed (after DNAT) to pod2.
    const inNode = one([...extToPod2('f2', 1_000_000).slice(0, 3), ev({ skb: 'f2', t: 1_025_000, kind: 'drop', netns: NS.node, ifname: '', reason: code('NOT_SPECIFIED') })], () => false);
    expect(inNode.fate).toBe('dropped');
    // No model to say who owns the address: conservative.
    expect(one([...extToPod2('f3', 1_000_000), freed('f3', 1_070_000, 'NOT_SPECIFIED')], null).fate).toBe('dropped');
    // Received by pod2's stack, then a free in another namespace: that skb carries another
    // packet by then (the delivered one's free was not seen), which is a drop of its own.
    const split = reconstructAll([...extToPod2('f4', 1_000_000), freed('f4', 1_070_000, 'NOT_SPECIFIED', { netns: NS.node })], { nsName, dropReason, isLocal });
    expect(split.map((p) => `${p.fate} ${p.hops.length}`)).toEqual(['delivered 7', 'dropped 1']);
    expect(readFree('NOT_SPECIFIED', { event: 'recv', netns: NS.pod2, ifname: 'eth0', dst: '10.244.1.12' }, '10.244.1.12', NS.node, isLocal)).toBe('drop');
  });

  it('reads frees the same way as a pure function', () => {
    const arrived = { event: 'recv', netns: NS.pod2, ifname: 'eth0', dst: '10.244.1.12' };
    expect(readFree('NOT_SPECIFIED', arrived, '10.244.1.12', 0, isLocal)).toBe('local-address');
    expect(readFree('NOT_SPECIFIED', { ...arrived, event: 'xmit' }, '10.244.1.12', 0, isLocal)).toBe('drop');
    expect(readFree('NEIGH_FAILED', arrived, '10.244.1.12', 0, isLocal)).toBe('drop');
    expect(readFree('TCP_OLD_DATA', null, '10.0.0.1', 0, undefined)).toBe('socket');
    expect(readFree('NOT_SPECIFIED', null, '10.0.0.1', 0, isLocal)).toBe('drop');
    expect(reachedItsStack({ ...arrived, netns: NS.node }, isLocal)).toBe(false);
  });
});

describe('a free after a rewrite since the arrival', () => {
  it('should read NOT_SPECIFIED as a drop when the packet was DNATed away from the stack it arrived at', () => {
    const isLocal = (_n: number, a: string): boolean => a === '192.0.2.2' || a === '10.0.0.1';
    const last = { event: 'recv', netns: 1, ifname: 'veth0', dst: '192.0.2.2' };
    // br_netfilter's DNAT at a bridge port, bridged back to a port without hairpin mode.
    expect(readFree('NOT_SPECIFIED', last, '10.161.79.2', 1, isLocal)).toBe('drop');
    // Unchanged, or rewritten to another local address (REDIRECT-like): delivered there.
    expect(readFree('NOT_SPECIFIED', last, '192.0.2.2', 1, isLocal)).toBe('local-address');
    expect(readFree('NOT_SPECIFIED', last, '10.0.0.1', 1, isLocal)).toBe('local-address');
    expect(readFree('NOT_SPECIFIED', last, '127.0.0.1', 1, isLocal)).toBe('local-address');
  });
});
