/**
 * What the "Waiting for packets…" screen says and suggests, from what the page knows: the session
 * (its filter; pinned: the one `serve --lab demo` traces, whose lab sends traffic by itself) and
 * the topology model (the namespaces that really exist here). A suggested command only ever names
 * namespaces and addresses from the model: a made-up name would fail when pasted.
 */
import type { Topology } from '../../../shared/topology/model.js';

export interface WaitingHint {
  readonly lines: string[];
  readonly commands: string[];
}

interface SessionLike {
  readonly filter: string;
  readonly pinned?: boolean;
}

/** IPv4 addresses of a namespace's non-loopback interfaces, without their prefix length. */
function ipv4Of(t: Topology, name: string): string[] {
  const ns = t.namespaces.find((n) => n.name === name);
  if (!ns) return [];
  return ns.interfaces
    .filter((i) => i.kind !== 'loopback')
    .flatMap((i) => i.addrs)
    .map((a) => a.split('/')[0] ?? a)
    .filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && !a.startsWith('127.'));
}

/** Only names `ip netns exec` takes: the model also lists namespaces like `pid 1234 (nginx)`. */
const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * A ping between two namespaces of the model: a lab's `<p>-pod1` to its `<p>-ext` when one is
 * there (the demo lab: the packet crosses the node's MASQUERADE), else between the first two named
 * namespaces with IPv4 addresses; null when the model has no such pair.
 */
export function pingSuggestion(t: Topology | null): string | null {
  if (!t) return null;
  const names = t.namespaces.map((n) => n.name).filter((n) => n !== 'host' && NETNS_NAME.test(n));
  for (const pod of names.filter((n) => n.endsWith('-pod1')).sort()) {
    const ext = `${pod.slice(0, -'-pod1'.length)}-ext`;
    const to = ipv4Of(t, ext)[0];
    if (names.includes(ext) && to && ipv4Of(t, pod).length > 0) return `sudo ip netns exec ${pod} ping -c3 ${to}`;
  }
  const withAddr = names.filter((n) => ipv4Of(t, n).length > 0);
  const [a, b] = withAddr;
  const to = b ? ipv4Of(t, b)[0] : undefined;
  return a && to ? `sudo ip netns exec ${a} ping -c3 ${to}` : null;
}

export function waitingHint(session: SessionLike | null, topology: Topology | null): WaitingHint {
  const filter = session?.filter ?? '';
  const ping = pingSuggestion(topology);
  if (session?.pinned) {
    return {
      lines: [
        `This is the demo lab's session: bpftrace traces only the lab's packets (${filter || 'every packet'}), and the demo sends traffic by itself every second. Its first packets show as soon as bpftrace has attached.`,
        ...(ping ? ['More traffic, if you like:'] : []),
      ],
      commands: ping ? [ping] : [],
    };
  }
  const watching = filter
    ? `bpftrace traces only the packets that match this session's filter, “${filter}”.`
    : 'bpftrace is watching every namespace on this host.';
  if (!ping) return { lines: [watching, 'Send some traffic between namespaces, or start the demo lab: sudo hoptrace serve --lab demo'], commands: [] };
  return {
    lines: [watching, `Send some traffic${filter ? ' that matches it' : ''}, for example between these namespaces:`],
    commands: [ping],
  };
}
