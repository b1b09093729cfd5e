/**
 * Recording a session in the service: its feed written to `<data dir>/<name>.hoptrace` while it
 * runs. The library on disk is server/recording/library.ts; the routes are recordings-routes.ts.
 *
 * A recording taps the session's feed, not its bpftrace: it gets every event the feed gets
 * (the service's own traffic left out, as on the stream) from whichever bpftrace the feed runs,
 * so it goes on across bpftrace restarts; each restart is a gap in time, counted in
 * `RecordingStatus.gaps`. A write error (disk full, file removed) stops the recording, never the
 * session, and is told to the session's watchers as a `session-state` message with `recording`
 * set. A session being recorded is never reaped; deleting it (or closing the service) finishes
 * the file cleanly with the reason.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { RecordingEntry, RecordingStatus } from '../../shared/api-types.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { Topology } from '../../shared/topology/model.js';
import {
  libraryName, readMetaOrProblem, recordingEntry, recordingPath, startRecording, RecordingNameError, RecordingWriteError,
  type ActiveRecording, type RecordableSession, type DepthSink, type RecordingResult,
} from '../recording/index.js';
import { NO_NAMESPACE_NAMES, type LiveNamespaceNamer } from '../topology/namespace-names.js';
import { ApiError } from './errors.js';
import type { HopTap, TraceFeed } from './feed.js';
import type { Session, SessionRegistry } from './sessions.js';

/** The path of a user-given name, or 400 (recordingPath keeps every name inside the folder). */
export function pathFor(dataDir: string, name: unknown): string {
  try {
    return recordingPath(dataDir, typeof name === 'string' ? name : '');
  } catch (err) {
    if (err instanceof RecordingNameError) throw new ApiError(400, 'bad-request', `bad recording name: ${err.message}`);
    throw err;
  }
}

/** A feed seen as the recorder's session: events through a tap, filter and reasons from the feed. */
function feedRecordable(feed: TraceFeed): RecordableSession & { detach(): void } {
  const hops = new Set<(ev: HopEvent) => void>();
  const losts = new Set<(n: number) => void>();
  const sinks = new Set<DepthSink>();
  const tap: HopTap = {
    hop: (ev) => { for (const f of hops) f(ev); },
    lost: (n) => { for (const f of losts) f(n); },
    note: (n) => { for (const s of sinks) s.note(n); },
    netfilter: (ev) => { for (const s of sinks) s.netfilter(ev); },
  };
  feed.addTap(tap);
  const reasons = feed.dropReasons;
  // Sessions exist only once their feed attached, which sets the reasons.
  if (!reasons) throw new ApiError(503, 'unavailable', 'the session has not started yet');
  type Fn = ((ev: HopEvent) => void) | ((n: number) => void);
  return {
    on(event: 'hop' | 'lost', fn: Fn) {
      if (event === 'hop') hops.add(fn as (ev: HopEvent) => void);
      else losts.add(fn as (n: number) => void);
    },
    off(event: 'hop' | 'lost', fn: Fn) {
      if (event === 'hop') hops.delete(fn as (ev: HopEvent) => void);
      else losts.delete(fn as (n: number) => void);
    },
    filterText: feed.filter,
    depth: feed.depth,
    ...(feed.probes ? { probes: feed.probes } : {}),
    ...(feed.probeTier ? { probeTier: feed.probeTier } : {}),
    sampleRate: feed.sampleRate,
    depthEvents: (sink) => {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
    dropReasons: reasons,
    accepts: (p: Packet) => feed.accepts(p),
    detach: () => feed.removeTap(tap),
  };
}


interface Entry {
  readonly name: string;
  readonly path: string;
  readonly session: Session;
  readonly startedAt: number;
  readonly restartsAtStart: number;
  rec: ActiveRecording | null;
  result: RecordingResult | null;
  gapsAtEnd: number;
  /** The topology model last recorded (compared by reference with the live one). */
  model: unknown;
}

export interface RecordingManagerOptions {
  /** null: this service keeps no recordings (the routes answer 503). */
  readonly dataDir: string | null;
  readonly registry: SessionRegistry;
  readonly names: LiveNamespaceNamer | null;
  /** The service's topology model; rejects where there is none. */
  readonly topology: () => Promise<Topology>;
  /** Whether topology() follows the host (then changes are recorded, checked every 2 s). */
  readonly followTopology: boolean;
  readonly log: (line: string) => void;
  /** Recordings written into the same folder by someone else (a hub's sessions): listed as running, never overwritten or deleted while written. */
  readonly external?: ExternalRecordings;
}

/** Recordings another part of the service writes into the library (server/hub/hub-recording.ts). */
export interface ExternalRecordings {
  runningByPath(): Map<string, RecordingStatus>;
  isWriting(path: string): boolean;
}

export class RecordingManager {
  /** Per session: the running recording, or its last one (until the session ends). */
  private readonly bySession = new Map<string, Entry>();
  /** Paths being written now (starting included). */
  private readonly writing = new Set<string>();
  private readonly poll: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: RecordingManagerOptions) {
    opts.registry.on('ended', this.onSessionEnded);
    if (opts.followTopology) {
      this.poll = setInterval(() => void this.recordTopologyChanges(), 2000);
      this.poll.unref();
    }
  }

  get dataDir(): string | null {
    return this.opts.dataDir;
  }

  isWriting(path: string): boolean {
    return this.writing.has(path) || (this.opts.external?.isWriting(path) ?? false);
  }

  status(sessionId: string): RecordingStatus | null {
    const e = this.bySession.get(sessionId);
    return e ? this.statusOf(e) : null;
  }

  /** The running recording of each path being written, for the library listing. */
  runningByPath(): Map<string, RecordingStatus> {
    const out = new Map<string, RecordingStatus>(this.opts.external?.runningByPath() ?? []);
    for (const e of this.bySession.values()) if (e.result === null) out.set(e.path, this.statusOf(e));
    return out;
  }

  /** Starts recording `session` as `name` (default: session id and time). Throws ApiError. */
  async start(session: Session, name: string | undefined): Promise<RecordingStatus> {
    const dataDir = this.requireDataDir();
    if (this.closed) throw new ApiError(503, 'unavailable', 'the service is shutting down');
    const current = this.bySession.get(session.id);
    if (current && current.result === null) {
      throw new ApiError(409, 'conflict', `session ${session.id} is already recording (to '${current.name}'): stop it first`);
    }
    const path = name === undefined ? this.freshPath(dataDir, session) : pathFor(dataDir, name);
    if (this.isWriting(path) || existsSync(path)) throw new ApiError(409, 'conflict', `a recording named '${libraryName(path)}' already exists`);
    const entry: Entry = {
      name: libraryName(path), path, session, startedAt: Date.now(), restartsAtStart: session.feed.restarts,
      rec: null, result: null, gapsAtEnd: 0, model: undefined,
    };
    // Reserved before the first await, so a second request sees it (409) and the reaper spares the session.
    this.bySession.set(session.id, entry);
    this.writing.add(path);
    session.recording = true;
    const source = feedRecordable(session.feed);
    let rec: ActiveRecording;
    let model: Topology | null;
    try {
      model = await this.modelNow();
      entry.model = model ?? undefined;
      rec = await startRecording(source, path, { names: this.opts.names ?? NO_NAMESPACE_NAMES, topology: model ?? false });
    } catch (err) {
      source.detach();
      this.writing.delete(path);
      if (this.bySession.get(session.id) === entry) this.bySession.delete(session.id);
      session.recording = false;
      this.opts.registry.touch(session);
      if (err instanceof RecordingWriteError) throw writeErrorToApi(err, entry.name);
      throw err;
    }
    entry.rec = rec;
    void rec.done.then((result) => {
      source.detach();
      this.ended(entry, result);
    });
    if (model === null && !this.closed) {
      // The model was not ready in time: record it when it is.
      void this.opts.topology().then((t) => this.recordModel(entry, t), () => undefined);
    }
    if (this.closed || this.opts.registry.get(session.id) !== session) {
      await rec.stop(this.closed ? 'the service is shutting down' : 'the session ended');
      if (this.bySession.get(session.id) === entry) this.bySession.delete(session.id);
      throw new ApiError(503, 'unavailable', 'the session ended while its recording was starting');
    }
    this.opts.log(`session ${session.id} ('${session.feed.filter}'): recording to ${entry.name}`);
    const status = this.statusOf(entry);
    session.feed.notify(`recording '${entry.name}' started (session ${session.id})`, { recording: status });
    return status;
  }

  /** Stops the session's running recording; resolves with the finished file's metadata. */
  async stop(session: Session, reason = 'stopped by a client'): Promise<RecordingEntry> {
    const e = this.bySession.get(session.id);
    if (!e || e.result !== null) {
      const last = e?.result ? ` (its last recording '${e.name}' ended: ${e.result.reason})` : '';
      throw new ApiError(404, 'not-found', `session ${session.id} is not recording${last}`);
    }
    if (!e.rec) throw new ApiError(409, 'conflict', `the recording of session ${session.id} is still starting; try again`);
    const result = await e.rec.stop(reason);
    this.ended(e, result);
    return recordingEntry(e.path, await readMetaOrProblem(e.path), this.runningByPath(), this.statusOf(e));
  }

  /** Finishes every recording (the service is closing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    this.opts.registry.off('ended', this.onSessionEnded);
    await Promise.all([...this.bySession.values()].map((e) => (e.rec && !e.result ? e.rec.stop('the service is shutting down') : undefined)));
  }

  requireDataDir(): string {
    if (this.opts.dataDir === null) throw new ApiError(503, 'unavailable', 'this service keeps no recordings (start it with --data-dir)');
    return this.opts.dataDir;
  }

  private readonly onSessionEnded = (session: Session, why: string): void => {
    const e = this.bySession.get(session.id);
    if (!e) return;
    if (e.rec && !e.result) void e.rec.stop(`the session ended: ${why}`);
    // A recording still starting sees the session gone when it has started, and stops then.
    if (e.rec) this.bySession.delete(session.id);
  };

  /** Once per recording, however it ended: free the name, let the session be reaped, tell watchers. */
  private ended(e: Entry, result: RecordingResult): void {
    if (e.result) return;
    e.result = result;
    e.gapsAtEnd = e.session.feed.restarts - e.restartsAtStart;
    this.writing.delete(e.path);
    e.session.recording = false;
    // The grace period counts from the end of the recording, not from the last REST call.
    this.opts.registry.touch(e.session);
    const status = this.statusOf(e);
    if (status.error) {
      this.opts.log(`session ${e.session.id}: recording ${e.name} stopped: ${result.error}`);
      e.session.feed.notify(`recording '${e.name}' stopped: ${status.error} (the session goes on)`, { recording: status });
    } else if (this.opts.registry.get(e.session.id) === e.session) {
      this.opts.log(`session ${e.session.id}: recording ${e.name} stopped: ${result.reason}`);
      e.session.feed.notify(`recording '${e.name}' stopped (session ${e.session.id}): ${result.reason}`, { recording: status });
    }
  }

  private statusOf(e: Entry): RecordingStatus {
    const s = e.result ?? e.rec?.stats;
    // The writer's messages name the server's path; clients get the file's name.
    const clean = (text: string | null | undefined): string | null => (text == null ? null : text.replaceAll(e.path, basename(e.path)));
    return {
      name: e.name,
      session: e.session.id,
      startedAt: new Date(e.startedAt).toISOString(),
      running: e.result === null,
      elapsedMs: s?.elapsedMs ?? Date.now() - e.startedAt,
      events: s?.events ?? 0,
      packets: s?.packets ?? 0,
      lost: s?.lost ?? 0,
      bytes: s?.bytes ?? 0,
      gaps: e.result ? e.gapsAtEnd : e.session.feed.restarts - e.restartsAtStart,
      error: clean(e.result?.error),
      endReason: clean(e.result?.reason),
    };
  }

  /** `<session>-<UTC time>[-n]`: sorts by time, never clashes with a file already there. */
  private freshPath(dataDir: string, session: Session): string {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    for (let n = 1; ; n++) {
      const path = recordingPath(dataDir, `${session.id}-${stamp}${n > 1 ? `-${n}` : ''}`);
      if (!this.writing.has(path) && !existsSync(path)) return path;
    }
  }

  /** The model if it is ready within a second, else null (recorded later, when it is). */
  private async modelNow(): Promise<Topology | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((r) => { timer = setTimeout(() => r(null), 1000); });
    try {
      return await Promise.race([this.opts.topology().catch(() => null), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private recordModel(e: Entry, model: Topology): void {
    if (!e.rec || e.result || model === e.model) return;
    e.model = model;
    e.rec.topologyChanged(model);
  }

  private async recordTopologyChanges(): Promise<void> {
    const running = [...this.bySession.values()].filter((e) => e.rec && !e.result);
    if (running.length === 0) return;
    const model = await this.opts.topology().catch(() => null);
    if (model) for (const e of running) this.recordModel(e, model);
  }
}

function writeErrorToApi(err: RecordingWriteError, name: string): ApiError {
  // The writer's messages name the server's path; clients get the library name.
  switch (err.code) {
    case 'exists': return new ApiError(409, 'conflict', `a recording named '${name}' already exists`);
    case 'no-space': return new ApiError(507, 'recording-failed', `no space left for recording '${name}'`);
    default: return new ApiError(500, 'recording-failed', `recording '${name}' could not be written: ${err.message.replaceAll(err.path, name)}`);
  }
}
