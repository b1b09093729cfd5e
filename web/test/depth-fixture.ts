/**
 * The demo fixture's events as a session with depth would have streamed them: for the packet the
 * node's FORWARD chain dropped (udp/9999), a route-lookup note on its skb and the nft rule-trace
 * steps nft reported for it — built from the packet's own headers, as nft prints them.
 */
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { demoNetns, demoRecording } from './fixture.js';

export interface DepthFixture {
  readonly events: readonly HopEvent[];
  readonly note: HopNote;
  readonly steps: readonly NetfilterEvent[];
  /** Id of the dropped packet they belong to. */
  readonly packetId: string;
}

export function droppedPacketDepth(): DepthFixture {
  const rec = demoRecording();
  const packets = reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null, dropReason: (c) => rec.header.dropReasons.get(c) ?? `reason-${c}` });
  const p = packets.find((x) => x.fate === 'dropped' && x.dport === 9999);
  if (!p) throw new Error('no dropped packet in the fixture');
  const node = demoNetns('node');
  const inNode = p.hops.filter((h) => h.netns === node);
  const first = inNode[0];
  const last = inNode[inNode.length - 1];
  if (!first || !last) throw new Error('the dropped packet never reached the node');
  const skb = rec.events.find((e) => e.t === first.t && e.netns === node)?.skb ?? '0';
  const note: HopNote = { kind: 'fib', t: first.t + 1000, cpu: first.cpu, skb, netns: node, data: { table: 254, err: 0, dst: p.dst, dev: 'eth-node' } };
  const packet = { iif: 'br0', oif: 'eth-node', family: 4 as const, proto: 17, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport, ipId: first.ipId, len: first.len, tcpSeq: 0, icmpId: 0 };
  const common = { ns: 'demo-node', netns: node, traceId: 'c1b3cb05', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward' as const, nat: null, packet };
  const steps: NetfilterEvent[] = [
    { ...common, t: last.t + 200_000, type: 'rule', rule: 'udp dport 9999 counter drop', handle: 4, verdict: 'drop' },
  ];
  return { events: rec.events, note, steps, packetId: p.id };
}
