/**
 * The stats program against real bpftrace: every variant compiles against this kernel's BTF
 * (dry run), and the kernel's bucket and sampling arithmetic equals the JavaScript mirrors that
 * read its output (shared/stats/buckets.ts, shared/stats/sampling.ts).
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { buildStatsProgram, bucketCode } from '../../probes/stats/assemble.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { sampleHashExpr, sampleCondition } from '../../probes/sample.js';
import { compileToBpftrace, parseFilter, v4ToRaw, portToRaw, v6ToRaw } from '../../shared/filter/index.js';
import { bucketIndex } from '../../shared/stats/buckets.js';
import { flowSampleHash } from '../../shared/stats/sampling.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const base = { selfNetns: 4026531840, reasonNotSpecified: 2 };

async function bpftrace(program: string, dryRun: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ht-stats-'));
  try {
    const file = join(dir, 'p.bt');
    writeFileSync(file, program);
    const r = await execa('bpftrace', [...(dryRun ? ['-d'] : []), file], { reject: false, timeout: 120_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('stats program assembly', () => {
  it('substitutes only numbers and the compiled filter', () => {
    const p = buildStatsProgram({ ...base, filterExpr: compileToBpftrace(parseFilter('udp and port 53')), intervalMs: 500, sampleRate: 8 });
    expect(p).toContain('interval:ms:500');
    expect(p).toContain('% 8) == 0');
    expect(p).not.toMatch(/\{\{\w+\}\}/);
    expect(p).not.toMatch(/\/\/ @\w+/);
    expect(() => buildStatsProgram({ ...base, filterExpr: '1; system("x")' })).toThrow(/unexpected characters/);
    expect(() => buildStatsProgram({ ...base, filterExpr: '1', sampleRate: 0 })).toThrow(/sample rate/);
    expect(() => buildStatsProgram({ ...base, filterExpr: '1', intervalMs: 0.5 })).toThrow(/intervalMs/);
  });

  it('leaves out the interval probe when there is no interval: one snapshot at the end', () => {
    const p = buildStatsProgram({ ...base, filterExpr: '1' });
    expect(p).not.toContain('interval:');
    expect(p).toContain('printf("F %llu\\n", nsecs);');
  });

  it('joins fragments (probes/stats/README.md "Fragments"): later ones by key only under a filter, the head\'s and the encapsulated original\'s frees not counted as ends', () => {
    const filtered = buildStatsProgram({ ...base, filterExpr: compileToBpftrace(parseFilter('udp and port 5000')) });
    const all = buildStatsProgram({ ...base, filterExpr: '1' });
    expect(filtered).toContain('@frags[$fk, $fid] = $now;');
    expect(all).not.toContain('@frags');
    for (const p of [filtered, all]) {
      const consume = p.slice(p.indexOf('tracepoint:skb:consume_skb'));
      // An encapsulated skb's free is its way to that device's transmit (kind 1), else a consume (5).
      expect(consume).toContain('$loc = ($netns << 32) | ($ifindex << 8) | ($sig != ($v6 ? ($w & 0x00ffffffffffffff) : $w) ? 1 : 5);');
      expect(consume).toContain('if (!(!$v6 && (($w >> 48) & 0xff3f) != 0)) {');
      // The other probes count no segment for a later fragment (offset bits set).
      const xmit = p.slice(p.indexOf('tracepoint:net:net_dev_start_xmit'), p.indexOf('tracepoint:net:netif_rx'));
      expect(xmit).toContain('if (!(!$v6 && (($w >> 48) & 0xff1f) != 0)) {');
    }
  });

  it('adds sampling to the hop probes without touching the hop line', () => {
    const plain = buildHopProgram({ ...base, filterExpr: '1' });
    const sampled = buildHopProgram({ ...base, filterExpr: '1', sampleRate: 16 });
    expect(sampled).toContain(sampleCondition(16));
    expect(sampled).toContain('@flows[');
    const printf = (s: string): string[] => s.split('\n').filter((l) => l.includes('printf("P '));
    expect(printf(sampled)).toEqual(printf(plain));
    expect(buildHopProgram({ ...base, filterExpr: '1', sampleRate: 1 })).toBe(plain);
  });
});

describe.skipIf(!isRoot)(`stats program in bpftrace (${NEEDS_ROOT})`, () => {
  it.each([
    ['no filter', '', 1, 1000],
    ['no filter, sampled', '', 4, 1000],
    ['a filter', 'udp and host 10.244.1.12', 1, undefined],
    ['a filter, sampled, IPv6', 'ip6 and net fd00::/8 and port 80', 32, 250],
  ])('compiles against this kernel: %s', async (_name, filter, sampleRate, intervalMs) => {
    const program = buildStatsProgram({ ...base, filterExpr: compileToBpftrace(parseFilter(filter)), sampleRate, ...(intervalMs ? { intervalMs } : {}) });
    const r = await bpftrace(program, true);
    expect(r.stderr.split('\n').filter((l) => /ERROR/.test(l) && !/RLIMIT_MEMLOCK/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
  }, 120_000);

  it('computes the same bucket as bucketIndex for every kind of value', async () => {
    const values = new Set<number>([0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1000, 1023, 1024, 1025, 123_456_789, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345]);
    for (let e = 2; e < 45; e++) for (const d of [-1, 0, 1]) values.add(2 ** e + d);
    for (const v of fc.sample(fc.integer({ min: 0, max: 2 ** 44 }), { numRuns: 60, seed: 8 })) values.add(v);
    const list = [...values];
    const body = list.map((v) => `  $x = (uint64)${v};\n${bucketCode('$x', '$b')}\n  printf("%llu %llu\\n", $x, $b);`).join('\n');
    const r = await bpftrace(`BEGIN\n{\n${body}\n  exit();\n}\n`, false);
    expect(r.code).toBe(0);
    const got = r.stdout.split('\n').filter((l) => /^\d+ \d+$/.test(l)).map((l) => l.split(' ').map(Number));
    expect(got.length).toBe(list.length);
    for (const [v, b] of got) expect([v, b]).toEqual([v, bucketIndex(v ?? 0)]);
  }, 120_000);

  it('computes the same flow hash as flowSampleHash, IPv4 and IPv6', async () => {
    const flows = [
      { s: '10.244.1.11', d: '10.244.1.12', sp: 40000, dp: 5201, proto: 17 },
      { s: '10.244.1.12', d: '10.244.1.11', sp: 5201, dp: 40000, proto: 17 },
      { s: '10.99.0.2', d: '10.99.0.1', sp: 8080, dp: 33000, proto: 6 },
      { s: 'fd00:244:1::11', d: 'fd00:244:1::12', sp: 1234, dp: 80, proto: 6 },
      { s: '192.168.255.255', d: '1.2.3.4', sp: 65535, dp: 1, proto: 1 },
    ];
    const raw = flows.map((f) => {
      const v6 = f.s.includes(':');
      const s = v6 ? v6ToRaw(f.s) : { hi: BigInt(v4ToRaw(f.s)), lo: 0n };
      const d = v6 ? v6ToRaw(f.d) : { hi: BigInt(v4ToRaw(f.d)), lo: 0n };
      return { s0: s.hi, s1: s.lo, d0: d.hi, d1: d.lo, sp: portToRaw(f.sp), dp: portToRaw(f.dp), proto: f.proto };
    });
    const body = raw.map((f) => [
      `  $s0 = (uint64)0x${f.s0.toString(16)}; $s1 = (uint64)0x${f.s1.toString(16)}; $d0 = (uint64)0x${f.d0.toString(16)}; $d1 = (uint64)0x${f.d1.toString(16)};`,
      `  $sp = (uint64)${f.sp}; $dp = (uint64)${f.dp}; $l4 = (uint64)${f.proto};`,
      `  printf("%llu\\n", ${sampleHashExpr()});`,
    ].join('\n')).join('\n');
    const r = await bpftrace(`BEGIN\n{\n${body}\n  exit();\n}\n`, false);
    expect(r.code).toBe(0);
    const got = r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map((l) => BigInt(l));
    expect(got).toEqual(raw.map(flowSampleHash));
    // Both directions of an un-NATed flow hash alike.
    expect(got[0]).toBe(got[1]);
  }, 120_000);
});
