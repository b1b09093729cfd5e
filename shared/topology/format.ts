/**
 * Human forms of the topology (a tree per namespace, with veth links and bridge ports) and of
 * an expected path (reads like a trace). Plain text, no colour: callers add emphasis.
 */
import { describeWorkloads } from './workloads.js';
import type { NamespaceModel, NetInterface, Topology } from './model.js';
import type { ExpectedPath } from './simulate.js';
import type { Encap, OuterTuple, Tuple } from '../packet.js';
import { formatTuple } from '../format.js';

function onOff(v: boolean | null): string {
  return v === null ? '?' : v ? 'on' : 'off';
}

function ifaceLine(ns: NamespaceModel, i: NetInterface, byInode: ReadonlyMap<number, string>): string {
  const state = i.up ? (i.carrier ? 'up' : 'up, no carrier') : 'down';
  const parts = [`${i.name} (#${i.ifindex}, ${i.kind}, ${state}, mtu ${i.mtu}${i.mac && i.kind !== 'loopback' ? `, ${i.mac}` : ''})`];
  const addrs = i.addrs.filter((a) => !a.toLowerCase().startsWith('fe80:'));
  if (addrs.length > 0) parts.push(addrs.join(' '));
  if (i.peer) {
    const where = i.peer.netns === ns.netns ? '' : `${byInode.get(i.peer.netns) ?? `netns ${i.peer.netns}`}:`;
    parts.push(`<-> ${where}${i.peer.name} #${i.peer.ifindex}`);
  } else if (i.kind === 'veth') {
    parts.push('<-> (peer unknown)');
  }
  return parts.join('  ');
}

/** `names` labels peers in namespaces left out of `topo` (when showing a subset). */
export function formatTopology(topo: Topology, names?: ReadonlyMap<number, string>): string {
  const byInode = new Map([...(names ?? []), ...topo.namespaces.map((n): [number, string] => [n.netns, n.name])]);
  const out: string[] = [];
  for (const ns of topo.namespaces) {
    const pids = ns.pids.length > 0 ? `, ${ns.pids.length} process${ns.pids.length === 1 ? '' : 'es'}` : '';
    const workload = describeWorkloads(ns.workloads ?? []);
    out.push(`${ns.name}${workload ? `  ${workload}` : ''}  (netns ${ns.netns}${pids}; forwarding ipv4 ${onOff(ns.forwarding.ipv4)}, ipv6 ${onOff(ns.forwarding.ipv6)})`);
    if (ns.workloadNote) out.push(`   note: ${ns.workloadNote}`);
    const ports = new Map<string, NetInterface[]>();
    for (const i of ns.interfaces) {
      if (i.master) ports.set(i.master, [...(ports.get(i.master) ?? []), i]);
    }
    const top = ns.interfaces.filter((i) => !i.master || !ns.interfaces.some((b) => b.name === i.master));
    top.forEach((i, n) => {
      const lastTop = n === top.length - 1;
      out.push(`${lastTop ? '└─' : '├─'} ${ifaceLine(ns, i, byInode)}`);
      const children = ports.get(i.name) ?? [];
      children.forEach((c, k) => {
        out.push(`${lastTop ? '   ' : '│  '}${k === children.length - 1 ? '└─' : '├─'} port ${ifaceLine(ns, c, byInode)}`);
      });
    });
    const routes = ns.routes.filter((r) => r.table !== 'local' && !(r.family === 6 && r.dst.toLowerCase().startsWith('fe80:')) && r.type !== 'multicast');
    for (const r of routes) {
      const via = r.gateway ? ` via ${r.gateway}` : '';
      const dev = r.dev ? ` dev ${r.dev}` : '';
      const type = r.type === 'unicast' ? '' : `${r.type} `;
      const table = r.table === 'main' ? '' : ` table ${r.table}`;
      const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
      out.push(`   route ${type}${dst}${via}${dev}${table}`);
    }
    const custom = ns.rules.filter((r) => !(r.table === 'local' && r.priority === 0) && !(r.table === 'main' && r.priority === 32766) && !(r.table === 'default' && r.priority === 32767));
    for (const r of custom) {
      out.push(`   rule ${r.priority}: ${r.invert ? 'not ' : ''}${r.src ? `from ${r.src} ` : ''}${r.dst ? `to ${r.dst} ` : ''}${r.iif ? `iif ${r.iif} ` : ''}${[...r.unsupported, ''].join(' ')}${r.action === 'lookup' ? `lookup ${r.table ?? '?'}` : r.action}`);
    }
    for (const rule of ns.netfilter.rules) {
      const a = rule.action.kind;
      if (a === 'accept' || a === 'continue' || a === 'return' || a === 'jump' || a === 'goto') continue;
      out.push(`   netfilter ${rule.family} ${rule.table} ${rule.chain}: ${rule.text}`);
    }
    for (const e of ns.errors) out.push(`   ! ${e}`);
    out.push('');
  }
  for (const e of topo.errors) out.push(`! ${e}`);
  out.push(`${topo.namespaces.length} namespaces, discovered in ${topo.durationMs} ms`);
  return out.join('\n');
}

/** An expected tunnel's outer headers: the source port is the kernel's pick (0 in the model), so not shown. */
function outerText(o: OuterTuple): string {
  const at = (a: string, port: number): string => (o.proto === 17 && port !== 0 ? (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`) : a);
  return `${at(o.src, o.sport)} → ${at(o.dst, o.dport)}`;
}

function encapText(e: Encap): string {
  return `${e.type}${e.vni !== null ? ` vni ${e.vni}` : ''} ${outerText(e.outer)}`;
}

/**
 * The expected path laid out like a traced packet (shared/format.ts formatPacket): a head line,
 * one line per hop with namespace, interface, event and the tuple there, a rewrite marked
 * against the hop before, and under a hop the netfilter rules that applied there.
 */
export function formatPath(p: ExpectedPath): string {
  const out: string[] = [];
  const f = p.flow;
  const tuple = (t: Tuple): string => formatTuple(t, f.proto);
  const fate = p.fate === 'delivered' ? 'delivered' : p.fate.toUpperCase();
  out.push(`expected  ${f.proto} ${tuple(f)}  ${f.iif ? `received on ${f.iif} in` : 'sent from'} ${f.ns}  ${fate}  (${p.hops.length} hops${p.guess ? ', with guesses' : ''})`);
  const nsWidth = Math.max(4, ...p.hops.map((h) => h.ns.length));
  const ifWidth = Math.max(6, ...p.hops.map((h) => h.ifname.length || 1));
  const tuples = p.hops.map(tuple);
  const tupleWidth = Math.max(0, ...tuples.map((t) => t.length));
  const indent = ' '.repeat(4);
  let before: Tuple = f;
  for (const [i, h] of p.hops.entries()) {
    const srcChanged = h.src !== before.src || h.sport !== before.sport;
    const dstChanged = h.dst !== before.dst || h.dport !== before.dport;
    let mark = srcChanged || dstChanged ? `  ${srcChanged && dstChanged ? 'SNAT+DNAT' : srcChanged ? 'SNAT' : 'DNAT'}, was ${tuple(before)}` : '';
    if (h.event === 'drop') mark += `  ✗ ${p.drop?.kernelReason ?? 'dropped'}`;
    const t = tuples[i] ?? '';
    // Inside a tunnel: the outer headers the underlay's routes and rules see.
    if (h.outer && !h.encap) mark += `  in tunnel ${outerText(h.outer)}`;
    out.push(`  ${h.ns.padEnd(nsWidth)}  ${(h.ifname || '-').padEnd(ifWidth)}  ${h.event.padEnd(4)}  ${mark ? t.padEnd(tupleWidth) : t}${mark}`.trimEnd());
    if (h.encap) out.push(`${indent}↳ encap ${encapText(h.encap)}${h.tunnelVia ? `  (${h.tunnelVia})` : ''}`);
    if (h.tunnelCopies) out.push(`${indent}↳ a copy to each of ${h.tunnelCopies.join(', ')} (head-end replication)`);
    if (h.tunnelFault) out.push(`${indent}! ${h.tunnelFault}`);
    if (h.decap) out.push(`${indent}↳ decap ${h.decap.type}${h.decap.vni !== null ? ` vni ${h.decap.vni}` : ''}`);
    for (const r of h.rules) out.push(`${indent}↳ ${r.hook} ${r.table} ${r.chain}: ${r.verdict}  [${r.rule}]`);
    for (const g of h.guess ?? []) out.push(`${indent}? ${g}`);
    before = h;
  }
  const where = p.drop ? ` (in ${p.drop.ns}${p.drop.ifname ? ` at ${p.drop.ifname}` : ''}${p.drop.kernelReason ? `, kernel reason ${p.drop.kernelReason}` : ''})` : '';
  out.push(`  ${p.fate}: ${p.reason}${where}`);
  if (p.alternatives && p.alternatives.length > 0) {
    // A statistic match chose the way (kube-proxy's endpoints): say how often, and where else.
    const pct = (x: number): string => `${Number((x * 100).toFixed(1))} %`;
    const end = (hops: readonly { ns: string; dst: string; dport: number }[]): string => {
      const last = hops[hops.length - 1];
      if (!last) return '?';
      const host = last.dport === 0 ? last.dst : last.dst.includes(':') ? `[${last.dst}]:${last.dport}` : `${last.dst}:${last.dport}`;
      return `${last.ns} (${host})`;
    };
    out.push(`  this way ${pct(p.probability ?? 1)} of new connections (statistic), ending in ${end(p.hops)}; other ways:`);
    for (const a of p.alternatives) out.push(`    ${pct(a.probability).padStart(7)}  ${a.fate} in ${end(a.hops)}`);
  }
  const hopGuesses = new Set([...p.hops.flatMap((h) => h.guess ?? []), ...p.hops.flatMap((h) => (h.tunnelFault ? [h.tunnelFault] : []))]);
  for (const n of p.notes) if (!hopGuesses.has(n)) out.push(`  note: ${n}`);
  return out.join('\n');
}
