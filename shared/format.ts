/**
 * Human output of packets, the way `hoptrace trace` and `replay` print them: one block per
 * packet, one line per hop with time since the previous hop, namespace, interface, event and the
 * tuple as the packet looked there — NAT rewrites marked on the hop that first shows them, with
 * the tuple before — and the drop reason at the end.
 */
import type { Packet, Hop, Tuple } from './packet.js';
import type { NetfilterVerdict } from './netfilter/types.js';
import type { HopNote } from './hop-event.js';
import { isDropVerdict } from './netfilter/types.js';
import { describeEncap } from './tunnel.js';

export function formatDuration(ns: number): string {
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 1 : 0)}µs`;
  if (ns < 1_000_000_000) return `${(ns / 1_000_000).toFixed(ns < 10_000_000 ? 2 : 1)}ms`;
  return `${(ns / 1_000_000_000).toFixed(2)}s`;
}

function endpoint(addr: string, port: number, hasPorts: boolean): string {
  if (!hasPorts) return addr;
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function formatTuple(t: Tuple, proto: string): string {
  const ports = proto === 'tcp' || proto === 'udp' || proto === 'sctp';
  return `${endpoint(t.src, t.sport, ports)} → ${endpoint(t.dst, t.dport, ports)}`;
}

/**
 * A hop's namespace for people: its workload first where it has one (`web (netns-55c52e9d…)`:
 * runtimes' netns-<uuid> names are cut to their first 8 digits), else the namespace name.
 */
export function nsLabel(hop: Pick<Hop, 'ns' | 'netns' | 'workload'>): string {
  const ns = hop.ns ?? `netns:${hop.netns}`;
  if (!hop.workload) return ns;
  const short = /^netns-[0-9a-f]{8}-[0-9a-f-]+$/.test(ns) ? `${ns.slice(0, 14)}…` : ns;
  return `${hop.workload} (${short})`;
}

const TCP_FLAG_NAMES: ReadonlyArray<[number, string]> = [[2, 'SYN'], [16, 'ACK'], [1, 'FIN'], [4, 'RST'], [8, 'PSH']];

export function tcpFlags(flags: number): string {
  return TCP_FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n).join(',');
}

/**
 * ICMP types whose bytes 4-5 are an identifier: echo, timestamp, information and address mask
 * (RFC 792, 950) and ICMPv6 echo (RFC 4443). Other types carry something else there (a
 * neighbour advertisement's flags, an error's unused field): the probe reads the bytes for every
 * type, so only these name them an id.
 */
const ICMP_ID_TYPES = new Set([0, 8, 13, 14, 15, 16, 17, 18]);
const ICMPV6_ID_TYPES = new Set([128, 129]);

export function hasIcmpId(proto: string, icmpType: number): boolean {
  return proto === 'icmp' ? ICMP_ID_TYPES.has(icmpType) : proto === 'icmpv6' && ICMPV6_ID_TYPES.has(icmpType);
}

function packetDetail(p: Packet): string {
  const first = p.hops[0];
  if (!first) return '';
  if (p.proto === 'tcp') return ` [${tcpFlags(first.tcpFlags) || 'no flags'}]`;
  if (p.proto === 'icmp' || p.proto === 'icmpv6') return ` [type ${first.icmpType}${hasIcmpId(p.proto, first.icmpType) ? ` id ${first.icmpId}` : ''}]`;
  return '';
}

/**
 * Time from the first hop to the last one in the network. A trailing consume is left out: it
 * marks when the application read the packet, which can be much later and is not path latency.
 */
export function totalLatency(p: Packet): number {
  const first = p.hops[0];
  const last = [...p.hops].reverse().find((h) => h.event !== 'consume') ?? first;
  return first && last ? last.t - first.t : 0;
}

/**
 * Numbers packets as a trace prints them and remembers the numbers of the recent ones, so a clone
 * can say `clone of packet 15` rather than the original's id. Bounded: a clone finishes within
 * moments of its original, so only the last `keep` packets are remembered.
 */
export class PacketNumbers {
  private readonly byId = new Map<string, number>();
  private count = 0;

  constructor(private readonly keep = 4096) {}

  /** The next number, given to packet `id`. */
  next(id: string): number {
    this.count++;
    this.byId.set(id, this.count);
    if (this.byId.size > this.keep) {
      const oldest = this.byId.keys().next().value;
      if (oldest !== undefined) this.byId.delete(oldest);
    }
    return this.count;
  }

  /** How many packets were numbered. */
  get printed(): number {
    return this.count;
  }

  /** The number printed for `id`, if it was one of the recent ones. */
  of = (id: string): number | undefined => this.byId.get(id);
}

/** Who discarded a delivered packet, in users' words: TCP, or the socket layer for the rest. */
function discarder(p: Pick<Packet, 'proto'>): string {
  return p.proto === 'tcp' ? 'TCP' : 'the socket layer';
}

/** `discarded by TCP: QUEUE_PURGE` for a packet its socket freed after delivery; '' otherwise. */
export function discardText(p: Pick<Packet, 'proto' | 'discard'>): string {
  return p.discard ? `discarded by ${discarder(p)}: ${p.discard.reason}` : '';
}

/**
 * A packet's fate as trace, replay and the dashboard say it: `delivered`, `dropped`, `unknown`,
 * or `delivered; discarded by TCP: QUEUE_PURGE` for a socket's discard after delivery (not a
 * drop: shared/fate.ts).
 */
export function fateText(p: Pick<Packet, 'fate' | 'proto' | 'discard'>): string {
  return p.fate === 'delivered' && p.discard ? `delivered; ${discardText(p)}` : p.fate;
}

/**
 * One packet as a block of lines. `numberOf` names an original packet by the number it was
 * printed with (PacketNumbers.of); without it, or for one not printed (yet), a clone names its
 * original's id.
 */
export function formatPacket(p: Packet, index?: number, numberOf?: (id: string) => number | undefined): string {
  const lines: string[] = [];
  const head = index === undefined ? 'packet' : `packet ${index}`;
  const fate = p.fate === 'dropped' ? 'DROPPED' : fateText(p);
  const originalNumber = p.cloneOf ? numberOf?.(p.cloneOf) : undefined;
  const clone = p.cloneOf ? `  clone of ${originalNumber !== undefined ? `packet ${originalNumber}` : p.cloneOf}` : '';
  lines.push(`${head}  ${p.proto} ${formatTuple(p, p.proto)}${packetDetail(p)}  ${fate}  (${p.hops.length} hops, ${formatDuration(totalLatency(p))})${clone}`);
  const nsWidth = Math.max(4, ...p.hops.map((h) => nsLabel(h).length));
  const ifWidth = Math.max(6, ...p.hops.map((h) => h.ifname.length || 1));
  const nfIndent = ' '.repeat(13);
  const steps = p.netfilter ?? [];
  if (steps.length > 0) lines.push(...formatNetfilterSteps(steps.filter((s) => s.afterHop < 0), nfIndent));
  const notes = p.notes ?? [];
  const notesAfter = (i: number): string[] => notes.filter((n) => (i < 0 ? n.afterHop < 0 : n.afterHop === i)).map((n) => `${nfIndent}↳ ${describeNote(n)}`);
  lines.push(...notesAfter(-1));
  // Every hop shows the tuple it carried, so a rewrite reads down the column; the marks after it
  // line up.
  const tuples = p.hops.map((h) => formatTuple(h, p.proto));
  const tupleWidth = Math.max(0, ...tuples.map((t) => t.length));
  let prev: Hop | undefined;
  for (const [i, h] of p.hops.entries()) {
    const dt = prev ? `+${formatDuration(h.t - prev.t)}` : '+0';
    let note = '';
    if (h.nat) {
      const what = h.nat.kind === 'snat' ? 'SNAT' : h.nat.kind === 'dnat' ? 'DNAT' : 'SNAT+DNAT';
      note = `  ${what}, was ${formatTuple(h.nat.from, p.proto)}`;
    }
    // Tunnels: where the packet was wrapped and unwrapped; the underlay hops show the outer tuple.
    if (h.encap) note += `  ⇢ encap ${describeEncap(h.encap)}`;
    else if (h.outer) note += `  in tunnel ${formatTuple(h.outer, h.outer.proto === 17 ? 'udp' : 'ip')}`;
    if (h.decap) note += `  ⇠ decap ${h.decap.type === 'unknown' ? 'encapsulated (unknown kind)' : `${h.decap.type}${h.decap.vni !== null ? ` vni ${h.decap.vni}` : ''}`}`;
    // A datagram sent in fragments (its own, or a tunnel's outer one): which fragment the hop is of.
    if (h.fragment !== undefined) note += `  fragment ${h.fragment}`;
    if (h.event === 'drop') note += p.discard && !p.drop ? `  (${discardText(p)})` : `  ✗ ${p.drop?.reason ?? 'dropped'}`;
    const tuple = note ? (tuples[i] ?? '').padEnd(tupleWidth) : (tuples[i] ?? '');
    lines.push(`  ${dt.padStart(9)}  ${nsLabel(h).padEnd(nsWidth)}  ${(h.ifname || '-').padEnd(ifWidth)}  ${h.event.padEnd(7)}  ${tuple}${note}`.trimEnd());
    lines.push(...notesAfter(i));
    if (steps.length > 0) lines.push(...formatNetfilterSteps(steps.filter((s) => s.afterHop === i), nfIndent));
    prev = h;
  }
  if (p.drop) {
    const by = steps.find((s) => isDropVerdict(s.verdict));
    const rule = by ? `, by ${nfChainLabel(by)} ${by.type === 'rule' ? `rule ${quoteRule(by)}` : `policy ${by.verdict}`}` : '';
    lines.push(`  dropped in ${nsLabel(p.drop)}${p.drop.ifname ? ` at ${p.drop.ifname}` : ''}: ${p.drop.reason}${rule}`);
  }
  return lines.join('\n');
}

/** The line under a packet that left its expected path. */
export function formatDivergence(summary: string): string {
  return `  ⚠ off the expected path: ${summary}`;
}

/** JSON for one packet line of `--json` output (the public NDJSON contract). */
export function packetJson(p: Packet): string {
  return JSON.stringify(p);
}

/** `ip filter FORWARD`: family, table and chain, the way iptables-nft and nft users know them. */
export function nfChainLabel(s: Pick<NetfilterVerdict, 'family' | 'table' | 'chain'>): string {
  return `${s.family} ${s.table} ${s.chain}`;
}

function quoteRule(s: NetfilterVerdict): string {
  const handle = s.handle !== null ? ` (handle ${s.handle})` : '';
  return `'${s.rule ?? '?'}'${handle}`;
}

/** Whether a step says something on its own: a rule that decided, rewrote or dropped; a policy other than accept. */
export function isNotableStep(s: NetfilterVerdict): boolean {
  if (s.nat !== null || isDropVerdict(s.verdict)) return true;
  if (s.type === 'rule') return s.verdict !== 'continue';
  if (s.type === 'policy') return s.verdict !== 'accept';
  return false;
}

function stepText(s: NetfilterVerdict): string {
  switch (s.type) {
    case 'rule': return `rule ${quoteRule(s)} → ${s.nat ?? s.verdict}`;
    case 'conntrack': return `${s.nat ?? 'nat'} by conntrack, as rule ${quoteRule(s)} set up for the connection`;
    default: return `${s.type} ${s.verdict}`;
  }
}

/**
 * Lines for the netfilter steps after one hop, in order: each notable step on its own line, runs
 * of chains that merely let the packet through (policy accept, no rule matched) on one line.
 */
export function formatNetfilterSteps(steps: readonly NetfilterVerdict[], indent: string): string[] {
  const out: string[] = [];
  let passed: string[] = [];
  const flush = (): void => {
    if (passed.length > 0) out.push(`${indent}⛨ passed ${[...new Set(passed)].join(', ')} (policy accept)`);
    passed = [];
  };
  for (const s of steps) {
    if (isNotableStep(s)) {
      flush();
      out.push(`${indent}⛨ ${s.hook.padEnd(11)} ${nfChainLabel(s)}: ${stepText(s)}`);
    } else if (s.type === 'policy') {
      passed.push(nfChainLabel(s));
    }
  }
  flush();
  return out;
}

const ROUTE_TABLES: Readonly<Record<number, string>> = { 255: 'local', 254: 'main', 253: 'default' };
const NUD: Readonly<Record<number, string>> = { 0: 'NONE', 1: 'INCOMPLETE', 2: 'REACHABLE', 4: 'STALE', 8: 'DELAY', 16: 'PROBE', 32: 'FAILED', 64: 'NOARP', 128: 'PERMANENT' };
const ICMP4: Readonly<Record<string, string>> = {
  '3/0': 'net unreachable', '3/1': 'host unreachable', '3/3': 'port unreachable', '3/4': 'fragmentation needed',
  '3/9': 'net prohibited', '3/10': 'host prohibited', '3/13': 'administratively prohibited', '11/0': 'TTL exceeded', '5/1': 'redirect',
};
const NF_HOOKS = ['prerouting', 'input', 'forward', 'output', 'postrouting'];
const NF_FAMILIES: Readonly<Record<number, string>> = { 2: 'ipv4', 10: 'ipv6', 7: 'bridge', 3: 'arp', 5: 'netdev', 1: 'inet' };

/** One phrase for a note (shared/hop-event.ts HopNote): what it says about the packet at that hop. */
export function describeNote(n: HopNote): string {
  const d = n.data;
  const num = (k: string): number => (typeof d[k] === 'number' ? (d[k] as number) : Number(d[k] ?? 0));
  const str = (k: string): string => String(d[k] ?? '');
  switch (n.kind) {
    case 'fib':
    case 'fib6': {
      const table = ROUTE_TABLES[num('table')] ?? String(num('table'));
      const gw = n.kind === 'fib6' && str('gw') && str('gw') !== '::' ? ` via ${str('gw')}` : '';
      return num('err') === 0
        ? `route ${str('dst')}: table ${table} → dev ${str('dev') || '?'}${gw}`
        : `route ${str('dst')}: table ${table} has no match (error ${num('err')})`;
    }
    case 'fdb': return `bridge ${str('bridge')} learned ${str('mac')} on port ${str('port')}${num('vid') ? ` (vlan ${num('vid')})` : ''}`;
    case 'neigh': {
      const state = NUD[num('state')] ?? String(num('state'));
      return num('event') === 2
        ? `neighbour ${str('addr')} on ${str('dev')} was being removed (${state}): packet not sent`
        : `waits for neighbour ${str('addr')} on ${str('dev')} (${state}${num('rc') ? ', queued' : ''})`;
    }
    case 'icmp': {
      const what = ICMP4[`${num('type')}/${num('code')}`] ?? `type ${num('type')} code ${num('code')}`;
      return `kernel sent ICMP ${what} to ${str('src')} about this packet`;
    }
    case 'qdisc': return `waited ${formatDuration(num('wait_ns'))} in qdisc ${(num('handle') >>> 16).toString(16)}: (ifindex ${num('ifindex')})`;
    case 'nfhook': {
      const v = num('verdict');
      const verdict = v === 1 ? 'continue' : v === 0 ? 'stolen/queued' : `dropped (${v})`;
      return `netfilter ${NF_FAMILIES[num('pf')] ?? num('pf')} ${NF_HOOKS[num('hook')] ?? num('hook')}: ${verdict} after ${formatDuration(num('dur_ns'))}`;
    }
    case 'brfwd': return `bridge forwards to port ${str('port')} (FDB hit)${num('local_rcv') ? ', and up to the bridge' : ''}`;
    case 'brflood': return `bridge ${str('bridge')} floods it (${['unicast, destination unknown', 'multicast', 'broadcast'][num('pkt_type')] ?? `pkt_type ${num('pkt_type')}`})`;
    case 'veth': return num('ret') === 0 ? `veth ${str('dev')} handed it to its peer (ifindex ${num('peer_ifindex')})` : `veth ${str('dev')}: the peer dropped it (${num('ret')})`;
    case 'ipfwd': return `ip_forward ${num('ret') === 0 ? 'passed it' : 'dropped it'} in ${formatDuration(num('dur_ns'))}`;
    case 'nat': return `conntrack ${num('mtype') === 0 ? 'SNAT' : 'DNAT'} rewrite (${num('dir') === 0 ? 'original' : 'reply'} direction)${num('ret') === 1 ? '' : ' failed'}`;
  }
}
