/**
 * Route lookup in one namespace: policy rules in priority order (local, main, default when
 * none are known), longest prefix then lowest metric inside a table, route types honoured.
 * Selectors the model does not evaluate (fwmark, uidrange, ports...) make a rule "not
 * matching", and the lookup says it guessed when that rule would otherwise have applied.
 */
import type { IpFamily, NamespaceModel, NetInterface, PolicyRule, Route } from './model.js';
import type { Addr } from './ip.js';
import { cidrAddress, formatAddr, parseAddr, parsePrefix, prefixContains } from './ip.js';

export type RouteResult =
  | { readonly kind: 'local'; readonly route: Route | null; readonly dev: string | null }
  | { readonly kind: 'unicast'; readonly route: Route; readonly dev: string; readonly nexthop: string; readonly gateway: string | null }
  | { readonly kind: 'blackhole' | 'unreachable' | 'prohibit' | 'broadcast' | 'multicast'; readonly route: Route | null }
  | { readonly kind: 'none' };

export interface RouteLookup {
  readonly result: RouteResult;
  /** Table the answer came from (null for none or a rule action). */
  readonly table: string | null;
  readonly guesses: readonly string[];
}

/** Does any interface of `ns` carry `addr`? (Linux answers ARP for any local address: arp_ignore=0.) */
export function ownsAddress(ns: NamespaceModel, addr: Addr | string): boolean {
  return interfaceWithAddress(ns, addr) !== null;
}

export function interfaceWithAddress(ns: NamespaceModel, addr: Addr | string): NetInterface | null {
  const a = typeof addr === 'string' ? parseAddr(addr) : addr;
  if (!a) return null;
  for (const i of ns.interfaces) {
    for (const c of i.addrs) {
      const x = parseAddr(cidrAddress(c));
      if (x !== null && x.family === a.family && x.value === a.value) return i;
    }
  }
  return null;
}

/** The first address of `family` on interface `dev` (global scope preferred over IPv6 link-local). */
export function primaryAddress(ns: NamespaceModel, dev: string | null, family: IpFamily): string | null {
  const iface = ns.interfaces.find((i) => i.name === dev);
  if (!iface) return null;
  const addrs = iface.addrs.map(cidrAddress).filter((a) => parseAddr(a)?.family === family);
  return addrs.find((a) => !a.toLowerCase().startsWith('fe80:')) ?? addrs[0] ?? null;
}

const DEFAULT_RULES = (family: IpFamily): PolicyRule[] => [
  { family, priority: 0, action: 'lookup', table: 'local', src: null, dst: null, iif: null, oif: null, invert: false, unsupported: [] },
  { family, priority: 32766, action: 'lookup', table: 'main', src: null, dst: null, iif: null, oif: null, invert: false, unsupported: [] },
  { family, priority: 32767, action: 'lookup', table: 'default', src: null, dst: null, iif: null, oif: null, invert: false, unsupported: [] },
];

function selectorMatches(spec: string | null, a: Addr | null, family: IpFamily): boolean {
  if (spec === null) return true;
  const p = parsePrefix(spec, family);
  return p !== null && a !== null && prefixContains(p, a);
}

function lookupTable(routes: readonly Route[], table: string, dst: Addr): Route | null {
  let best: Route | null = null;
  let bestLen = -1;
  for (const r of routes) {
    if (r.family !== dst.family || r.table !== table) continue;
    const p = parsePrefix(r.dst, r.family);
    if (!p || !prefixContains(p, dst)) continue;
    if (p.len > bestLen || (p.len === bestLen && best !== null && r.metric < best.metric)) {
      best = r;
      bestLen = p.len;
    }
  }
  return best;
}

/**
 * Looks up `dst` as the kernel's FIB would for a packet from `src` that came in on `iif`
 * ('lo' for locally generated packets, as the kernel's output lookup does).
 */
export function lookupRoute(ns: NamespaceModel, dst: Addr, src: Addr | null, iif: string): RouteLookup {
  const guesses: string[] = [];
  const family = dst.family;
  // A hand-written or partial model may lack the local table: addresses are local anyway.
  const hasLocalTable = ns.routes.some((r) => r.family === family && r.table === 'local');
  if (!hasLocalTable) {
    const owner = interfaceWithAddress(ns, dst);
    if (owner) return { result: { kind: 'local', route: null, dev: owner.name }, table: 'local', guesses };
    if (family === 4 && (dst.value >> 24n) === 127n) return { result: { kind: 'local', route: null, dev: 'lo' }, table: 'local', guesses };
  }
  const known = ns.rules.filter((r) => r.family === family);
  const rules = (known.length > 0 ? known : DEFAULT_RULES(family)).slice().sort((a, b) => a.priority - b.priority);
  for (const rule of rules) {
    let match = selectorMatches(rule.src, src, family) && selectorMatches(rule.dst, dst, family) &&
      (rule.iif === null || rule.iif === iif);
    if (rule.invert) match = !match;
    if (!match) continue;
    if (rule.oif !== null || rule.unsupported.length > 0) {
      const what = [...(rule.oif !== null ? [`oif ${rule.oif}`] : []), ...rule.unsupported].join(', ');
      guesses.push(`policy rule ${rule.priority} (${what}) not evaluated; assumed it does not match`);
      continue;
    }
    switch (rule.action) {
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        return { result: { kind: rule.action, route: null }, table: null, guesses };
      case 'lookup':
        break;
      default:
        if (rule.action !== 'nop') guesses.push(`policy rule ${rule.priority} (${rule.action}) not followed`);
        continue;
    }
    if (rule.table === null) continue;
    const route = lookupTable(ns.routes, rule.table, dst);
    if (!route || route.type === 'throw') continue;
    const table = rule.table;
    switch (route.type) {
      case 'local':
      case 'anycast':
        return { result: { kind: 'local', route, dev: route.dev }, table, guesses };
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
      case 'broadcast':
      case 'multicast':
        return { result: { kind: route.type, route }, table, guesses };
      case 'unicast': {
        if (route.nexthops.length > 1) guesses.push(`multipath route to ${route.dst}: took the first next hop`);
        if (route.dev === null) {
          guesses.push(`route to ${route.dst} in table ${table} has no device; not followed`);
          return { result: { kind: 'none' }, table, guesses };
        }
        const nexthop = route.gateway ?? formatAddr(dst);
        return { result: { kind: 'unicast', route, dev: route.dev, nexthop, gateway: route.gateway }, table, guesses };
      }
      default:
        guesses.push(`route type ${route.type} to ${route.dst} not modelled`);
        return { result: { kind: 'none' }, table, guesses };
    }
  }
  return { result: { kind: 'none' }, table: null, guesses };
}
