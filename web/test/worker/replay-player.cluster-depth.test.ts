/**
 * Replaying a recording of a hub session with depth in the dashboard (issue 17): each netfilter
 * step carries its node, and the replay player joins it to that node's piece of the stitched
 * packet, as `hoptrace replay` does — not to the other node's namespace of the same inode.
 */
import { describe, expect, it } from 'vitest';
import { IngestCore } from '../../src/worker/ingest-core.js';
import { ReplayPlayer, type PlayerHost } from '../../src/worker/replay-player.js';
import { readRecording } from '../../src/api/replay-source.js';
import type { HopEvent, HopKind } from '../../../shared/hop-event.js';
import type { ClusterPacket } from '../../../shared/cluster/stitch.js';
import { RecordingEncoder } from '../../../shared/recording/index.js';

const MONO = 1_000_000_000_000;
const T = MONO + 10_000_000;
/** Both nodes' host namespaces share an inode (each kernel numbers its own). */
const HOST = 4026532100;

function hop(kind: HopKind, t: number, skb: string, netns: number, ifname: string, node: string): HopEvent {
  return {
    kind, t, cpu: 0, skb, netns, ifindex: 2, ifname, family: 4, proto: 17, len: 60, ipId: 4242,
    src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, node,
  };
}
const model = (node: string, namespaces: Array<[number, string]>): object => ({
  node, clockOffsetNs: 0, errors: [], discoveredAt: 1, durationMs: 1, namespaces: namespaces.map(([netns, name]) => ({ netns, name, interfaces: [], routes: [], rules: [] })),
});

function clusterRecording(): Uint8Array {
  const enc = new RecordingEncoder({
    host: 'cluster node1, node2', kernel: '', bpftraceVersion: '', probes: [], filter: '', startWallNs: 1_700_000_000_000_000_000n, startMonoNs: MONO,
    dropReasons: new Map([[2, 'NOT_SPECIFIED']]), recorder: 'hoptrace test', netfilter: true,
  });
  enc.topology({ t: MONO, snapshot: true, removed: [], namespaces: [{ netns: 1101, name: 'n1-pod' }, { netns: HOST, name: 'n1-host' }], model: model('node1', [[1101, 'n1-pod'], [HOST, 'n1-host']]) });
  enc.topology({ t: MONO, snapshot: true, removed: [], namespaces: [{ netns: 2201, name: 'n2-pod' }, { netns: HOST, name: 'n2-host' }], model: model('node2', [[2201, 'n2-pod'], [HOST, 'n2-host']]) });
  for (const ev of [
    hop('xmit', T, 'a', 1101, 'eth0', 'node1'), hop('rx', T + 1000, 'a', HOST, 'vp0', 'node1'), hop('xmit', T + 3000, 'a', HOST, 'ul0', 'node1'), hop('consume', T + 4000, 'a', HOST, '', 'node1'),
    hop('rx', T + 100_000, 'b', HOST, 'ul0', 'node2'), hop('xmit', T + 102_000, 'b', HOST, 'vp0', 'node2'), hop('rx', T + 103_000, 'b', 2201, 'eth0', 'node2'), hop('consume', T + 104_000, 'b', 2201, '', 'node2'),
  ]) enc.event(ev);
  enc.netfilter({
    ns: 'n2-host', netns: HOST, t: T + 300_000, traceId: 'a1b2c3d4', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward',
    type: 'rule', rule: 'udp dport 6000 counter accept', handle: 7, verdict: 'accept', nat: null, node: 'node2',
    packet: { iif: 'ul0', oif: 'vp0', family: 4, proto: 17, src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, ipId: 4242, len: 60, tcpSeq: 0, icmpId: 0 },
  });
  for (let i = 1; i <= 8; i++) enc.event(hop('consume', T + i * 250_000_000, `z${i}`, 1101, '', 'node1'));
  enc.end({ t: T + 2_000_000_000, wallNs: 1_700_000_002_000_000_000n, packets: 1, reason: 'stopped' });
  return enc.take();
}

describe('ReplayPlayer with a hub session\'s depth', () => {
  it('should put node2\'s netfilter step on node2\'s hops of the stitched packet', () => {
    const rec = readRecording(clusterRecording());
    let t = 0;
    const timers: Array<{ at: number; fn: () => void }> = [];
    const host: PlayerHost = {
      now: () => t,
      setTimer: (fn, ms) => { timers.push({ at: t + Math.max(1, ms), fn }); return timers.length; },
      clearTimer: () => undefined,
      rows: () => undefined, position: () => undefined, histogram: () => undefined,
    };
    const core = new IngestCore({ now: () => t });
    core.setTopology([...rec.names], []);
    core.setDropReasons([...rec.header.dropReasons]);
    const player = new ReplayPlayer(rec, core, { speed: Number.POSITIVE_INFINITY, loop: false, loopGapMs: 0, paused: false }, host);
    player.start();
    for (let guard = 0; guard < 100_000 && timers.length > 0; guard++) {
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift() as { at: number; fn: () => void };
      t = Math.max(t, next.at);
      next.fn();
    }
    player.stop();
    const rows = core.takeRows()?.rows ?? [];
    const p = rows.map((r) => core.get(r.id)?.packet as unknown as ClusterPacket | undefined).find((x) => x?.nodes?.length === 2);
    expect(p?.nodes).toEqual(['node1', 'node2']);
    expect(p?.netfilter?.map((s) => [s.node, s.chain, p.hops[s.afterHop]?.node])).toEqual([['node2', 'FORWARD', 'node2']]);
  });
});
