/**
 * Keeps the topology model current while a trace or the service runs. Two cheap signals
 * trigger a full discovery: the set of namespace inodes changed (checked every `pollMs` with
 * readlink/stat only, ~10 ms, and at once when /run/netns changes), or a caller saw an inode or
 * interface the model does not know (`noteUnknown`). A full discovery also runs every `refreshMs` to pick up
 * interface, route and rule changes inside namespaces that stayed. Changes are emitted as
 * 'change' events with the namespaces added, removed and changed.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';
import type { DiscoverOptions } from './discover.js';
import { discoverTopology } from './discover.js';
import type { NamespaceEntry } from './namespaces.js';
import { listNamespaces, NETNS_DIR } from './namespaces.js';
import { kernelNowNs, monotonicNamespaceOffsetNs } from '../clock.js';

export interface TopologyChange {
  readonly topology: Topology;
  /** Namespace names. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  /**
   * When this discovery started, on the hops' clock (kernel monotonic ns): the state it read is
   * the host's from about then, so a packet that started earlier is compared with the model before.
   */
  readonly sinceNs: number;
}

export interface TopologyWatcherOptions {
  /** How often the namespace set is checked (default 1000 ms). */
  readonly pollMs?: number;
  /**
   * How often a full discovery runs regardless (default 30000 ms; 0 disables). One discovery
   * costs ~27 ms of CPU per namespace (3-5 process spawns each), measured in
   * server/topology/README.md; on a host where one takes longer than refreshMs / 20, the gap
   * grows to 20 times the last discovery's duration, so the refresh stays under 5 % of the time.
   */
  readonly refreshMs?: number;
  /** Shortest gap between two full discoveries triggered by signals (default 500 ms). */
  readonly minGapMs?: number;
  readonly discover?: (opts: DiscoverOptions) => Promise<Topology>;
  readonly list?: () => Promise<NamespaceEntry[]>;
  /**
   * The hops' clock for `sinceNs` (the newest hop time seen): bpftrace 0.23's is boot time, which
   * runs ahead of this process's monotonic clock on a machine that was suspended or restored.
   * Without it, or before any hop, the kernel's monotonic clock.
   */
  readonly hopClock?: () => number;
}

interface Events {
  change: [TopologyChange];
  error: [Error];
}

function fingerprint(ns: NamespaceModel): string {
  // Everything but the pid list: processes come and go without changing the network.
  const { pids: _pids, ...rest } = ns;
  return JSON.stringify(rest);
}

export function diffTopology(before: Topology | null, after: Topology): Omit<TopologyChange, 'topology' | 'sinceNs'> {
  const old = new Map((before?.namespaces ?? []).map((n) => [n.netns, n]));
  const now = new Map(after.namespaces.map((n) => [n.netns, n]));
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [ino, n] of now) {
    const o = old.get(ino);
    if (!o) added.push(n.name);
    else if (fingerprint(o) !== fingerprint(n)) changed.push(n.name);
  }
  for (const [ino, o] of old) if (!now.has(ino)) removed.push(o.name);
  return { added, removed, changed };
}

function knownKeys(topo: Topology | null): Set<string> {
  const keys = new Set<string>();
  for (const ns of topo?.namespaces ?? []) {
    keys.add(String(ns.netns));
    for (const i of ns.interfaces) keys.add(`${ns.netns}|${i.name}`);
  }
  return keys;
}

/**
 * The namespace set as the poll compares it: inodes, each marked when processes live in it. A
 * runtime creates a container's netns file before the container's first process enters it, so a
 * discovery of the bare file finds no workload; the mark changing triggers the one that does.
 */
function namespaceSet(list: ReadonlyArray<{ readonly netns: number; readonly pids: readonly number[] }>): string {
  return list.map((n) => `${n.netns}${n.pids.length > 0 ? '+' : ''}`).sort().join(',');
}

export class TopologyWatcher extends EventEmitter<Events> {
  private topo: Topology | null = null;
  /** `netns` and `netns|ifname` of the current model: noteUnknown runs per hop, so it must be a lookup. */
  private known = new Set<string>();
  private inFlight: Promise<Topology> | null = null;
  private again = false;
  private lastRun = 0;
  private knownInodes = '';
  private timers: NodeJS.Timeout[] = [];
  private refreshTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private fsWatcher: FSWatcher | null = null;
  private gapTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private workloadRetries = 0;
  private readonly opts: Required<Pick<TopologyWatcherOptions, 'pollMs' | 'refreshMs' | 'minGapMs'>> & TopologyWatcherOptions;

  constructor(opts: TopologyWatcherOptions = {}) {
    super();
    this.opts = { pollMs: 1000, refreshMs: 30_000, minGapMs: 500, ...opts };
  }

  /** The latest model, null before the first discovery finished. */
  get current(): Topology | null {
    return this.topo;
  }

  /** Runs the first discovery and starts following changes. */
  async start(): Promise<Topology> {
    const first = await this.refresh();
    this.timers.push(setInterval(() => void this.poll(), this.opts.pollMs));
    for (const t of this.timers) t.unref();
    this.scheduleRefresh(first.durationMs);
    try {
      this.fsWatcher = watch(NETNS_DIR, () => this.soon());
      this.fsWatcher.on('error', () => undefined);
      this.fsWatcher.unref();
    } catch {
      // No /run/netns yet: the poll still sees named namespaces once it exists.
    }
    return first;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    if (this.gapTimer) clearTimeout(this.gapTimer);
    this.gapTimer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.fsWatcher?.close();
    this.fsWatcher = null;
  }

  /**
   * A trace saw this namespace inode (and interface): refresh soon if the model does not know
   * them. This is how interfaces created inside an existing namespace are picked up between
   * periodic refreshes.
   */
  noteUnknown(netns: number, ifname?: string): void {
    if (!this.topo || netns === 0) return;
    if (!this.known.has(String(netns)) || (ifname !== undefined && ifname !== '' && !this.known.has(`${netns}|${ifname}`))) this.soon();
  }

  /** Full discovery now (coalesced with one already running); emits 'change' when something changed. */
  refresh(): Promise<Topology> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    const run = async (): Promise<Topology> => {
      let topo: Topology;
      do {
        this.again = false;
        this.lastRun = Date.now();
        const sinceNs = this.opts.hopClock?.() || kernelNowNs() - monotonicNamespaceOffsetNs();
        try {
          topo = await (this.opts.discover ?? discoverTopology)({});
        } catch (e) {
          // discoverTopology does not throw; a replacement might.
          this.emit('error', e instanceof Error ? e : new Error(String(e)));
          topo = this.topo ?? { namespaces: [], errors: [String(e)], discoveredAt: Date.now(), durationMs: 0 };
        }
        const diff = diffTopology(this.topo, topo);
        const first = this.topo === null;
        this.topo = topo;
        this.known = knownKeys(this.topo);
        this.knownInodes = namespaceSet(topo.namespaces);
        if (!first && (diff.added.length > 0 || diff.removed.length > 0 || diff.changed.length > 0)) {
          this.emit('change', { topology: topo, ...diff, sinceNs });
        }
        this.retryWorkloads(topo);
      } while (this.again);
      return topo;
    };
    this.inFlight = run().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** The next periodic discovery: refreshMs after this one, or 20 times its duration if longer. */
  private scheduleRefresh(lastMs: number): void {
    if (this.opts.refreshMs <= 0 || this.stopped) return;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refresh().then((t) => this.scheduleRefresh(t.durationMs), () => this.scheduleRefresh(lastMs));
    }, Math.max(this.opts.refreshMs, 20 * lastMs));
    this.refreshTimer.unref();
  }

  /**
   * A container caught starting (its runtime busy, `podman ps` past its deadline) leaves its
   * namespace unnamed: try again after 2, 4, 8, 16 and 32 s rather than at the next periodic
   * refresh; a runtime that stays unusable costs five discoveries, then waits for the refresh.
   */
  private retryWorkloads(topo: Topology): void {
    const incomplete = topo.namespaces.some((n) => n.workloadNote !== undefined || (n.workloads ?? []).some((w) => w.name === null && w.sandbox !== true && w.pod === null));
    if (!incomplete) {
      this.workloadRetries = 0;
      return;
    }
    if (this.workloadRetries >= 5 || this.stopped || this.retryTimer) return;
    const wait = 2000 * 2 ** this.workloadRetries++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.soon();
    }, wait);
    this.retryTimer.unref();
  }

  private soon(): void {
    if (this.gapTimer) return;
    const wait = Math.max(0, this.opts.minGapMs - (Date.now() - this.lastRun));
    this.gapTimer = setTimeout(() => {
      this.gapTimer = null;
      void this.refresh();
    }, wait);
    this.gapTimer.unref();
  }

  private async poll(): Promise<void> {
    try {
      const list = await (this.opts.list ?? listNamespaces)();
      const inodes = namespaceSet(list);
      if (inodes !== this.knownInodes && !this.inFlight) this.soon();
    } catch (e) {
      this.emit('error', e instanceof Error ? e : new Error(String(e)));
    }
  }
}
