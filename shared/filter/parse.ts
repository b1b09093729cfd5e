/**
 * Recursive-descent parser for the filter language:
 *
 *   filter    := <empty> | or
 *   or        := and (('or' | '||') and)*
 *   and       := unary (('and' | '&&') unary)*
 *   unary     := ('not' | '!') unary | '(' or ')' | primitive
 *   primitive := ('host' | 'src' ['host'] | 'dst' ['host']) ADDR
 *              | ['src' | 'dst'] 'net' ADDR['/'PREFIX]
 *              | ['src' | 'dst'] 'port' N
 *              | ('tcp' | 'udp') [['src' | 'dst'] 'port' N]      -- pcap's "tcp port 80"
 *              | 'tcp' | 'udp' | 'icmp' | 'icmp6' | 'ip' | 'ip6'
 *              | ['src' | 'dst'] ('pod' | 'container') NAME      -- resolved to addresses later
 *              | 'tunnel' | 'vni' N                              -- hops inside a tunnel (issue 14)
 *
 * Keywords are case-insensitive. Chains of one connective are flattened into one n-ary node,
 * which keeps the compiled bpftrace expression shallow.
 */
import { bytesToAddress, familyBits, maskBytes, parseAddress } from './address.js';
import type { ParsedAddress } from './address.js';
import type { Direction, FilterAst, FilterExpr, ProtoName } from './ast.js';
import { FilterError } from './error.js';
import { tokenize } from './lexer.js';
import type { Token } from './lexer.js';

/** Deepest nesting of parentheses and `not` accepted; keeps recursion far from the stack limit. */
export const MAX_FILTER_DEPTH = 64;

const PRIMITIVE_WORDS = 'tcp, udp, icmp, icmp6, ip, ip6, host, net, port, pod, container, tunnel, vni, src, dst';

/** Container and pod names as runtimes allow them (Kubernetes pods also as `namespace/pod`). */
const WORKLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;

/** pcap-filter words we recognise only to say they are not supported here. */
const PCAP_ONLY = new Set([
  'arp', 'rarp', 'ether', 'sctp', 'proto', 'vlan', 'mpls', 'gateway', 'less', 'greater', 'len',
  'broadcast', 'multicast', 'portrange', 'igmp', 'pim', 'ah', 'esp', 'vrrp', 'inbound', 'outbound',
]);

/** Parses a filter expression. Empty or blank text gives `{ kind: 'all' }`. Throws FilterError. */
export function parseFilter(text: string): FilterAst {
  const tokens = tokenize(text);
  if (tokens[0]?.kind === 'end') return { kind: 'all' };
  return new Parser(tokens).parseWhole();
}

function quote(t: Token): string {
  return t.kind === 'end' ? 'the end of the filter' : `'${t.text}'`;
}

function fail(message: string, t: Token): never {
  throw new FilterError(message, t.offset, t.length);
}

function combine(kind: 'and' | 'or', operands: FilterExpr[]): FilterExpr {
  const flat = operands.flatMap((o) => (o.kind === kind ? o.operands : [o]));
  if (flat.length === 1 && flat[0]) return flat[0];
  return { kind, operands: flat };
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parseWhole(): FilterExpr {
    const expr = this.parseOr();
    const t = this.peek();
    if (t.kind === 'rparen') fail("unbalanced parenthesis: this ')' has no matching '('", t);
    if (t.kind !== 'end') fail(`expected 'and' or 'or' before ${quote(t)}`, t);
    return expr;
  }

  private peek(ahead = 0): Token {
    // The token list always ends with an 'end' token, and we never move past it.
    return this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'end') this.pos++;
    return t;
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_FILTER_DEPTH) {
      fail(`filter is nested too deeply (more than ${MAX_FILTER_DEPTH} levels of parentheses and 'not')`, t);
    }
  }

  private parseOr(): FilterExpr {
    const operands = [this.parseAnd()];
    while (this.peek().kind === 'or') operands.push(this.parseAnd(this.next()));
    return combine('or', operands);
  }

  private parseAnd(after?: Token): FilterExpr {
    const operands = [this.parseUnary(after)];
    while (this.peek().kind === 'and') operands.push(this.parseUnary(this.next()));
    return combine('and', operands);
  }

  /** `after` is the operator token before this operand, for messages about a missing operand. */
  private parseUnary(after?: Token): FilterExpr {
    const t = this.peek();
    switch (t.kind) {
      case 'not': {
        this.next();
        this.enter(t);
        const operand = this.parseUnary(t);
        this.depth--;
        return { kind: 'not', operand };
      }
      case 'lparen': {
        this.next();
        this.enter(t);
        const first = this.peek();
        if (first.kind === 'end') fail("unbalanced parenthesis: this '(' is never closed", t);
        if (first.kind === 'rparen') {
          throw new FilterError('empty parentheses: put a filter inside them', t.offset, first.offset + 1 - t.offset);
        }
        const inner = this.parseOr();
        const close = this.peek();
        if (close.kind === 'end') fail("unbalanced parenthesis: this '(' is never closed", t);
        if (close.kind !== 'rparen') fail(`expected 'and', 'or' or ')' before ${quote(close)}`, close);
        this.next();
        this.depth--;
        return inner;
      }
      case 'end':
        // Blank filters never get here, so there is always an operator before the end.
        if (after) fail(`unexpected '${after.text}' at the end`, after);
        return fail('unexpected end of the filter', t);
      case 'and':
      case 'or':
        if (!after) fail(`unexpected '${t.text}' at the start: it joins two filters`, t);
        return fail(`unexpected '${t.text}' after '${after.text}'`, t);
      case 'rparen':
        if (this.depth === 0) fail("unbalanced parenthesis: this ')' has no matching '('", t);
        return fail(`expected a filter after ${after ? `'${after.text}'` : "'('"}, got ')'`, t);
      case 'word':
        return this.parsePrimitive();
    }
  }

  private parsePrimitive(): FilterExpr {
    const t = this.next();
    const word = t.text.toLowerCase();
    switch (word) {
      case 'tcp':
      case 'udp':
        return this.protoWithPort(word);
      case 'icmp':
      case 'icmp6':
        return { kind: 'proto', proto: word };
      case 'ip':
        return { kind: 'family', family: 4 };
      case 'ip6':
        return { kind: 'family', family: 6 };
      case 'tunnel':
        return { kind: 'tunnel' };
      case 'vni':
        return { kind: 'vni', vni: this.vni(t) };
      case 'host':
      case 'net':
      case 'port':
        return this.qualified('either', t, word);
      case 'pod':
      case 'container':
        return this.workload('either', t, word);
      case 'src':
      case 'dst':
        return this.directed(word, t);
      default:
        return this.unknownWord(t);
    }
  }

  /** `tcp`, or pcap's `tcp port 80` / `udp dst port 53`, read as `tcp and port 80`. */
  private protoWithPort(proto: ProtoName): FilterExpr {
    const p: FilterExpr = { kind: 'proto', proto };
    const a = this.peek();
    const b = this.peek(1);
    const word = (t: Token, w: string): boolean => t.kind === 'word' && t.text.toLowerCase() === w;
    if (word(a, 'port') || ((word(a, 'src') || word(a, 'dst')) && word(b, 'port'))) {
      const port = this.parsePrimitive();
      return { kind: 'and', operands: [p, port] };
    }
    return p;
  }

  /** After `src`/`dst`: `host`, `net`, `port`, or an address (shorthand for `host`). */
  private directed(dir: 'src' | 'dst', dirTok: Token): FilterExpr {
    const t = this.peek();
    const word = t.kind === 'word' ? t.text.toLowerCase() : '';
    if (word === 'host' || word === 'net' || word === 'port') {
      this.next();
      return this.qualified(dir, t, word);
    }
    if (word === 'pod' || word === 'container') {
      this.next();
      return this.workload(dir, t, word);
    }
    if (t.kind === 'word' && (parseAddress(t.text) || /[.:]/.test(t.text))) {
      return this.qualified(dir, dirTok, 'host');
    }
    return fail(`expected 'host', 'net', 'port', 'pod', 'container' or an address after '${dirTok.text}', got ${quote(t)}`, t);
  }

  /** The operand of `host`/`net`/`port`; `kw` is the word before it, named in messages. */
  private qualified(dir: Direction, kw: Token, kind: 'host' | 'net' | 'port'): FilterExpr {
    const prefix = dir === 'either' ? '' : `${dir} `;
    switch (kind) {
      case 'host': {
        const a = this.address(kw, prefix);
        return { kind: 'host', dir, family: a.family, addr: a.text };
      }
      case 'net':
        return this.network(dir, kw);
      case 'port':
        return { kind: 'port', dir, port: this.port(kw) };
    }
  }

  /** The name after `pod`/`container`: kept as typed, resolved to addresses by the caller. */
  private workload(dir: Direction, kw: Token, what: 'pod' | 'container'): FilterExpr {
    const t = this.peek();
    if (t.kind !== 'word') fail(`expected a ${what} name after '${kw.text}', got ${quote(t)}`, t);
    this.next();
    if (!WORKLOAD_NAME.test(t.text)) fail(`'${t.text}' is not a ${what} name (letters, digits, '_', '.', '-'${what === 'pod' ? `, and 'namespace/pod'` : ''})`, t);
    return { kind: 'workload', dir, what, name: t.text, offset: t.offset, length: t.length };
  }

  private address(kw: Token, dirPrefix: string): ParsedAddress {
    const t = this.peek();
    const expected = `expected an address after '${kw.text}', got ${quote(t)}`;
    if (t.kind !== 'word') fail(expected, t);
    this.next();
    const a = parseAddress(t.text);
    if (a) return a;
    if (t.text.includes('/') && parseAddress(t.text.slice(0, t.text.indexOf('/')))) {
      fail(`${expected}: that is a network, write '${dirPrefix}net ${t.text}'`, t);
    }
    const zone = t.text.indexOf('%');
    if (zone > 0 && parseAddress(t.text.slice(0, zone))) {
      fail(`zone ids like '${t.text.slice(zone)}' are not supported: write '${t.text.slice(0, zone)}'`, t);
    }
    return fail(expected, t);
  }

  private network(dir: Direction, kw: Token): FilterExpr {
    const t = this.peek();
    const expected = `expected a network like 10.0.0.0/8 or fd00::/64 after '${kw.text}', got ${quote(t)}`;
    if (t.kind !== 'word') fail(expected, t);
    this.next();
    const slash = t.text.indexOf('/');
    const addrText = slash < 0 ? t.text : t.text.slice(0, slash);
    const a = parseAddress(addrText);
    if (!a) fail(expected, t);
    const bits = familyBits(a.family);
    let prefix: number = bits;
    if (slash >= 0) {
      const prefixText = t.text.slice(slash + 1);
      const span = { offset: t.offset + slash + 1, length: prefixText.length };
      if (!/^\d+$/.test(prefixText)) {
        throw new FilterError(`expected a prefix length (0-${bits}) after '/', got ${prefixText ? `'${prefixText}'` : 'nothing'}`,
          prefixText ? span.offset : t.offset + slash, prefixText ? span.length : 1);
      }
      prefix = prefixText.length > 3 ? Infinity : Number(prefixText);
      if (prefix > bits) {
        throw new FilterError(`prefix length /${prefixText} is out of range for IPv${a.family} (0-${bits})`, span.offset, span.length);
      }
    }
    const masked = maskBytes(a.bytes, prefix);
    if (masked.some((b, i) => b !== a.bytes[i])) {
      fail(`'${t.text}' has bits set past the /${prefix} prefix: did you mean ${bytesToAddress(masked)}/${prefix}?`, t);
    }
    return { kind: 'net', dir, family: a.family, addr: a.text, prefix };
  }

  private port(kw: Token): number {
    const t = this.peek();
    if (t.kind !== 'word') fail(`expected a port number after '${kw.text}', got ${quote(t)}`, t);
    this.next();
    if (/^[a-z][\w-]*$/i.test(t.text)) {
      fail(`expected a port number after '${kw.text}', got '${t.text}' (port names are not supported, use the number)`, t);
    }
    if (!/^\d+$/.test(t.text)) fail(`expected a port number (0-65535) after '${kw.text}', got '${t.text}'`, t);
    const n = t.text.length > 6 ? Infinity : Number(t.text);
    if (n > 65535) fail(`port ${t.text} is out of range (0-65535)`, t);
    return n;
  }

  private vni(kw: Token): number {
    const t = this.peek();
    if (t.kind !== 'word' || !/^\d+$/.test(t.text)) fail(`expected a VNI (0-16777215) after '${kw.text}', got ${quote(t)}`, t);
    this.next();
    const n = t.text.length > 9 ? Infinity : Number(t.text);
    if (n > 0xffffff) fail(`VNI ${t.text} is out of range (0-16777215)`, t);
    return n;
  }

  private unknownWord(t: Token): never {
    const text = t.text;
    if (parseAddress(text)) fail(`'${text}' needs a keyword before it: did you mean 'host ${text}'?`, t);
    const slash = text.indexOf('/');
    if (slash > 0 && parseAddress(text.slice(0, slash))) {
      fail(`'${text}' needs a keyword before it: did you mean 'net ${text}'?`, t);
    }
    if (/^\d+$/.test(text)) fail(`'${text}' needs a keyword before it: did you mean 'port ${text}'?`, t);
    if (PCAP_ONLY.has(text.toLowerCase())) {
      fail(`'${text}' is not supported in hoptrace filters (they know ${PRIMITIVE_WORDS})`, t);
    }
    return fail(`unknown word '${text}': expected one of ${PRIMITIVE_WORDS}`, t);
  }
}
