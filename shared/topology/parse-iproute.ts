/**
 * Mappers from iproute2's JSON (`ip -j -d addr show`, `ip -j -d route show table all`,
 * `ip -j rule show`, iproute2 6.1) to model types. Unknown fields are ignored; entries that
 * cannot be read are reported through `errors` and skipped, never thrown.
 */
import type { FdbEntry, IpFamily, Neighbour, NetInterface, PolicyRule, Route, RouteType, TunnelFdbEntry, TunnelParams } from './model.js';
import { parsePrefix } from './ip.js';

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Splits the output of `ip -j -batch` (one JSON document per command, back to back) into
 * its documents. A document that does not parse is returned as an Error in its place.
 */
export function splitJsonDocuments(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0 && start >= 0) {
        const doc = text.slice(start, i + 1);
        try {
          out.push(JSON.parse(doc));
        } catch (e) {
          out.push(e instanceof Error ? e : new Error(String(e)));
        }
        start = -1;
      }
    }
  }
  return out;
}

function interfaceKind(link: Json): string {
  const info = isObj(link.linkinfo) ? link.linkinfo : null;
  const kind = info ? str(info.info_kind) : null;
  if (kind) return kind;
  const linkType = str(link.link_type);
  if (linkType === 'loopback') return 'loopback';
  // A device with no rtnl kind is a real driver: physical NICs, virtio, etc.
  if (linkType === 'ether') return 'physical';
  return linkType ?? 'unknown';
}

const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

function macOf(v: unknown): string | null {
  return typeof v === 'string' && MAC_RE.test(v) ? v : null;
}

/** Link kinds that are tunnels (the kernel's rtnl kinds). */
export const TUNNEL_KINDS: ReadonlySet<string> = new Set(['vxlan', 'geneve', 'ipip', 'sit', 'gre', 'gretap', 'ip6gre', 'ip6gretap', 'ip6tnl', 'erspan', 'ip6erspan']);

/** A GRE key as iproute2 prints it (link_gre.c: inet_ntop of the 32-bit key, "0.0.0.42"), null if none or malformed. */
function greKey(v: unknown): number | null {
  const m = typeof v === 'string' ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v) : null;
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return (((b[0] as number) << 24) >>> 0) + ((b[1] as number) << 16) + ((b[2] as number) << 8) + (b[3] as number);
}

/**
 * A tunnel's parameters from its linkinfo.info_data, in iproute2's JSON names (iplink_vxlan.c,
 * iplink_geneve.c, link_iptnl.c for ipip/sit, link_gre.c): id, local/local6, remote/remote6,
 * port, link, learning; gre's okey; external (collect_metadata).
 */
function tunnelParams(kind: string, d: Json | null): TunnelParams {
  const addr = (a: unknown, b: unknown): string | null => {
    const v = str(a) ?? str(b);
    // iproute2 prints "any" for an unset address of ipip/sit/gre (tunnel.c tnl_print_endpoint);
    // an all-zeros address the kernel reports (geneve's local when not set) is unset too.
    return v === null || v === 'any' || v === '0.0.0.0' || v === '::' ? null : v;
  };
  return {
    type: kind,
    vni: d ? num(d.id) : null,
    local: d ? addr(d.local, d.local6) : null,
    remote: d ? addr(d.remote, d.remote6) : null,
    dstport: d ? num(d.port) : null,
    underlay: d ? str(d.link) : null,
    learning: d && typeof d.learning === 'boolean' ? d.learning : null,
    ...(d && (d.okey !== undefined || d.ikey !== undefined) ? { key: greKey(d.okey ?? d.ikey) } : {}),
    ...(d && d.external === true ? { external: true } : {}),
  };
}

/**
 * Tunnel forwarding entries from `bridge -j fdb show`: those on a tunnel device with a `dst` (the
 * underlay address a MAC is sent to). `dev` names the device when the dump was of one device only.
 */
export function parseTunnelFdb(json: unknown, tunnels: ReadonlySet<string>, errors: string[], dev?: string): TunnelFdbEntry[] {
  if (!Array.isArray(json)) {
    errors.push('bridge fdb: output is not a JSON array');
    return [];
  }
  const out: TunnelFdbEntry[] = [];
  for (const e of json) {
    if (!isObj(e)) continue;
    const mac = str(e.mac);
    const on = str(e.ifname) ?? dev ?? null;
    const dst = str(e.dst);
    if (mac === null || on === null || dst === null || !tunnels.has(on)) continue;
    out.push({ mac: mac.toLowerCase(), dev: on, dst, permanent: e.state === 'permanent' });
  }
  return out;
}

/** Interfaces from `ip -j -d addr show` (links with their addresses). Peers are resolved later. */
export function parseInterfaces(json: unknown, errors: string[]): NetInterface[] {
  if (!Array.isArray(json)) {
    errors.push('ip addr: output is not a JSON array');
    return [];
  }
  const out: NetInterface[] = [];
  for (const link of json) {
    if (!isObj(link)) continue;
    const ifindex = num(link.ifindex);
    const name = str(link.ifname);
    if (ifindex === null || name === null) {
      errors.push(`ip addr: skipped an entry without ifindex/ifname`);
      continue;
    }
    const flags = Array.isArray(link.flags) ? link.flags.filter((f): f is string => typeof f === 'string') : [];
    const addrs: string[] = [];
    if (Array.isArray(link.addr_info)) {
      for (const a of link.addr_info) {
        if (!isObj(a)) continue;
        const local = str(a.local);
        const len = num(a.prefixlen);
        if (local && len !== null && (a.family === 'inet' || a.family === 'inet6')) addrs.push(`${local}/${len}`);
      }
    }
    const kind = interfaceKind(link);
    const linkIndex = num(link.link_index);
    const nsid = num(link.link_netnsid);
    const info = isObj(link.linkinfo) ? link.linkinfo : null;
    const infoData = info && isObj(info.info_data) ? info.info_data : null;
    const slaveData = info && info.info_slave_kind === 'bridge' && isObj(info.info_slave_data) ? info.info_slave_data : null;
    const iface: NetInterface = {
      ifindex,
      name,
      kind,
      // IP tunnels' link-layer "address" is their local IP address (iproute2 ll_addr_n2a for
      // ARPHRD_TUNNEL/SIT/IPGRE/TUNNEL6/IP6GRE): not a MAC.
      mac: macOf(link.address),
      mtu: num(link.mtu) ?? 0,
      up: flags.includes('UP'),
      carrier: flags.includes('LOWER_UP'),
      addrs,
      master: str(link.master),
      peer: null,
      link: kind !== 'veth' ? null
        : linkIndex !== null ? { ifindex: linkIndex, nsid }
          // Both ends in one namespace: iproute2 prints the peer's name instead of its index.
          : typeof link.link === 'string' ? { ifindex: 0, nsid: null, name: link.link }
            : null,
      ...(kind === 'bridge' && infoData
        ? { bridgeNfCall: { ipv4: infoData.nf_call_iptables === 1, ipv6: infoData.nf_call_ip6tables === 1 } }
        : {}),
      ...(TUNNEL_KINDS.has(kind) ? { tunnel: tunnelParams(kind, infoData) } : {}),
      ...(slaveData && typeof slaveData.hairpin === 'boolean' ? { hairpin: slaveData.hairpin } : {}),
    };
    out.push(iface);
  }
  return out;
}

const ROUTE_TYPES: ReadonlySet<string> = new Set([
  'unicast', 'local', 'broadcast', 'multicast', 'anycast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'unspec',
]);

/**
 * The family of a route from a dump of both (`ip route show table all` without -4/-6): the
 * kernel puts RTA_PREF on every IPv6 route, which iproute2 prints as "pref".
 */
function routeFamily(r: Json): IpFamily {
  const dst = str(r.dst) ?? '';
  const gw = str(r.gateway) ?? '';
  const via = isObj(r.via) ? r.via.family : null;
  return dst.includes(':') || gw.includes(':') || via === 'inet6' || 'pref' in r ? 6 : 4;
}

/**
 * Routes from `ip -j -d route show table all`: one family (`-4`/`-6`), or both when
 * `family` is 'both' (each route's family is then told from its fields).
 */
export function parseRoutes(json: unknown, family: IpFamily | 'both', errors: string[]): Route[] {
  const label = family === 'both' ? '' : ` -${family}`;
  if (!Array.isArray(json)) {
    errors.push(`ip${label} route: output is not a JSON array`);
    return [];
  }
  const out: Route[] = [];
  for (const r of json) {
    if (!isObj(r)) continue;
    const fam: IpFamily = family === 'both' ? routeFamily(r) : family;
    const rawDst = str(r.dst);
    if (rawDst === null) continue;
    const prefix = parsePrefix(rawDst, fam);
    if (!prefix) {
      errors.push(`ip${label} route: skipped route to ${rawDst}`);
      continue;
    }
    const len = rawDst.includes('/') ? '' : `/${prefix.len}`;
    const dst = rawDst === 'default' ? (fam === 4 ? '0.0.0.0/0' : '::/0') : `${rawDst}${len}`;
    const type = str(r.type) ?? 'unicast';
    const table = r.table === undefined ? 'main' : String(r.table);
    const nexthops: { gateway: string | null; dev: string | null }[] = [];
    if (Array.isArray(r.nexthops)) {
      for (const nh of r.nexthops) {
        if (isObj(nh)) nexthops.push({ gateway: str(nh.gateway), dev: str(nh.dev) });
      }
    }
    out.push({
      family: fam,
      table,
      type: (ROUTE_TYPES.has(type) ? type : 'unspec') as RouteType,
      dst,
      gateway: str(r.gateway) ?? nexthops[0]?.gateway ?? null,
      dev: str(r.dev) ?? nexthops[0]?.dev ?? null,
      prefsrc: str(r.prefsrc),
      metric: num(r.metric) ?? 0,
      nexthops,
    });
  }
  return out;
}

/** A rule selector as a CIDR; iproute2 leaves out the length of a single address. */
function selector(addr: string | null, len: number | null, family: IpFamily): string | null {
  if (addr === null || addr === 'all') return null;
  if (addr.includes('/')) return addr;
  return `${addr}/${len ?? (family === 4 ? 32 : 128)}`;
}

/** Policy rules from `ip -j -4|-6 rule show`. */
export function parsePolicyRules(json: unknown, family: IpFamily, errors: string[]): PolicyRule[] {
  if (!Array.isArray(json)) {
    errors.push(`ip -${family} rule: output is not a JSON array`);
    return [];
  }
  const known = new Set(['priority', 'src', 'srclen', 'dst', 'dstlen', 'table', 'action', 'iif', 'oif', 'not', 'goto', 'protocol', 'flags', 'iif_detached', 'oif_detached']);
  const out: PolicyRule[] = [];
  for (const r of json) {
    if (!isObj(r)) continue;
    const priority = num(r.priority) ?? 0;
    const src = str(r.src);
    const dst = str(r.dst);
    const srclen = num(r.srclen);
    const dstlen = num(r.dstlen);
    const unsupported: string[] = [];
    for (const [k, v] of Object.entries(r)) {
      if (!known.has(k)) unsupported.push(`${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
    let action = str(r.action) ?? 'lookup';
    if (r.goto !== undefined) action = 'goto';
    out.push({
      family,
      priority,
      action,
      table: r.table === undefined ? null : String(r.table),
      src: selector(src, srclen, family),
      dst: selector(dst, dstlen, family),
      iif: str(r.iif),
      oif: str(r.oif),
      invert: 'not' in r,
      unsupported,
    });
  }
  return out;
}

/**
 * The neighbour table from `ip -j neigh show` (both families). This mapper and parseFdb below
 * (like workloads.ts's) share only their frame (an array, entries missing a needed field skipped);
 * what each reads and keeps is its own, so the frame is written out in each.
 */
export function parseNeighbours(json: unknown, errors: string[]): Neighbour[] {
  if (!Array.isArray(json)) {
    errors.push('ip neigh: output is not a JSON array');
    return [];
  }
  const out: Neighbour[] = [];
  for (const n of json) {
    if (!isObj(n)) continue;
    const addr = str(n.dst);
    const dev = str(n.dev);
    if (addr === null || dev === null) continue;
    const state = Array.isArray(n.state) ? n.state.filter((x): x is string => typeof x === 'string') : [];
    out.push({ addr, dev, mac: str(n.lladdr), state });
  }
  return out;
}

/**
 * Bridge forwarding database entries from `bridge -j fdb show`: only those of a bridge
 * (`master`), not the ports' own multicast filters (`self`).
 */
export function parseFdb(json: unknown, errors: string[]): FdbEntry[] {
  if (!Array.isArray(json)) {
    errors.push('bridge fdb: output is not a JSON array');
    return [];
  }
  const out: FdbEntry[] = [];
  for (const e of json) {
    if (!isObj(e)) continue;
    const mac = str(e.mac);
    const port = str(e.ifname);
    const bridge = str(e.master);
    if (mac === null || port === null || bridge === null) continue;
    out.push({ mac: mac.toLowerCase(), port, bridge, permanent: e.state === 'permanent' });
  }
  return out;
}

/** `sysctl -e NAME...` output (`name = value` lines) into a map. */
export function parseSysctl(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

/**
 * route_localnet from `sysctl` output (`net.ipv4.conf.<dev>.route_localnet = 1`; sysctl writes a
 * dot in a device name as '/'). Null when no line of it was there (not read).
 */
export function parseRouteLocalnet(sc: ReadonlyMap<string, string>): { all: boolean; devices: string[] } | null {
  let seen = false;
  let all = false;
  const devices: string[] = [];
  for (const [k, v] of sc) {
    const m = /^net\.ipv4\.conf\.(.+)\.route_localnet$/.exec(k);
    if (!m?.[1]) continue;
    seen = true;
    if (v !== '1') continue;
    const dev = m[1].replace(/\//g, '.');
    if (dev === 'all') all = true;
    else if (dev !== 'default') devices.push(dev);
  }
  return seen ? { all, devices: devices.sort() } : null;
}

/** Forwarding switches (interface "all") from `ip -j netconf show`. */
export function parseNetconf(json: unknown): { ipv4: boolean | null; ipv6: boolean | null } {
  const out: { ipv4: boolean | null; ipv6: boolean | null } = { ipv4: null, ipv6: null };
  if (!Array.isArray(json)) return out;
  for (const e of json) {
    if (!isObj(e) || e.interface !== 'all' || typeof e.forwarding !== 'boolean') continue;
    if (e.family === 'inet') out.ipv4 = e.forwarding;
    if (e.family === 'inet6') out.ipv6 = e.forwarding;
  }
  return out;
}
