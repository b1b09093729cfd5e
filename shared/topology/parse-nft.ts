/**
 * Mapper from `nft -j list ruleset` (JSON schema 1, nftables 1.0.6) to model chains and rules.
 * Matches the simulator evaluates (addresses, ports, protocol, interface names, ct state,
 * family) are normalised; everything else is kept as an `unknown` match or action with its
 * text, so the simulator can say it guessed. iptables-nft rules carry `xt` expressions that
 * nft cannot describe; their indexes are returned so iptables-save can fill them in.
 */
import type { IpFamily, NfAction, NfChain, NfFamily, NfMatch, NfRule, Netfilter } from './model.js';
import { ruleText } from './nf-text.js';
import { protoNumber } from './proto.js';

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FAMILIES: ReadonlySet<string> = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

export interface NftParse {
  readonly netfilter: Netfilter;
  /** Indexes into netfilter.rules of rules that contain iptables `xt` expressions. */
  readonly xtRules: readonly number[];
}

type SetMap = Map<string, unknown[]>;

/** Flattens an nft JSON right-hand side into a list of scalar-ish values (strings, numbers, ranges, prefixes). */
function values(right: unknown, sets: SetMap, table: string): unknown[] | null {
  if (typeof right === 'string' && right.startsWith('@')) {
    return sets.get(`${table}\u0000${right.slice(1)}`) ?? null;
  }
  if (Array.isArray(right)) return right.flatMap((v) => values(v, sets, table) ?? [v]);
  if (isObj(right) && Array.isArray(right.set)) return right.set.flatMap((v) => values(v, sets, table) ?? [v]);
  if (isObj(right) && isObj(right.elem)) return [right.elem.val];
  return [right];
}

function addrValue(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObj(v) && isObj(v.prefix) && typeof v.prefix.addr === 'string' && typeof v.prefix.len === 'number') {
    return `${v.prefix.addr}/${v.prefix.len}`;
  }
  if (isObj(v) && Array.isArray(v.range) && typeof v.range[0] === 'string' && typeof v.range[1] === 'string') {
    return `${v.range[0]}-${v.range[1]}`;
  }
  return null;
}

function portRange(v: unknown): [number, number] | null {
  if (typeof v === 'number') return [v, v];
  if (typeof v === 'string' && /^\d+$/.test(v)) return [Number(v), Number(v)];
  if (isObj(v) && Array.isArray(v.range) && typeof v.range[0] === 'number' && typeof v.range[1] === 'number') {
    return [v.range[0], v.range[1]];
  }
  return null;
}

function allOrNull<T>(list: unknown[] | null, f: (v: unknown) => T | null): T[] | null {
  if (!list) return null;
  const out: T[] = [];
  for (const v of list) {
    const x = f(v);
    if (x === null) return null;
    out.push(x);
  }
  return out;
}

function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** nft-like text for an expression the model does not evaluate (`meta mark 2`, `ip daddr . tcp dport`). */
function exprText(e: unknown): string {
  if (isObj(e)) {
    if (isObj(e.payload)) return `${String(e.payload.protocol ?? e.payload.base ?? '?')} ${String(e.payload.field ?? e.payload.offset ?? '?')}`;
    if (isObj(e.meta)) return `meta ${String(e.meta.key)}`;
    if (isObj(e.ct)) return `ct ${e.ct.dir !== undefined ? `${String(e.ct.dir)} ` : ''}${String(e.ct.key)}`;
    if (isObj(e.fib)) return `fib ${Array.isArray(e.fib.flags) ? e.fib.flags.join(' . ') : ''} ${String(e.fib.result)}`;
    if (Array.isArray(e.set)) return `{ ${e.set.map(exprText).join(', ')} }`;
    if (Array.isArray(e.concat)) return e.concat.map(exprText).join(' . ');
    if (isObj(e.map)) return `${exprText(e.map.key)} map ${exprText(e.map.data)}`;
    if (isObj(e.prefix)) return `${String(e.prefix.addr)}/${String(e.prefix.len)}`;
    if (Array.isArray(e.range)) return e.range.map(exprText).join('-');
    if (isObj(e.elem)) return exprText(e.elem.val);
    // A verdict inside a map: {"drop": null}, {"jump": {"target": "x"}}.
    const keys = Object.keys(e);
    if (keys.length === 1 && keys[0] !== undefined && ['accept', 'drop', 'continue', 'return', 'jump', 'goto'].includes(keys[0])) {
      const body = e[keys[0]];
      return isObj(body) && typeof body.target === 'string' ? `${keys[0]} ${body.target}` : keys[0];
    }
  }
  // A map element: [key, value].
  if (Array.isArray(e) && e.length === 2) return `${exprText(e[0])} : ${exprText(e[1])}`;
  if (typeof e === 'string') return e.startsWith('@') || /^[\w.:/-]+$/.test(e) ? e : `"${e}"`;
  if (typeof e === 'number') return String(e);
  return short(e);
}

/** nft-like text for a statement the model does not follow (`limit rate 10/second`, `iifname vmap { ... }`). */
function statementText(key: string, body: unknown): string {
  if (key === 'vmap' && isObj(body)) return `${exprText(body.key)} vmap ${exprText(body.data)}`;
  if (key === 'limit' && isObj(body)) return `limit rate ${String(body.rate)}/${String(body.per)}`;
  if ((key === 'dnat' || key === 'snat') && isObj(body)) {
    const parts = [body.addr !== undefined ? exprText(body.addr) : '', body.port !== undefined ? exprText(body.port) : ''].filter((x) => x !== '');
    return `${key} ${typeof body.family === 'string' ? `${body.family} ` : ''}to ${parts.join(' : ')}`;
  }
  return `${key} ${short(body)}`;
}

/** `meta mark` → packet, `ct mark` → conn, anything else null. */
function markKey(e: unknown): 'packet' | 'conn' | null {
  if (isObj(e) && isObj(e.meta) && e.meta.key === 'mark') return 'packet';
  if (isObj(e) && isObj(e.ct) && e.ct.key === 'mark' && e.ct.dir === undefined) return 'conn';
  return null;
}

function u32(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v >>> 0 : null;
}

/** `meta mark 0x2000`, `ct mark & 0x4000 == 0x4000` (and !=) as a mark match; null otherwise. */
function markMatch(m: Json): NfMatch | null {
  const op = m.op;
  if (op !== '==' && op !== '!=') return null;
  let of = markKey(m.left);
  let mask = 0xffffffff;
  if (!of && isObj(m.left) && Array.isArray(m.left['&']) && m.left['&'].length === 2) {
    of = markKey(m.left['&'][0]);
    const mk = u32(m.left['&'][1]);
    if (mk === null) return null;
    mask = mk;
  }
  const value = u32(m.right);
  if (!of || value === null) return null;
  return { kind: 'mark', of, neg: op === '!=', value: (value & mask) >>> 0, mask };
}

/**
 * `meta mark set 0x2000`, `meta mark set meta mark | 0x4000` (also & and ^), `ct mark set
 * meta mark`, `meta mark set ct mark` as a mark action; null for anything computed otherwise.
 */
function markSet(body: unknown): NfAction | null {
  if (!isObj(body)) return null;
  const of = markKey(body.key);
  if (!of) return null;
  const v = body.value;
  const n = u32(v);
  if (n !== null) return { kind: 'mark', of, value: n, mask: 0xffffffff };
  const other = markKey(v);
  if (other && other !== of) return { kind: 'mark', of, value: 0, mask: 0xffffffff, from: { of: other, mask: 0xffffffff } };
  if (isObj(v)) {
    for (const [opKey, make] of [
      ['|', (x: number) => ({ value: x, mask: x })],
      ['&', (x: number) => ({ value: 0, mask: (~x) >>> 0 })],
      ['^', (x: number) => ({ value: x, mask: 0 })],
    ] as const) {
      const args = v[opKey];
      if (Array.isArray(args) && args.length === 2 && markKey(args[0]) === of) {
        const x = u32(args[1]);
        if (x !== null) return { kind: 'mark', of, ...make(x) };
      }
    }
  }
  return null;
}

/**
 * `numgen random mod N [offset O] vmap { O : goto a, ... }` with a jump or goto for every value:
 * the endpoint choice of kube-proxy's nftables mode. Null for any other vmap (an interface
 * vmap, a numgen value without a verdict...).
 */
function numgenVmap(body: unknown): NfAction | null {
  if (!isObj(body) || !isObj(body.key) || !isObj(body.key.numgen)) return null;
  const ng = body.key.numgen;
  const mod = ng.mod;
  const offset = typeof ng.offset === 'number' ? ng.offset : 0;
  if (ng.mode !== 'random' || typeof mod !== 'number' || !Number.isInteger(mod) || mod < 1 || mod > 4096) return null;
  const elems = isObj(body.data) && Array.isArray(body.data.set) ? body.data.set : null;
  if (!elems) return null;
  const byValue = new Map<number, { verdict: 'jump' | 'goto'; target: string }>();
  for (const e of elems) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'number' || !isObj(e[1])) return null;
    const v = e[1];
    const kind = isObj(v.goto) ? 'goto' : isObj(v.jump) ? 'jump' : null;
    const target = kind ? (v[kind] as Json).target : null;
    if (!kind || typeof target !== 'string') return null;
    byValue.set(e[0], { verdict: kind, target });
  }
  const choices = [];
  for (let i = 0; i < mod; i++) {
    const c = byValue.get(i + offset);
    if (!c) return null;
    choices.push({ share: 1 / mod, ...c });
  }
  return { kind: 'numgen', choices };
}

function parseMatch(m: Json, sets: SetMap, table: string): NfMatch {
  const mark = markMatch(m);
  if (mark) return mark;
  const op = m.op;
  const unknown: NfMatch = { kind: 'unknown', text: `${exprText(m.left)}${op === '==' || op === 'in' ? '' : ` ${String(op)}`} ${exprText(m.right)}` };
  if (op !== '==' && op !== '!=' && op !== 'in') return unknown;
  const neg = op === '!=';
  const left = m.left;
  const vals = values(m.right, sets, table);
  if (!isObj(left)) return unknown;
  if (isObj(left.payload)) {
    const { protocol, field } = left.payload;
    if ((protocol === 'ip' || protocol === 'ip6') && (field === 'saddr' || field === 'daddr')) {
      const addrs = allOrNull(vals, addrValue);
      if (!addrs) return unknown;
      return { kind: 'addr', field, family: protocol === 'ip' ? 4 : 6, neg, values: addrs };
    }
    if ((protocol === 'ip' && field === 'protocol') || (protocol === 'ip6' && field === 'nexthdr')) {
      const protos = allOrNull(vals, (v) => (typeof v === 'string' || typeof v === 'number' ? protoNumber(v) : null));
      if (!protos) return unknown;
      // `ip protocol tcp` also says the packet is IPv4; the family check lives in the chain's family.
      return { kind: 'l4proto', neg, protos };
    }
    if (typeof protocol === 'string' && (field === 'sport' || field === 'dport')) {
      const proto = protocol === 'th' ? null : protoNumber(protocol);
      if (protocol !== 'th' && proto === null) return unknown;
      const ranges = allOrNull(vals, portRange);
      if (!ranges) return unknown;
      return { kind: 'port', field, proto, neg, ranges };
    }
    return unknown;
  }
  if (isObj(left.meta)) {
    const key = left.meta.key;
    if (key === 'iifname' || key === 'oifname' || key === 'iif' || key === 'oif') {
      const names = allOrNull(vals, (v) => (typeof v === 'string' ? v : null));
      if (!names) return unknown;
      return { kind: 'iface', field: key === 'iif' || key === 'iifname' ? 'iifname' : 'oifname', neg, names };
    }
    if (key === 'l4proto') {
      const protos = allOrNull(vals, (v) => (typeof v === 'string' || typeof v === 'number' ? protoNumber(v) : null));
      if (!protos) return unknown;
      return { kind: 'l4proto', neg, protos };
    }
    if (key === 'nfproto' || key === 'protocol') {
      const fams = allOrNull(vals, (v): IpFamily | null => (v === 'ipv4' || v === 'ip' ? 4 : v === 'ipv6' || v === 'ip6' ? 6 : null));
      if (!fams) return unknown;
      const families = neg ? ([4, 6] as IpFamily[]).filter((f) => !fams.includes(f)) : fams;
      return { kind: 'family', families };
    }
    return unknown;
  }
  if (isObj(left.fib) && left.fib.result === 'type' && Array.isArray(left.fib.flags) && left.fib.flags.length === 1) {
    const field = left.fib.flags[0];
    const types = allOrNull(vals, (v) => (typeof v === 'string' ? v : null));
    if (!types || (field !== 'saddr' && field !== 'daddr')) return unknown;
    return { kind: 'addrtype', field, neg, types };
  }
  if (isObj(left.ct) && left.ct.key === 'state' && left.ct.dir === undefined) {
    const states = allOrNull(vals, (v) => (typeof v === 'string' ? v : null));
    if (!states) return unknown;
    return { kind: 'ctstate', neg, states };
  }
  return unknown;
}

/** The NAT target's first address and port; null when it is computed (a map lookup, an expression). */
function natTarget(n: Json): { addr: string | null; port: number | null } | null {
  let addr: string | null = null;
  if (typeof n.addr === 'string') addr = n.addr;
  else if (isObj(n.addr) && Array.isArray(n.addr.range) && typeof n.addr.range[0] === 'string') addr = n.addr.range[0];
  else if (isObj(n.addr) && isObj(n.addr.prefix) && typeof n.addr.prefix.addr === 'string') addr = n.addr.prefix.addr;
  else if (n.addr !== undefined) return null;
  let port: number | null = null;
  if (typeof n.port === 'number') port = n.port;
  else if (isObj(n.port) && Array.isArray(n.port.range) && typeof n.port.range[0] === 'number') port = n.port.range[0];
  else if (n.port !== undefined) return null;
  return { addr, port };
}

/** Statements that neither match nor decide: the rule goes on past them. */
const SIDE_EFFECTS: ReadonlySet<string> = new Set([
  'counter', 'log', 'mangle', 'notrack', 'set', 'map', 'flow', 'ct helper', 'ct timeout', 'ct expectation', 'secmark', 'synproxy',
]);

interface ParsedRule {
  matches: NfMatch[];
  action: NfAction;
  hasXt: boolean;
}

function parseExprs(exprs: unknown[], sets: SetMap, table: string): ParsedRule {
  const matches: NfMatch[] = [];
  let action: NfAction = { kind: 'continue' };
  let hasXt = false;
  for (const e of exprs) {
    if (!isObj(e)) continue;
    const [key] = Object.keys(e);
    if (key === undefined) continue;
    const body = e[key];
    switch (key) {
      case 'match':
        if (isObj(body)) matches.push(parseMatch(body, sets, table));
        break;
      case 'accept':
      case 'drop':
      case 'return':
      case 'continue':
        action = { kind: key };
        break;
      case 'reject':
        action = { kind: 'reject' };
        break;
      case 'jump':
      case 'goto':
        action = isObj(body) && typeof body.target === 'string'
          ? { kind: key, target: body.target }
          : { kind: 'unknown', text: `${key} ${short(body)}` };
        break;
      case 'dnat':
      case 'snat': {
        // A target computed per packet (`dnat to tcp dport map @ports`) is not followed: the
        // simulator says it guessed rather than pretend the rule maps every packet.
        const to = isObj(body) ? natTarget(body) : { addr: null, port: null };
        action = to ? { kind: key, ...to } : { kind: 'unknown', text: statementText(key, body) };
        break;
      }
      case 'masquerade':
        action = { kind: 'masquerade' };
        break;
      case 'redirect': {
        const to = isObj(body) ? natTarget(body) : { addr: null, port: null };
        action = to ? { kind: 'redirect', port: to.port } : { kind: 'unknown', text: statementText(key, body) };
        break;
      }
      case 'xt':
        hasXt = true;
        if (isObj(body) && body.type === 'target') action = { kind: 'unknown', text: `xt target ${String(body.name)}` };
        else matches.push({ kind: 'unknown', text: `xt match ${isObj(body) ? String(body.name) : '?'}` });
        break;
      case 'mangle': {
        const mk = markSet(body);
        if (mk) {
          // A mark set in the middle of a rule applies and the rule goes on; only a rule whose
          // last statement sets the mark carries it as its action (the common form).
          action = mk;
        }
        break;
      }
      case 'meta':
      case 'ct':
        // `meta mark set ...`, `ct mark set ...`: side effects (they may steer policy routing,
        // which the simulator does not follow; rules that match on marks are unknown anyway).
        break;
      case 'vmap': {
        const pick = numgenVmap(body);
        action = pick ?? { kind: 'unknown', text: statementText(key, body) };
        break;
      }
      default:
        if (SIDE_EFFECTS.has(key)) break;
        if (key === 'limit' || key === 'quota' || key === 'numgen' || key === 'meter') {
          matches.push({ kind: 'unknown', text: statementText(key, body) });
        } else {
          action = { kind: 'unknown', text: statementText(key, body) };
        }
    }
  }
  return { matches, action, hasXt };
}

/** Parses `nft -j list ruleset` output; never throws. */
export function parseNftRuleset(json: unknown, errors: string[]): NftParse {
  const items = isObj(json) && Array.isArray(json.nftables) ? json.nftables : null;
  if (!items) {
    errors.push('nft: ruleset JSON has no "nftables" array');
    return { netfilter: { chains: [], rules: [] }, xtRules: [] };
  }
  const sets: SetMap = new Map();
  for (const it of items) {
    if (!isObj(it) || !isObj(it.set)) continue;
    const s = it.set;
    if (typeof s.family === 'string' && typeof s.table === 'string' && typeof s.name === 'string' && Array.isArray(s.elem)) {
      sets.set(`${s.family}/${s.table}\u0000${s.name}`, s.elem.map((v) => (isObj(v) && isObj(v.elem) ? v.elem.val : v)));
    }
  }
  const chains: NfChain[] = [];
  const rules: NfRule[] = [];
  const xtRules: number[] = [];
  for (const it of items) {
    if (!isObj(it)) continue;
    if (isObj(it.chain)) {
      const c = it.chain;
      if (typeof c.family !== 'string' || !FAMILIES.has(c.family) || typeof c.table !== 'string' || typeof c.name !== 'string') {
        errors.push(`nft: skipped chain ${short(c)}`);
        continue;
      }
      chains.push({
        family: c.family as NfFamily,
        table: c.table,
        name: c.name,
        hook: typeof c.hook === 'string' ? c.hook : null,
        type: typeof c.type === 'string' ? c.type : null,
        prio: typeof c.prio === 'number' ? c.prio : null,
        policy: c.policy === 'drop' ? 'drop' : c.policy === 'accept' ? 'accept' : null,
      });
    } else if (isObj(it.rule)) {
      const r = it.rule;
      if (typeof r.family !== 'string' || !FAMILIES.has(r.family) || typeof r.table !== 'string' || typeof r.chain !== 'string' || !Array.isArray(r.expr)) {
        errors.push(`nft: skipped rule ${short(r)}`);
        continue;
      }
      const parsed = parseExprs(r.expr, sets, `${r.family}/${r.table}`);
      if (parsed.hasXt) xtRules.push(rules.length);
      rules.push({
        family: r.family as NfFamily,
        table: r.table,
        chain: r.chain,
        handle: typeof r.handle === 'number' ? r.handle : 0,
        matches: parsed.matches,
        action: parsed.action,
        text: ruleText(parsed.matches, parsed.action),
        origin: 'nft',
      });
    }
  }
  return { netfilter: { chains, rules }, xtRules };
}
