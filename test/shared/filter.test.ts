import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BPFTRACE_FILTER_VARIABLES, FilterError, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, compileMatcher, compileToBpftrace,
  describeFilter, formatFilterError, matchesHop, parseFilter, portToRaw, rawPort, rawV4ToString, rawV6ToString,
  v4MaskRaw, v4ToRaw, v6MaskRaw, v6ToRaw,
} from '../../shared/filter/index.js';
import type { FilterAst, FilterHop } from '../../shared/filter/index.js';
import { arbFilterAst, arbHop, evalBpftraceExpr, rawVars } from './filter-helpers.js';

const SAFE_BPFTRACE = /^[\s\w$()&|!=<>^~x0-9+-]*$/;

function parseError(text: string): FilterError {
  try {
    parseFilter(text);
  } catch (e) {
    if (e instanceof FilterError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(text)} to fail to parse`);
}

describe('parseFilter: primitives', () => {
  const cases: readonly [string, FilterAst][] = [
    ['', { kind: 'all' }],
    ['  \t\n ', { kind: 'all' }],
    ['host 10.0.0.1', { kind: 'host', dir: 'either', family: 4, addr: '10.0.0.1' }],
    ['src host 10.0.0.1', { kind: 'host', dir: 'src', family: 4, addr: '10.0.0.1' }],
    ['dst host 10.0.0.1', { kind: 'host', dir: 'dst', family: 4, addr: '10.0.0.1' }],
    ['src 10.0.0.1', { kind: 'host', dir: 'src', family: 4, addr: '10.0.0.1' }],
    ['dst FD00:0:0::01', { kind: 'host', dir: 'dst', family: 6, addr: 'fd00::1' }],
    ['host 2001:DB8:0:0:0:0:0:1', { kind: 'host', dir: 'either', family: 6, addr: '2001:db8::1' }],
    ['net 10.0.0.0/8', { kind: 'net', dir: 'either', family: 4, addr: '10.0.0.0', prefix: 8 }],
    ['src net 10.1.0.0/16', { kind: 'net', dir: 'src', family: 4, addr: '10.1.0.0', prefix: 16 }],
    ['dst net fd00::/8', { kind: 'net', dir: 'dst', family: 6, addr: 'fd00::', prefix: 8 }],
    ['net 10.0.0.7', { kind: 'net', dir: 'either', family: 4, addr: '10.0.0.7', prefix: 32 }],
    ['net fd00::7', { kind: 'net', dir: 'either', family: 6, addr: 'fd00::7', prefix: 128 }],
    ['net 0.0.0.0/0', { kind: 'net', dir: 'either', family: 4, addr: '0.0.0.0', prefix: 0 }],
    ['port 53', { kind: 'port', dir: 'either', port: 53 }],
    ['src port 0', { kind: 'port', dir: 'src', port: 0 }],
    ['dst port 65535', { kind: 'port', dir: 'dst', port: 65535 }],
    ['tcp', { kind: 'proto', proto: 'tcp' }],
    ['udp', { kind: 'proto', proto: 'udp' }],
    ['icmp', { kind: 'proto', proto: 'icmp' }],
    ['icmp6', { kind: 'proto', proto: 'icmp6' }],
    ['ip', { kind: 'family', family: 4 }],
    ['ip6', { kind: 'family', family: 6 }],
    ['TCP', { kind: 'proto', proto: 'tcp' }],
    ['Src Host 10.0.0.1', { kind: 'host', dir: 'src', family: 4, addr: '10.0.0.1' }],
    ['tcp port 80', { kind: 'and', operands: [{ kind: 'proto', proto: 'tcp' }, { kind: 'port', dir: 'either', port: 80 }] }],
    ['udp dst port 53', { kind: 'and', operands: [{ kind: 'proto', proto: 'udp' }, { kind: 'port', dir: 'dst', port: 53 }] }],
  ];
  it.each(cases)('parses %j', (text, ast) => {
    expect(parseFilter(text)).toEqual(ast);
  });
});

describe('parseFilter: connectives and precedence', () => {
  const tcp = { kind: 'proto', proto: 'tcp' } as const;
  const udp = { kind: 'proto', proto: 'udp' } as const;
  const icmp = { kind: 'proto', proto: 'icmp' } as const;
  const p53 = { kind: 'port', dir: 'either', port: 53 } as const;

  it('should bind and tighter than or', () => {
    expect(parseFilter('tcp or udp and port 53')).toEqual({ kind: 'or', operands: [tcp, { kind: 'and', operands: [udp, p53] }] });
    expect(parseFilter('udp and port 53 or tcp')).toEqual({ kind: 'or', operands: [{ kind: 'and', operands: [udp, p53] }, tcp] });
  });

  it('should bind not tightest', () => {
    expect(parseFilter('not tcp and udp')).toEqual({ kind: 'and', operands: [{ kind: 'not', operand: tcp }, udp] });
    expect(parseFilter('not not tcp')).toEqual({ kind: 'not', operand: { kind: 'not', operand: tcp } });
  });

  it('should let parentheses override precedence', () => {
    expect(parseFilter('(tcp or udp) and port 53')).toEqual({ kind: 'and', operands: [{ kind: 'or', operands: [tcp, udp] }, p53] });
    expect(parseFilter('not (tcp or udp)')).toEqual({ kind: 'not', operand: { kind: 'or', operands: [tcp, udp] } });
  });

  it('should treat symbols and words alike', () => {
    expect(parseFilter('!tcp&&(udp||icmp)')).toEqual(parseFilter('not tcp and (udp or icmp)'));
    expect(parseFilter('NOT tcp AND udp')).toEqual(parseFilter('not tcp and udp'));
  });

  it('should flatten chains of one connective', () => {
    expect(parseFilter('tcp and udp and icmp')).toEqual({ kind: 'and', operands: [tcp, udp, icmp] });
    expect(parseFilter('tcp or (udp or icmp)')).toEqual({ kind: 'or', operands: [tcp, udp, icmp] });
    expect(parseFilter('((tcp))')).toEqual(tcp);
  });
});

describe('parseFilter: errors', () => {
  // [input, message, offset, length]
  const cases: readonly [string, string | RegExp, number, number][] = [
    ['host foo', "expected an address after 'host', got 'foo'", 5, 3],
    ['host', "expected an address after 'host', got the end of the filter", 4, 0],
    ['host 1.2.3', "expected an address after 'host', got '1.2.3'", 5, 5],
    ['host 10.0.0.0/8', /that is a network, write 'net 10\.0\.0\.0\/8'/, 5, 10],
    ['src host 10.0.0.0/8', /write 'src net 10\.0\.0\.0\/8'/, 9, 10],
    ['host fe80::1%eth0', /zone ids like '%eth0' are not supported/, 5, 12],
    ['(tcp or udp', "unbalanced parenthesis: this '(' is never closed", 0, 1],
    ['tcp or udp)', "unbalanced parenthesis: this ')' has no matching '('", 10, 1],
    ['port 70000', 'port 70000 is out of range (0-65535)', 5, 5],
    ['port 99999999999999999999', 'port 99999999999999999999 is out of range (0-65535)', 5, 20],
    ['port -1', "expected a port number (0-65535) after 'port', got '-1'", 5, 2],
    ['port 80.5', "expected a port number (0-65535) after 'port', got '80.5'", 5, 4],
    ['dst port http', /got 'http' \(port names are not supported/, 9, 4],
    ['tcp and', "unexpected 'and' at the end", 4, 3],
    ['tcp ||', "unexpected '||' at the end", 4, 2],
    ['not', "unexpected 'not' at the end", 0, 3],
    ['and tcp', /^unexpected 'and' at the start/, 0, 3],
    ['tcp or or udp', "unexpected 'or' after 'or'", 7, 2],
    ['tcp udp', "expected 'and' or 'or' before 'udp'", 4, 3],
    ['(tcp udp)', "expected 'and', 'or' or ')' before 'udp'", 5, 3],
    ['tcp & udp', "unexpected '&': write '&&' or 'and'", 4, 1],
    ['tcp | udp', "unexpected '|': write '||' or 'or'", 4, 1],
    ['()', 'empty parentheses: put a filter inside them', 0, 2],
    ['tcp and ()', 'empty parentheses: put a filter inside them', 8, 2],
    ['(tcp and )', "expected a filter after 'and', got ')'", 9, 1],
    ['net 10.0.0.1/8', "'10.0.0.1/8' has bits set past the /8 prefix: did you mean 10.0.0.0/8?", 4, 10],
    ['net 10.0.0.0/33', 'prefix length /33 is out of range for IPv4 (0-32)', 13, 2],
    ['net fd00::/129', 'prefix length /129 is out of range for IPv6 (0-128)', 11, 3],
    ['net 10.0.0.0/x', "expected a prefix length (0-32) after '/', got 'x'", 13, 1],
    ['net 10.0.0.0/', "expected a prefix length (0-32) after '/', got nothing", 12, 1],
    ['net bogus', /^expected a network like 10\.0\.0\.0\/8 or fd00::\/64 after 'net', got 'bogus'/, 4, 5],
    ['src', "expected 'host', 'net', 'port', 'pod', 'container' or an address after 'src', got the end of the filter", 3, 0],
    ['dst or tcp', "expected 'host', 'net', 'port', 'pod', 'container' or an address after 'dst', got 'or'", 4, 2],
    ['tcp and foo', /^unknown word 'foo': expected one of tcp, udp/, 8, 3],
    ['arp', /^'arp' is not supported in hoptrace filters/, 0, 3],
    ['10.0.0.1', "'10.0.0.1' needs a keyword before it: did you mean 'host 10.0.0.1'?", 0, 8],
    ['10.0.0.0/8', "'10.0.0.0/8' needs a keyword before it: did you mean 'net 10.0.0.0/8'?", 0, 10],
    ['80', "'80' needs a keyword before it: did you mean 'port 80'?", 0, 2],
    ['constructor', /^unknown word 'constructor'/, 0, 11],
  ];
  it.each(cases)('rejects %j', (text, message, offset, length) => {
    const err = parseError(text);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
    expect({ offset: err.offset, length: err.length }).toEqual({ offset, length });
    expect(err.name).toBe('FilterError');
    expect(err).toBeInstanceOf(Error);
  });

  it('should refuse filters longer than the limit, pointing past the limit', () => {
    const text = `${'tcp or '.repeat(Math.ceil(MAX_FILTER_LENGTH / 7))}tcp`;
    const err = parseError(text);
    expect(err.message).toMatch(/^filter is too long/);
    expect(err.offset).toBe(MAX_FILTER_LENGTH);
  });

  it('should refuse nesting deeper than the limit instead of overflowing the stack', () => {
    const ok = `${'('.repeat(MAX_FILTER_DEPTH)}tcp${')'.repeat(MAX_FILTER_DEPTH)}`;
    expect(parseFilter(ok)).toEqual({ kind: 'proto', proto: 'tcp' });
    const err = parseError(`${'not '.repeat(MAX_FILTER_DEPTH)}(tcp)`);
    expect(err.message).toMatch(/nested too deeply/);
    expect(err.offset).toBe(MAX_FILTER_DEPTH * 4);
    expect(parseError('!'.repeat(1000) + 'tcp').message).toMatch(/nested too deeply/);
  });

  it('should only ever throw FilterError on arbitrary text', () => {
    const alphabet = fc.constantFrom(...'()!&| tcpudhosnetr0123456789.:/-fdx'.split(''), ' and ', ' or ', 'host ', 'net ', 'port ', 'src ');
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 30 }).map((a) => a.join('')), (text) => {
      try {
        parseFilter(text);
      } catch (e) {
        expect(e).toBeInstanceOf(FilterError);
        const err = e as FilterError;
        expect(err.offset).toBeGreaterThanOrEqual(0);
        expect(err.offset + err.length).toBeLessThanOrEqual(text.length);
      }
    }), { numRuns: 2000 });
  });
});

describe('formatFilterError', () => {
  it('should put carets under the bad token and the message after them', () => {
    const text = 'tcp and host foo';
    expect(formatFilterError(text, parseError(text))).toBe(
      "tcp and host foo\n             ^^^ expected an address after 'host', got 'foo'",
    );
  });

  it('should point one caret past the end when the filter ends early', () => {
    const text = 'tcp and';
    expect(formatFilterError(text, parseError('tcp and host'))).toContain('\n');
    expect(formatFilterError('host', parseError('host'))).toBe("host\n    ^ expected an address after 'host', got the end of the filter");
    expect(formatFilterError(text, parseError(text))).toBe("tcp and\n    ^^^ unexpected 'and' at the end");
  });

  it('should keep carets aligned across tabs and line breaks', () => {
    const text = 'tcp\tand\nport 70000';
    expect(formatFilterError(text, parseError(text))).toBe('tcp\tand port 70000\n   \t         ^^^^^ port 70000 is out of range (0-65535)');
  });
});

describe('matchesHop', () => {
  const hop = (h: Partial<FilterHop>): FilterHop => ({ family: 4, proto: 6, src: '10.0.0.1', dst: '10.0.1.2', sport: 40000, dport: 80, ...h });
  const v4tcp = hop({});
  const v4udp = hop({ proto: 17, sport: 5353, dport: 53 });
  const v4icmp = hop({ proto: 1, sport: 0, dport: 0 });
  const v6tcp = hop({ family: 6, src: 'fd00::1', dst: 'fd00:0:0:80::ff', sport: 443, dport: 50000 });
  const v6icmp = hop({ family: 6, proto: 58, src: 'fe80::1', dst: 'ff02::1', sport: 0, dport: 0 });
  const sctp = hop({ proto: 132, sport: 9, dport: 80 });
  const gre = hop({ proto: 47, sport: 80, dport: 80 });
  const nonIp: FilterHop = { family: 0, proto: 0, src: '', dst: '', sport: 0, dport: 0 };
  // Hops may spell addresses any way ipaddr.js parses; both sides are normalised.
  const v6longhand = hop({ family: 6, src: 'FD00:0000:0000:0000:0000:0000:0000:0001', dst: '2001:db8::1', sport: 1, dport: 2 });
  const hops = { v4tcp, v4udp, v4icmp, v6tcp, v6icmp, sctp, gre, nonIp, v6longhand };
  type Row = [string, (keyof typeof hops)[]];
  const table: readonly Row[] = [
    ['', ['v4tcp', 'v4udp', 'v4icmp', 'v6tcp', 'v6icmp', 'sctp', 'gre', 'nonIp', 'v6longhand']],
    ['tcp', ['v4tcp', 'v6tcp', 'v6longhand']],
    ['udp', ['v4udp']],
    ['icmp', ['v4icmp']],
    ['icmp6', ['v6icmp']],
    ['ip', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['ip6', ['v6tcp', 'v6icmp', 'v6longhand']],
    ['not ip and not ip6', ['nonIp']],
    ['host 10.0.0.1', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['host 10.0.1.2', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['src host 10.0.1.2', []],
    ['dst 10.0.1.2', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['host fd00::1', ['v6tcp', 'v6longhand']],
    ['src fd00:0:0:0::1', ['v6tcp', 'v6longhand']],
    ['dst fd00::1', []],
    ['host ff02::1', ['v6icmp']],
    ['net 10.0.0.0/24', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['dst net 10.0.0.0/24', []],
    ['dst net 10.0.0.0/23', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['net 0.0.0.0/0', ['v4tcp', 'v4udp', 'v4icmp', 'sctp', 'gre']],
    ['net ::/0', ['v6tcp', 'v6icmp', 'v6longhand']],
    ['net fd00::/8', ['v6tcp', 'v6longhand']],
    ['dst net fd00:0:0:80::/57', ['v6tcp']],
    ['dst net fd00::/56', ['v6tcp']],
    ['dst net fd00::/57', []],
    ['dst net fd00:0:0:80::ff/128', ['v6tcp']],
    ['dst net fd00:0:0:80::/120', ['v6tcp']],
    ['dst net fd00:0:0:80::/121', []],
    ['net fe80::/10', ['v6icmp']],
    ['port 80', ['v4tcp', 'sctp']],
    ['dst port 80', ['v4tcp', 'sctp']],
    ['src port 80', []],
    ['port 53', ['v4udp']],
    ['src port 443', ['v6tcp']],
    ['port 0', []],
    ['tcp and port 80', ['v4tcp']],
    ['tcp or udp and port 53', ['v4tcp', 'v6tcp', 'v4udp', 'v6longhand']],
    ['(tcp or udp) and port 53', ['v4udp']],
    ['not tcp', ['v4udp', 'v4icmp', 'v6icmp', 'sctp', 'gre', 'nonIp']],
    ['not (ip6 or port 80)', ['v4udp', 'v4icmp', 'gre', 'nonIp']],
    ['ip6 and not host fd00::1', ['v6icmp']],
  ];
  it.each(table)('%j matches exactly %j', (text, expected) => {
    const ast = parseFilter(text);
    const got = Object.entries(hops).filter(([, h]) => matchesHop(ast, h)).map(([name]) => name);
    expect(got.sort()).toEqual([...expected].sort());
  });

  it('should not match addresses of the other family, nor unparseable ones', () => {
    expect(matchesHop(parseFilter('host 10.0.0.1'), hop({ family: 6, src: '10.0.0.1' }))).toBe(false);
    expect(matchesHop(parseFilter('src net ::/0'), hop({ family: 6, src: 'garbage' }))).toBe(false);
    expect(matchesHop(parseFilter('not src net ::/0'), hop({ family: 6, src: 'garbage' }))).toBe(true);
  });

  it('should give the same answers through compileMatcher', () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHop, { maxLength: 5 }), (ast, hs) => {
      const m = compileMatcher(ast);
      for (const h of hs) expect(m(h)).toBe(matchesHop(ast, h));
    }), { numRuns: 300 });
  });
});

describe('describeFilter', () => {
  it.each([
    ['', ''],
    ['src 10.0.0.1', 'src host 10.0.0.1'],
    ['NET 10.0.0.7', 'net 10.0.0.7/32'],
    ['!tcp && (udp || host FD00::0001)', 'not tcp and (udp or host fd00::1)'],
    ['tcp || udp && port 53', 'tcp or udp and port 53'],
    ['not (tcp and udp)', 'not (tcp and udp)'],
    ['tcp port 80', 'tcp and port 80'],
  ])('describes %j as %j', (text, canonical) => {
    expect(describeFilter(parseFilter(text))).toBe(canonical);
  });

  it('should parse back to a filter that matches the same hops', () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHop, { minLength: 1, maxLength: 8 }), (ast, hs) => {
      const text = describeFilter(ast);
      const again = parseFilter(text);
      for (const h of hs) expect(matchesHop(again, h)).toBe(matchesHop(ast, h));
      // Canonical: describing the re-parsed filter gives the same text.
      expect(describeFilter(again)).toBe(text);
    }), { numRuns: 1000 });
  });
});

describe('raw encodings', () => {
  it('should read network-order bytes little-endian', () => {
    expect(v4ToRaw('10.0.0.1')).toBe(0x0100000a);
    expect(rawV4ToString(0x0100000a)).toBe('10.0.0.1');
    expect(v4ToRaw('255.255.255.255')).toBe(0xffffffff);
    expect(portToRaw(5000)).toBe(0x8813);
    expect(rawPort(0x8813)).toBe(5000);
    expect(v6ToRaw('2001:db8::ff')).toEqual({ hi: 0x00000000b80d0120n, lo: 0xff00000000000000n });
    expect(rawV6ToString(0x00000000b80d0120n, 0xff00000000000000n)).toBe('2001:db8::ff');
    // A probe that prints the halves with %d gives negative numbers for the top bit.
    expect(rawV6ToString(0x00000000b80d0120n, -0x100000000000000n)).toBe('2001:db8::ff');
    expect(v4MaskRaw(8)).toBe(0xff);
    expect(v4MaskRaw(25)).toBe(0x80ffffff);
    expect(v6MaskRaw(57)).toEqual({ hi: 0x80ffffffffffffffn, lo: 0n });
    expect(v6MaskRaw(128)).toEqual({ hi: 0xffffffffffffffffn, lo: 0xffffffffffffffffn });
  });

  it('should refuse values out of range', () => {
    expect(() => v4ToRaw('fd00::1')).toThrow(RangeError);
    expect(() => v6ToRaw('10.0.0.1')).toThrow(RangeError);
    expect(() => portToRaw(65536)).toThrow(RangeError);
    expect(() => rawPort(-1)).toThrow(RangeError);
    expect(() => rawV4ToString(2 ** 32)).toThrow(RangeError);
    expect(() => rawV6ToString(1n << 64n, 0n)).toThrow(RangeError);
  });

  it('should round-trip addresses and ports', () => {
    fc.assert(fc.property(fc.ipV4(), (a) => {
      expect(rawV4ToString(v4ToRaw(a))).toBe(a);
    }));
    fc.assert(fc.property(fc.ipV6(), (a) => {
      const r = v6ToRaw(a);
      expect(v6ToRaw(rawV6ToString(r.hi, r.lo))).toEqual(r);
    }));
    fc.assert(fc.property(fc.integer({ min: 0, max: 65535 }), (p) => {
      expect(rawPort(portToRaw(p))).toBe(p);
    }));
  });
});

describe('compileToBpftrace', () => {
  it('should compile the empty filter to 1', () => {
    expect(compileToBpftrace(parseFilter(''))).toBe('1');
  });

  it('should compile constants to raw forms', () => {
    // The packet's own headers, or (inside a tunnel, $enc not 0) the tunnel's outer ones.
    expect(compileToBpftrace(parseFilter('src host 10.0.0.1'))).toBe('(($fam == 4 && $sa == 0x0100000a) || (!($enc == 0) && $ofam == 4 && $os0 == 0x0100000a))');
    expect(compileToBpftrace(parseFilter('dst port 5000'))).toBe('((($l4 == 6 || $l4 == 17 || $l4 == 132) && $dp == 0x8813) || (!($enc == 0) && ($ol4 == 6 || $ol4 == 17 || $ol4 == 132) && $odp == 0x8813))');
    expect(compileToBpftrace(parseFilter('dst net 10.0.0.0/8'))).toBe('(($fam == 4 && ($da & 0x000000ff) == 0x0000000a) || (!($enc == 0) && $ofam == 4 && ($od0 & 0x000000ff) == 0x0000000a))');
    // Constants with the top bit set go through XOR, which bpftrace 0.17 compares without a sign warning.
    expect(compileToBpftrace(parseFilter('src fd00::ff'))).toBe('(($fam == 6 && $sa0 == 0x00000000000000fd && ($sa1 ^ 0xff00000000000000) == 0) || (!($enc == 0) && $ofam == 6 && $os0 == 0x00000000000000fd && ($os1 ^ 0xff00000000000000) == 0))');
    expect(compileToBpftrace(parseFilter('tcp'))).toBe('($l4 == 6 || (!($enc == 0) && $ol4 == 6))');
    expect(compileToBpftrace(parseFilter('not ip'))).toBe('(!($fam == 4) || (!($enc == 0) && !($ofam == 4)))');
    // Tunnel primitives read the probe's tunnel variables (VNI 42 raw: bytes 4-6 read little-endian).
    expect(compileToBpftrace(parseFilter('vni 42'))).toBe('((!($enc == 0) && $ol4 == 17 && $ovni == 0x002a0000) || (!($enc == 0) && !($enc == 0) && $ol4 == 17 && $ovni == 0x002a0000))');
  });

  it('should use only the probe variables, generated numbers and operators', () => {
    fc.assert(fc.property(arbFilterAst, (ast) => {
      const out = compileToBpftrace(ast);
      expect(out).toMatch(SAFE_BPFTRACE);
      for (const v of out.match(/\$\w+/g) ?? []) expect(BPFTRACE_FILTER_VARIABLES).toContain(v);
      expect(out.replace(/\$\w+|0x[0-9a-f]+|\b\d+\b|==|&&|\|\||[!&^()\s]/g, '')).toBe('');
    }), { numRuns: 500 });
  });

  it('should evaluate like matchesHop (u64 model of bpftrace)', () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHop, { minLength: 1, maxLength: 8 }), (ast, hs) => {
      const expr = compileToBpftrace(ast);
      for (const h of hs) expect(evalBpftraceExpr(expr, rawVars(h))).toBe(matchesHop(ast, h));
    }), { numRuns: 1000 });
  });

  it('should keep a 20-term filter flat', () => {
    const terms = Array.from({ length: 20 }, (_, i) => (i % 2 ? `host 10.0.0.${i}` : `port ${1000 + i}`));
    const out = compileToBpftrace(parseFilter(terms.join(' or ')));
    let depth = 0;
    let max = 0;
    for (const c of out) {
      if (c === '(') max = Math.max(max, ++depth);
      if (c === ')') depth--;
    }
    expect(depth).toBe(0);
    // One level more than the filter's own: inner headers, or the tunnel's outer ones.
    expect(max).toBeLessThanOrEqual(5);
    expect(out.match(/\|\|/g)?.length).toBeGreaterThanOrEqual(19);
  });
});
