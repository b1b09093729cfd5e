/**
 * `hoptrace record --hub URL --since 10m -o FILE` (issue 17 §3): a recording cut from the
 * cluster's JetStream stream after the fact. No hub needs to have been running: agents publish
 * into the stream's retention whoever reads it.
 *
 * Two passes over the window, each an ordered ephemeral consumer (nothing left on the server),
 * both ending at the stream's last message when the command started:
 *   1. every node's batches through the hub's own pipeline (shared/cluster/pipeline.ts: per-node
 *      reconstruction, then stitching), with each message's JetStream time as the hub's clock:
 *      the packets a live hub would have shown, and the nodes' clock offsets from the stitched pairs;
 *   2. the events written to the file (today's format, server/recording/), each with its `node`
 *      and its time moved onto the reference node's clock (the first node by name), so the file's
 *      index, --from/--to and --speed work on one clock. Two passes keep memory bounded by the
 *      pipeline's, not by the window.
 * A session with depth (notes, netfilter rule-trace steps) has them written too, each with its
 * `node` and on the reference clock, and the header's `notes`/`netfilter` say so.
 * Each node's topology goes in its own topology record (the model with `node`, `dropReasons`
 * and the clock offset applied), then the cluster's merged model (namespaces with `node`) last:
 * replay (server/recording/replay.ts) runs the same pipeline over the file; the dashboard and
 * `replay --json` read the merged model.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import { decodeBatch, type HopBatch } from '../../shared/wire.js';
import { decodeDepthBatch, type DepthBatch } from '../../shared/netfilter/wire.js';
import { STREAM, SESSION_HEADER, DROPPED_HEADER, droppedCount, messageEpoch, parseSubject } from '../../shared/cluster/subjects.js';
import { ClusterPipeline, parseSnapshot, type ParsedSnapshot } from '../../shared/cluster/pipeline.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import { BatchSequence } from '../../shared/cluster/sequence.js';
import { nodeOffsets } from '../../shared/cluster/offsets.js';
import { parseFilter, describeFilter, packetMatches } from '../../shared/filter/index.js';
import type { Packet } from '../../shared/packet.js';
import { RecordingFileWriter } from '../recording/writer.js';
import { connectBus, type BusOptions } from './connect.js';
import { parseDuration } from './cli-options.js';

export class HubRecordError extends Error {
  override name = 'HubRecordError';
}

/** --since's duration: ms; throws a HubRecordError sentence. */
export function parseSince(text: string): number {
  try {
    return parseDuration(text, '--since');
  } catch (err) {
    throw new HubRecordError((err as Error).message);
  }
}

export interface HubRecordOptions {
  readonly bus: BusOptions;
  readonly sinceMs: number;
  readonly path: string;
  readonly overwrite?: boolean;
  /** Only these nodes (others are left out, and so are their pieces of crossing packets). */
  readonly nodes?: readonly string[];
  readonly filter?: string;
  /** The hub session whose batches are read (default 'hub', what `serve --hub` asks agents for). */
  readonly session?: string;
  readonly log?: (line: string) => void;
  /** Longest wait for the next message of the window (default 5000 ms). */
  readonly idleMs?: number;
}

export interface HubRecordResult {
  readonly nodes: ReadonlyArray<{ name: string; events: number; batches: number; lost: number; gaps: number; offsetNs: number; offsetMethod: string }>;
  readonly events: number;
  readonly packets: number;
  /** Packets with hops on more than one node. */
  readonly stitched: number;
  readonly fromMs: number;
  readonly toMs: number;
}

/** A message of the window, read: a node's snapshot, one of its hop batches of the session, or one that did not decode. */
type WindowItem = { readonly node: string; readonly ms: number } & (
  | { readonly kind: 'snapshot'; readonly snapshot: ParsedSnapshot }
  | { readonly kind: 'batch'; readonly batch: HopBatch; readonly dropped: number; readonly epoch: string }
  | { readonly kind: 'depth'; readonly depth: DepthBatch; readonly epoch: string }
  | { readonly kind: 'bad' });

/**
 * Every message of the window in stream order, up to `lastSeq` (stops after `idleMs` of silence):
 * snapshots, and hop batches of `session` (other sessions' are skipped).
 */
async function readWindow(nc: NatsConnection, startIso: string, lastSeq: number, idleMs: number, session: string, on: (m: WindowItem) => void): Promise<void> {
  const { jetstream, DeliverPolicy } = await import('@nats-io/jetstream');
  const consumer = await jetstream(nc).consumers.get(STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: startIso });
  const messages = await consumer.consume({ max_messages: 512 });
  let idle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => void messages.close(), idleMs);
  };
  arm();
  try {
    for await (const m of messages as AsyncIterable<JsMsg>) {
      arm();
      const seq = m.info.streamSequence;
      const where = parseSubject(m.subject);
      const at = where ? { node: where.node, ms: Number(m.info.timestampNanos) / 1e6 } : null;
      if (at && where?.kind === 'topology') {
        const snapshot = parseSnapshot(at.node, m.data);
        if (typeof snapshot !== 'string') on({ ...at, kind: 'snapshot', snapshot });
      } else if (at && where?.kind === 'depth' && (m.headers?.get(SESSION_HEADER) ?? '') === session) {
        let depth: DepthBatch | null = null;
        try {
          depth = decodeDepthBatch(m.data);
        } catch {
          on({ ...at, kind: 'bad' });
        }
        if (depth) on({ ...at, kind: 'depth', depth, epoch: messageEpoch(m.headers?.get('Nats-Msg-Id')) });
      } else if (at && (m.headers?.get(SESSION_HEADER) ?? '') === session) {
        let batch: HopBatch | null = null;
        try {
          batch = decodeBatch(m.data);
        } catch {
          on({ ...at, kind: 'bad' });
        }
        if (batch) on({ ...at, kind: 'batch', batch, dropped: droppedCount(m.headers?.get(DROPPED_HEADER)), epoch: messageEpoch(m.headers?.get('Nats-Msg-Id')) });
      }
      if (seq >= lastSeq) break;
    }
  } finally {
    clearTimeout(idle);
    await messages.close().catch(() => undefined);
  }
}

export async function recordFromHub(o: HubRecordOptions): Promise<HubRecordResult> {
  const log = o.log ?? ((l) => process.stderr.write(`${l}\n`));
  const session = o.session ?? 'hub';
  const ast = parseFilter(o.filter ?? '');
  const accept = (p: ClusterPacket): boolean => packetMatches(ast, p as unknown as Packet);
  const wanted = o.nodes && o.nodes.length > 0 ? new Set(o.nodes) : null;
  const nc = await connectBus({ ...o.bus, name: 'hoptrace-record' });
  try {
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const jsm = await jetstreamManager(nc).catch((err: unknown) => {
      throw new HubRecordError(`the NATS server at ${o.bus.url} has no JetStream (${(err as Error).message}): start it with -js`);
    });
    const info = await jsm.streams.info(STREAM).catch((err: unknown) => {
      throw new HubRecordError(`there is no ${STREAM} stream on ${o.bus.url} (${(err as Error).message}): no agent has published there yet`);
    });
    const toMs = Date.now();
    const fromMs = toMs - o.sinceMs;
    const lastSeq = info.state.last_seq;
    const lastMs = Date.parse(info.state.last_ts);
    if (info.state.messages === 0 || !(lastMs >= fromMs)) {
      throw new HubRecordError(`nothing in the stream since ${new Date(fromMs).toISOString()} (--since ${Math.round(o.sinceMs / 1000)} s): ${info.state.messages === 0 ? 'it is empty' : `its last message is from ${new Date(lastMs).toISOString()}`}`);
    }
    const startIso = new Date(fromMs).toISOString();
    const idleMs = o.idleMs ?? 5000;

    // Every node's latest snapshot first, as the hub loads them: the window may start after one was published.
    const latest = new Map<string, ParsedSnapshot>();
    const subjects = await jsm.streams.info(STREAM, { subjects_filter: 'hoptrace.*.topology' }).then((i) => Object.keys(i.state.subjects ?? {})).catch(() => [] as string[]);
    for (const subject of subjects) {
      const where = parseSubject(subject);
      if (!where || (wanted && !wanted.has(where.node))) continue;
      const m = await jsm.streams.getMessage(STREAM, { last_by_subj: subject }).catch(() => null);
      const s = m ? parseSnapshot(where.node, m.data) : null;
      if (s && typeof s !== 'string') latest.set(where.node, s);
    }

    // Pass 1: the hub's pipeline over the window.
    const pipeline = new ClusterPipeline();
    for (const s of latest.values()) pipeline.snapshot(s, fromMs);
    let packets = 0;
    let stitched = 0;
    let batches = 0;
    let bad = 0;
    const take = (out: ClusterPacket[]): void => {
      for (const p of out) {
        if (!accept(p)) continue;
        packets++;
        if (p.nodes.length > 1) stitched++;
      }
    };
    let nextTick = 0;
    await readWindow(nc, startIso, lastSeq, idleMs, session, (m) => {
      if (wanted && !wanted.has(m.node)) return;
      if (m.kind === 'snapshot') {
        pipeline.snapshot(m.snapshot, m.ms);
        return;
      }
      if (m.kind === 'bad') {
        bad++;
        return;
      }
      if (m.kind === 'depth') {
        // Counted (the file's header says whether it has notes, netfilter steps); they change no packet count.
        pipeline.depth(m.node, m.depth, m.ms, m.epoch);
        return;
      }
      batches++;
      pipeline.batch(m.node, m.batch, m.ms, m.dropped, m.epoch);
      if (m.ms >= nextTick) {
        take(pipeline.tick(m.ms));
        nextTick = m.ms + 250;
      }
    });
    take(pipeline.flushAll(toMs));
    if (batches === 0) {
      throw new HubRecordError(`no hop batches of session '${session}' since ${startIso}${wanted ? ` from ${[...wanted].join(', ')}` : ''}: did a hub (serve --hub) ask the agents to trace?`);
    }
    if (bad > 0) log(`record: ${bad} hop batch${bad === 1 ? '' : 'es'} did not decode and were left out`);

    // Clock offsets: from stitched pairs; a node without pairs by its snapshot's paired clocks.
    const names = [...pipeline.nodes.keys()].sort();
    const ref = names[0]!;
    const refSnap = pipeline.nodes.get(ref)!.snapshot;
    const offsets = nodeOffsets(names, pipeline.stitcher.offsets(), (n) => pipeline.nodes.get(n)?.snapshot ?? null);

    // Pass 2: the file.
    const startMono = refSnap && refSnap.t > 0 ? refSnap.t - Math.round((refSnap.wallMs - fromMs) * 1e6) : 0;
    const reasons = pipeline.nodes.get(ref)!.reasons;
    const depthSeen = { notes: 0, netfilter: 0 };
    for (const n of pipeline.nodes.values()) {
      depthSeen.notes += n.notes;
      depthSeen.netfilter += n.netfilter;
    }
    const writer = new RecordingFileWriter(o.path, {
      host: `cluster ${names.join(', ')} (${o.bus.url.replace(/\/\/[^@/]*@/, '//')})`, kernel: '', bpftraceVersion: '',
      probes: [], filter: describeFilter(ast),
      startWallNs: BigInt(Math.round(fromMs)) * 1_000_000n, startMonoNs: Math.max(0, startMono),
      dropReasons: reasons, recorder: `hoptrace record --hub --since ${Math.round(o.sinceMs / 1000)}s`,
      // The session's depth, as its nodes sent it: replay joins each note and step to its node's packets.
      ...(depthSeen.netfilter > 0 ? { netfilter: true } : {}),
      ...(depthSeen.notes > 0 ? { notes: true } : {}),
    }, { overwrite: o.overwrite === true, fsync: 'interval' });
    const writeTopology = (s: ParsedSnapshot, t: number): void => {
      const off = offsets.get(s.node)?.ns ?? 0;
      writer.topology({
        t, snapshot: true, removed: [],
        namespaces: s.topology.namespaces.map((ns) => ({ netns: ns.netns, name: ns.name })),
        model: { ...s.topology, node: s.node, clockOffsetNs: off, ...(s.dropReasons ? { dropReasons: Object.fromEntries(s.dropReasons) } : {}) },
      });
    };
    for (const name of names) {
      const s = pipeline.nodes.get(name)!.snapshot;
      if (s) writeTopology(s, startMono);
    }
    let events = 0;
    let maxT = 0;
    const sequences = new Map<string, BatchSequence>();
    await readWindow(nc, startIso, lastSeq, idleMs, session, (m) => {
      if (!offsets.has(m.node) || m.kind === 'bad') return;
      if (m.kind === 'snapshot') {
        writeTopology(m.snapshot, Math.max(0, m.snapshot.t - offsets.get(m.node)!.ns));
        return;
      }
      if (m.kind === 'depth') {
        const key = `${m.node}\u0000${m.epoch}\u0000depth`;
        let seen = sequences.get(key);
        if (!seen) sequences.set(key, (seen = new BatchSequence()));
        if (m.depth.seq > 0 && seen.take(m.depth.seq, false, m.depth.notes[0]?.t ?? m.depth.netfilter[0]?.t ?? 0).verdict === 'duplicate') return;
        const off = offsets.get(m.node)!.ns;
        for (const n of m.depth.notes) writer.note({ ...n, t: n.t - off, node: m.node });
        for (const ev of m.depth.netfilter) writer.netfilter({ ...ev, t: ev.t - off, node: m.node });
        return;
      }
      const b = m.batch;
      // A copy of a batch (published again past JetStream's duplicate window) is written once, as pass 1 took it.
      const key = `${m.node}\u0000${m.epoch}`;
      let seen = sequences.get(key);
      if (!seen) sequences.set(key, (seen = new BatchSequence()));
      if (seen.take(b.seq, b.events.length === 0, b.clockNs !== undefined && b.clockNs > 0 ? b.clockNs : (b.events[0]?.t ?? 0), m.dropped).verdict === 'duplicate') return;
      const off = offsets.get(m.node)!.ns;
      for (const ev of b.events) {
        const t = ev.t - off;
        writer.event({ ...ev, t, node: m.node });
        events++;
        if (t > maxT) maxT = t;
      }
      if (b.lostKernel > 0) writer.lost(maxT, b.lostKernel);
    });
    const merged = pipeline.clusterTopology();
    writer.topology({ t: maxT, snapshot: true, removed: [], namespaces: merged.namespaces.map((ns) => ({ netns: ns.netns, name: ns.name })), model: merged });
    const err = writer.close({ t: maxT, wallNs: BigInt(toMs) * 1_000_000n, packets, reason: 'window' });
    if (err) throw new HubRecordError(err.message);
    return {
      nodes: names.map((name) => {
        const n = pipeline.nodes.get(name)!;
        const off = offsets.get(name)!;
        return { name, events: n.events, batches: n.batches, lost: n.lost, gaps: n.gaps, offsetNs: off.ns, offsetMethod: off.method };
      }),
      events, packets, stitched, fromMs, toMs,
    };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
