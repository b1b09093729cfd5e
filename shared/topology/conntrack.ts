/**
 * The conntrack entries the model knows: connections whose first packet a simulated path
 * NATed. The kernel applies a connection's NAT to all its later packets without consulting
 * the nat table again, and reverses it for replies (a reply to a MASQUERADEd packet gets its
 * destination rewritten back to the pod in PREROUTING; a reply from a DNAT target gets its
 * source rewritten back in POSTROUTING). Rules alone cannot predict that: the simulator asks a
 * ConntrackView which connection a packet belongs to when it enters a namespace.
 */
import type { PacketState } from './nf-eval.js';

/** A conntrack tuple: what the kernel keys a connection on (ICMP ids are not modelled: ports 0). */
export interface CtTuple {
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/** A NATed connection in one namespace, as conntrack holds it. */
export interface Connection {
  readonly netns: number;
  readonly ns: string;
  /** The first packet's tuple as it entered the namespace (before any NAT). */
  readonly orig: CtTuple;
  /** The tuple a reply arrives with: the reverse of the first packet's tuple after all NAT. */
  readonly reply: CtTuple;
  /** The connection's mark (CONNMARK, nft `ct mark set`) when a rule set one; later packets and replies carry it. */
  readonly mark?: number;
}

export interface CtMatch {
  readonly conn: Connection;
  /** 'orig': a later packet in the first packet's direction; 'reply': the other way. */
  readonly dir: 'orig' | 'reply';
}

export interface ConntrackView {
  find(netns: number, t: CtTuple): CtMatch | null;
}

export function tupleOf(p: PacketState): CtTuple {
  return { proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
}

export function reverseTuple(t: CtTuple): CtTuple {
  return { proto: t.proto, src: t.dst, dst: t.src, sport: t.dport, dport: t.sport };
}

export function sameTuple(a: CtTuple, b: CtTuple): boolean {
  return a.proto === b.proto && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;
}

export function tupleText(t: CtTuple): string {
  const host = (a: string, p: number): string => (p === 0 ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  return `${host(t.src, t.sport)} > ${host(t.dst, t.dport)}`;
}

function key(netns: number, t: CtTuple): string {
  return `${netns}|${t.proto}|${t.src}|${t.sport}|${t.dst}|${t.dport}`;
}

/**
 * The packet after the NAT conntrack applies at one hook. Destination rewrites happen in
 * PREROUTING and OUTPUT, source rewrites in POSTROUTING and INPUT (nf_nat_ipv4_ops); each
 * direction is rewritten to the other direction's tuple reversed.
 */
export function applyConnection(m: CtMatch, hook: 'dst' | 'src', p: PacketState): PacketState {
  const target = m.dir === 'orig' ? reverseTuple(m.conn.reply) : reverseTuple(m.conn.orig);
  return hook === 'dst'
    ? { ...p, dst: target.dst, dport: target.dport }
    : { ...p, src: target.src, sport: target.sport };
}

/**
 * How long an idle connection stays, in ns, as the kernel's defaults have it
 * (nf_conntrack_tcp_timeout_established, udp_timeout_stream, icmp_timeout, generic_timeout):
 * without expiry an ICMP exchange (no ports to tell exchanges apart) would make every later one
 * between the same addresses look like its reply.
 */
export function idleTimeoutNs(proto: number): number {
  const s = proto === 6 ? 432_000 : proto === 17 || proto === 136 ? 120 : proto === 1 || proto === 58 ? 30 : 600;
  return s * 1e9;
}

/** A bounded table of connections; idle ones expire, and the oldest go first when it is full. */
export class ConntrackTable implements ConntrackView {
  private readonly byTuple = new Map<string, CtMatch>();
  /** Connections by the tuple their first packet left the namespace with (after its NAT). */
  private readonly bySent = new Map<string, Connection>();
  /** Last time (ns, the clock of the hops) each connection was used. */
  private readonly lastSeen = new Map<Connection, number>();
  /** The current time on the hops' clock; set by the caller before each lookup (0: no expiry). */
  now = 0;

  constructor(private readonly max = 20_000) {}

  get size(): number {
    return this.byTuple.size;
  }

  find(netns: number, t: CtTuple): CtMatch | null {
    const k = key(netns, t);
    const m = this.byTuple.get(k);
    if (!m) return null;
    const seen = this.lastSeen.get(m.conn) ?? 0;
    if (this.now > 0 && seen > 0 && this.now - seen > idleTimeoutNs(m.conn.orig.proto)) {
      this.remove(m.conn);
      return null;
    }
    if (this.now > 0) this.lastSeen.set(m.conn, this.now);
    return m;
  }

  /**
   * The connection whose packets leave `netns` with tuple `t` after its NAT: a packet sent by a
   * local socket is first seen on a device, already NATed in OUTPUT/POSTROUTING (a localhost
   * port forward), and this finds what its socket sent. Not a kernel lookup: the model's own.
   */
  findSent(netns: number, t: CtTuple): Connection | null {
    const c = this.bySent.get(key(netns, t)) ?? null;
    return c && this.lastSeen.has(c) ? c : null;
  }

  private remove(conn: Connection): void {
    this.byTuple.delete(key(conn.netns, conn.orig));
    this.byTuple.delete(key(conn.netns, conn.reply));
    this.bySent.delete(key(conn.netns, reverseTuple(conn.reply)));
    this.lastSeen.delete(conn);
  }

  /** Adds a connection; false when it was already known (same namespace and tuples). */
  add(conn: Connection): boolean {
    const k = key(conn.netns, conn.orig);
    const known = this.byTuple.get(k);
    if (known && known.dir === 'orig' && sameTuple(known.conn.reply, conn.reply)) return false;
    // Both directions are looked up per packet; the kernel evicts the whole entry, so do we.
    while (this.byTuple.size >= this.max * 2) {
      const oldest = this.byTuple.values().next().value;
      if (oldest === undefined) break;
      this.remove(oldest.conn);
    }
    if (known) this.remove(known.conn);
    this.byTuple.set(k, { conn, dir: 'orig' });
    this.byTuple.set(key(conn.netns, conn.reply), { conn, dir: 'reply' });
    this.bySent.set(key(conn.netns, reverseTuple(conn.reply)), conn);
    this.lastSeen.set(conn, this.now);
    return true;
  }
}
