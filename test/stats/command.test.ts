/**
 * `hoptrace stats` as a user runs it: bad input is one sentence and exit 2; a run with
 * --interval prints one JSON document per interval, each covering only its interval, so the
 * intervals add up to exactly the traffic sent.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatsDocument } from '../../shared/stats/types.js';
import type { StatsComparison } from '../../shared/stats/compare.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, labInodes, randomPrefix, startReady } from '../helpers/cli.js';

describe('stats command input', () => {
  it.each([
    [['--interval', '0.01'], /--interval takes a number ≥ 0.1/],
    // The same bounds as trace and record (MAX_SAMPLE): one message for all three.
    [['--sample', '0'], /--sample takes a whole number from 1 to 65536, got '0'/],
    [['--sample', '2.5'], /--sample takes a whole number/],
    [['--sample', String(2 ** 31)], /--sample takes a whole number from 1 to/],
    [['--duration', 'soon'], /--duration takes a number/],
    [['--filter', 'port'], /bad filter/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ])('rejects %j with exit 2 and one clear sentence', async (args, message) => {
    const r = await cli(['stats', ...args]);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(message);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
    expect(String(r.stdout)).toBe('');
  });

  it('documents its options in --help', async () => {
    const r = await cli(['stats', '--help']);
    expect(r.exitCode).toBe(0);
    for (const flag of ['--filter', '--duration', '--interval', '--sample', '--json']) expect(String(r.stdout)).toContain(flag);
  });
});

describe.skipIf(!isRoot)(`stats command on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;

  beforeAll(async () => {
    lab = labFor(randomPrefix('sc'));
    await labUp(lab);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    if (lab) await labDown(lab);
  });

  it('prints one document per interval whose counts add up to the packets sent', async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const { child } = await startReady(['stats', '--json', '--interval', '0.5', '--filter', `udp and dst port ${port}`]);
    // 150 packets over ~1.5 s: they straddle several interval boundaries.
    await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 150, 32, 10);
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    const docs = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatsDocument);
    expect(docs.length).toBeGreaterThanOrEqual(3);
    expect(docs[docs.length - 1]?.final).toBe(true);
    expect(docs.slice(0, -1).every((d) => !d.final)).toBe(true);
    for (const [i, d] of docs.entries()) {
      expect(Object.keys(d)).toEqual(expect.arrayContaining(['segments', 'transit', 'drops', 'interfaces', 'start', 'end', 'sample_rate']));
      if (i > 0) expect(d.start_ns).toBe(docs[i - 1]?.end_ns);
    }
    const perInterval = docs.map((d) => d.segments
      .filter((s) => roles.get(s.from.netns) === 'pod1' && s.from.event === 'xmit' && roles.get(s.to.netns) === 'node')
      .reduce((n, s) => n + s.count, 0));
    expect(perInterval.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(perInterval.reduce((a, b) => a + b, 0)).toBe(150);

    // What the kernel printed is what `compare` reads: the run against itself, intervals merged.
    const dir = mkdtempSync(join(tmpdir(), 'ht-stats-'));
    try {
      const file = join(dir, 'run.ndjson');
      writeFileSync(file, String(r.stdout));
      const c = await cli(['compare', file, file, '--json']);
      expect(String(c.stderr)).toBe('');
      expect(c.exitCode).toBe(0);
      const cmp = JSON.parse(String(c.stdout)) as StatsComparison;
      const out = cmp.segments.find((s) => s.from.ns.endsWith('pod1') && s.from.event === 'xmit' && s.to.ns.endsWith('node'));
      expect([out?.a?.count, out?.b?.count]).toEqual([150, 150]);
      expect(cmp.segments.every((s) => s.diff?.p99_ns === 0 && !s.significant)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
