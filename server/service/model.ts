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

/** A model that follows the host. Starts discovering at once; callers never wait for it except /api/topology. */
export function watchedModel(log: (line: string) => void): ServiceModel {
  const watcher = new TopologyWatcher();
  let expectations: PathExpectations | null = null;
  const first = watcher.start().then((t) => {
    expectations = new PathExpectations(t);
    return t;
  });
  first.catch((err: unknown) => log(`topology discovery failed: ${(err as Error).message}`));
  watcher.on('change', (c) => { expectations = new PathExpectations(c.topology); });
  // Listeners (the live stream) are many sockets behind one listener: no max-listeners warning.
  watcher.setMaxListeners(0);
  watcher.on('error', (err) => log(`topology discovery: ${err.message}`));
  return {
    topology: () => (watcher.current ? Promise.resolve(watcher.current) : first),
    isLocal: (netns, addr) => expectations?.isLocal(netns, addr) ?? false,
    annotate: (p) => expectations?.annotate(p) ?? p,
    noteHop: (ev) => watcher.noteUnknown(ev.netns, ev.ifname),
    onChange: (listener) => {
      watcher.on('change', listener);
      return () => watcher.off('change', listener);
    },
    close: () => watcher.stop(),
  };
}

/** A model read from `discover` on demand (tests; no watching, no expectations). */
export function fixedModel(discover: () => Promise<Topology>): ServiceModel {
  return {
    topology: discover,
    isLocal: () => false,
    annotate: (p) => p,
    noteHop: () => undefined,
    onChange: () => () => undefined,
    close: () => undefined,
  };
}
