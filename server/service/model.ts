/**
 * The topology model as the service uses it: the model itself for /api/topology, local addresses
 * so a packet received where its destination lives counts as delivered, and each packet's
 * expected path and divergence for /api/sessions/:id/packets (as `trace --json` has them).
 * Live: a TopologyWatcher follows namespaces and interfaces as they come and go, and each change
 * goes to the live stream's clients as a `topology` message. Tests pass a fixed model instead.
 */
import type { Topology } from '../../shared/topology/model.js';
import type { Packet } from '../../shared/packet.js';
import type { HopEvent } from '../../shared/hop-event.js';
import { PathExpectations } from '../../shared/expectation.js';
import { TopologyWatcher, type TopologyChange } from '../topology/watch.js';

export interface ServiceModel {
  topology(): Promise<Topology>;
  isLocal(netns: number, addr: string): boolean;
  /** The packet with `expected` and `divergence`, when the model is ready. */
  annotate(packet: Packet): Packet;
  /** A hop was seen: refresh soon if the model does not know its namespace or interface. */
  noteHop(ev: HopEvent): void;
  /** Calls `listener` whenever the live model changes (never for a fixed model); returns the unsubscribe. */
  onChange(listener: (change: TopologyChange) => void): () => void;
  close(): void;
}

/**
 * Tells the watcher about a hop's namespace or interface the model does not know, once per
 * `quietMs` for each. A namespace that discovery cannot see (held open only by a socket or a BPF
 * link, or gone by the time discovery runs) would otherwise ask for a full discovery at every hop:
 * twice a second, 3-4 process spawns per namespace of the host each time. With a synthetic source
 * (namespaces that do not exist) that was a fifth of the service's CPU in bench/service-load.ts.
 * New namespaces do not wait for this: the watcher sees the set of namespaces change on its own.
 */
export class UnknownHopNotes {
  /** `netns` and `netns|ifname` of the current model; null before the first. */
  private known: Set<string> | null = null;
  /** Unknown keys → when they were last passed on. */
  private readonly noted = new Map<string, number>();

  constructor(
    private readonly note: (netns: number, ifname: string) => void,
    private readonly quietMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The model changed: what it knows now. */
  learn(topology: Topology): void {
    const known = new Set<string>();
    for (const ns of topology.namespaces) {
      known.add(String(ns.netns));
      for (const i of ns.interfaces) known.add(`${ns.netns}|${i.name}`);
    }
    this.known = known;
    for (const key of this.noted.keys()) if (known.has(key)) this.noted.delete(key);
  }

  hop(netns: number, ifname: string): void {
    // Before the first model nothing is known yet, and the first discovery is under way.
    if (!this.known || netns === 0) return;
    const key = ifname === '' ? String(netns) : `${netns}|${ifname}`;
    if (this.known.has(key)) return;
    const t = this.now();
    const last = this.noted.get(key);
    if (last !== undefined && t - last < this.quietMs) return;
    // A flood of distinct unknowns (fake or churning namespaces) must not grow this without bound.
    if (this.noted.size >= 10_000) this.noted.clear();
    this.noted.set(key, t);
    this.note(netns, ifname);
  }
}

/** A model that follows the host. Starts discovering at once; callers never wait for it except /api/topology. */
export function watchedModel(log: (line: string) => void): ServiceModel {
  const watcher = new TopologyWatcher();
  const unknown = new UnknownHopNotes((netns, ifname) => watcher.noteUnknown(netns, ifname));
  let expectations: PathExpectations | null = null;
  const first = watcher.start().then((t) => {
    expectations = new PathExpectations(t, undefined, log);
    unknown.learn(t);
    return t;
  });
  first.catch((err: unknown) => log(`topology discovery failed: ${(err as Error).message}`));
  watcher.on('change', (c) => {
    // Keep the connections the model follows across host changes (NATed replies stay on their path).
    expectations = expectations ? expectations.withTopology(c.topology, c.sinceNs) : new PathExpectations(c.topology, undefined, log);
    unknown.learn(c.topology);
  });
  watcher.on('error', (err) => log(`topology discovery: ${err.message}`));
  return {
    topology: () => (watcher.current ? Promise.resolve(watcher.current) : first),
    isLocal: (netns, addr) => expectations?.isLocal(netns, addr) ?? false,
    annotate: (p) => expectations?.annotate(p) ?? p,
    noteHop: (ev) => unknown.hop(ev.netns, ev.ifname),
    onChange: (listener) => {
      watcher.on('change', listener);
      return () => watcher.off('change', listener);
    },
    close: () => watcher.stop(),
  };
}

/**
 * A model read from `discover` on demand (tests; no watching). Once it has been read, packets
 * are put next to it as the live model does — local addresses, expected paths — so a service fed
 * by a synthetic source or a recording annotates /packets the way `trace` and `replay` do.
 */
export function fixedModel(discover: () => Promise<Topology>, log?: (line: string) => void): ServiceModel {
  let expectations: PathExpectations | null = null;
  return {
    topology: () => discover().then((t) => {
      expectations = expectations ? expectations.withTopology(t) : new PathExpectations(t, undefined, log);
      return t;
    }),
    isLocal: (netns, addr) => expectations?.isLocal(netns, addr) ?? false,
    annotate: (p) => expectations?.annotate(p) ?? p,
    noteHop: () => undefined,
    onChange: () => () => undefined,
    close: () => undefined,
  };
}
