/**
 * One full discovery of the host's topology. Per namespace: one `ip -j -d -batch` (links,
 * addresses, nsids, routes of both families, IPv4 policy rules, forwarding switches,
 * neighbours), `ip -6` for IPv6 policy rules, `nft -j list ruleset`; `sysctl` (br_netfilter)
 * and `bridge -j fdb show` only where there are bridges, and iptables-save only when nft shows
 * iptables-nft rules whose arguments it
 * cannot print. Whatever fails is listed in `errors`; discovery never throws.
 */
import { stat, readlink } from 'node:fs/promises';
import type { FdbEntry, TunnelFdbEntry, IpFamily, NamespaceModel, Netfilter, Topology } from '../../shared/topology/model.js';
import { EMPTY_NETFILTER } from '../../shared/topology/model.js';
import { parseFdb, parseTunnelFdb, parseInterfaces, parseNeighbours, parseNetconf, parsePolicyRules, parseRoutes, parseSysctl, splitJsonDocuments } from '../../shared/topology/parse-iproute.js';
import { parseNftRuleset } from '../../shared/topology/parse-nft.js';
import { mergeIptables, parseIptablesSave } from '../../shared/topology/parse-iptables.js';
import { resolvePeers } from '../../shared/topology/peers.js';
import type { NamespaceEntry } from './namespaces.js';
import { listNamespaces } from './namespaces.js';
import type { Runner } from './exec.js';
import { runInNamespace } from './exec.js';
import type { NamespaceWorkloads, WorkloadResolver } from './workloads.js';
import { sharedWorkloadResolver } from './workloads.js';

export interface DiscoverOptions {
  /** Namespaces to read (default: listNamespaces()). */
  readonly namespaces?: readonly NamespaceEntry[];
  /** How many namespaces are read at once (default 4). */
  readonly concurrency?: number;
  /** Command runner, replaceable in tests. */
  readonly run?: Runner;
  /** Names namespaces by their containers (default: one resolver per process; false: not at all). */
  readonly workloads?: WorkloadResolver | false;
}

interface NsRead {
  readonly model: NamespaceModel;
  /** nsid → namespace name, from `ip netns list-id` (named namespaces only). */
  readonly nsidNames: Map<number, string>;
  readonly readSomething: boolean;
}

/** Present only when br_netfilter is loaded (absent means off). */
const BRIDGE_SYSCTLS = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables'];

function firstError(what: string, error: string): string {
  return `${what}: ${error || 'failed'}`;
}

async function readIpBatch(run: Runner, path: string | null, family: IpFamily | null, commands: string[], errors: string[]): Promise<unknown[]> {
  const argv = ['ip', '-j', '-d', ...(family ? [`-${family}`] : []), '-force', '-batch', '-'];
  const r = await run(path, argv, `${commands.join('\n')}\n`);
  if (!r.ok && r.stdout.trim() === '') {
    errors.push(firstError(`ip ${family ? `-${family} ` : ''}${commands.join(', ')}`, r.error));
    return [];
  }
  const docs = splitJsonDocuments(r.stdout);
  if (docs.length !== commands.length) {
    errors.push(`ip ${commands.join(', ')}: expected ${commands.length} JSON documents, got ${docs.length}${r.error ? ` (${r.error})` : ''}`);
  }
  return docs;
}

function docOrError(docs: unknown[], i: number): unknown {
  const d = docs[i];
  return d instanceof Error ? undefined : d;
}

async function readNetfilter(run: Runner, path: string | null, errors: string[]): Promise<{ nf: Netfilter; ok: boolean }> {
  const r = await run(path, ['nft', '-j', 'list', 'ruleset']);
  if (!r.ok) {
    errors.push(firstError('nft -j list ruleset', r.error));
    return { nf: EMPTY_NETFILTER, ok: false };
  }
  let json: unknown;
  try {
    json = r.stdout.trim() === '' ? { nftables: [] } : JSON.parse(r.stdout);
  } catch (e) {
    errors.push(`nft -j list ruleset: unparsable JSON (${e instanceof Error ? e.message : String(e)})`);
    return { nf: EMPTY_NETFILTER, ok: false };
  }
  const parsed = parseNftRuleset(json, errors);
  let nf = parsed.netfilter;
  const families = new Set(parsed.xtRules.map((i) => nf.rules[i]?.family));
  for (const [family, tool] of [[4, 'iptables-save'], [6, 'ip6tables-save']] as const) {
    if (!families.has(family === 4 ? 'ip' : 'ip6')) continue;
    const s = await run(path, [tool]);
    if (!s.ok) {
      errors.push(firstError(`${tool} (needed for iptables-nft rules nft cannot describe)`, s.error));
      continue;
    }
    nf = mergeIptables(nf, family, parseIptablesSave(s.stdout, family, errors), errors);
  }
  return { nf, ok: true };
}

async function readNamespace(run: Runner, entry: NamespaceEntry, own: boolean): Promise<NsRead> {
  const errors: string[] = [];
  const path = own ? null : entry.path;
  // Spawns are the cost of discovery: everything iproute2 can tell comes from one batch (routes
  // of both families in one dump, forwarding from netconf); only IPv6 policy rules need -6.
  const [links, v6, netfilter] = await Promise.all([
    readIpBatch(run, path, null, ['addr show', 'netns list-id', 'route show table all', 'rule show', 'netconf show', 'neigh show'], errors),
    readIpBatch(run, path, 6, ['rule show'], errors),
    readNetfilter(run, path, errors),
  ]);
  const interfaces = parseInterfaces(docOrError(links, 0) ?? [], errors);
  const nsidNames = new Map<number, string>();
  const ids = docOrError(links, 1);
  if (Array.isArray(ids)) {
    for (const x of ids) {
      if (typeof x === 'object' && x !== null && typeof (x as { nsid?: unknown }).nsid === 'number' && typeof (x as { name?: unknown }).name === 'string') {
        nsidNames.set((x as { nsid: number }).nsid, (x as { name: string }).name);
      }
    }
  }
  const routes = parseRoutes(docOrError(links, 2) ?? [], 'both', errors);
  const rules = [...parsePolicyRules(docOrError(links, 3) ?? [], 4, errors), ...parsePolicyRules(docOrError(v6, 0) ?? [], 6, errors)];
  const forwarding = parseNetconf(docOrError(links, 4));
  const neighbours = parseNeighbours(docOrError(links, 5) ?? [], errors);
  if (forwarding.ipv4 === null && interfaces.length > 0) errors.push('ip netconf: no forwarding switch for "all"');
  // br_netfilter's switches are sysctls only (no netlink view); they matter only where bridges are.
  let bridgeNfCall = { ipv4: false, ipv6: false };
  let fdb: FdbEntry[] = [];
  let tunnelFdb: TunnelFdbEntry[] = [];
  const vxlans = new Set(interfaces.filter((i) => i.kind === 'vxlan').map((i) => i.name));
  if (vxlans.size > 0 && !interfaces.some((i) => i.kind === 'bridge')) {
    // Which node a MAC behind a vxlan device goes to (flannel's per-peer entries, a static remote's default).
    const fdbOut = await run(path, ['bridge', '-j', 'fdb', 'show']);
    if (!fdbOut.ok) errors.push(firstError('bridge -j fdb show', fdbOut.error));
    else {
      try {
        tunnelFdb = parseTunnelFdb(JSON.parse(fdbOut.stdout.trim() === '' ? '[]' : fdbOut.stdout), vxlans, errors);
      } catch (e) {
        errors.push(`bridge -j fdb show: unparsable JSON (${e instanceof Error ? e.message : String(e)})`);
      }
    }
  }
  if (interfaces.some((i) => i.kind === 'bridge')) {
    // Which port each MAC was learned on: how the simulator bridges towards a far side it does
    // not model (a physical port, a port to another host).
    const [sysctl, fdbOut] = await Promise.all([run(path, ['sysctl', '-e', ...BRIDGE_SYSCTLS]), run(path, ['bridge', '-j', 'fdb', 'show'])]);
    if (!fdbOut.ok) errors.push(firstError('bridge -j fdb show', fdbOut.error));
    else {
      try {
        const json: unknown = JSON.parse(fdbOut.stdout.trim() === '' ? '[]' : fdbOut.stdout);
        fdb = parseFdb(json, errors);
        if (vxlans.size > 0) tunnelFdb = parseTunnelFdb(json, vxlans, errors);
      } catch (e) {
        errors.push(`bridge -j fdb show: unparsable JSON (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    const sc = parseSysctl(sysctl.stdout);
    if (!sysctl.ok && sc.size === 0) errors.push(firstError('sysctl', sysctl.error));
    bridgeNfCall = {
      ipv4: sc.get('net.bridge.bridge-nf-call-iptables') === '1',
      ipv6: sc.get('net.bridge.bridge-nf-call-ip6tables') === '1',
    };
  }
  // route_localnet decides whether 127.0.0.1 may leave after an OUTPUT DNAT (a localhost port
  // forward): read only where a DNAT rule could make it matter. Device names come from the kernel;
  // sysctl spells a dot in one as '/'.
  let routeLocalnet: string[] | undefined;
  if (netfilter.nf.rules.some((r) => r.action.kind === 'dnat')) {
    const devs = interfaces.filter((i) => i.kind !== 'loopback').map((i) => i.name);
    const key = (dev: string): string => `net.ipv4.conf.${dev.replaceAll('.', '/')}.route_localnet`;
    const r = await run(path, ['sysctl', '-e', key('all'), ...devs.map(key)]);
    const sc = parseSysctl(r.stdout);
    if (!sc.has(key('all'))) errors.push(firstError('sysctl route_localnet', r.ok ? 'no value for "all"' : r.error));
    else routeLocalnet = sc.get(key('all')) === '1' ? devs : devs.filter((d) => sc.get(key(d)) === '1');
  }
  const model: NamespaceModel = {
    netns: entry.netns,
    name: entry.name,
    path: entry.path,
    pids: entry.pids,
    interfaces,
    routes,
    rules,
    forwarding,
    bridgeNfCall,
    ...(routeLocalnet !== undefined ? { routeLocalnet } : {}),
    netfilter: netfilter.nf,
    neighbours,
    fdb,
    ...(vxlans.size > 0 ? { tunnelFdb } : {}),
    errors,
  };
  return { model, nsidNames, readSomething: interfaces.length > 0 };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as T;
      out[i] = await f(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

async function ownNetns(): Promise<number | null> {
  try {
    const m = /^net:\[(\d+)\]$/.exec(await readlink('/proc/self/ns/net'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Discovers every namespace's model. Never throws: what could not be read is in `errors`. */
export async function discoverTopology(opts: DiscoverOptions = {}): Promise<Topology> {
  const started = Date.now();
  const t0 = performance.now();
  const run = opts.run ?? runInNamespace;
  const errors: string[] = [];
  let entries: readonly NamespaceEntry[];
  try {
    entries = opts.namespaces ?? (await listNamespaces());
  } catch (e) {
    errors.push(`listing namespaces: ${e instanceof Error ? e.message : String(e)}`);
    entries = [];
  }
  const own = await ownNetns();
  // Runtime metadata is read alongside the namespaces, within its own deadline: never the slow part.
  const resolver = opts.workloads === undefined ? sharedWorkloadResolver : opts.workloads;
  const hostNetns = entries.find((e) => e.name === 'host')?.netns ?? null;
  const workloadsP: Promise<Map<number, NamespaceWorkloads>> = resolver
    ? resolver.resolve(entries, hostNetns).catch((e: unknown) => {
      errors.push(`naming namespaces by workload: ${e instanceof Error ? e.message : String(e)}`);
      return new Map();
    })
    : Promise.resolve(new Map());
  const reads = await mapLimit(entries, opts.concurrency ?? 4, async (entry) => {
    try {
      return await readNamespace(run, entry, entry.netns === own);
    } catch (e) {
      // readNamespace turns command failures into data; this is a bug guard, not a path.
      errors.push(`${entry.name}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  });
  const workloads = await workloadsP;
  const kept: NsRead[] = [];
  for (const [i, r] of reads.entries()) {
    const entry = entries[i];
    if (!r || !entry) continue;
    if (!r.readSomething && !(await exists(entry.path))) {
      errors.push(`namespace ${entry.name} (${entry.netns}) vanished during discovery`);
      continue;
    }
    const w = workloads.get(r.model.netns);
    kept.push(resolver ? { ...r, model: { ...r.model, workloads: w?.workloads ?? [], workload: w?.label ?? null, ...(w?.note ? { workloadNote: w.note } : {}) } } : r);
  }
  const inodeByName = new Map(kept.map((r) => [r.model.name, r.model.netns]));
  const nsids = new Map<number, Map<number, number>>();
  for (const r of kept) {
    const m = new Map<number, number>();
    for (const [nsid, name] of r.nsidNames) {
      const ino = inodeByName.get(name);
      if (ino !== undefined) m.set(nsid, ino);
    }
    nsids.set(r.model.netns, m);
  }
  const peerErrors: string[] = [];
  const resolved = resolvePeers(kept.map((r) => r.model), nsids, peerErrors);
  // Peer errors belong to the namespace of the veth they are about.
  const namespaces = resolved.map((ns) => {
    const mine = peerErrors.filter((e) => e.includes(` in ${ns.name}: `));
    return mine.length > 0 ? { ...ns, errors: [...ns.errors, ...mine] } : ns;
  });
  return { namespaces, errors, discoveredAt: started, durationMs: Math.round((performance.now() - t0) * 10) / 10 };
}
