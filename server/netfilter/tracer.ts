/**
 * `NetfilterTracer`: rule-level netfilter tracing across namespaces. For one filter it adds a
 * table of its own (`inet hoptrace_<pid>_<n>`, see shared/netfilter/nft-filter.ts) to each
 * namespace — and in namespaces with a bridge a `bridge` family table of the same name, since
 * frames bridged port to port never reach the inet hooks — runs `nft monitor trace` there, and
 * emits the parsed steps as 'event's. A bridge created in a traced namespace later gets its table
 * at the next refresh. Namespaces
 * that appear later are added, ones that disappear are let go (their monitor would otherwise keep
 * a deleted namespace alive). `stop()` removes every table; a guardian process removes them if
 * this process is killed first, and `start()` removes leftovers of runs that are gone.
 *
 * Used by `hoptrace trace --netfilter` and meant for the service's sessions (`netfilter: true`).
 */
import { EventEmitter } from 'node:events';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import type { FilterAst } from '../../shared/filter/index.js';
import { buildTraceTable, compileToNft, type NftFilter } from '../../shared/netfilter/nft-filter.js';
import type { NetfilterEvent, NfHook } from '../../shared/netfilter/types.js';
import { natKindOfRule } from '../../shared/netfilter/monitor-parse.js';
import { listNamespaces, NETNS_DIR } from '../topology/namespaces.js';
import { chainHooks, cleanLeftovers, hasBridge, installTable, processStartTime, removeTable, ruleText, type Leftover, type NftNamespace } from './nft.js';
import { NftMonitor } from './monitor.js';
import { TableGuardian } from './guardian.js';
import { kernelNowNs } from '../clock.js';

export interface NetfilterTracerOptions {
  /** Packets per second traced per namespace. Default 1000 with a filter, 100 without. */
  readonly ratePerSecond?: number;
  /** How often namespaces are re-listed (ms). 0 = never (only the ones given to start()). */
  readonly refreshMs?: number;
  /** Most namespaces traced at once; beyond it only namespaces passed to `trackNetns` are added. */
  readonly maxNamespaces?: number;
  /** Kernel-monotonic clock (ns), stamped on events. */
  readonly now?: () => number;
  /** Source of namespaces (default: every namespace of the host). */
  readonly listNamespaces?: () => Promise<readonly NftNamespace[]>;
  /** Start a guardian process that removes the tables if this process is killed (default true). */
  readonly guardian?: boolean;
}

export interface NamespaceState {
  readonly ns: NftNamespace;
  /** Name of its tables: `inet <table>`, and `bridge <table>` when `bridge` is true. */
  readonly table: string;
  /** Whether the namespace has hoptrace's bridge family table (it has a bridge device). */
  bridge: boolean;
  state: 'starting' | 'tracing' | 'failed' | 'gone';
  reason?: string;
}

export interface NetfilterTracerEvents {
  event: [NetfilterEvent];
  /** One sentence about something the user should know (a namespace that could not be traced, a widened filter). */
  warning: [string];
  namespace: [NamespaceState];
}


let tableSeq = 0;

interface Tracked {
  readonly state: NamespaceState;
  monitor?: NftMonitor;
  installed: boolean;
  /** Devices of the namespace when it was last checked for a bridge (names from /proc/PID/net/dev). */
  devices?: string;
  bridgeBusy?: Promise<void>;
  hooks: Map<string, NfHook>;
  hooksRefreshing?: Promise<void>;
  hooksRefreshedAt: number;
  readonly rules: Map<string, Promise<string | null>>;
}

async function allNamespaces(): Promise<NftNamespace[]> {
  return (await listNamespaces()).map((n) => ({ netns: n.netns, name: n.name, path: n.path }));
}

function sameNamespace(ns: NftNamespace): boolean {
  try {
    return statSync(ns.path).ino === ns.netns;
  } catch {
    return false;
  }
}

export class NetfilterTracer extends EventEmitter<NetfilterTracerEvents> {
  private readonly opts: NetfilterTracerOptions;
  private readonly tracked = new Map<number, Tracked>();
  private filter: NftFilter | undefined;
  private rate = 0;
  private guardian: TableGuardian | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dirWatch: FSWatcher | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running = false;
  private explicit = false;
  /** add() calls in flight: stop() waits for them so no table is installed behind its back. */
  private readonly pending = new Set<Promise<void>>();
  private readonly owner = { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 };
  /** Leftover tables of dead runs removed at start. */
  leftovers: Leftover[] = [];
  events = 0;

  constructor(opts: NetfilterTracerOptions = {}) {
    super();
    this.opts = opts;
  }

  /** Namespaces and their state. */
  get namespaces(): NamespaceState[] {
    return [...this.tracked.values()].map((t) => t.state);
  }

  /** Monitor pids (so a namespace list can leave out namespaces only our monitors keep alive). */
  get monitorPids(): number[] {
    return [...this.tracked.values()].flatMap((t) => (t.monitor?.pid !== undefined ? [t.monitor.pid] : []));
  }

  /**
   * Cleans leftovers, then starts tracing in `namespaces` (default: every namespace of the host,
   * and later ones as they appear). Resolves once every namespace is traced or has failed.
   */
  async start(filterAst: FilterAst, namespaces?: readonly NftNamespace[]): Promise<void> {
    if (this.running) throw new Error('netfilter tracer already started');
    this.running = true;
    this.filter = compileToNft(filterAst);
    this.rate = this.opts.ratePerSecond ?? (filterAst.kind === 'all' ? 100 : 1000);
    if (filterAst.kind === 'all') this.emit('warning', `netfilter tracing without a filter: limited to ${this.rate} packets/s per namespace; add --filter to see every packet you care about.`);
    if (this.filter.widened) this.emit('warning', `the filter is too complex for nft rules: tracing every packet, limited to ${this.rate} packets/s per namespace.`);
    if (this.opts.guardian !== false) this.guardian = new TableGuardian();
    const everywhere = await this.list();
    this.leftovers = await cleanLeftovers(everywhere);
    this.explicit = namespaces !== undefined;
    const chosen = namespaces ?? everywhere;
    const max = this.opts.maxNamespaces ?? 64;
    if (chosen.length > max) this.warnCap(chosen.length);
    await Promise.all(chosen.slice(0, max).map((ns) => this.add(ns)));
    const every = this.opts.refreshMs ?? 2000;
    if (every > 0) {
      this.timer = setInterval(() => void this.refresh(), every);
      this.timer.unref();
      // `ip netns del` shows up at once here: let go of the namespace before anyone sees our
      // monitor keeping it alive (it would look like a namespace of an `nft` process).
      try {
        this.dirWatch = watch(NETNS_DIR, () => {
          if (this.soon) return;
          this.soon = setTimeout(() => { this.soon = undefined; void this.refresh(); }, 50);
          this.soon.unref();
        });
        this.dirWatch.unref();
        this.dirWatch.on('error', () => undefined);
      } catch {
        // No /run/netns yet: the periodic refresh covers it.
      }
    }
  }

  /** Adds a namespace a hop was seen in, if it is not traced yet (beyond maxNamespaces, or created later). */
  async trackNetns(netns: number): Promise<void> {
    if (!this.running || this.tracked.has(netns)) return;
    const ns = (await this.list()).find((n) => n.netns === netns);
    if (ns) await this.add(ns);
  }

  private async list(): Promise<NftNamespace[]> {
    const ours = new Set(this.monitorPids);
    const list = this.opts.listNamespaces ? [...await this.opts.listNamespaces()] : await allNamespaces();
    // A namespace only our own monitors are in was deleted: we are what keeps it alive.
    return list.filter((n) => !/^pid (\d+)/.test(n.name) || !ours.has(Number(/^pid (\d+)/.exec(n.name)?.[1])));
  }

  private add(ns: NftNamespace): Promise<void> {
    if (!this.running || this.tracked.has(ns.netns)) return Promise.resolve();
    const p = this.addNow(ns).finally(() => this.pending.delete(p));
    this.pending.add(p);
    return p;
  }

  private async addNow(ns: NftNamespace): Promise<void> {
    const table = `hoptrace_${this.owner.pid}_${++tableSeq}`;
    const t: Tracked = { state: { ns, table, bridge: false, state: 'starting' }, installed: false, hooks: new Map(), hooksRefreshedAt: 0, rules: new Map() };
    this.tracked.set(ns.netns, t);
    try {
      t.hooks = await chainHooks(ns.path);
      t.hooksRefreshedAt = Date.now();
      if (!this.running) return;
      const monitor = new NftMonitor(ns, {
        onEvent: (ev) => this.onEvent(t, ev),
        onExit: (info) => {
          if (t.state.state === 'gone') return;
          this.setState(t, sameNamespace(ns) ? 'failed' : 'gone', info.stderr || `nft monitor exited (${info.signal ?? info.code})`);
        },
      }, { hookOf: (f, tb, c) => this.hookOf(t, f, tb, c), now: this.opts.now ?? kernelNowNs });
      t.monitor = monitor;
      // Monitor first: the table starts tracing at once, and what it traces must be heard.
      await monitor.start();
      if (!this.running) return;
      const script = buildTraceTable(this.filter as NftFilter, { name: table, ratePerSecond: this.rate, owner: this.owner });
      this.guardian?.add(ns.path, ns.netns, table);
      const r = await installTable(ns.path, script);
      if (!r.ok) throw new Error(r.stderr || 'nft -f failed');
      t.installed = true;
      await this.addBridgeTable(t);
      this.setState(t, 'tracing');
    } catch (err) {
      const gone = !sameNamespace(ns);
      this.setState(t, gone ? 'gone' : 'failed', (err as Error).message);
      if (!gone) this.emit('warning', `cannot trace netfilter in ${ns.name}: ${(err as Error).message.split('\n')[0]}`);
      await this.release(t);
    }
  }

  /**
   * Adds the bridge family table when the namespace has a bridge (and has not got it yet). A
   * failure (a kernel without nf_tables bridge support) is a warning: the inet table still traces.
   */
  private async addBridgeTable(t: Tracked): Promise<void> {
    const { ns, table } = t.state;
    t.devices = this.devicesOf(t);
    if (t.state.bridge || !this.running) return;
    try {
      if (!(await hasBridge(ns.path)) || !this.running || !t.installed) return;
      const script = buildTraceTable(this.filter as NftFilter, { name: table, family: 'bridge', ratePerSecond: this.rate, owner: this.owner });
      // Registered first: a SIGKILL between install and registration would leave it behind.
      this.guardian?.add(ns.path, ns.netns, table, 'bridge');
      const r = await installTable(ns.path, script);
      if (r.ok) {
        t.state.bridge = true;
        return;
      }
      this.guardian?.remove(ns.path, table, 'bridge');
      if (sameNamespace(ns)) this.emit('warning', `cannot trace bridge family rules in ${ns.name}: ${(r.stderr || 'nft -f failed').split('\n')[0]}`);
    } catch (err) {
      this.guardian?.remove(ns.path, table, 'bridge');
      if (sameNamespace(ns)) this.emit('warning', `cannot trace bridge family rules in ${ns.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  /** Device names of a traced namespace, read through its monitor's /proc entry (no process started). */
  private devicesOf(t: Tracked): string | undefined {
    const pid = t.monitor?.pid;
    if (pid === undefined) return undefined;
    try {
      return readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]?.trim() ?? '').sort().join(' ');
    } catch {
      return undefined;
    }
  }

  /** A namespace without a bridge table whose devices changed since the last look gets checked again. */
  private bridgeCheck(t: Tracked): Promise<void> {
    if (t.bridgeBusy || t.state.bridge || t.state.state !== 'tracing') return Promise.resolve();
    const now = this.devicesOf(t);
    if (now === undefined || now === t.devices) return Promise.resolve();
    const p = this.addBridgeTable(t).finally(() => {
      t.bridgeBusy = undefined;
      this.pending.delete(p);
      if (t.state.bridge) this.emit('namespace', t.state);
    });
    t.bridgeBusy = p;
    this.pending.add(p);
    return p;
  }

  private setState(t: Tracked, state: NamespaceState['state'], reason?: string): void {
    t.state.state = state;
    if (reason !== undefined) t.state.reason = reason;
    this.emit('namespace', t.state);
  }

  private hookOf(t: Tracked, family: string, table: string, chain: string): NfHook | null {
    const hook = t.hooks.get(`${family} ${table} ${chain}`);
    if (hook) return hook;
    // A chain we have not seen: maybe added since (or a regular chain, which has no hook). Re-read, at most once a second.
    if (!t.hooksRefreshing && Date.now() - t.hooksRefreshedAt > 1000) {
      t.hooksRefreshing = chainHooks(t.state.ns.path).then((m) => {
        t.hooks = m;
        t.hooksRefreshedAt = Date.now();
        t.hooksRefreshing = undefined;
      });
    }
    return null;
  }

  private onEvent(t: Tracked, ev: NetfilterEvent): void {
    this.events++;
    if (ev.type === 'rule' && ev.rule === null && ev.handle !== null) {
      // A rule added after the monitor started: nft only knows its handle. Look it up once.
      const key = `${ev.family} ${ev.table} ${ev.chain} ${ev.handle}`;
      let p = t.rules.get(key);
      if (!p) {
        p = ruleText(t.state.ns.path, ev.family, ev.table, ev.chain, ev.handle);
        t.rules.set(key, p);
      }
      void p.then((rule) => this.emit('event', rule ? { ...ev, rule, nat: natKindOfRule(rule) } : ev));
      return;
    }
    this.emit('event', ev);
  }

  /** Re-lists namespaces: lets go of vanished ones, adds new ones (when tracing all namespaces). */
  async refresh(): Promise<void> {
    if (!this.running) return;
    for (const t of this.tracked.values()) {
      if (t.state.state !== 'gone' && !sameNamespace(t.state.ns)) {
        this.setState(t, 'gone', 'the namespace disappeared');
        await this.release(t);
      }
    }
    await Promise.all([...this.tracked.values()].map((t) => this.bridgeCheck(t)));
    if (this.explicit) return;
    const max = this.opts.maxNamespaces ?? 64;
    const active = [...this.tracked.values()].filter((t) => t.state.state !== 'gone').length;
    const untracked = (await this.list()).filter((n) => !this.tracked.has(n.netns));
    if (untracked.length > max - active) this.warnCap(active + untracked.length);
    await Promise.all(untracked.slice(0, Math.max(0, max - active)).map((ns) => this.add(ns)));
  }

  private cappedWarned = false;

  private warnCap(count: number): void {
    if (this.cappedWarned) return;
    this.cappedWarned = true;
    this.emit('warning', `${count} namespaces: netfilter tracing starts in at most ${this.opts.maxNamespaces ?? 64} at once; the others join when a packet is seen in them.`);
  }

  /** Removes the tables (if the namespace is still there) and stops the monitor. */
  private async release(t: Tracked): Promise<void> {
    const { ns, table } = t.state;
    await t.bridgeBusy;
    const here = sameNamespace(ns);
    if (t.state.bridge && here) await removeTable(ns.path, table, 'bridge').catch(() => undefined);
    if (t.installed && here) await removeTable(ns.path, table).catch(() => undefined);
    t.state.bridge = false;
    t.installed = false;
    this.guardian?.remove(ns.path, table, 'bridge');
    this.guardian?.remove(ns.path, table);
    await t.monitor?.stop().catch(() => undefined);
    t.monitor = undefined;
  }

  /** Removes every table and stops every monitor. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.soon) clearTimeout(this.soon);
    this.dirWatch?.close();
    this.dirWatch = undefined;
    const wasRunning = this.running;
    this.running = false;
    if (!wasRunning && !this.guardian) return;
    await Promise.allSettled([...this.pending]);
    await Promise.all([...this.tracked.values()].map((t) => this.release(t)));
    this.guardian?.close();
    this.guardian = undefined;
  }
}
