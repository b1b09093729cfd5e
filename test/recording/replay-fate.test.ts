/**
 * Replay judges fates as `trace` did live (issue 19): from the topology model the recording
 * carries, it knows which namespace owns an address, so a pure ACK taken in by the pod it was
 * addressed to and then freed by TCP (NOT_SPECIFIED) replays as delivered with its discard — not
 * as a drop — and `replay --stats` counts it apart from drops. Without a model it stays a drop.
 */
import { describe, expect, it, afterAll } from 'vitest';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { RecordingEncoder } from '../../shared/recording/index.js';
import { RecordingFile, replayRecording } from '../../server/recording/index.js';
import { NS, NS_NAMES, START_MONO, START_WALL, syntheticHeader } from './synthetic.js';
import { tempDir } from './fixtures.js';
import { cli } from '../helpers/cli.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const T = START_MONO + 10_000_000;
const base = {
  cpu: 0, skb: 'ffff888100005678', family: 4 as const, proto: 6, len: 52, ipId: 31, src: '10.244.1.11', dst: '10.244.1.12',
  sport: 40000, dport: 80, icmpType: 0, icmpId: 0, tcpFlags: 0x10, tcpSeq: 4242, reason: 0,
};
const ACK: HopEvent[] = [
  { ...base, kind: 'xmit', t: T, netns: NS.pod1, ifindex: 2, ifname: 'eth0' },
  { ...base, kind: 'recv', t: T + 20_000, netns: NS.pod2, ifindex: 2, ifname: 'eth0' },
  { ...base, kind: 'drop', t: T + 40_000, netns: NS.pod2, ifindex: 0, ifname: '', reason: 2 },
];
/** Enough of a topology model (shared/topology) to say which addresses are whose. */
const MODEL = {
  namespaces: [
    { netns: NS.pod1, name: 'lab-pod1', interfaces: [{ name: 'eth0', addrs: ['10.244.1.11/24'] }] },
    { netns: NS.pod2, name: 'lab-pod2', interfaces: [{ name: 'eth0', addrs: ['10.244.1.12/24'] }, { name: 'lo', addrs: ['127.0.0.1/8'] }] },
  ],
};

function recording(model: unknown): string {
  const enc = new RecordingEncoder(syntheticHeader());
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model, removed: [] });
  for (const ev of ACK) enc.event(ev);
  enc.end({ t: T + 1_000_000, wallNs: START_WALL + 11_000_000n, packets: 1, reason: 'stopped' });
  return tmp.file(`ack-${model === null ? 'bare' : 'model'}.hoptrace`, enc.take());
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

describe('replay judges a socket discard after delivery as trace does', () => {
  it('replays a pure ACK TCP freed after delivery as delivered, from the recorded model', async () => {
    const [p, ...rest] = await replayAll(recording(MODEL));
    expect(rest).toHaveLength(0);
    expect(p).toMatchObject({ fate: 'delivered', fateBy: 'local-address', drop: null, discard: { reason: 'NOT_SPECIFIED', ns: 'lab-pod2' } });
  });

  it('keeps it a drop when the recording has no model to say who owns the address', async () => {
    const [p] = await replayAll(recording(null));
    expect(p).toMatchObject({ fate: 'dropped', drop: { reason: 'NOT_SPECIFIED' } });
  });

  it('counts discards apart from drops in replay --stats, and says the fate in the human form', async () => {
    const path = recording(MODEL);
    const stats = await cli(['replay', path, '--stats', '--json']);
    expect(stats.exitCode, String(stats.stderr)).toBe(0);
    expect(JSON.parse(String(stats.stdout))).toMatchObject({ fates: { delivered: 1, dropped: 0 }, drops: {}, discards: { NOT_SPECIFIED: 1 }, splits: 0 });
    const human = await cli(['replay', path]);
    expect(String(human.stdout)).toMatch(/^packet 1 {2}tcp .* {2}delivered; discarded by TCP: NOT_SPECIFIED {2}\(3 hops/m);
  });
});
