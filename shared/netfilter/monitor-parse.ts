/**
 * Parser for `nft monitor trace` output (nftables 1.0.x prints text, even with -j). One line per
 * trace message, each starting with a header:
 *
 *   trace id <hex> <family> <table> <chain> <what>
 *
 * where <what> is one of
 *
 *   packet: [iif "<dev>"] [oif "<dev>"] <header fields as nft expressions: ether ..., ip saddr A
 *           ip daddr B ... ip id N ... ip length N, udp sport N udp dport N, tcp sport N ... tcp
 *           sequence N ..., icmp type T ... icmp id N ...>
 *       — the packet as the chain saw it; printed once per base-chain run, before its first step
 *   rule <rule text as `nft list` prints it> [# handle N] (verdict <v>)
 *   unknown rule handle N (verdict <v>)          — a rule added after the monitor started
 *   policy <accept|drop> [meta mark 0x...]        — the base chain's policy applied
 *   verdict <v> [meta mark 0x...]                 — a return from a chain (type "return")
 *   conntrack: ct direction ... ct state ...      — newer nft; ignored
 *
 * `# handle N` is present when nft runs with -a. The trace id identifies one run of a base chain
 * (and the chains it jumps to); it changes from hook to hook, so packets are matched to hops by
 * their headers, not by id (shared/netfilter/correlate.ts). Example (captured, nft 1.0.6):
 *
 *   trace id e751ef38 ip filter FORWARD packet: iif "br0" oif "eth-node" ether saddr 66:9e:... ip saddr 10.244.1.11 ip daddr 10.99.0.2 ... ip id 58282 ip length 29 udp sport 41743 udp dport 9999 udp length 9 @th,64,8 0x78
 *   trace id e751ef38 ip filter FORWARD rule udp dport 9999 counter packets 0 bytes 0 drop # handle 2 (verdict drop)
 *
 * Bridge family tables (frames between ports of one bridge) print the same shapes; their packet
 * lines start with the ports and the Ethernet header (captured, nft 1.0.6):
 *
 *   trace id 67ba0372 bridge filter forward packet: iif "va" oif "vb" ether saddr 7e:ab:34:ec:a0:66 ether daddr 22:11:b3:d4:e7:69 ip saddr 10.251.7.1 ip daddr 10.251.7.2 ... ip id 63268 ip protocol udp ip length 29 udp sport 56192 udp dport 7001 udp length 9 @th,64,8 0x78
 *   trace id 67ba0372 bridge filter forward rule udp dport 7001 counter packets 0 bytes 0 drop # handle 2 (verdict drop)
 *
 * A frame keeps its trace id from the bridge hooks on into the inet hooks when it is routed (or
 * when br_netfilter hands bridged frames to them): ids are per skb, the hook comes from the chain.
 */
import type { NetfilterEvent, NfHook, NfNatKind, NfPacketHeaders } from './types.js';
import { hookOfIptablesChain } from './types.js';
import { HOPTRACE_TABLE_RE, isTraceFamily } from './nft-filter.js';
import { parseAddress } from '../filter/address.js';

/** One parsed line, before the per-trace context (headers, hook) is applied. */
export type TraceLine =
  | { readonly kind: 'packet'; readonly id: string; readonly family: string; readonly table: string; readonly chain: string; readonly packet: NfPacketHeaders }
  | { readonly kind: 'rule'; readonly id: string; readonly family: string; readonly table: string; readonly chain: string; readonly rule: string | null; readonly handle: number | null; readonly verdict: string }
  | { readonly kind: 'policy' | 'return'; readonly id: string; readonly family: string; readonly table: string; readonly chain: string; readonly verdict: string };

const HEADER_RE = /^trace id ([0-9a-f]{1,8}) (\S+) (\S+) (\S+) (.*)$/;

export const EMPTY_HEADERS: NfPacketHeaders = {
  iif: null, oif: null, family: 0, proto: 0, src: '', dst: '', sport: 0, dport: 0, ipId: 0, len: 0, tcpSeq: 0, icmpId: 0,
};

const PROTO_BY_NAME: Readonly<Record<string, number>> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, dccp: 33, udplite: 136 };

function num(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : null;
}

function canonicalAddr(text: string | undefined): string {
  if (text === undefined) return '';
  return parseAddress(text)?.text ?? '';
}

/** Parses the header fields of a `packet:` line. */
export function parsePacketFields(rest: string): NfPacketHeaders {
  const dev = (which: 'iif' | 'oif'): string | null => {
    const m = new RegExp(`(?:^|\\s)${which} (?:"([^"]*)"|(\\S+))`).exec(rest);
    return m ? (m[1] ?? m[2] ?? null) : null;
  };
  let family: 0 | 4 | 6 = 0;
  let src = '';
  let dst = '';
  const v4s = /(?:^|\s)ip saddr (\S+)/.exec(rest);
  const v6s = /(?:^|\s)ip6 saddr (\S+)/.exec(rest);
  if (v4s) {
    family = 4;
    src = canonicalAddr(v4s[1]);
    dst = canonicalAddr(/(?:^|\s)ip daddr (\S+)/.exec(rest)?.[1]);
  } else if (v6s) {
    family = 6;
    src = canonicalAddr(v6s[1]);
    dst = canonicalAddr(/(?:^|\s)ip6 daddr (\S+)/.exec(rest)?.[1]);
  }
  // The transport header names the protocol; `ip protocol` / `ip6 nexthdr` only when nft kept it.
  let proto: number;
  let sport = 0;
  let dport = 0;
  const l4 = /(?:^|\s)(tcp|udp|sctp|dccp|udplite) sport (\d+)/.exec(rest);
  if (l4) {
    proto = PROTO_BY_NAME[l4[1] ?? ''] ?? 0;
    sport = Number(l4[2]);
    dport = num(new RegExp(`(?:^|\\s)${l4[1]} dport (\\d+)`), rest) ?? 0;
  } else if (/(?:^|\s)icmpv6 type /.test(rest)) {
    proto = 58;
  } else if (/(?:^|\s)icmp type /.test(rest)) {
    proto = 1;
  } else {
    const named = /(?:^|\s)(?:ip protocol|ip6 nexthdr) (\S+)/.exec(rest)?.[1] ?? '';
    proto = PROTO_BY_NAME[named] ?? (/^\d+$/.test(named) ? Number(named) : 0);
  }
  const ipLen = family === 4 ? num(/(?:^|\s)ip length (\d+)/, rest) : null;
  const ip6Len = family === 6 ? num(/(?:^|\s)ip6 length (\d+)/, rest) : null;
  return {
    iif: dev('iif'),
    oif: dev('oif'),
    family,
    proto,
    src,
    dst,
    sport,
    dport,
    ipId: family === 4 ? (num(/(?:^|\s)ip id (\d+)/, rest) ?? 0) : 0,
    len: ipLen ?? (ip6Len !== null ? ip6Len + 40 : 0),
    tcpSeq: proto === 6 ? (num(/(?:^|\s)tcp sequence (\d+)/, rest) ?? 0) : 0,
    icmpId: proto === 1 ? (num(/(?:^|\s)icmp id (\d+)/, rest) ?? 0) : proto === 58 ? (num(/(?:^|\s)icmpv6 id (\d+)/, rest) ?? 0) : 0,
  };
}

/** Removes live counter values so a rule reads the same every time: `counter packets 3 bytes 180` → `counter`. */
export function stripCounters(rule: string): string {
  return rule.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').replace(/\s+/g, ' ').trim();
}

/** The NAT a rule applies, read from its statements (quoted strings such as comments ignored). */
export function natKindOfRule(rule: string | null): NfNatKind | null {
  if (!rule) return null;
  const bare = rule.replace(/"[^"]*"/g, '""');
  const xt = /\bxt target "?(SNAT|DNAT|MASQUERADE|REDIRECT)"?/i.exec(rule);
  if (xt) return (xt[1] ?? '').toLowerCase() as NfNatKind;
  if (/\bmasquerade\b/.test(bare)) return 'masquerade';
  if (/\bredirect\b/.test(bare)) return 'redirect';
  if (/\bsnat\b/.test(bare)) return 'snat';
  if (/\bdnat\b/.test(bare)) return 'dnat';
  return null;
}

/** Parses one line of `nft monitor trace`; null for anything else (blank lines, conntrack lines). */
export function parseTraceLine(line: string): TraceLine | null {
  const h = HEADER_RE.exec(line.trimEnd());
  if (!h) return null;
  const [, id = '', family = '', table = '', chain = '', rest = ''] = h;
  const base = { id, family, table, chain };
  if (rest.startsWith('packet: ')) return { kind: 'packet', ...base, packet: parsePacketFields(rest.slice(8)) };
  if (rest.startsWith('rule ') || rest.startsWith('unknown rule handle ')) {
    const v = /\s\(verdict ([^()]*)\)$/.exec(rest);
    if (!v) return null;
    let body = rest.slice(0, v.index);
    const verdict = (v[1] ?? '').trim();
    if (body.startsWith('unknown rule handle ')) {
      const handle = Number(body.slice('unknown rule handle '.length));
      return { kind: 'rule', ...base, rule: null, handle: Number.isSafeInteger(handle) ? handle : null, verdict };
    }
    body = body.slice(5);
    let handle: number | null = null;
    const hm = /\s# handle (\d+)$/.exec(body);
    if (hm) {
      handle = Number(hm[1]);
      body = body.slice(0, hm.index);
    }
    return { kind: 'rule', ...base, rule: stripCounters(body), handle, verdict };
  }
  if (rest.startsWith('policy ')) {
    return { kind: 'policy', ...base, verdict: (rest.slice(7).split(' ')[0] ?? '').trim() };
  }
  if (rest.startsWith('verdict ')) {
    // `verdict jump X meta mark 0x1`: the verdict is everything before a trailing meta mark.
    return { kind: 'return', ...base, verdict: rest.slice(8).replace(/\s+meta mark \S+\s*$/, '').trim() };
  }
  return null;
}

/** Which hook a chain is attached to (from the namespace's ruleset); null when not a base chain or unknown. */
export type HookResolver = (family: string, table: string, chain: string) => NfHook | null;

export interface AssemblerContext {
  readonly ns: string | null;
  readonly netns: number;
  readonly hookOf: HookResolver;
  /** Kernel-monotonic now (ns), stamped on each event. */
  readonly now: () => number;
  /** Also report steps through hoptrace's own tracing tables (tests only). */
  readonly includeOwnTables?: boolean;
}

interface TraceContext {
  packet: NfPacketHeaders;
  hook: NfHook | null;
}

const MAX_TRACES = 4096;

/**
 * Turns the lines of one namespace's monitor into events: each step gets the headers of its
 * trace's latest `packet:` line and the hook of its base chain (chains jumped to inherit it).
 */
export class TraceAssembler {
  private readonly traces = new Map<string, TraceContext>();
  /** Lines that were not trace lines (for diagnostics). */
  skipped = 0;

  constructor(private readonly ctx: AssemblerContext) {}

  /** Feeds one line; returns the event it completes, if any. */
  push(line: string): NetfilterEvent | null {
    const parsed = parseTraceLine(line);
    if (!parsed) {
      if (line.trim() !== '') this.skipped++;
      return null;
    }
    const own = isTraceFamily(parsed.family) && HOPTRACE_TABLE_RE.test(parsed.table) && !this.ctx.includeOwnTables;
    const baseHook = this.ctx.hookOf(parsed.family, parsed.table, parsed.chain) ?? hookOfIptablesChain(parsed.chain);
    if (parsed.kind === 'packet') {
      const prev = this.traces.get(parsed.id);
      this.remember(parsed.id, { packet: parsed.packet, hook: baseHook ?? prev?.hook ?? null });
      return null;
    }
    const trace = this.traces.get(parsed.id);
    if (own) return null;
    const hook: NfHook = baseHook ?? trace?.hook ?? 'unknown';
    const rule = parsed.kind === 'rule' ? parsed.rule : null;
    return {
      ns: this.ctx.ns,
      netns: this.ctx.netns,
      t: this.ctx.now(),
      traceId: parsed.id,
      family: parsed.family,
      table: parsed.table,
      chain: parsed.chain,
      hook,
      type: parsed.kind,
      rule,
      handle: parsed.kind === 'rule' ? parsed.handle : null,
      verdict: parsed.verdict,
      nat: natKindOfRule(rule),
      packet: trace?.packet ?? EMPTY_HEADERS,
    };
  }

  private remember(id: string, t: TraceContext): void {
    this.traces.delete(id);
    this.traces.set(id, t);
    if (this.traces.size > MAX_TRACES) {
      const oldest = this.traces.keys().next();
      if (!oldest.done) this.traces.delete(oldest.value);
    }
  }
}
