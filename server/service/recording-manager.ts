/**
 * Recordings in the service: a session's feed written to `<data dir>/<name>.hoptrace` while it
 * runs (RecordingManager), and the recordings library over REST (recordingsRouter): list,
 * download, upload (validated before it is stored), delete.
 *
 * A recording taps the session's feed, not its bpftrace: it gets every event the feed gets
 * (the service's own traffic left out, as on the stream) from whichever bpftrace the feed runs,
 * so it goes on across bpftrace restarts; each restart is a gap in time, counted in
 * `RecordingStatus.gaps`. A write error (disk full, file removed) stops the recording, never the
 * session, and is told to the session's watchers as a `session-state` message with `recording`
 * set. A session being recorded is never reaped; deleting it (or closing the service) finishes
 * the file cleanly with the reason.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, constants, existsSync } from 'node:fs';
import { link, lstat, open, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Router } from 'express';
import type { RecordingEntry, RecordingList, RecordingStatus } from '../../shared/api-types.js';
import { SESSION_ID_RE, StartRecordingRequest, UploadRecordingQuery } from '../../shared/api-types.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { Topology } from '../../shared/topology/model.js';
import {
  listRecordings, readRecordingMeta, recordingPath, startRecording, validateRecording, RecordingNameError, RecordingWriteError,
  RECORDING_EXTENSION, type ActiveRecording, type NameSource, type RecordableSession, type RecordingMeta, type DepthSink, type RecordingResult,
} from '../recording/index.js';
import { ApiError, ClientGoneError, allowOnly } from './errors.js';
import type { HopTap, TraceFeed } from './feed.js';
import type { Session, SessionRegistry } from './sessions.js';

export const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

/** Where `serve` keeps recordings without --data-dir: a system folder for root, the XDG data folder otherwise. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  if (uid === 0) return '/var/lib/hoptrace/recordings';
  const base = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'hoptrace', 'recordings');
}

/** The library name of a file: its name without the `.hoptrace` extension. */
function libraryName(file: string): string {
  return file.endsWith(RECORDING_EXTENSION) ? file.slice(0, -RECORDING_EXTENSION.length) : file;
}

/** The path of a user-given name, or 400 (recordingPath keeps every name inside the folder). */
function pathFor(dataDir: string, name: unknown): string {
  try {
    const path = recordingPath(dataDir, typeof name === 'string' ? name : '');
    // 'x.' would make 'x..hoptrace': a file its own file name could not address (no '..' allowed).
    if (basename(path).includes('..')) throw new RecordingNameError('a recording name may not end with "."');
    return path;
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

const NO_NAMES: NameSource = { refresh: () => Promise.resolve(), name: () => null, entries: () => [] };

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
  readonly names: NameSource | null;
  /** The service's topology model; rejects where there is none. */
  readonly topology: () => Promise<Topology>;
  /** Whether topology() follows the host (then changes are recorded, checked every 2 s). */
  readonly followTopology: boolean;
  readonly log: (line: string) => void;
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
    return this.writing.has(path);
  }

  status(sessionId: string): RecordingStatus | null {
    const e = this.bySession.get(sessionId);
    return e ? this.statusOf(e) : null;
  }

  /** The running recording of each path being written, for the library listing. */
  runningByPath(): Map<string, RecordingStatus> {
    const out = new Map<string, RecordingStatus>();
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
    if (this.writing.has(path) || existsSync(path)) throw new ApiError(409, 'conflict', `a recording named '${libraryName(basename(path))}' already exists`);
    const entry: Entry = {
      name: libraryName(basename(path)), path, session, startedAt: Date.now(), restartsAtStart: session.feed.restarts,
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
      rec = await startRecording(source, path, { names: this.opts.names ?? NO_NAMES, topology: model ?? false });
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
    return entryFor(e.path, await readMeta(e.path), this.runningByPath(), this.statusOf(e));
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

async function readMeta(path: string): Promise<RecordingMeta | string> {
  try {
    return await readRecordingMeta(path);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** A library entry from a file's metadata (or the reason it has none), with live numbers while it is written. */
function entryFor(path: string, meta: RecordingMeta | string, running: ReadonlyMap<string, RecordingStatus>, fallback?: RecordingStatus, size = 0): RecordingEntry {
  const file = basename(path);
  const live = running.get(path);
  if (typeof meta === 'string') {
    return {
      name: libraryName(file), file, startedAt: fallback?.startedAt ?? null, durationS: 0, events: fallback?.events ?? 0, packets: null,
      lost: 0, sizeBytes: size, filter: '', host: '', kernel: '', complete: false, endReason: fallback?.endReason ?? null,
      recording: live !== undefined, problem: meta,
    };
  }
  return {
    name: libraryName(file),
    file,
    startedAt: meta.startIso,
    durationS: Math.round(meta.durationNs / 1e6) / 1000,
    // The tail is read from the last index record; a file being written is ahead of it.
    events: Math.max(meta.events, live?.events ?? 0),
    packets: meta.packets ?? (live ? live.packets : null),
    lost: Math.max(meta.lost, live?.lost ?? 0),
    sizeBytes: meta.size,
    filter: meta.filter,
    host: meta.host,
    kernel: meta.kernel,
    depth: meta.depth,
    sampleRate: meta.sampleRate,
    complete: meta.complete,
    endReason: meta.endReason,
    recording: live !== undefined,
  };
}

function tooLarge(max: number): ApiError {
  return new ApiError(413, 'payload-too-large', `the upload is larger than this service accepts (${Math.round((max / 1024 / 1024) * 100) / 100} MiB)`);
}

/**
 * Writes a request body to a new file, at most `max` bytes. Past that it stops reading and
 * rejects with 413; the request is left paused (not destroyed, which would take the socket and
 * the answer with it): the caller answers with Connection: close.
 */
function receiveBody(req: Request, file: string, max: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const out = createWriteStream(file, { flags: 'wx', mode: 0o640 });
    let seen = 0;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      req.unpipe(out);
      req.pause();
      out.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > max) fail(tooLarge(max));
    });
    req.on('aborted', () => fail(new ClientGoneError('the client went away during the upload')));
    // An error on the request is the connection failing under it (reset, aborted): the client's side.
    req.on('error', () => fail(new ClientGoneError('the client went away during the upload')));
    out.on('error', fail);
    out.on('finish', () => { if (!failed) resolvePromise(); });
    req.pipe(out);
  });
}

export interface RecordingsRouterDeps {
  readonly manager: RecordingManager;
  readonly registry: SessionRegistry;
  readonly maxUploadBytes: number;
}

function sessionParam(registry: SessionRegistry, req: Request): Session {
  const id = req.params.id;
  const session = typeof id === 'string' && SESSION_ID_RE.test(id) ? registry.get(id) : undefined;
  if (!session) throw new ApiError(404, 'not-found', `no session ${typeof id === 'string' ? id.slice(0, 40) : ''}`);
  return session;
}

/** Routes under /api: a session's recording, and the recordings library. Mount before apiRouter (its catch-all 404). */
export function recordingsRouter(deps: RecordingsRouterDeps): Router {
  const { manager, registry } = deps;
  const router = express.Router();
  const json = express.json({ limit: '16kb', strict: true });

  router.post('/sessions/:id/recording', json, async (req, res) => {
    const session = sessionParam(registry, req);
    manager.requireDataDir();
    // No body (or an empty one) lets the server pick the name.
    const type = req.is('application/json');
    if (!type && (Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined)) {
      throw new ApiError(400, 'bad-request', 'send the body as JSON (Content-Type: application/json), e.g. {"name": "before-fix"}');
    }
    const body = StartRecordingRequest.parse(type ? (req.body ?? {}) : {});
    registry.touch(session);
    const status = await manager.start(session, body.name);
    res.status(201).location(`/api/recordings/${encodeURIComponent(status.name)}`).json(status);
  });

  router.delete('/sessions/:id/recording', async (req, res) => {
    const session = sessionParam(registry, req);
    registry.touch(session);
    res.json(await manager.stop(session));
  });

  router.get('/recordings', async (_req, res) => {
    const dir = manager.requireDataDir();
    const running = manager.runningByPath();
    const entries = await listRecordings(dir);
    const recordings = await Promise.all(entries.map(async (e) => {
      const path = resolve(dir, e.name);
      if (e.meta) return entryFor(path, e.meta, running);
      const size = await lstat(path).then((s) => s.size, () => 0);
      return entryFor(path, e.problem ?? 'unreadable', running, undefined, size);
    }));
    const body: RecordingList = { recordings };
    res.json(body);
  });

  router.get('/recordings/:name', async (req, res) => {
    const path = pathFor(manager.requireDataDir(), req.params.name);
    // O_NOFOLLOW: a symlink planted in the folder is not followed out of it.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    const st = await fh?.stat();
    if (!fh || !st?.isFile()) {
      await fh?.close();
      throw new ApiError(404, 'not-found', `no recording '${libraryName(basename(path))}'`);
    }
    res.status(200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', `attachment; filename="${basename(path)}"`);
    // A file being written grows: send what it held when asked (a valid prefix).
    res.setHeader('Content-Length', String(st.size));
    res.setHeader('Cache-Control', 'no-store');
    if (st.size === 0) {
      await fh.close();
      res.end();
      return;
    }
    // A client that goes away mid-download is no error of ours.
    await pipeline(createReadStream('', { fd: fh, start: 0, end: st.size - 1 }), res).catch(() => undefined);
  });

  router.post('/recordings', async (req, res) => {
    const dir = manager.requireDataDir();
    const { name } = UploadRecordingQuery.parse(req.query);
    const path = pathFor(dir, name);
    if (!req.is('application/octet-stream')) {
      throw new ApiError(400, 'bad-request', 'send the recording as the raw body (Content-Type: application/octet-stream)');
    }
    const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      // Stored as it comes: compressed bytes would only fail validation as "not a recording".
      res.setHeader('Connection', 'close');
      throw new ApiError(415, 'unsupported-encoding', `send the recording uncompressed (no Content-Encoding; got ${encoding.slice(0, 20)})`);
    }
    const declared = Number(req.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > deps.maxUploadBytes) {
      // Not reading a body we refuse: close the connection once the answer is out.
      res.setHeader('Connection', 'close');
      throw tooLarge(deps.maxUploadBytes);
    }
    const taken = (): ApiError => new ApiError(409, 'conflict', `a recording named '${libraryName(basename(path))}' already exists`);
    if (manager.isWriting(path) || existsSync(path)) {
      res.setHeader('Connection', 'close');
      throw taken();
    }
    // Written under a name the library ignores (leading '.'), in the same folder so the final link is atomic.
    const tmp = join(dir, `.upload-${randomBytes(8).toString('hex')}.tmp`);
    try {
      try {
        await receiveBody(req, tmp, deps.maxUploadBytes);
      } catch (err) {
        res.setHeader('Connection', 'close');
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') throw new ApiError(507, 'recording-failed', 'no space left to store the upload');
        throw err;
      }
      const v = await validateRecording(tmp);
      if (!v.ok) throw new ApiError(400, 'bad-recording', `not stored: ${v.problem ?? 'it is not a readable recording'}`);
      try {
        // link, not rename: it fails on an existing name instead of replacing it.
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw taken();
        throw err;
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const entry = entryFor(path, await readMeta(path), manager.runningByPath());
    res.status(201).location(`/api/recordings/${encodeURIComponent(entry.name)}`).json(entry);
  });

  router.delete('/recordings/:name', async (req, res) => {
    const path = pathFor(manager.requireDataDir(), req.params.name);
    const name = libraryName(basename(path));
    if (manager.isWriting(path)) throw new ApiError(409, 'conflict', `recording '${name}' is being written: stop it first (DELETE /api/sessions/:id/recording)`);
    const st = await lstat(path).catch(() => null);
    if (!st?.isFile()) throw new ApiError(404, 'not-found', `no recording '${name}'`);
    await unlink(path);
    res.status(204).end();
  });

  allowOnly(router, '/sessions/:id/recording', ['POST', 'DELETE']);
  allowOnly(router, '/recordings', ['GET', 'POST']);
  allowOnly(router, '/recordings/:name', ['GET', 'DELETE']);
  return router;
}
