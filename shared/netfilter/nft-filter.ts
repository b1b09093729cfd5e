/**
 * Compiles a parsed `--filter` (shared/filter AST) into the nft table hoptrace adds to each
 * traced namespace to switch on `meta nftrace` for matching packets. The text is generated only
 * from the AST's validated values (addresses re-parsed here, ports and prefixes range-checked),
 * never from what the user typed.
 *
 * nft rules are conjunctions, so the filter is put in disjunctive normal form: one rule per
 * conjunction, each `goto`ing a chain that applies the rate limit and sets nftrace. Families are
 * tracked per conjunction: nft refuses a rule that names both `ip` and `ip6` fields, and such a
 * conjunction could never match anyway.
 *
 * Two passes are made in each namespace:
 * - at priority -350 (before raw, conntrack and NAT) on prerouting and output, the packet's own
 *   headers are matched;
 * - at priority -160 (after conntrack, before DNAT) the filter's addresses and ports are also
 *   matched against the connection's original and reply tuples, so packets of a NATed flow are
 *   traced even where their headers still show (or already show) the other side of the NAT — the
 *   same reason the probes remember flows. The first packet of a connection is only traced there
 *   if its own headers match, since conntrack has no reply tuple for it yet.
 *
 * Namespaces with a bridge also get a `bridge` family table of the same name: frames bridged
 * between two ports of one bridge never reach the inet hooks (unless br_netfilter hands them
 * over), so rules in `table bridge ...` chains would otherwise go untraced. Its chains hook the
 * bridge's prerouting (frames from a port) and output (frames the host sends out through the
 * bridge) at -350, before the bridge's dstnat (-300) and filter (-200) priorities
 * (`enum nf_br_hook_priorities`, include/uapi/linux/netfilter_bridge.h), and match the same
 * conjunctions on the frame's IP header: `meta nfproto` is always `bridge` there, so the family
 * tests become `meta protocol ip`/`ip6` (the ethertype), and only IP frames are ever traced —
 * ARP and STP carry nothing the correlation could attach to a packet. The bridge family has no
 * conntrack pass (its conntrack is a separate module, and bridged NAT is rare).
 */
import type { FilterAst, FilterExpr, FilterPrimitive, IpFamily } from '../filter/ast.js';
import { parseAddress } from '../filter/address.js';

/** One nft match fragment and what it says about the packet's family. */
interface Fragment {
  readonly text: string;
  /** The packet must be of this family. */
  readonly fam?: IpFamily;
  /** The packet must not be of this family. */
  readonly famNot?: IpFamily;
}

type Conj = readonly Fragment[];
type Dnf = readonly Conj[];

/** Most rules one chain gets: filters that expand past this trace more (superset) instead. */
export const MAX_NFT_RULES = 64;

export class NftFilterTooComplex extends Error {
  constructor(readonly rules: number) {
    super(`the filter expands to ${rules} nft rules (more than ${MAX_NFT_RULES})`);
    this.name = 'NftFilterTooComplex';
  }
}

const L4_PORTS = 'meta l4proto { tcp, udp, sctp }';
const L4_NOT_PORTS = 'meta l4proto != { tcp, udp, sctp }';

function nfproto(f: IpFamily): Fragment {
  return { text: `meta nfproto ipv${f}`, fam: f };
}

function notNfproto(f: IpFamily): Fragment {
  return { text: `meta nfproto != ipv${f}`, famNot: f };
}

function checkPort(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`port out of range: ${n}`);
  return n;
}

/** Address (or network) text for nft, re-validated: never the user's spelling. */
function addrValue(p: Extract<FilterPrimitive, { kind: 'host' | 'net' }>): string {
  const a = parseAddress(p.addr);
  if (!a || a.family !== p.family) throw new RangeError(`filter address ${p.addr} is not IPv${p.family}`);
  if (p.kind === 'host') return a.text;
  const max = p.family === 4 ? 32 : 128;
  if (!Number.isInteger(p.prefix) || p.prefix < 0 || p.prefix > max) throw new RangeError(`bad prefix /${p.prefix}`);
  return `${a.text}/${p.prefix}`;
}

const sel = (f: IpFamily): string => (f === 4 ? 'ip' : 'ip6');

function or(...parts: Dnf[]): Dnf {
  return parts.flat();
}

function and(a: Dnf, b: Dnf): Dnf {
  const out: Conj[] = [];
  for (const x of a) for (const y of b) out.push([...x, ...y]);
  if (out.length > MAX_NFT_RULES * 8) throw new NftFilterTooComplex(out.length);
  return out;
}

const TRUE: Dnf = [[]];

/** A primitive (possibly negated) as DNF. `ct` widens positive address/port matches to both conntrack tuples. */
function literal(p: FilterPrimitive, negated: boolean, ct: boolean): Dnf {
  switch (p.kind) {
    case 'host':
    case 'net': {
      const v = addrValue(p);
      const s = sel(p.family);
      const fam = p.family;
      const match = (side: 'saddr' | 'daddr', op = ''): Fragment => ({ text: `${s} ${side} ${op}${v}`, fam });
      if (!negated) {
        if (ct) {
          return ['original', 'reply'].flatMap((dir) => ['saddr', 'daddr'].map((side) => [nfproto(fam), { text: `ct ${dir} ${s} ${side} ${v}`, fam }]));
        }
        if (p.dir === 'src') return [[nfproto(fam), match('saddr')]];
        if (p.dir === 'dst') return [[nfproto(fam), match('daddr')]];
        return [[nfproto(fam), match('saddr')], [nfproto(fam), match('daddr')]];
      }
      if (p.dir === 'src') return [[notNfproto(fam)], [nfproto(fam), match('saddr', '!= ')]];
      if (p.dir === 'dst') return [[notNfproto(fam)], [nfproto(fam), match('daddr', '!= ')]];
      return [[notNfproto(fam)], [nfproto(fam), match('saddr', '!= '), match('daddr', '!= ')]];
    }
    case 'port': {
      const n = checkPort(p.port);
      const l4: Fragment = { text: L4_PORTS };
      if (!negated) {
        if (ct) {
          return ['original', 'reply'].flatMap((dir) => ['proto-src', 'proto-dst'].map((side) => [l4, { text: `ct ${dir} ${side} ${n}` }]));
        }
        if (p.dir === 'src') return [[l4, { text: `th sport ${n}` }]];
        if (p.dir === 'dst') return [[l4, { text: `th dport ${n}` }]];
        return [[l4, { text: `th sport ${n}` }], [l4, { text: `th dport ${n}` }]];
      }
      const notL4: Fragment = { text: L4_NOT_PORTS };
      if (p.dir === 'src') return [[notL4], [l4, { text: `th sport != ${n}` }]];
      if (p.dir === 'dst') return [[notL4], [l4, { text: `th dport != ${n}` }]];
      return [[notL4], [l4, { text: `th sport != ${n}` }, { text: `th dport != ${n}` }]];
    }
    case 'proto': {
      switch (p.proto) {
        case 'tcp':
        case 'udp':
          return negated ? [[{ text: `meta l4proto != ${p.proto}` }]] : [[{ text: `meta l4proto ${p.proto}` }]];
        case 'icmp':
          return negated ? [[notNfproto(4)], [{ text: 'meta l4proto != icmp' }]] : [[nfproto(4), { text: 'meta l4proto icmp' }]];
        case 'icmp6':
          return negated ? [[notNfproto(6)], [{ text: 'meta l4proto != ipv6-icmp' }]] : [[nfproto(6), { text: 'meta l4proto ipv6-icmp' }]];
      }
      break;
    }
    case 'family':
      return negated ? [[notNfproto(p.family)]] : [[nfproto(p.family)]];
  }
  throw new RangeError('unknown filter primitive');
}

function toDnf(e: FilterExpr, negated: boolean, ct: boolean): Dnf {
  switch (e.kind) {
    case 'not':
      return toDnf(e.operand, !negated, ct);
    case 'and':
    case 'or': {
      // De Morgan: under a negation, and becomes or and vice versa.
      const conjunctive = (e.kind === 'and') !== negated;
      const parts = e.operands.map((o) => toDnf(o, negated, ct));
      return conjunctive ? parts.reduce((acc, d) => and(acc, d), TRUE) : or(...parts);
    }
    default:
      return literal(e, negated, ct);
  }
}

/** Which family's table the rules are for: `meta nfproto` only means something in inet. */
type Dialect = 'inet' | 'bridge';

/** The bridge family's stand-in for the conjunction's family tests (it always requires an IP frame). */
function bridgeProtocol(fam: IpFamily | undefined, nots: ReadonlySet<IpFamily>): string {
  if (fam !== undefined) return `meta protocol ${sel(fam)}`;
  if (nots.has(4)) return 'meta protocol ip6';
  if (nots.has(6)) return 'meta protocol ip';
  return 'meta protocol { ip, ip6 }';
}

/** Drops contradictory conjunctions, dedupes fragments, and renders each as one rule's match text. */
function render(dnf: Dnf, dialect: Dialect = 'inet'): string[] {
  const out = new Set<string>();
  for (const conj of dnf) {
    const fams = new Set(conj.flatMap((f) => (f.fam ? [f.fam] : [])));
    const nots = new Set(conj.flatMap((f) => (f.famNot ? [f.famNot] : [])));
    if (fams.size > 1) continue;
    const fam = [...fams][0];
    if (fam !== undefined && nots.has(fam)) continue;
    if (nots.has(4) && nots.has(6)) continue;
    const texts: string[] = dialect === 'bridge' ? [bridgeProtocol(fam, nots)] : [];
    for (const f of conj) {
      // A required family makes "not the other family" redundant.
      if (fam !== undefined && f.famNot !== undefined) continue;
      if (dialect === 'bridge' && f.text.startsWith('meta nfproto')) continue;
      if (!texts.includes(f.text)) texts.push(f.text);
    }
    // `udp` and `port N` together: the protocol already implies one of the port protocols.
    const named = texts.filter((t) => t === 'meta l4proto tcp' || t === 'meta l4proto udp');
    if (named.length > 1) continue;
    const kept = named.length === 1 ? texts.filter((t) => t !== L4_PORTS) : texts;
    // Protocol tests first: nft reads `ct ... proto-dst N` only after the protocol is known.
    const rank = (t: string): number => (t.startsWith('meta nfproto') || t.startsWith('meta protocol') ? 0 : t.startsWith('meta l4proto') ? 1 : 2);
    out.add(kept.map((t, i) => ({ t, i })).sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i).map((x) => x.t).join(' '));
  }
  return [...out];
}

/** Whether the filter has a positive address or port test, the only kind conntrack tuples can widen. */
function hasPositiveTupleTest(e: FilterExpr, negated: boolean): boolean {
  switch (e.kind) {
    case 'not': return hasPositiveTupleTest(e.operand, !negated);
    case 'and':
    case 'or': return e.operands.some((o) => hasPositiveTupleTest(o, negated));
    case 'host':
    case 'net':
    case 'port': return !negated;
    default: return false;
  }
}

export interface NftFilter {
  /** Match text of each rule on the packet's own headers ('' = every packet). */
  readonly packet: readonly string[];
  /** Match text of each rule on conntrack tuples; empty when the filter names no address or port. */
  readonly conntrack: readonly string[];
  /** Match text of each rule of the bridge family table: `packet`'s conjunctions on IP frames only. */
  readonly bridge: readonly string[];
  /** True when the filter was too complex and `packet` traces every packet instead (rate-limited). */
  readonly widened: boolean;
}

/** Compiles a filter AST into nft match expressions. */
export function compileToNft(ast: FilterAst): NftFilter {
  const everyIpFrame = [bridgeProtocol(undefined, new Set())];
  if (ast.kind === 'all') return { packet: [''], conntrack: [], bridge: everyIpFrame, widened: false };
  let packet: string[];
  let bridge: string[];
  try {
    const dnf = toDnf(ast, false, false);
    packet = render(dnf);
    if (packet.length > MAX_NFT_RULES) throw new NftFilterTooComplex(packet.length);
    bridge = render(dnf, 'bridge');
  } catch (err) {
    if (err instanceof NftFilterTooComplex) return { packet: [''], conntrack: [], bridge: everyIpFrame, widened: true };
    throw err;
  }
  let conntrack: string[] = [];
  if (hasPositiveTupleTest(ast, false)) {
    try {
      conntrack = render(toDnf(ast, false, true));
      if (conntrack.length > MAX_NFT_RULES) conntrack = [];
    } catch (err) {
      if (!(err instanceof NftFilterTooComplex)) throw err;
      conntrack = [];
    }
  }
  return { packet, conntrack, bridge, widened: false };
}

/** Table names hoptrace owns: `hoptrace` or `hoptrace_<pid>_<n>`. Anything else is never touched. */
export const HOPTRACE_TABLE_RE = /^hoptrace(?:_(\d{1,10})_(\d{1,6}))?$/;

/** Families hoptrace adds tracing tables in (each namespace: inet; with a bridge, bridge too). */
export const TRACE_FAMILIES = ['inet', 'bridge'] as const;
export type TraceFamily = (typeof TRACE_FAMILIES)[number];

export function isTraceFamily(f: string): f is TraceFamily {
  return (TRACE_FAMILIES as readonly string[]).includes(f);
}

export interface TraceTableOptions {
  /** Table name, matching HOPTRACE_TABLE_RE. */
  readonly name: string;
  /** Family of the table (default inet): `bridge` traces frames on bridge hooks with `NftFilter.bridge`. */
  readonly family?: TraceFamily;
  /** Packets per second that may be traced in this namespace (the limit nft applies). */
  readonly ratePerSecond: number;
  /** Comment stored on the table: who owns it, so a later run can tell a leftover from a live one. */
  readonly owner: { readonly pid: number; readonly startTime: number };
}

/**
 * Priority of the chains that match packet headers: before raw (-300), conntrack (-200) and NAT;
 * in the bridge family before dstnat (-300) and filter (-200), and br_netfilter's hand-over (0).
 */
export const EARLY_PRIORITY = -350;
/** Priority of the chains that match conntrack tuples: after conntrack (-200), before mangle (-150) and DNAT (-100). */
export const CONNTRACK_PRIORITY = -160;

function checkName(name: string): string {
  if (!HOPTRACE_TABLE_RE.test(name)) throw new RangeError(`not a hoptrace table name: ${name}`);
  return name;
}

/** The nft script (for `nft -f -`) that creates the tracing table. */
export function buildTraceTable(filter: NftFilter, opts: TraceTableOptions): string {
  const name = checkName(opts.name);
  const rate = Math.floor(opts.ratePerSecond);
  if (!Number.isSafeInteger(rate) || rate < 1 || rate > 1_000_000) throw new RangeError(`bad trace rate ${opts.ratePerSecond}`);
  const burst = Math.max(5, Math.min(rate, 1000));
  const { pid, startTime } = opts.owner;
  if (!Number.isSafeInteger(pid) || pid < 1 || !Number.isSafeInteger(startTime) || startTime < 0) throw new RangeError('bad owner');
  const rules = (matches: readonly string[], target: string): string[] => matches.map((m) => `    ${m ? `${m} ` : ''}goto ${target}`);
  const limiter = (chain: string): string[] => [
    `  chain ${chain} {`,
    `    limit rate ${rate}/second burst ${burst} packets meta nftrace set 1`,
    '  }',
  ];
  const base = (chain: string, hook: string, prio: number, body: string[]): string[] => [
    `  chain ${chain} {`,
    `    type filter hook ${hook} priority ${prio}; policy accept;`,
    ...body,
    '  }',
  ];
  const family = opts.family ?? 'inet';
  if (!isTraceFamily(family)) throw new RangeError(`not a trace table family: ${String(family)}`);
  const matches = family === 'bridge' ? filter.bridge : filter.packet;
  const lines = [
    `table ${family} ${name} {`,
    `  comment "hoptrace pid ${pid} start ${startTime}"`,
    ...limiter('settrace'),
    ...base('pre', 'prerouting', EARLY_PRIORITY, rules(matches, 'settrace')),
    ...base('out', 'output', EARLY_PRIORITY, rules(matches, 'settrace')),
  ];
  if (family === 'inet' && filter.conntrack.length > 0) {
    // The kernel cannot match on nftrace (only set it), so a packet already traced at -350 passes
    // this second limiter too: each has its own budget, and setting nftrace twice is harmless.
    lines.push(
      ...limiter('settrace_ct'),
      ...base('pre_ct', 'prerouting', CONNTRACK_PRIORITY, rules(filter.conntrack, 'settrace_ct')),
      ...base('out_ct', 'output', CONNTRACK_PRIORITY, rules(filter.conntrack, 'settrace_ct')),
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Reads the owner back from a table comment written by buildTraceTable. */
export function parseTableOwner(comment: string | undefined): { pid: number; startTime: number } | null {
  const m = /^hoptrace pid (\d+) start (\d+)$/.exec(comment ?? '');
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : null;
}
