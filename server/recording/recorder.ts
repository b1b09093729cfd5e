/**
 * Records a live TraceSession into a .hoptrace file: the piece `hoptrace record` and the
 * service share. It writes the header from the started session (filter, drop-reason table) and
 * the host, a topology snapshot (namespace names at once, the discovered model when it is
 * ready) and changes as namespaces appear, then every hop event and lost-event report. It also
 * reconstructs packets as they come, for the end record's packet count and for `--count`.
 * A write failure (disk full, file deleted) stops the recording, never the session.
 *
 * A session with depth (notes, netfilter rule trace) has its notes and netfilter events recorded
 * too, in the order they came, and says so in the header: replay attaches them to packets as the
 * live session did (server/recording/replay.ts).
 */
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import type { Packet } from '../../shared/packet.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import type { DropReasons } from '../drop-reasons.js';
import type { ProbeTier } from '../../shared/api-types.js';
import { NamespaceNames, type LiveNamespaceNamer } from '../topology/namespace-names.js';
import { discoverTopology } from '../topology/discover.js';
import { runInNamespace, type Runner } from '../topology/exec.js';
import { kernelNowNs, pairedClocks } from '../clock.js';
import { hostInfo } from './host.js';
import { RecordingFileWriter, type RecordingWriteError, type WriterOptions } from './writer.js';

/** What a recorder needs of a trace session (TraceSession satisfies it; tests may fake it). */
export interface RecordableSession {
  on(event: 'hop', fn: (ev: HopEvent) => void): unknown;
  on(event: 'lost', fn: (count: number) => void): unknown;
  off(event: 'hop', fn: (ev: HopEvent) => void): unknown;
  off(event: 'lost', fn: (count: number) => void): unknown;
  readonly filterText: string;
  /** Available once the session started. */
  readonly dropReasons: DropReasons;
  accepts(packet: Packet): boolean;
  /** What the session traces beyond hops (written into the header); absent: nothing. */
  readonly depth?: { readonly netfilter: boolean; readonly notes: boolean };
  /** Probe points attached, as bpftrace names them on the session's tier; absent: the classic hop tracepoints. */
  readonly probes?: readonly string[];
  /** The probe tier the session runs on (written into the header); absent: unknown. */
  readonly probeTier?: ProbeTier;
  /** 1 in this many flows are followed (`--sample`, written into the header); absent: 1, every flow. */
  readonly sampleRate?: number;
  /** Subscribes to the session's notes and netfilter events; returns the unsubscribe. */
  depthEvents?(sink: DepthSink): () => void;
}

export interface DepthSink {
  note(n: HopNote): void;
  netfilter(ev: NetfilterEvent): void;
}

export interface RecordingOptions {
  /** Namespace names; default: a NamespaceNames of its own. */
  readonly names?: LiveNamespaceNamer;
  /** Topology model at the start. Default: discovered in the background (false: none). */
  readonly topology?: unknown;
  readonly writer?: WriterOptions;
  /** Called for each packet reconstructed (accepted by the session's filter), e.g. to stop at a count. */
  readonly onPacket?: (p: Packet) => void;
  /** Called once if the recording stops on a write error (the session goes on). */
  readonly onError?: (err: RecordingWriteError) => void;
  /** Written into the header; default "hoptrace 0.1.0". */
  readonly recorder?: string;
}

export interface RecordingStats {
  readonly path: string;
  readonly running: boolean;
  /** Wall clock at the start, ms since epoch. */
  readonly startedAt: number;
  readonly elapsedMs: number;
  readonly events: number;
  readonly lost: number;
  /** Bytes written to the file so far. */
  readonly bytes: number;
  readonly packets: number;
  /** The error that stopped it, as one sentence, or null. */
  readonly error: string | null;
}

export interface RecordingResult extends RecordingStats {
  /** Why it stopped: the reason given to stop(), or `error: ...`. */
  readonly reason: string;
}

export interface ActiveRecording {
  readonly path: string;
  readonly stats: RecordingStats;
  /** Finishes the file (end record, fsync) and detaches from the session. Idempotent. */
  stop(reason?: string): Promise<RecordingResult>;
  /** Settles when the recording stops for any reason (stop() or a write error). */
  readonly done: Promise<RecordingResult>;
  /** Records a new topology model (the service calls this when its watcher sees a change). */
  topologyChanged(model: unknown): void;
}

const RECORDER = 'hoptrace 0.1.0';

/**
 * Starts recording `session` (already started: the header needs its drop-reason table) into a
 * new file at `path`. Throws RecordingWriteError when the file cannot be created.
 */
export async function startRecording(session: RecordableSession, path: string, options: RecordingOptions = {}): Promise<ActiveRecording> {
  const host = await hostInfo();
  const names = options.names ?? new NamespaceNames();
  await names.refresh();
  const clocks = pairedClocks();
  const startedAt = Date.now();
  let packets = 0;
  let stopped: RecordingResult | null = null;
  let resolveDone: (r: RecordingResult) => void = () => undefined;
  const done = new Promise<RecordingResult>((resolve) => { resolveDone = resolve; });

  const writer = new RecordingFileWriter(path, {
    host: host.host, kernel: host.kernel, bpftraceVersion: host.bpftraceVersion, probes: session.probes ?? host.probes,
    ...(session.probeTier ? { probeTier: session.probeTier } : {}),
    filter: session.filterText, startWallNs: clocks.wallNs, startMonoNs: clocks.monoNs,
    dropReasons: session.dropReasons.names, recorder: options.recorder ?? RECORDER,
    netfilter: session.depth?.netfilter === true, notes: session.depth?.notes === true,
    ...(session.sampleRate !== undefined && session.sampleRate > 1 ? { sampleRate: session.sampleRate } : {}),
  }, {
    ...options.writer,
    onError: (err) => {
      // A write failing before the recording started (the first topology record) is the start
      // failing: handled below, where the file is discarded and the error thrown.
      if (!started) return;
      finish(`error: ${err.message}`);
      options.onError?.(err);
    },
  });
  let started = false;

  const recorded = new Map<number, string>();
  const asked = new Set<number>();
  const namespaceChanges = (): Array<{ netns: number; name: string }> => {
    const out: Array<{ netns: number; name: string }> = [];
    for (const [netns, name] of names.entries()) {
      if (recorded.get(netns) !== name) {
        recorded.set(netns, name);
        out.push({ netns, name });
      }
    }
    return out;
  };
  writer.topology({ t: clocks.monoNs, snapshot: true, namespaces: namespaceChanges(), model: options.topology === false ? null : (options.topology ?? null), removed: [] });
  if (writer.error) {
    // Header written, topology not (a nearly full disk): a file without its topology is no
    // recording; leave nothing that keeps the name taken.
    writer.discard();
    throw writer.error;
  }
  started = true;
  if (options.topology === undefined) {
    // Discovery runs `ip`/`nft` per namespace: let it finish in the background, and stop
    // starting commands once recording stops, so a short recording does not wait for it.
    const run: Runner = (ns, argv, input) => (stopped ? Promise.resolve({ ok: false, stdout: '', error: 'recording stopped' }) : runInNamespace(ns, argv, input));
    void discoverTopology({ run }).then((model) => {
      if (!stopped) writer.topology({ t: kernelNowNs(), snapshot: true, namespaces: [...recorded].map(([netns, name]) => ({ netns, name })), model, removed: [] });
    }, () => undefined);
  }

  const rec = new Reconstructor({ nsName: names.name, dropReason: session.dropReasons.name, accept: (p) => session.accepts(p) });
  const countPackets = (list: Packet[]): void => {
    for (const p of list) {
      packets++;
      options.onPacket?.(p);
    }
  };

  const onHop = (ev: HopEvent): void => {
    writer.event(ev);
    rec.push(ev);
    // An inode we have no name for yet: ask (NamespaceNames re-reads, debounced); the tick records it.
    if (!recorded.has(ev.netns) && !asked.has(ev.netns)) {
      asked.add(ev.netns);
      names.name(ev.netns);
    }
  };
  const onLost = (count: number): void => writer.lost(kernelNowNs(), count);
  session.on('hop', onHop);
  session.on('lost', onLost);
  const offDepth = session.depthEvents?.({ note: (n) => writer.note(n), netfilter: (ev) => writer.netfilter(ev) });

  let ticks = 0;
  const tick = setInterval(() => {
    // Recorded, so that replay advances its reconstruction exactly where this one did.
    // The events' own clock while they arrive (Reconstructor.idleClock): a recorder behind by
    // seconds does not release past the hops still in its pipe.
    const now = rec.idleClock(kernelNowNs());
    writer.clock(now);
    rec.advance(now);
    countPackets(rec.drain());
    if (++ticks % 5 === 0) {
      const changed = namespaceChanges();
      if (changed.length > 0) writer.topology({ t: kernelNowNs(), snapshot: false, namespaces: changed, model: null, removed: [] });
      asked.clear();
    }
  }, 200);
  tick.unref();

  const stats = (): RecordingStats => {
    const w = writer.stats;
    return {
      path, running: stopped === null, startedAt, elapsedMs: Date.now() - startedAt, events: w.events, lost: w.lost,
      bytes: w.bytesWritten, packets, error: writer.error?.message ?? null,
    };
  };

  function finish(reason: string): RecordingResult {
    if (stopped) return stopped;
    session.off('hop', onHop);
    session.off('lost', onLost);
    offDepth?.();
    clearInterval(tick);
    countPackets(rec.flush());
    if (!writer.failed) {
      const changed = namespaceChanges();
      if (changed.length > 0) writer.topology({ t: kernelNowNs(), snapshot: false, namespaces: changed, model: null, removed: [] });
      const c = pairedClocks();
      writer.close({ t: Math.max(c.monoNs, writer.stats.maxT), wallNs: c.wallNs, packets, reason });
    }
    stopped = { ...stats(), running: false, reason: writer.error ? `error: ${writer.error.message}` : reason };
    resolveDone(stopped);
    return stopped;
  }

  return {
    path,
    get stats() {
      return stopped ?? stats();
    },
    stop: (reason = 'stopped') => Promise.resolve(finish(reason)),
    done,
    topologyChanged: (model) => {
      if (!stopped) writer.topology({ t: kernelNowNs(), snapshot: true, namespaces: [...recorded].map(([netns, name]) => ({ netns, name })), model, removed: [] });
    },
  };
}
