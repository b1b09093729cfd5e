/**
 * Recordings of sessions with depth (format 1.1): notes and netfilter events are records of their
 * own, the header says which depth the session had, and replay attaches them to packets as the
 * live session did (the steps after the recorder's clock has moved past the packet, the notes by
 * the reconstruction engine). Recordings without depth, and files of format 1.0, read as before.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it, afterAll } from 'vitest';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { FORMAT_MINOR, RecordingEncoder, decodeRecording } from '../../shared/recording/index.js';
import { RecordingFile, replayRecording } from '../../server/recording/index.js';
import { NS, NS_NAMES, START_MONO, START_WALL, syntheticEvents, syntheticHeader } from './synthetic.js';
import { tempDir } from './fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const T = START_MONO + 10_000_000;
const base = {
  cpu: 0, skb: 'ffff888100001234', family: 4 as const, proto: 17, len: 60, ipId: 777, src: '10.244.1.11', dst: '10.99.0.2',
  sport: 40000, dport: 9999, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
};
/** pod1 → node, dropped in the node's FORWARD chain. */
const HOPS: HopEvent[] = [
  { ...base, kind: 'xmit', t: T, netns: NS.pod1, ifindex: 2, ifname: 'eth0' },
  { ...base, kind: 'rx', t: T + 20_000, netns: NS.node, ifindex: 3, ifname: 'veth-pod1' },
  { ...base, kind: 'drop', t: T + 60_000, netns: NS.node, ifindex: 3, ifname: 'veth-pod1', reason: 12 },
];
const NOTE: HopNote = { kind: 'fib', t: T + 40_000, cpu: 0, skb: base.skb, netns: NS.node, data: { table: 254, err: 0, dst: '10.99.0.2', dev: 'eth-node' } };
const DROP_STEP: NetfilterEvent = {
  ns: 'lab-node', netns: NS.node, t: T + 500_000, traceId: 'c1b3cb05', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward',
  type: 'rule', rule: 'udp dport 9999 counter drop', handle: 4, verdict: 'drop', nat: null,
  packet: { iif: 'br0', oif: 'eth-node', family: 4, proto: 17, src: base.src, dst: base.dst, sport: base.sport, dport: base.dport, ipId: 777, len: 60, tcpSeq: 0, icmpId: 0 },
};

/** A recording as the service writes one: hops, the note and the nft event in arrival order, clock records every 200 ms. */
function depthRecording(): Uint8Array {
  const enc = new RecordingEncoder(syntheticHeader({ netfilter: true, notes: true, filter: 'udp' }));
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: null, removed: [] });
  enc.event(HOPS[0] as HopEvent);
  enc.event(HOPS[1] as HopEvent);
  enc.note(NOTE);
  enc.event(HOPS[2] as HopEvent);
  // The reconstruction finishes the dropped packet at the first tick; its step arrives after that.
  enc.clock(T + 200_000_000);
  enc.netfilter(DROP_STEP);
  for (let i = 2; i <= 6; i++) enc.clock(T + i * 200_000_000);
  enc.end({ t: T + 1_300_000_000, wallNs: START_WALL + 1_310_000_000n, packets: 1, reason: 'stopped' });
  return enc.take();
}

async function replayAll(path: string): Promise<Packet[]> {
  const file = await RecordingFile.open(path);
  const out: Packet[] = [];
  try {
    await replayRecording(file, { onPacket: (p) => { out.push(p); } });
  } finally {
    await file.close();
  }
  return out;
}

describe('recordings with depth', () => {
  it('should keep notes and netfilter events as records, and the depth in the header (format 1.1)', () => {
    const { header, records, summary } = decodeRecording(depthRecording());
    expect(summary.preamble).toEqual({ major: 1, minor: FORMAT_MINOR });
    expect(FORMAT_MINOR).toBeGreaterThanOrEqual(1);
    expect(summary.unknown).toBe(0);
    expect(summary.invalid).toBe(0);
    expect(header.netfilter).toBe(true);
    expect(header.notes).toBe(true);
    expect(records.flatMap((r) => (r.kind === 'note' ? [r.note] : []))).toEqual([NOTE]);
    expect(records.flatMap((r) => (r.kind === 'netfilter' ? [r.netfilter] : []))).toEqual([DROP_STEP]);
    // In file order, between the events they came with.
    expect(records.map((r) => r.kind).filter((k) => k !== 'index')).toEqual([
      'header', 'topology', 'event', 'event', 'note', 'event', 'clock', 'netfilter', 'clock', 'clock', 'clock', 'clock', 'clock', 'end',
    ]);
  });

  it('should replay the packet with its netfilter step and note, as trace --json shows them', async () => {
    const [p, ...rest] = await replayAll(tmp.file('depth.hoptrace', depthRecording()));
    expect(rest).toEqual([]);
    expect(p?.fate).toBe('dropped');
    expect(p?.netfilter).toEqual([{
      ns: 'lab-node', netns: NS.node, hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD', type: 'rule',
      rule: 'udp dport 9999 counter drop', handle: 4, verdict: 'drop', nat: null, afterHop: 1,
    }]);
    expect(p?.notes).toEqual([{ ...NOTE, ns: 'lab-node', afterHop: 1 }]);
  });

  it('should replay a recording without depth as before: no netfilter or notes fields', async () => {
    const enc = new RecordingEncoder(syntheticHeader());
    for (const ev of syntheticEvents(20)) enc.event(ev);
    enc.end({ t: START_MONO + 100_000_000, wallNs: START_WALL, packets: 20, reason: 'stopped' });
    const packets = await replayAll(tmp.file('plain.hoptrace', enc.take()));
    expect(packets.length).toBe(20);
    expect(packets.some((p) => 'netfilter' in p || 'notes' in p)).toBe(false);
  });

  it('should still read a format 1.0 file (the demo fixture)', async () => {
    const demo = fileURLToPath(new URL('../../web/fixtures/demo-lab.hoptrace', import.meta.url));
    const file = await RecordingFile.open(demo);
    expect(file.preamble).toEqual({ major: 1, minor: 0 });
    expect(file.header.netfilter).toBeUndefined();
    await file.close();
    const packets = await replayAll(demo);
    expect(packets.length).toBeGreaterThan(0);
    expect(packets.some((p) => 'netfilter' in p)).toBe(false);
  });
});
