/**
 * Evaluates one netfilter hook of one namespace for one packet: every base chain on that hook
 * (ip/ip6 and inet families) in priority order, jumps and gotos followed, NAT applied.
 * Only matches the model understands are evaluated; a rule with any other match is assumed not
 * to match, and that assumption is reported so the path can say it guessed.
 */
import type { IpFamily, NamespaceModel, NfAction, NfChain, NfHook, NfMatch, NfRule } from './model.js';
import { addrSpecContains, parseAddr } from './ip.js';
import { actionText } from './nf-text.js';
import { ownsAddress } from './routing.js';
import { hasPorts } from './proto.js';

export interface PacketState {
  readonly family: IpFamily;
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /**
   * The packet's mark (skb->mark) and its connection's (ct mark); absent means 0. Rules set
   * them for later rules to test (netavark's and kube-proxy's masquerade marks); the packet
   * mark is cleared as it crosses into another namespace, the connection's stays with conntrack.
   */
  readonly mark?: number;
  readonly ctmark?: number;
}

/** A rule (or chain policy) that changed the packet or decided its fate. */
export interface AppliedRule {
  readonly hook: NfHook;
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  /** Chain type: filter, nat, route. */
  readonly type: string | null;
  /** nft rule handle; null for a chain policy. */
  readonly handle: number | null;
  /** The rule's text (iptables-save line or nft syntax), or `policy drop`. */
  readonly rule: string;
  /** What it did: drop, reject, `dnat to 10.0.0.2:80`, `masquerade to 10.0.0.1`... */
  readonly verdict: string;
}

export interface HookContext {
  readonly ns: NamespaceModel;
  readonly hook: NfHook;
  /** Input/output interface names as netfilter sees them; null where the hook has none. */
  readonly iif: string | null;
  readonly oif: string | null;
  /** Conntrack state assumed for the packet. NAT rules are only consulted for new connections. */
  readonly ctState: 'new' | 'established';
  /** True when NAT was already decided for this connection (e.g. the loopback re-entry). */
  readonly skipNat: boolean;
  /** The address MASQUERADE picks on `oif` (the route's preferred source). */
  readonly masqueradeSource: (oif: string | null) => string | null;
  /**
   * Decides a `statistic` match (the simulator walks each outcome as an alternative path);
   * without it the match is assumed to hit.
   */
  readonly choose?: (probability: number, rule: NfRule) => boolean;
}

export interface HookResult {
  readonly verdict: 'accept' | 'drop';
  readonly packet: PacketState;
  readonly applied: readonly AppliedRule[];
  /** Why the outcome may be wrong (unknown matches that could have changed it...). */
  readonly guesses: readonly string[];
  /** The rule that dropped the packet, when it was dropped. */
  readonly dropBy: AppliedRule | null;
  /** A ctstate match or NAT rule was consulted: the result depends on the assumed ct state. */
  readonly dependsOnCt: boolean;
}

const HOOK_NAMES: Record<NfHook, string> = {
  PREROUTING: 'prerouting', INPUT: 'input', FORWARD: 'forward', OUTPUT: 'output', POSTROUTING: 'postrouting',
};

function chainFamilies(family: IpFamily): readonly string[] {
  return family === 4 ? ['ip', 'inet'] : ['ip6', 'inet'];
}

type Tri = true | false | 'unknown';

function ifaceMatches(pattern: string, name: string | null): boolean {
  if (name === null) return false;
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

function isMulticast(text: string): boolean {
  const a = parseAddr(text);
  return a !== null && (addrSpecContains('224.0.0.0/4', a) || addrSpecContains('ff00::/8', a));
}

function evalMatch(m: NfMatch, p: PacketState, ctx: HookContext, st: { dependsOnCt: boolean }, rule: NfRule): Tri {
  switch (m.kind) {
    case 'addr': {
      if (m.family !== p.family) return false;
      const a = parseAddr(m.field === 'saddr' ? p.src : p.dst);
      if (!a) return 'unknown';
      const hit = m.values.some((v) => addrSpecContains(v, a));
      return hit !== m.neg;
    }
    case 'port': {
      if (m.proto !== null ? m.proto !== p.proto : !hasPorts(p.proto)) return false;
      const v = m.field === 'sport' ? p.sport : p.dport;
      const hit = m.ranges.some(([lo, hi]) => v >= lo && v <= hi);
      return hit !== m.neg;
    }
    case 'l4proto':
      return m.protos.includes(p.proto) !== m.neg;
    case 'iface': {
      const name = m.field === 'iifname' ? ctx.iif : ctx.oif;
      const hit = m.names.some((n) => ifaceMatches(n, name));
      return hit !== m.neg;
    }
    case 'ctstate':
      st.dependsOnCt = true;
      return m.states.includes(ctx.ctState) !== m.neg;
    case 'family':
      return m.families.includes(p.family);
    case 'addrtype': {
      const addr = m.field === 'saddr' ? p.src : p.dst;
      let hit: boolean;
      const types = m.types.map((t) => t.toLowerCase());
      if (types.every((t) => t === 'local' || t === 'unicast' || t === 'multicast')) {
        const local = ownsAddress(ctx.ns, addr);
        const mc = isMulticast(addr);
        hit = types.some((t) => (t === 'local' ? local : t === 'multicast' ? mc : !mc));
      } else {
        return 'unknown';
      }
      return hit !== m.neg;
    }
    case 'mark': {
      const v = (m.of === 'packet' ? p.mark ?? 0 : p.ctmark ?? 0) >>> 0;
      return (((v & m.mask) >>> 0) === (m.value >>> 0)) !== m.neg;
    }
    case 'statistic': {
      const hit = ctx.choose ? ctx.choose(m.neg ? 1 - m.probability : m.probability, rule) : true;
      return hit;
    }
    case 'unknown':
      return 'unknown';
  }
}

/** mark = (mark & ~mask) ^ value, on 32 bits. */
function xmark(mark: number, value: number, mask: number): number {
  return (((mark & ~mask) >>> 0) ^ value) >>> 0;
}

function applyMark(a: Extract<NfAction, { kind: 'mark' }>, p: PacketState): PacketState {
  const cur = a.of === 'packet' ? p.mark ?? 0 : p.ctmark ?? 0;
  const value = a.from ? (((a.from.of === 'packet' ? p.mark ?? 0 : p.ctmark ?? 0) & a.from.mask) >>> 0) : a.value;
  const next = xmark(cur, value, a.mask);
  return a.of === 'packet' ? { ...p, mark: next } : { ...p, ctmark: next };
}

interface ChainOutcome {
  /** 'return' means the chain ran out (base chain: apply the policy). */
  kind: 'accept' | 'drop' | 'return' | 'nat';
}

interface EvalState {
  packet: PacketState;
  applied: AppliedRule[];
  guesses: string[];
  dropBy: AppliedRule | null;
  dependsOnCt: boolean;
  natDone: boolean;
}

function applyNat(a: NfAction, s: EvalState, ctx: HookContext): string | null {
  const p = s.packet;
  const ports = hasPorts(p.proto);
  switch (a.kind) {
    case 'dnat':
      s.packet = { ...p, dst: a.addr ?? p.dst, dport: ports && a.port !== null ? a.port : p.dport };
      return actionText(a);
    case 'snat':
      s.packet = { ...p, src: a.addr ?? p.src, sport: ports && a.port !== null ? a.port : p.sport };
      return actionText(a);
    case 'masquerade': {
      const src = ctx.masqueradeSource(ctx.oif);
      if (src === null) {
        s.guesses.push(`masquerade on ${ctx.oif ?? '?'}: no address of the packet's family there; source left unchanged`);
        return 'masquerade';
      }
      s.packet = { ...p, src };
      return `masquerade to ${src}`;
    }
    case 'redirect': {
      // REDIRECT sends to the primary address of the incoming interface, or loopback for local traffic.
      const local = ctx.hook === 'OUTPUT'
        ? (p.family === 4 ? '127.0.0.1' : '::1')
        : (ctx.masqueradeSource(ctx.iif) ?? p.dst);
      s.packet = { ...p, dst: local, dport: ports && a.port !== null ? a.port : p.dport };
      return `redirect to ${local}${ports && a.port !== null ? `:${a.port}` : ''}`;
    }
    default:
      return null;
  }
}

function evalChain(
  nsRules: readonly NfRule[],
  chains: readonly NfChain[],
  chain: NfChain,
  base: NfChain,
  ctx: HookContext,
  s: EvalState,
  depth: number,
): ChainOutcome {
  if (depth > 32) {
    s.guesses.push(`${chain.family} ${chain.table} ${chain.name}: jumps nest deeper than 32; stopped following`);
    return { kind: 'return' };
  }
  const rules = nsRules.filter((r) => r.family === chain.family && r.table === chain.table && r.chain === chain.name);
  for (const rule of rules) {
    let result: Tri = true;
    const unknown: string[] = [];
    for (const m of rule.matches) {
      const r = evalMatch(m, s.packet, ctx, s, rule);
      if (r === false) {
        result = false;
        break;
      }
      if (r === 'unknown') {
        result = 'unknown';
        unknown.push(m.kind === 'unknown' ? m.text : m.kind);
      }
    }
    if (result === false) continue;
    const a = rule.action;
    if (result === 'unknown') {
      // Only say so when the rule could have changed something.
      if (a.kind !== 'continue') {
        s.guesses.push(`${ctx.hook} ${rule.family} ${rule.table} ${rule.chain}: rule "${rule.text}" uses ${unknown.join(', ')}, which the model does not evaluate; assumed it does not match`);
      }
      continue;
    }
    const applied = (verdict: string): AppliedRule => ({
      hook: ctx.hook, family: rule.family, table: rule.table, chain: rule.chain, type: base.type, handle: rule.handle, rule: rule.text, verdict,
    });
    switch (a.kind) {
      case 'accept':
        return { kind: 'accept' };
      case 'drop':
      case 'reject': {
        const ar = applied(a.kind);
        s.applied.push(ar);
        s.dropBy = ar;
        return { kind: 'drop' };
      }
      case 'return':
        return { kind: 'return' };
      case 'continue':
        continue;
      case 'mark':
        s.packet = applyMark(a, s.packet);
        continue;
      case 'numgen':
      case 'jump':
      case 'goto': {
        // numgen: each verdict in turn with its share of what is left (1/n, 1/(n-1), ... 1),
        // as kube-proxy's iptables mode writes its statistic rules; the simulator walks each.
        let jump: { kind: 'jump' | 'goto'; target: string } = a.kind === 'numgen' ? { kind: 'goto', target: '' } : a;
        if (a.kind === 'numgen') {
          let left = 1;
          for (const [k, c] of a.choices.entries()) {
            const last = k === a.choices.length - 1;
            const p = last ? 1 : Math.min(1, c.share / left);
            if (last || (ctx.choose ? ctx.choose(p, rule) : true)) {
              jump = { kind: c.verdict, target: c.target };
              break;
            }
            left -= c.share;
          }
        }
        const target = chains.find((c) => c.family === chain.family && c.table === chain.table && c.name === jump.target);
        if (!target) {
          s.guesses.push(`${ctx.hook}: rule "${rule.text}" jumps to missing chain ${jump.target}`);
          continue;
        }
        const r = evalChain(nsRules, chains, target, base, ctx, s, depth + 1);
        if (r.kind !== 'return') return r;
        if (jump.kind === 'goto') return { kind: 'return' };
        continue;
      }
      case 'dnat':
      case 'snat':
      case 'masquerade':
      case 'redirect': {
        if (base.type !== 'nat') {
          s.guesses.push(`${ctx.hook}: NAT rule "${rule.text}" in a ${base.type ?? 'non-nat'} chain ignored`);
          continue;
        }
        s.dependsOnCt = true;
        const verdict = applyNat(a, s, ctx);
        if (verdict !== null) s.applied.push(applied(verdict));
        return { kind: 'nat' };
      }
      case 'unknown':
        s.guesses.push(`${ctx.hook} ${rule.family} ${rule.table} ${rule.chain}: rule "${rule.text}" ends in ${a.text}, which the model does not follow; assumed the packet goes on`);
        continue;
    }
  }
  return { kind: 'return' };
}

/**
 * Tables `hoptrace trace --netfilter` adds while it runs (server/netfilter/tracer.ts): they only
 * set nftrace, rate-limited, and never decide a verdict, so the path ignores them rather than
 * report a guess for their limit matches on every packet.
 */
export function isTracerTable(table: string): boolean {
  return table.startsWith('hoptrace_');
}

/** Runs every base chain of `ctx.hook` for the packet. */
export function runHook(ctx: HookContext, packet: PacketState): HookResult {
  const nf = ctx.ns.netfilter;
  const families = chainFamilies(packet.family);
  const hookName = HOOK_NAMES[ctx.hook];
  const bases = nf.chains
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.hook === hookName && families.includes(c.family) && !isTracerTable(c.table))
    .sort((x, y) => (x.c.prio ?? 0) - (y.c.prio ?? 0) || x.i - y.i)
    .map(({ c }) => c);
  const s: EvalState = { packet, applied: [], guesses: [], dropBy: null, dependsOnCt: false, natDone: false };
  for (const base of bases) {
    if (base.type === 'nat') {
      // NAT chains only see the first packet of a connection, and once a chain has mapped it
      // the later NAT chains of the hook are skipped (nf_nat_inet_fn).
      if (ctx.skipNat || ctx.ctState !== 'new' || s.natDone) continue;
    }
    const r = evalChain(nf.rules, nf.chains, base, base, ctx, s, 0);
    if (r.kind === 'drop') return { verdict: 'drop', ...result(s) };
    if (r.kind === 'nat') s.natDone = true;
    if (r.kind === 'return' && base.policy === 'drop') {
      const ar: AppliedRule = {
        hook: ctx.hook, family: base.family, table: base.table, chain: base.name, type: base.type, handle: null, rule: 'policy drop', verdict: 'drop',
      };
      s.applied.push(ar);
      s.dropBy = ar;
      return { verdict: 'drop', ...result(s) };
    }
  }
  return { verdict: 'accept', ...result(s) };
}

function result(s: EvalState): Omit<HookResult, 'verdict'> {
  return { packet: s.packet, applied: s.applied, guesses: s.guesses, dropBy: s.dropBy, dependsOnCt: s.dependsOnCt };
}
