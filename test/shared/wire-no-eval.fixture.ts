/**
 * Run by test/shared/wire.test.ts under `node --disallow-code-generation-from-strings`, Node's
 * equivalent of a Content-Security-Policy without 'unsafe-eval': every wire codec the dashboard
 * loads must encode and decode without eval or `new Function()`. Prints what it decoded as JSON.
 */
import { decodeBatch, decodeHop, encodeBatch, encodeHop } from '../../shared/wire.js';
import {
  decodeClock, decodeEnd, decodeHeader, decodeIndex, decodeLost, decodeTopology,
  encodeClock, encodeEnd, encodeHeader, encodeIndex, encodeLost, encodeTopology,
} from '../../shared/recording/messages.js';
import { decodeDepthBatch, encodeDepthBatch } from '../../shared/netfilter/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';

let codegen = 'allowed';
try {
  new Function('return 1');
} catch {
  codegen = 'blocked';
}

const hop: HopEvent = {
  kind: 'drop', t: 5_000_000_123, cpu: 1, skb: 'ffff888100a1b2c3', netns: 4026532001, ifindex: 3, ifname: 'veth-pod1',
  family: 6, proto: 58, len: 104, ipId: 0, src: 'fd00:250::1', dst: 'fd00:250::2', sport: 0, dport: 0,
  icmpType: 128, icmpId: 9, tcpFlags: 0, tcpSeq: 0, reason: 2,
};
const out = {
  codegen,
  batch: decodeBatch(encodeBatch({ events: [hop], seq: 7, lostKernel: 3 })),
  hop: decodeHop(encodeHop(hop)),
  header: decodeHeader(encodeHeader({
    host: 'h', kernel: '6.18.0', bpftraceVersion: 'v0.17.0', probes: ['skb:kfree_skb'], filter: 'proto icmp',
    startWallNs: 1_764_000_000_123_456_789n, startMonoNs: 5_000_000_000, dropReasons: new Map([[2, 'NOT_SPECIFIED']]), recorder: 'r',
  })),
  topology: decodeTopology(encodeTopology({ t: 1, snapshot: true, namespaces: [{ netns: 4026532001, name: 'pod1' }], model: { a: 1 }, prevOffset: 0, removed: [4] })),
  lost: decodeLost(encodeLost({ t: 2, count: 3 })),
  index: decodeIndex(encodeIndex({ maxTBefore: 4, eventsBefore: 5, lostBefore: 6, topologyOffset: 7, offset: 8 })),
  end: decodeEnd(encodeEnd({ t: 9, wallNs: 1_764_000_001_000_000_000n, events: 10, lost: 11, packets: 12, reason: 'duration' })),
  clock: decodeClock(encodeClock({ t: 13 })),
  depth: decodeDepthBatch(encodeDepthBatch({
    notes: [{ kind: 'fib', t: 1_000_000_000_001, cpu: 1, skb: 'ab', netns: 4026532001, data: { oif: 3, dst: '10.250.0.2' } }], netfilter: [], seq: 5,
  })),
};
process.stdout.write(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? [...v] : v)));
