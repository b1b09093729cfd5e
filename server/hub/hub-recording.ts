/**
 * Recording a hub session (issue 17): POST/DELETE /api/sessions/:id/recording on `serve --hub`
 * write the session's hop batches, as every node sent them, to `<data dir>/<name>.hoptrace` in
 * the format `record --hub --since` cuts from the stream (server/hub/record.ts): each event with
 * its `node` (HopEvent field 24) and its time moved onto the reference node's clock (the first
 * node by name) by the session's clock offsets at that moment (shared/cluster/offsets.ts: the
 * stitcher's estimate, else the nodes' snapshots' wall clocks); each node's model in a topology
 * record of its own (with `node`, its drop-reason table and the offset applied), the cluster's
 * merged model last. `replay`, `export` and the dashboard's replay player run the hub's pipeline
 * over it (shared/cluster/pipeline.ts): the packets come out stitched, `node` on every hop.
 *
 * The files go into the service's recordings library (the same folder and names; the library's
 * listing, download and delete see them as the host's own recordings, running ones included).
 * A write error (disk full) stops the recording, never the session; a session being recorded is
 * never reaped; deleting it (or closing the hub) finishes the file with the reason.
 * A session with depth records its nodes' notes and netfilter rule-trace steps too, each with its
 * `node` (HopNote field 8, NetfilterEvent field 26) and on the reference clock like the hops, and
 * the header says which (`notes`, `netfilter`): replay joins each to its node's packets.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { RecordingEntry, RecordingStatus } from '../../shared/api-types.js';
import type { HopBatch } from '../../shared/wire.js';
import type { DepthBatch } from '../../shared/netfilter/wire.js';
import type { ParsedSnapshot } from '../../shared/cluster/pipeline.js';
import { nodeOffsets, type NodeOffset } from '../../shared/cluster/offsets.js';
import { libraryName, readMetaOrProblem, recordingEntry, recordingPath, RecordingFileWriter, RecordingWriteError } from '../recording/index.js';
import { ApiError } from '../service/errors.js';
import { pathFor } from '../service/recording-manager.js';
import type { ClusterSession, SessionTap } from './cluster-session.js';
import type { Hub } from './hub.js';

export interface HubRecordingsOptions {
  /** null: no recordings (the routes answer 503, as on a single host). */
  readonly dataDir: string | null;
  readonly hub: Hub;
  readonly log: (line: string) => void;
}

interface Entry {
  readonly name: string;
  readonly path: string;
  readonly session: ClusterSession;
  readonly startedAt: number;
  readonly writer: RecordingFileWriter;
  offsets: Map<string, NodeOffset>;
  offsetsAt: number;
  packets: number;
  maxT: number;
  /** The session's batches missing (over its nodes) when the recording started. */
  readonly gapsAtStart: number;
  result: { reason: string; error: string | null } | null;
  detach(): void;
}

/** How often the offsets applied are taken again from the session's stitcher. */
const OFFSETS_EVERY_MS = 1000;

export class HubRecordings {
  /** Per session: the running recording, or its last one (until the session ends). */
  private readonly bySession = new Map<string, Entry>();
  private readonly writing = new Set<string>();
  private closed = false;
  private readonly offEnd: () => void;

  constructor(private readonly opts: HubRecordingsOptions) {
    this.offEnd = opts.hub.onSessionEnd((id) => {
      const e = this.bySession.get(id);
      if (e && !e.result) this.finish(e, 'the session ended');
      this.bySession.delete(id);
    });
  }

  requireDataDir(): string {
    if (this.opts.dataDir === null) throw new ApiError(503, 'unavailable', 'this service keeps no recordings (start it with --data-dir)');
    return this.opts.dataDir;
  }

  isWriting(path: string): boolean {
    return this.writing.has(path);
  }

  runningByPath(): Map<string, RecordingStatus> {
    const out = new Map<string, RecordingStatus>();
    for (const e of this.bySession.values()) if (!e.result) out.set(e.path, this.statusOf(e));
    return out;
  }

  status(session: string): RecordingStatus | null {
    const e = this.bySession.get(session);
    return e ? this.statusOf(e) : null;
  }

  /** Starts recording `session` as `name` (default: session id and time). Throws ApiError. */
  start(session: ClusterSession, name: string | undefined): RecordingStatus {
    const dir = this.requireDataDir();
    if (this.closed) throw new ApiError(503, 'unavailable', 'the hub is shutting down');
    const current = this.bySession.get(session.id);
    if (current && !current.result) throw new ApiError(409, 'conflict', `session ${session.id} is already recording (to '${current.name}'): stop it first`);
    const path = name === undefined ? this.freshPath(dir, session.id) : pathFor(dir, name);
    if (this.writing.has(path) || existsSync(path)) throw new ApiError(409, 'conflict', `a recording named '${libraryName(path)}' already exists`);
    const nodes = [...session.pipeline.nodes.values()];
    const names = nodes.map((n) => n.name).sort();
    const ref = session.pipeline.nodes.get(names[0] ?? '');
    const now = Date.now();
    const refSnap = ref?.snapshot;
    let writer: RecordingFileWriter;
    let entry: Entry | null = null;
    try {
      writer = new RecordingFileWriter(path, {
        host: `cluster ${names.join(', ') || '(no node yet)'} (hub session ${session.id})`, kernel: '', bpftraceVersion: '', probes: [],
        filter: session.spec.filter,
        startWallNs: BigInt(now) * 1_000_000n,
        // The reference node's clock now, from its snapshot's paired clocks: the file's times are on it.
        startMonoNs: refSnap && refSnap.t > 0 ? Math.max(0, Math.round(refSnap.t + (now - refSnap.wallMs) * 1e6)) : 0,
        dropReasons: ref?.reasons ?? new Map(), recorder: `hoptrace serve --hub (session ${session.id})`,
        ...(session.spec.sample > 1 ? { sampleRate: session.spec.sample } : {}),
        ...(session.spec.depth.netfilter ? { netfilter: true } : {}),
        ...(session.spec.depth.notes ? { notes: true } : {}),
      }, { fsync: 'interval', onError: (err) => { if (entry) this.finish(entry, `error: ${err.message}`, err.message); } });
    } catch (err) {
      if (err instanceof RecordingWriteError) throw writeErrorToApi(err, libraryName(path));
      throw err;
    }
    const tap: SessionTap = {
      batch: (node, batch, dropped) => this.onBatch(e, node, batch, dropped),
      depth: (node, batch) => this.onDepth(e, node, batch),
      snapshot: (snap) => this.writeTopology(e, snap),
    };
    const offPackets = this.opts.hub.onPackets((packets, id) => { if (id === session.id) e.packets += packets.length; });
    const e: Entry = entry = {
      name: libraryName(path), path, session, startedAt: now, writer, offsets: new Map(), offsetsAt: 0, packets: 0, maxT: 0, result: null, gapsAtStart: sessionGaps(session),
      detach: () => {
        session.taps.delete(tap);
        offPackets();
      },
    };
    this.refreshOffsets(e, true);
    for (const n of nodes) if (n.snapshot) this.writeTopology(e, n.snapshot);
    this.bySession.set(session.id, e);
    this.writing.add(path);
    session.taps.add(tap);
    session.recording = true;
    session.recordingStatus = () => this.status(session.id);
    this.opts.log(`hub: session ${session.id} ('${session.spec.filter}'): recording to ${e.name}`);
    return this.statusOf(e);
  }

  /** Stops the session's running recording; resolves with the finished file's metadata. */
  async stop(session: ClusterSession, reason = 'stopped by a client'): Promise<RecordingEntry> {
    const e = this.bySession.get(session.id);
    if (!e || e.result) {
      const last = e?.result ? ` (its last recording '${e.name}' ended: ${e.result.reason})` : '';
      throw new ApiError(404, 'not-found', `session ${session.id} is not recording${last}`);
    }
    this.finish(e, reason);
    return recordingEntry(e.path, await readMetaOrProblem(e.path), this.runningByPath(), this.statusOf(e));
  }

  /** Finishes every recording (the hub is closing). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.offEnd();
    for (const e of this.bySession.values()) if (!e.result) this.finish(e, 'the service is shutting down');
  }

  private refreshOffsets(e: Entry, force = false): void {
    const now = Date.now();
    if (!force && now - e.offsetsAt < OFFSETS_EVERY_MS) return;
    e.offsetsAt = now;
    const p = e.session.pipeline;
    e.offsets = nodeOffsets(p.nodes.keys(), e.session.offsets(), (n) => p.nodes.get(n)?.snapshot ?? null);
  }

  private offsetOf(e: Entry, node: string): number {
    let o = e.offsets.get(node);
    if (!o) {
      // A node new to the session: its offset as soon as it can be had.
      this.refreshOffsets(e, true);
      o = e.offsets.get(node);
    }
    return o?.ns ?? 0;
  }

  private onBatch(e: Entry, node: string, batch: HopBatch, _dropped: number): void {
    if (e.result) return;
    this.refreshOffsets(e);
    const off = this.offsetOf(e, node);
    for (const ev of batch.events) {
      const t = ev.t - off;
      e.writer.event({ ...ev, t, node });
      if (t > e.maxT) e.maxT = t;
    }
    if (batch.lostKernel > 0) e.writer.lost(e.maxT, batch.lostKernel);
  }

  /** Notes and netfilter steps, on the reference clock as the hops are, each with its node. */
  private onDepth(e: Entry, node: string, batch: DepthBatch): void {
    if (e.result) return;
    this.refreshOffsets(e);
    const off = this.offsetOf(e, node);
    for (const n of batch.notes) e.writer.note({ ...n, t: n.t - off, node });
    for (const ev of batch.netfilter) e.writer.netfilter({ ...ev, t: ev.t - off, node });
  }

  private writeTopology(e: Entry, s: ParsedSnapshot): void {
    if (e.result) return;
    const off = this.offsetOf(e, s.node);
    e.writer.topology({
      t: Math.max(0, s.t - off), snapshot: true, removed: [],
      namespaces: s.topology.namespaces.map((ns) => ({ netns: ns.netns, name: ns.name })),
      model: { ...s.topology, node: s.node, clockOffsetNs: off, ...(s.dropReasons ? { dropReasons: Object.fromEntries(s.dropReasons) } : {}) },
    });
  }

  private finish(e: Entry, reason: string, error: string | null = null): void {
    if (e.result) return;
    e.result = { reason, error };
    e.detach();
    if (!e.writer.failed) {
      // The cluster's merged model last: the dashboard's replay and `replay --json` read the last model.
      const merged = e.session.pipeline.clusterTopology();
      e.writer.topology({ t: e.maxT, snapshot: true, removed: [], namespaces: merged.namespaces.map((ns) => ({ netns: ns.netns, name: ns.name })), model: merged });
      const err = e.writer.close({ t: e.maxT, wallNs: BigInt(Date.now()) * 1_000_000n, packets: e.packets, reason });
      if (err && !e.result.error) e.result = { reason: `error: ${err.message}`, error: err.message };
    }
    this.writing.delete(e.path);
    e.session.recording = false;
    // The grace period counts from the end of the recording.
    this.opts.hub.touch(e.session);
    this.opts.log(`hub: session ${e.session.id}: recording ${e.name} stopped: ${e.result.reason}`);
  }

  private statusOf(e: Entry): RecordingStatus {
    const w = e.writer.stats;
    const clean = (text: string | null | undefined): string | null => (text == null ? null : text.replaceAll(e.path, basename(e.path)));
    const gaps = sessionGaps(e.session) - e.gapsAtStart;
    return {
      name: e.name, session: e.session.id, startedAt: new Date(e.startedAt).toISOString(), running: e.result === null,
      elapsedMs: Date.now() - e.startedAt, events: w.events, packets: e.packets, lost: w.lost, bytes: w.bytesWritten,
      gaps, error: clean(e.result?.error), endReason: clean(e.result?.reason),
    };
  }

  /** `<session>-<UTC time>[-n]`, as on a single host. */
  private freshPath(dir: string, session: string): string {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    for (let n = 1; ; n++) {
      const path = recordingPath(dir, `${session}-${stamp}${n > 1 ? `-${n}` : ''}`);
      if (!this.writing.has(path) && !existsSync(path)) return path;
    }
  }
}

/** Batches missing in the session's nodes' sequences so far (the recording's gaps are those since it started). */
function sessionGaps(s: ClusterSession): number {
  return s.nodeStatus().reduce((a, n) => a + n.gaps, 0);
}

function writeErrorToApi(err: RecordingWriteError, name: string): ApiError {
  switch (err.code) {
    case 'exists': return new ApiError(409, 'conflict', `a recording named '${name}' already exists`);
    case 'no-space': return new ApiError(507, 'recording-failed', `no space left for recording '${name}'`);
    default: return new ApiError(500, 'recording-failed', `recording '${name}' could not be written: ${err.message.replaceAll(err.path, name)}`);
  }
}
