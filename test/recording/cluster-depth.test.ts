/**
 * Recordings of hub sessions with depth (issue 17): each note and netfilter step carries the
 * node that saw it (HopNote field 8, NetfilterEvent field 26), and replay joins it to that node's
 * piece of the stitched packet — not to another node's whose namespace has the same inode (every
 * node numbers its namespaces on its own). Cluster files without depth, and depth files of one
 * host, read as before.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { HopEvent, HopKind } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import { RecordingEncoder, decodeRecording } from '../../shared/recording/index.js';
import { RecordingFile, replayRecording } from '../../server/recording/index.js';
import { START_MONO, START_WALL, syntheticHeader } from './synthetic.js';
import { tempDir } from './fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const T = START_MONO + 10_000_000;
/** Both nodes' host namespaces have the same inode: a step of node2's must not land on node1's hops. */
const HOST = 4026532100;
const POD1 = 1101;
const POD2 = 2201;

function hop(kind: HopKind, t: number, skb: string, netns: number, ifname: string, node: string): HopEvent & { node: string } {
  return {
    kind, t, cpu: 0, skb, netns, ifindex: 2, ifname, family: 4, proto: 17, len: 60, ipId: 4242,
    src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, node,
  };
}

const model = (node: string, namespaces: Array<[number, string]>): object => ({
  node, clockOffsetNs: 0, errors: [], discoveredAt: 1, durationMs: 1,
  namespaces: namespaces.map(([netns, name]) => ({ netns, name, interfaces: [], routes: [], rules: [] })),
});

const STEP: NetfilterEvent & { node: string } = {
  ns: 'n2-host', netns: HOST, t: T + 300_000, traceId: 'a1b2c3d4', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward',
  type: 'rule', rule: 'udp dport 6000 counter accept', handle: 7, verdict: 'accept', nat: null, node: 'node2',
  packet: { iif: 'ul0', oif: 'vp0', family: 4, proto: 17, src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, ipId: 4242, len: 60, tcpSeq: 0, icmpId: 0 },
};

/** A hub session's recording: node1's piece (pod → host → underlay), node2's (underlay → host → pod), node2's FORWARD step. */
function clusterRecording(withDepth: boolean): Uint8Array {
  const enc = new RecordingEncoder(syntheticHeader({ filter: '', ...(withDepth ? { netfilter: true, notes: true } : {}) }));
  enc.topology({ t: START_MONO, snapshot: true, removed: [], namespaces: [{ netns: POD1, name: 'n1-pod' }, { netns: HOST, name: 'n1-host' }], model: model('node1', [[POD1, 'n1-pod'], [HOST, 'n1-host']]) });
  enc.topology({ t: START_MONO, snapshot: true, removed: [], namespaces: [{ netns: POD2, name: 'n2-pod' }, { netns: HOST, name: 'n2-host' }], model: model('node2', [[POD2, 'n2-pod'], [HOST, 'n2-host']]) });
  for (const ev of [
    hop('xmit', T, 'a', POD1, 'eth0', 'node1'), hop('rx', T + 1000, 'a', HOST, 'vp0', 'node1'), hop('xmit', T + 3000, 'a', HOST, 'ul0', 'node1'), hop('consume', T + 4000, 'a', HOST, '', 'node1'),
    hop('rx', T + 100_000, 'b', HOST, 'ul0', 'node2'), hop('xmit', T + 102_000, 'b', HOST, 'vp0', 'node2'), hop('rx', T + 103_000, 'b', POD2, 'eth0', 'node2'), hop('consume', T + 104_000, 'b', POD2, '', 'node2'),
  ]) enc.event(ev);
  if (withDepth) {
    enc.note({ kind: 'fib', t: T + 101_000, cpu: 0, skb: 'b', netns: HOST, data: { table: 254, err: 0, dst: '10.9.2.10', dev: 'vp0' }, node: 'node2' });
    enc.netfilter(STEP);
  }
  // Later traffic moves the recorded clock on, so the pieces come out of their wait.
  for (let i = 1; i <= 8; i++) enc.event(hop('consume', T + i * 250_000_000, `z${i}`, POD1, '', 'node1'));
  enc.end({ t: T + 2_000_000_000, wallNs: START_WALL + 2_000_000_000n, packets: 1, reason: 'stopped' });
  return enc.take();
}

async function replayAll(path: string): Promise<ClusterPacket[]> {
  const file = await RecordingFile.open(path);
  const out: ClusterPacket[] = [];
  try {
    await replayRecording(file, { onPacket: (p) => { out.push(p as unknown as ClusterPacket); } });
  } finally {
    await file.close();
  }
  return out;
}

describe('recordings of hub sessions with depth', () => {
  it('should keep each note and netfilter step with its node', () => {
    const { records } = decodeRecording(clusterRecording(true));
    expect(records.flatMap((r) => (r.kind === 'netfilter' ? [r.netfilter.node] : r.kind === 'note' ? [r.note.node] : []))).toEqual(['node2', 'node2']);
  });

  it('should replay the stitched packet with node2\'s step and note on node2\'s hops, none on node1\'s', async () => {
    const packets = await replayAll(tmp.file('cluster-depth.hoptrace', clusterRecording(true)));
    const p = packets.find((x) => x.nodes.length === 2);
    expect(p?.nodes).toEqual(['node1', 'node2']);
    expect(p?.netfilter?.map((s) => [s.node, s.chain, s.verdict, p.hops[s.afterHop]?.node])).toEqual([['node2', 'FORWARD', 'accept', 'node2']]);
    expect(p?.notes?.map((n) => [n.node, n.kind, p.hops[n.afterHop]?.node])).toEqual([['node2', 'fib', 'node2']]);
  });

  it('should replay a cluster file without depth as before: stitched, no netfilter or notes', async () => {
    const packets = await replayAll(tmp.file('cluster-plain.hoptrace', clusterRecording(false)));
    const p = packets.find((x) => x.nodes.length === 2);
    expect(p?.hops.map((h) => h.node)).toEqual(['node1', 'node1', 'node1', 'node1', 'node2', 'node2', 'node2', 'node2']);
    expect(packets.some((x) => 'netfilter' in x || 'notes' in x)).toBe(false);
  });
});
