/**
 * Names for the stats documents: namespace inodes (server/namespace-names.ts), interface
 * indexes (from the topology model, server/topology/watch.ts) and drop reasons (BTF). An
 * unknown inode or ifindex asks the watcher for a refresh; names of namespaces that have gone
 * are kept, since their last interval may still mention them.
 */
import type { StatsNames } from '../../shared/stats/types.js';
import type { Topology } from '../../shared/topology/model.js';
import { NamespaceNames } from '../topology/namespace-names.js';
import { TopologyWatcher } from '../topology/watch.js';
import type { DropReasons } from '../drop-reasons.js';

export class StatsNameBook implements StatsNames {
  private readonly ifnames = new Map<number, Map<number, string>>();
  private readonly namespaces = new NamespaceNames();
  private readonly ownsWatcher: boolean;
  private readonly watcher: TopologyWatcher;
  private reasons: DropReasons | null = null;
  private lastAsked = 0;

  /** Pass the service's watcher to share it; otherwise one is started here. */
  constructor(watcher?: TopologyWatcher) {
    this.ownsWatcher = watcher === undefined;
    this.watcher = watcher ?? new TopologyWatcher();
    this.watcher.on('change', (c) => this.learn(c.topology));
  }

  async start(reasons: DropReasons): Promise<void> {
    this.reasons = reasons;
    const [, topo] = await Promise.all([
      this.namespaces.refresh(),
      this.ownsWatcher ? this.watcher.start() : Promise.resolve(this.watcher.current),
    ]);
    if (topo) this.learn(topo);
  }

  stop(): void {
    if (this.ownsWatcher) this.watcher.stop();
  }

  private learn(topo: Topology): void {
    for (const ns of topo.namespaces) {
      const m = this.ifnames.get(ns.netns) ?? new Map<number, string>();
      for (const i of ns.interfaces) m.set(i.ifindex, i.name);
      this.ifnames.set(ns.netns, m);
    }
  }

  ns = (netns: number): string | null => this.namespaces.name(netns);

  ifname = (netns: number, ifindex: number): string | null => {
    const n = this.ifnames.get(netns)?.get(ifindex);
    if (n === undefined && Date.now() - this.lastAsked > 5000) {
      // An interface the model has not seen (created since the last discovery): rediscover soon,
      // at most every 5 s (a discovery costs a few process spawns per namespace).
      this.lastAsked = Date.now();
      void this.watcher.refresh().then((t) => this.learn(t), () => undefined);
    }
    return n ?? null;
  };

  reason = (code: number): string => this.reasons?.name(code) ?? `reason-${code}`;
}
