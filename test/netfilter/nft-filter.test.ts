/**
 * The filter → nft compiler: its rules mean what the filter means (checked against matchesHop
 * with a small evaluator of the nft fragments it emits), for the inet and the bridge family, and
 * nft itself accepts every table it builds (root: `nft -c` in a scratch namespace).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { parseFilter, matchesHop, type FilterAst, type FilterHop } from '../../shared/filter/index.js';
import { bytesInPrefix, parseAddress } from '../../shared/filter/address.js';
import { buildTraceTable, compileToNft, HOPTRACE_TABLE_RE, parseTableOwner } from '../../shared/netfilter/nft-filter.js';
import { arbFilterAst, arbHop } from '../shared/filter-helpers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const PORT_PROTOS = new Set([6, 17, 132]);
const L4_NAMES: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, 'ipv6-icmp': 58 };

/**
 * Evaluates one rule's match text the way the kernel would for a packet in an inet hook, or for
 * an IP frame in a bridge hook (`meta protocol` is its ethertype there).
 */
function nftMatches(rule: string, hop: FilterHop): boolean {
  const re = /meta nfproto (!= )?ipv([46])|meta l4proto (!= )?(\{ tcp, udp, sctp \}|\S+)|(ip6?) ([sd])addr (!= )?(\S+)|th ([sd])port (!= )?(\d+)|meta protocol (\{ ip, ip6 \}|ip6|ip)/g;
  let consumed = 0;
  for (const m of rule.matchAll(re)) {
    consumed += m[0].length + 1;
    let ok: boolean;
    if (m[12] !== undefined) {
      ok = m[12].startsWith('{') ? hop.family === 4 || hop.family === 6 : hop.family === (m[12] === 'ip' ? 4 : 6);
    } else if (m[2] !== undefined) {
      ok = (hop.family === Number(m[2])) !== (m[1] !== undefined);
    } else if (m[4] !== undefined) {
      const inSet = m[4].startsWith('{') ? PORT_PROTOS.has(hop.proto) : hop.proto === L4_NAMES[m[4]];
      ok = inSet !== (m[3] !== undefined);
    } else if (m[5] !== undefined) {
      // `ip saddr` carries an implicit nfproto dependency: never true for the other family.
      const fam = m[5] === 'ip' ? 4 : 6;
      if (hop.family !== fam) return false;
      const [addr = '', bits] = (m[8] ?? '').split('/');
      const net = parseAddress(addr);
      const mine = parseAddress(m[6] === 's' ? hop.src : hop.dst);
      if (!net || !mine) return false;
      const inside = bytesInPrefix(mine.bytes, net.bytes, bits === undefined ? net.bytes.length * 8 : Number(bits));
      ok = inside !== (m[7] !== undefined);
    } else {
      const port = m[9] === 's' ? hop.sport : hop.dport;
      ok = (port === Number(m[11])) !== (m[10] !== undefined);
    }
    if (!ok) return false;
  }
  // Every fragment must have been understood: an unknown one would make this check vacuous.
  expect(consumed === 0 ? rule.length : consumed - 1).toBe(rule.length);
  return true;
}

const anyRule = (rules: readonly string[], hop: FilterHop): boolean => rules.some((r) => nftMatches(r, hop));

describe('compileToNft', () => {
  it('compiles the lab filters into the rules one would write by hand', () => {
    expect(compileToNft(parseFilter('udp and dst port 9999')).packet).toEqual(['meta l4proto udp th dport 9999']);
    expect(compileToNft(parseFilter('src host 10.244.1.11')).packet).toEqual(['meta nfproto ipv4 ip saddr 10.244.1.11']);
    expect(compileToNft(parseFilter('host fd00::1')).packet).toEqual(['meta nfproto ipv6 ip6 saddr fd00::1', 'meta nfproto ipv6 ip6 daddr fd00::1']);
    expect(compileToNft(parseFilter('net 10.244.0.0/16')).packet).toHaveLength(2);
    expect(compileToNft(parseFilter('')).packet).toEqual(['']);
  });

  it('widens the conntrack pass to both tuples for positive address and port tests only', () => {
    const ct = compileToNft(parseFilter('host 10.244.1.12')).conntrack;
    expect(ct).toEqual(expect.arrayContaining(['meta nfproto ipv4 ct original ip saddr 10.244.1.12', 'meta nfproto ipv4 ct reply ip daddr 10.244.1.12']));
    expect(ct).toHaveLength(4);
    expect(compileToNft(parseFilter('not host 10.0.0.1')).conntrack).toEqual([]);
    expect(compileToNft(parseFilter('tcp')).conntrack).toEqual([]);
  });

  it('drops conjunctions that mix families instead of emitting rules nft would refuse', () => {
    expect(compileToNft(parseFilter('host 10.0.0.1 and host fd00::1')).packet).toEqual([]);
    expect(compileToNft(parseFilter('udp and tcp')).packet).toEqual([]);
    expect(compileToNft(parseFilter('ip and not ip')).packet).toEqual([]);
  });

  it('matches exactly the hops the filter matches (IP hops, any filter that fits in rules)', () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHop.filter((h) => h.family !== 0), { minLength: 1, maxLength: 8 }), (ast: FilterAst, hops) => {
      const nft = compileToNft(ast);
      for (const hop of hops) {
        const want = matchesHop(ast, hop);
        // A filter too complex for rules traces everything: a superset, still correct.
        if (nft.widened) expect(anyRule(nft.packet, hop)).toBe(true);
        else expect(anyRule(nft.packet, hop)).toBe(want);
      }
    }), { numRuns: 400 });
  });

  it('compiles the same conjunctions for the bridge family, on IP frames only', () => {
    expect(compileToNft(parseFilter('udp and dst port 9999')).bridge).toEqual(['meta protocol { ip, ip6 } meta l4proto udp th dport 9999']);
    expect(compileToNft(parseFilter('src host 10.244.1.11')).bridge).toEqual(['meta protocol ip ip saddr 10.244.1.11']);
    expect(compileToNft(parseFilter('host fd00::1')).bridge).toEqual(['meta protocol ip6 ip6 saddr fd00::1', 'meta protocol ip6 ip6 daddr fd00::1']);
    expect(compileToNft(parseFilter('not ip')).bridge).toEqual(['meta protocol ip6']);
    expect(compileToNft(parseFilter('icmp')).bridge).toEqual(['meta protocol ip meta l4proto icmp']);
    expect(compileToNft(parseFilter('')).bridge).toEqual(['meta protocol { ip, ip6 }']);
    // No rule of the bridge table may name meta nfproto (always `bridge` there) or conntrack.
    for (const f of ['not host 10.0.0.1', 'tcp and not port 22', 'ip6 or icmp']) {
      for (const r of compileToNft(parseFilter(f)).bridge) expect(r).toMatch(/^meta protocol (ip|ip6|\{ ip, ip6 \})( |$)/);
    }
  });

  it('bridge rules match exactly the IP frames the filter matches', () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHop.filter((h) => h.family !== 0), { minLength: 1, maxLength: 8 }), (ast: FilterAst, hops) => {
      const nft = compileToNft(ast);
      expect(nft.bridge.length).toBeLessThanOrEqual(Math.max(1, nft.packet.length));
      for (const hop of hops) {
        if (nft.widened) expect(anyRule(nft.bridge, hop)).toBe(true);
        else expect(anyRule(nft.bridge, hop)).toBe(matchesHop(ast, hop));
      }
    }), { numRuns: 400 });
  });

  it('builds a bridge family table of the same name and owner, hooked before the bridge dstnat and filter chains', () => {
    const text = buildTraceTable(compileToNft(parseFilter('host 10.250.0.1')), { name: 'hoptrace_42_7', family: 'bridge', ratePerSecond: 500, owner: { pid: 42, startTime: 99 } });
    expect(text).toMatch(/^table bridge hoptrace_42_7 \{\n {2}comment "hoptrace pid 42 start 99"/);
    expect(text).toContain('type filter hook prerouting priority -350; policy accept;');
    expect(text).toContain('type filter hook output priority -350; policy accept;');
    expect(text).toContain('limit rate 500/second burst 500 packets meta nftrace set 1');
    expect(text).toContain('meta protocol ip ip saddr 10.250.0.1 goto settrace');
    expect(text).not.toMatch(/\bct |nfproto|priority -160/);
    expect(() => buildTraceTable(compileToNft(parseFilter('')), { name: 'hoptrace_1_1', family: 'ip' as 'inet', ratePerSecond: 1, owner: { pid: 1, startTime: 1 } })).toThrow(/family/);
  });

  it('builds a table named and commented for its owner, limited and hooked early', () => {
    const text = buildTraceTable(compileToNft(parseFilter('udp port 53')), { name: 'hoptrace_42_7', ratePerSecond: 500, owner: { pid: 42, startTime: 99 } });
    expect(text).toMatch(/^table inet hoptrace_42_7 \{\n {2}comment "hoptrace pid 42 start 99"/);
    expect(text).toContain('type filter hook prerouting priority -350; policy accept;');
    expect(text).toContain('type filter hook output priority -350; policy accept;');
    expect(text).toContain('type filter hook prerouting priority -160; policy accept;');
    expect(text).toContain('limit rate 500/second burst 500 packets meta nftrace set 1');
    expect(parseTableOwner('hoptrace pid 42 start 99')).toEqual({ pid: 42, startTime: 99 });
    expect(() => buildTraceTable(compileToNft(parseFilter('')), { name: 'filter', ratePerSecond: 1, owner: { pid: 1, startTime: 1 } })).toThrow(/not a hoptrace table/);
    expect(HOPTRACE_TABLE_RE.test('hoptrace')).toBe(true);
    expect(HOPTRACE_TABLE_RE.test('hoptrace_1_2')).toBe(true);
    expect(HOPTRACE_TABLE_RE.test('hoptrace; drop')).toBe(false);
  });
});

describe.skipIf(!isRoot)(`nft accepts every table the compiler builds (${NEEDS_ROOT})`, () => {
  const ns = `nfc-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => { await execa('ip', ['netns', 'add', ns]); });
  afterAll(async () => { await execa('ip', ['netns', 'del', ns], { reject: false }); });

  it.each(['inet', 'bridge'] as const)('passes nft -c for 150 random filters (%s family)', async (family) => {
    const filters = fc.sample(arbFilterAst, { numRuns: 150, seed: 7 });
    const failures: string[] = [];
    // Several tables per nft call keeps this quick; a failure is narrowed down one by one.
    for (let i = 0; i < filters.length; i += 15) {
      const batch = filters.slice(i, i + 15).map((f, j) => buildTraceTable(compileToNft(f), { name: `hoptrace_1_${i + j + 1}`, family, ratePerSecond: 100, owner: { pid: 1, startTime: 1 } }));
      const r = await execa('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', '-'], { input: batch.join('\n'), reject: false });
      if (r.exitCode !== 0) {
        for (const t of batch) {
          const one = await execa('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', '-'], { input: t, reject: false });
          if (one.exitCode !== 0) failures.push(`${String(one.stderr).split('\n')[0]}\n${t}`);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);
});
