/**
 * Renders parsed netfilter matches and actions as nft-like text, for rules that came from
 * `nft -j` (iptables rules keep their iptables-save line instead) and for path explanations.
 */
import type { NfAction, NfMatch } from './model.js';
import { protoLabel } from './proto.js';

function list(values: readonly string[]): string {
  return values.length === 1 ? (values[0] ?? '') : `{ ${values.join(', ')} }`;
}

export function matchText(m: NfMatch): string {
  const op = 'neg' in m && m.neg ? '!= ' : '';
  switch (m.kind) {
    case 'addr':
      return `${m.family === 4 ? 'ip' : 'ip6'} ${m.field} ${op}${list(m.values)}`;
    case 'port':
      return `${m.proto === null ? 'th' : protoLabel(m.proto)} ${m.field} ${op}${list(m.ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)))}`;
    case 'l4proto':
      return `meta l4proto ${op}${list(m.protos.map(protoLabel))}`;
    case 'iface':
      return `${m.field} ${op}${list(m.names.map((n) => `"${n}"`))}`;
    case 'ctstate':
      return `ct state ${op}${m.states.join(',')}`;
    case 'family':
      return `meta nfproto ${list(m.families.map((f) => (f === 4 ? 'ipv4' : 'ipv6')))}`;
    case 'addrtype':
      return `fib ${m.field} type ${op}${list(m.types)}`;
    case 'mark': {
      const hex = (n: number): string => `0x${n.toString(16)}`;
      const key = m.of === 'packet' ? 'meta mark' : 'ct mark';
      return m.mask === 0xffffffff ? `${key} ${op}${hex(m.value)}` : `${key} & ${hex(m.mask)} ${m.neg ? '!=' : '=='} ${hex(m.value)}`;
    }
    case 'statistic':
      return `${m.neg ? '! ' : ''}statistic ${m.mode} probability ${Number(m.probability.toFixed(6))}`;
    case 'unknown':
      return m.text;
  }
}

export function actionText(a: NfAction): string {
  switch (a.kind) {
    case 'accept':
    case 'drop':
    case 'reject':
    case 'return':
      return a.kind;
    case 'continue':
      return '';
    case 'jump':
    case 'goto':
      return `${a.kind} ${a.target}`;
    case 'dnat':
    case 'snat': {
      const addr = a.addr ?? '';
      const host = addr.includes(':') && a.port !== null ? `[${addr}]` : addr;
      return `${a.kind} to ${host}${a.port !== null ? `:${a.port}` : ''}`;
    }
    case 'masquerade':
      return 'masquerade';
    case 'redirect':
      return `redirect${a.port !== null ? ` to :${a.port}` : ''}`;
    case 'mark': {
      const hex = (n: number): string => `0x${n.toString(16)}`;
      const key = a.of === 'packet' ? 'meta mark' : 'ct mark';
      if (a.from) return `${key} set ${a.from.of === 'packet' ? 'meta mark' : 'ct mark'} & ${hex(a.from.mask)} (mask ${hex(a.mask)})`;
      return `${key} set ${hex(a.value)}/${hex(a.mask)}`;
    }
    case 'numgen':
      return `numgen random mod ${a.choices.length} vmap { ${a.choices.map((c, i) => `${i} : ${c.verdict} ${c.target}`).join(', ')} }`;
    case 'unknown':
      return a.text;
  }
}

export function ruleText(matches: readonly NfMatch[], action: NfAction): string {
  return [...matches.map(matchText), actionText(action)].filter((s) => s !== '').join(' ');
}
