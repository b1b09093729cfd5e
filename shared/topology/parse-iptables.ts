/**
 * iptables-save / ip6tables-save text to model rules, and the merge into the nft view.
 * iptables-nft stores matches and targets as `xt` expressions that `nft -j` prints without
 * their arguments (`{"xt": {"type": "target", "name": "DNAT"}}`), so the DNAT address or the
 * conntrack states are only in iptables-save. Rules are matched by position in their chain:
 * iptables-save lists them in the same order the kernel (and nft) does.
 */
import type { IpFamily, NfAction, NfChain, NfMatch, NfRule, Netfilter } from './model.js';
import { protoNumber } from './proto.js';

export interface IptRule {
  readonly chain: string;
  readonly matches: readonly NfMatch[];
  readonly action: NfAction;
  readonly text: string;
}

export interface IptTable {
  /** chain → rules in order (every declared chain, rules or not). */
  readonly chains: Map<string, IptRule[]>;
  /** Built-in chains' policies; null for user chains. */
  readonly policies: Map<string, 'accept' | 'drop' | null>;
}

/** table name → table. */
export type IptTables = Map<string, IptTable>;

/** Splits a line into words, honouring the double quotes iptables-save puts around comments. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) {
        cur += line[++i];
      } else if (c === '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c === '"') {
      quoted = true;
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

function ports(spec: string): [number, number][] | null {
  const out: [number, number][] = [];
  for (const part of spec.split(',')) {
    const [a, b] = part.split(':');
    const lo = a === '' || a === undefined ? 0 : Number(a);
    const hi = b === undefined ? lo : b === '' ? 65535 : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) return null;
    out.push([lo, hi]);
  }
  return out;
}

/** `10.0.0.1:80`, `10.0.0.1-10.0.0.3:80-90`, `[fd00::1]:80`, `fd00::1`, `:80` → first address and port. */
export function parseNatTo(spec: string, family: IpFamily): { addr: string | null; port: number | null } {
  let host = spec;
  let port: string | null = null;
  if (spec.startsWith('[')) {
    const end = spec.indexOf(']');
    host = spec.slice(1, end);
    const rest = spec.slice(end + 1);
    if (rest.startsWith(':')) port = rest.slice(1);
  } else if (family === 4 || spec.startsWith(':')) {
    const colon = spec.indexOf(':');
    if (colon >= 0) {
      host = spec.slice(0, colon);
      port = spec.slice(colon + 1);
    }
  }
  const addr = host === '' ? null : (host.split('-')[0] ?? null);
  const p = port === null ? null : Number(port.split('-')[0]);
  return { addr, port: p !== null && Number.isInteger(p) ? p : null };
}

/** `0x2000/0x2000` or `0x2000` (mask all ones) → value and mask; null when unreadable. */
export function parseMarkSpec(spec: string): { value: number; mask: number } | null {
  const [v, m] = spec.split('/');
  const num = (t: string | undefined): number | null => {
    if (t === undefined || t === '' || !/^(0x[0-9a-f]+|\d+)$/i.test(t)) return null;
    const n = Number(t);
    return n >= 0 && n <= 0xffffffff ? n : null;
  };
  const value = num(v);
  const mask = m === undefined ? 0xffffffff : num(m);
  return value === null || mask === null ? null : { value: value >>> 0, mask: mask >>> 0 };
}

/** MARK and CONNMARK targets as they appear in iptables-save (which writes --or-mark as --set-xmark). */
function markTarget(target: 'MARK' | 'CONNMARK', opts: ReadonlyMap<string, string>): NfAction | null {
  const of = target === 'MARK' ? 'packet' : 'conn';
  const spec = (k: string): { value: number; mask: number } | null => {
    const v = opts.get(k);
    return v === undefined ? null : parseMarkSpec(v);
  };
  const xset = spec('--set-xmark');
  if (xset) return { kind: 'mark', of, ...xset };
  const set = spec('--set-mark');
  // --set-mark v/m: mark = (mark & ~m) | v, the same as xmark v/(m|v).
  if (set && target === 'MARK') return { kind: 'mark', of, value: set.value, mask: (set.mask | set.value) >>> 0 };
  if (set) return { kind: 'mark', of, ...set };
  const or = spec('--or-mark');
  if (or) return { kind: 'mark', of, value: or.value, mask: or.value };
  const and = spec('--and-mark');
  if (and) return { kind: 'mark', of, value: 0, mask: (~and.value) >>> 0 };
  const xor = spec('--xor-mark');
  if (xor) return { kind: 'mark', of, value: xor.value, mask: 0 };
  if (target === 'CONNMARK' && (opts.has('--save-mark') || opts.has('--restore-mark'))) {
    const both = opts.get('--mask');
    const masks = (k: string): number => {
      const v = opts.get(k) ?? both;
      return v === undefined ? 0xffffffff : (parseMarkSpec(v)?.value ?? 0xffffffff);
    };
    const nfmask = masks('--nfmask');
    const ctmask = masks('--ctmask');
    return opts.has('--save-mark')
      ? { kind: 'mark', of: 'conn', value: 0, mask: ctmask, from: { of: 'packet', mask: nfmask } }
      : { kind: 'mark', of: 'packet', value: 0, mask: nfmask, from: { of: 'conn', mask: ctmask } };
  }
  return null;
}

/** Targets that do something and let the packet go on to the next rule. */
const NON_TERMINAL = new Set(['LOG', 'NFLOG', 'MARK', 'CONNMARK', 'CT', 'NOTRACK', 'TCPMSS', 'CHECKSUM', 'DSCP', 'TOS', 'TTL', 'HL', 'CLASSIFY', 'AUDIT', 'TRACE', 'SET']);

function parseRuleLine(words: string[], family: IpFamily, chainNames: ReadonlySet<string>): { chain: string; matches: NfMatch[]; action: NfAction } | null {
  if (words[0] !== '-A' || words[1] === undefined) return null;
  const chain = words[1];
  const matches: NfMatch[] = [];
  let action: NfAction = { kind: 'continue' };
  let proto: number | null = null;
  let neg = false;
  let module = '';
  let i = 2;
  const next = (): string => words[i++] ?? '';
  /** Collects an unknown option with its arguments (words up to the next option). */
  const unknownOption = (opt: string): void => {
    const args: string[] = [];
    while (i < words.length && !(words[i] ?? '').startsWith('-') && words[i] !== '!') args.push(next());
    matches.push({ kind: 'unknown', text: `${neg ? '! ' : ''}${module ? `-m ${module} ` : ''}${opt}${args.length ? ` ${args.join(' ')}` : ''}` });
  };
  while (i < words.length) {
    const w = next();
    if (w === '!') {
      neg = true;
      continue;
    }
    switch (w) {
      case '-s': case '--source': case '-d': case '--destination':
        matches.push({ kind: 'addr', field: w === '-s' || w === '--source' ? 'saddr' : 'daddr', family, neg, values: next().split(',') });
        break;
      case '-i': case '--in-interface': case '-o': case '--out-interface':
        matches.push({
          kind: 'iface',
          field: w === '-i' || w === '--in-interface' ? 'iifname' : 'oifname',
          neg,
          names: [next().replace(/\+$/, '*')],
        });
        break;
      case '-p': case '--protocol': {
        const p = next();
        if (p === 'all' || p === '0') break;
        const n = protoNumber(p);
        if (n === null) matches.push({ kind: 'unknown', text: `-p ${p}` });
        else {
          if (!neg) proto = n;
          matches.push({ kind: 'l4proto', neg, protos: [n] });
        }
        break;
      }
      case '-m': case '--match':
        module = next();
        break;
      case '--sport': case '--source-port': case '--dport': case '--destination-port':
      case '--sports': case '--source-ports': case '--dports': case '--destination-ports': {
        const spec = next();
        const r = ports(spec);
        if (!r || (proto === null && module !== 'multiport')) {
          matches.push({ kind: 'unknown', text: `${w} ${spec}` });
        } else {
          matches.push({ kind: 'port', field: w.startsWith('--sport') || w.startsWith('--source') ? 'sport' : 'dport', proto, neg, ranges: r });
        }
        break;
      }
      case '--ctstate': case '--state':
        matches.push({ kind: 'ctstate', neg, states: next().toLowerCase().split(',') });
        break;
      case '--comment':
        next();
        break;
      case '--mark':
        if (module === 'mark' || module === 'connmark') {
          const spec = next();
          const mk = parseMarkSpec(spec);
          if (mk) matches.push({ kind: 'mark', of: module === 'mark' ? 'packet' : 'conn', neg, ...mk });
          else matches.push({ kind: 'unknown', text: `${neg ? '! ' : ''}-m ${module} --mark ${spec}` });
        } else unknownOption(w);
        break;
      case '--mode':
        if (module === 'statistic') {
          // --mode random --probability P | --mode nth --every N [--packet P]
          const mode = next();
          const opts = new Map<string, string>();
          while (i < words.length && ['--probability', '--every', '--packet'].includes(words[i] ?? '')) opts.set(next(), next());
          const prob = mode === 'random' ? Number(opts.get('--probability')) : 1 / Number(opts.get('--every'));
          if ((mode === 'random' || mode === 'nth') && Number.isFinite(prob) && prob >= 0 && prob <= 1) {
            matches.push({ kind: 'statistic', mode, neg, probability: prob });
          } else {
            matches.push({ kind: 'unknown', text: `-m statistic --mode ${mode} ${[...opts].map(([k, v]) => `${k} ${v}`).join(' ')}` });
          }
        } else unknownOption(w);
        break;
      case '--src-type': case '--dst-type':
        if (module === 'addrtype') {
          matches.push({ kind: 'addrtype', field: w === '--src-type' ? 'saddr' : 'daddr', neg, types: next().toLowerCase().split(',') });
        } else unknownOption(w);
        break;
      case '-j': case '--jump': {
        const target = next();
        const opts = new Map<string, string>();
        while (i < words.length) {
          const o = next();
          if (o.startsWith('--')) {
            const v = (words[i] ?? '').startsWith('--') ? '' : next();
            opts.set(o, v);
          }
        }
        if (target === 'ACCEPT' || target === 'DROP' || target === 'RETURN') action = { kind: target.toLowerCase() as 'accept' | 'drop' | 'return' };
        else if (target === 'REJECT') action = { kind: 'reject' };
        else if (target === 'MASQUERADE') action = { kind: 'masquerade' };
        else if (target === 'DNAT' || target === 'SNAT') {
          const to = opts.get(target === 'DNAT' ? '--to-destination' : '--to-source');
          action = to === undefined ? { kind: 'unknown', text: `-j ${target}` } : { kind: target === 'DNAT' ? 'dnat' : 'snat', ...parseNatTo(to, family) };
        } else if (target === 'REDIRECT') {
          const to = opts.get('--to-ports');
          action = { kind: 'redirect', port: to === undefined ? null : Number(to.split('-')[0]) };
        } else if (target === 'MARK' || target === 'CONNMARK') action = markTarget(target, opts) ?? { kind: 'continue' };
        else if (chainNames.has(target)) action = { kind: 'jump', target };
        else if (NON_TERMINAL.has(target)) action = { kind: 'continue' };
        else action = { kind: 'unknown', text: `-j ${target}` };
        break;
      }
      case '-g': case '--goto':
        action = { kind: 'goto', target: next() };
        break;
      default:
        unknownOption(w);
    }
    neg = false;
  }
  return { chain, matches, action };
}

/** Parses iptables-save or ip6tables-save output. Lines it cannot read are reported and skipped. */
export function parseIptablesSave(text: string, family: IpFamily, errors: string[]): IptTables {
  const tables: IptTables = new Map();
  let table: IptTable | null = null;
  let chainNames = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = { chains: new Map(), policies: new Map() };
      chainNames = new Set();
      tables.set(line.slice(1), table);
    } else if (line.startsWith(':') && table) {
      const [name = '', policy = '-'] = line.slice(1).split(' ');
      chainNames.add(name);
      table.chains.set(name, []);
      table.policies.set(name, policy === 'DROP' ? 'drop' : policy === 'ACCEPT' ? 'accept' : null);
    } else if (line === 'COMMIT') {
      table = null;
    } else if (line.startsWith('-A') && table) {
      const parsed = parseRuleLine(tokenize(line), family, chainNames);
      if (!parsed) {
        errors.push(`iptables-save: could not read "${line}"`);
        continue;
      }
      const list = table.chains.get(parsed.chain) ?? [];
      list.push({ ...parsed, text: line });
      table.chains.set(parsed.chain, list);
    }
  }
  return tables;
}

/**
 * Replaces the nft view of iptables-nft rules (family ip/ip6, tables iptables knows) with
 * the iptables-save view, chain by chain, when the rule counts agree; keeps nft's handles.
 */
export function mergeIptables(nf: Netfilter, family: IpFamily, ipt: IptTables, errors: string[]): Netfilter {
  const nfFamily = family === 4 ? 'ip' : 'ip6';
  const byChain = new Map<string, number[]>();
  nf.rules.forEach((r, idx) => {
    if (r.family !== nfFamily || !ipt.has(r.table)) return;
    const key = `${r.table}\u0000${r.chain}`;
    const list = byChain.get(key) ?? [];
    list.push(idx);
    byChain.set(key, list);
  });
  const rules: NfRule[] = [...nf.rules];
  for (const [key, idxs] of byChain) {
    const [table = '', chain = ''] = key.split('\u0000');
    const iptRules = ipt.get(table)?.chains.get(chain) ?? [];
    if (iptRules.length !== idxs.length) {
      errors.push(`iptables-save: ${nfFamily} ${table} ${chain} has ${iptRules.length} rules, nft shows ${idxs.length}; kept the nft view`);
      continue;
    }
    idxs.forEach((idx, pos) => {
      const orig = rules[idx];
      const ir = iptRules[pos];
      if (!orig || !ir) return;
      rules[idx] = { ...orig, matches: ir.matches, action: ir.action, text: ir.text, origin: 'iptables' };
    });
  }
  return { chains: nf.chains, rules };
}

/** Where iptables' built-in chains hook in, with the priorities iptables-nft registers them at. */
const BUILTIN: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  raw: { PREROUTING: -300, OUTPUT: -300 },
  mangle: { PREROUTING: -150, INPUT: -150, FORWARD: -150, OUTPUT: -150, POSTROUTING: -150 },
  nat: { PREROUTING: -100, INPUT: 100, OUTPUT: -100, POSTROUTING: 100 },
  filter: { INPUT: 0, FORWARD: 0, OUTPUT: 0 },
  security: { INPUT: 50, FORWARD: 50, OUTPUT: 50 },
};

/**
 * A complete netfilter model from iptables-save text alone: for iptables-legacy hosts, saved
 * rule files, and hand-written test models.
 */
export function netfilterFromIptablesSave(text: string, family: IpFamily, errors: string[]): Netfilter {
  const nfFamily = family === 4 ? 'ip' : 'ip6';
  const chains: NfChain[] = [];
  const rules: NfRule[] = [];
  let handle = 1;
  for (const [tableName, table] of parseIptablesSave(text, family, errors)) {
    for (const [chain, list] of table.chains) {
      const prio = BUILTIN[tableName]?.[chain];
      chains.push({
        family: nfFamily, table: tableName, name: chain,
        hook: prio !== undefined ? chain.toLowerCase() : null,
        type: prio === undefined ? null : tableName === 'nat' ? 'nat' : tableName === 'mangle' && chain === 'OUTPUT' ? 'route' : 'filter',
        prio: prio ?? null,
        policy: prio !== undefined ? (table.policies.get(chain) ?? 'accept') : null,
      });
      for (const r of list) {
        rules.push({ family: nfFamily, table: tableName, chain, handle: handle++, matches: r.matches, action: r.action, text: r.text, origin: 'iptables' });
      }
    }
  }
  return { chains, rules };
}
