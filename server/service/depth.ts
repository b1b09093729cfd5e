/**
 * Depth for the service's sessions (`POST /api/sessions {netfilter, notes}`): the netfilter rule
 * trace a feed runs beside its bpftrace, behind a small interface so tests can stand in for nft,
 * and the note support a notes feed's bpftrace is built with (detected once per service).
 */
import { EventEmitter } from 'node:events';
import type { FilterAst } from '../../shared/filter/index.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { NetfilterTracer, type NetfilterTracerOptions } from '../netfilter/tracer.js';
import { netfilterPreflight } from '../netfilter/packet-steps.js';
import { CannotTraceError } from '../trace-session.js';
import { detectNoteSupport, type NoteSupport } from '../capabilities.js';

export interface NetfilterSourceEvents {
  event: [NetfilterEvent];
  /** One sentence the session's watchers should see (no filter: rate-limited; a namespace that cannot be traced). */
  warning: [string];
}

/** What a feed needs of a netfilter rule trace (NetfilterTracer's surface). */
export interface NetfilterSource extends EventEmitter<NetfilterSourceEvents> {
  /** Checks the host and starts tracing every namespace; CannotTraceError when the host cannot. */
  start(filter: FilterAst): Promise<void>;
  /** A hop was seen in `netns`: trace it too if it is not yet. */
  noteNetns(netns: number): void;
  /** Removes every table and stops every monitor. Safe to call more than once. */
  stop(): Promise<void>;
}

export type NetfilterSourceFactory = () => NetfilterSource;

/** The real thing: NetfilterTracer (tables `inet hoptrace_<pid>_<n>`, one nft monitor per namespace). */
class NftNetfilterSource extends EventEmitter<NetfilterSourceEvents> implements NetfilterSource {
  private readonly tracer: NetfilterTracer;
  private readonly seen = new Set<number>();

  constructor(opts: NetfilterTracerOptions = {}) {
    super();
    this.tracer = new NetfilterTracer(opts);
    this.tracer.on('event', (ev) => this.emit('event', ev));
    this.tracer.on('warning', (w) => this.emit('warning', w));
  }

  async start(filter: FilterAst): Promise<void> {
    await checkNetfilterTracing();
    await this.tracer.start(filter);
  }

  noteNetns(netns: number): void {
    if (this.seen.has(netns)) return;
    this.seen.add(netns);
    void this.tracer.trackNetns(netns);
  }

  stop(): Promise<void> {
    return this.tracer.stop();
  }
}

/** Throws CannotTraceError naming the fix where this host cannot run nft's rule trace (no nft, nsenter, root). */
export async function checkNetfilterTracing(): Promise<void> {
  const problems = await netfilterPreflight();
  // The CLI's sentences name `--netfilter`; the service's users asked for `netfilter: true`.
  if (problems.length > 0) throw new CannotTraceError(problems.map((p) => p.replace('--netfilter', 'netfilter tracing')));
}

export const nftNetfilterSource: NetfilterSourceFactory = () => new NftNetfilterSource();

/** The same, with the tracer's options: an agent limited to some namespaces (`--namespaces`) adds nft tables only there. */
export const nftNetfilterSourceWith = (opts: NetfilterTracerOptions): NetfilterSource => new NftNetfilterSource(opts);

/** Note support, detected on first use and then kept (it does not change while the service runs). */
export function cachedNoteSupport(): () => Promise<NoteSupport> {
  let support: Promise<NoteSupport> | undefined;
  return () => {
    support ??= detectNoteSupport();
    support.catch(() => { support = undefined; });
    return support;
  };
}
