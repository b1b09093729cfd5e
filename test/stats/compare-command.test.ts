/**
 * `hoptrace compare A B` as a user runs it, on files: two recordings of the same lab path where
 * the node forwards 40× slower in B (web/test/ab-fixture.ts), the same as `stats --json` output,
 * a mix of both, and files that are damaged, cut short, missing or not ours.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AB_AFTER, AB_BEFORE } from '../../web/test/ab-fixture.js';
import { statsFromRecording } from '../../shared/stats/from-recording.js';
import type { StatsComparison } from '../../shared/stats/compare.js';
import { cli } from '../helpers/cli.js';

const SLOWED = 'lab-node/veth-pod1/recv>lab-node/br0/xmit';

describe('compare command', () => {
  let dir: string;
  const file = (name: string): string => join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ht-compare-'));
    writeFileSync(file('before.hoptrace'), AB_BEFORE);
    writeFileSync(file('after.hoptrace'), AB_AFTER);
    // A recording cut short, as a recorder killed mid-write leaves it.
    writeFileSync(file('after-cut.hoptrace'), AB_AFTER.subarray(0, Math.floor(AB_AFTER.length * 0.6)));
    // `stats --json` output is one document per interval: here the before run's document twice,
    // as two intervals of 40 packets each, which the merge adds up.
    const before = JSON.stringify(statsFromRecording(AB_BEFORE));
    writeFileSync(file('before.ndjson'), `${before}\n${before}\n`);
    writeFileSync(file('before-cut.ndjson'), `${before}\n${before.slice(0, 200)}`);
    writeFileSync(file('not-ours.txt'), 'hello\nworld\n');
    writeFileSync(file('wrong-shape.ndjson'), `${JSON.stringify({ type: 'stats', segments: 'many' })}\n`);
    writeFileSync(file('empty.ndjson'), '');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function compareJson(a: string, b: string): Promise<{ cmp: StatsComparison; stderr: string }> {
    const r = await cli(['compare', file(a), file(b), '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    return { cmp: JSON.parse(String(r.stdout)) as StatsComparison, stderr: String(r.stderr) };
  }

  it('finds the one segment that got slower between two recordings, and only that one', async () => {
    const { cmp, stderr } = await compareJson('before.hoptrace', 'after.hoptrace');
    expect(stderr).toBe('');
    expect(cmp.segments[0]?.id).toBe(SLOWED);
    expect(cmp.segments[0]?.significant).toBe(true);
    expect(cmp.segments[0]?.p99_ratio).toBeGreaterThan(30);
    expect([cmp.segments[0]?.a?.count, cmp.segments[0]?.b?.count]).toEqual([40, 60]);
    expect(cmp.segments.slice(1).every((s) => !s.significant && s.diff?.p99_ns === 0)).toBe(true);
    expect(cmp.segments).toHaveLength(7);
  });

  it('prints the comparison as a table, the slowed segment first and marked', async () => {
    const r = await cli(['compare', file('before.hoptrace'), file('after.hoptrace')]);
    expect(r.exitCode).toBe(0);
    const lines = String(r.stdout).split('\n');
    expect(lines[0]).toContain(`A  ${file('before.hoptrace')}`);
    expect(lines[1]).toContain(`B  ${file('after.hoptrace')}`);
    const first = lines.find((l) => l.includes('→'));
    expect(first).toMatch(/lab-node veth-pod1 recv\s+→ lab-node br0 xmit\s+40\s+60\s.*\+19\dµs\s+40\.00×\s+\*$/);
    expect(lines.filter((l) => l.includes('→') && l.trimEnd().endsWith('*'))).toHaveLength(1);
  });

  it('reads `stats --json` output, merging its interval documents, against a recording', async () => {
    const { cmp } = await compareJson('before.ndjson', 'after.hoptrace');
    const slowed = cmp.segments.find((s) => s.id === SLOWED);
    // Two documents of 40 packets each, merged.
    expect(slowed?.a?.count).toBe(80);
    expect(slowed?.significant).toBe(true);
    expect(cmp.segments.filter((s) => s.significant)).toHaveLength(1);
  });

  it('compares what is intact of a cut-short recording or stats file, and says what it skipped', async () => {
    const rec = await compareJson('before.hoptrace', 'after-cut.hoptrace');
    expect(rec.stderr).toMatch(/after-cut\.hoptrace is truncated/);
    const slowed = rec.cmp.segments.find((s) => s.id === SLOWED);
    expect(slowed?.b?.count).toBeGreaterThan(0);
    expect(slowed?.b?.count).toBeLessThan(60);
    const json = await compareJson('before-cut.ndjson', 'after.hoptrace');
    expect(json.stderr).toMatch(/before-cut\.ndjson line 2 skipped: not JSON/);
    expect(json.cmp.segments.find((s) => s.id === SLOWED)?.a?.count).toBe(40);
  });

  it.each([
    [['compare'], 2, /compare takes two files \(A B\), got 0/],
    [['compare', 'x'], 2, /compare takes two files \(A B\), got 1/],
    [['compare', '@before.hoptrace', '@after.hoptrace', '--top', '0'], 2, /--top takes a whole number ≥ 1/],
    [['compare', '@before.hoptrace', '@missing.hoptrace'], 1, /cannot read .*missing\.hoptrace: no such file/],
    [['compare', '@not-ours.txt', '@after.hoptrace'], 1, /not-ours\.txt is neither a recording nor `hoptrace stats --json` output \(line 1: not JSON\)/],
    [['compare', '@wrong-shape.ndjson', '@after.hoptrace'], 1, /wrong-shape\.ndjson is neither .* \(line 1: not a stats document \(start_ns: /],
    [['compare', '@empty.ndjson', '@after.hoptrace'], 1, /empty\.ndjson is neither .* \(it is empty\)/],
  ])('%j: exit %i with one clear sentence', async (args, code, message) => {
    const r = await cli(args.map((a) => (a.startsWith('@') ? file(a.slice(1)) : a)));
    expect(r.exitCode).toBe(code);
    expect(String(r.stderr)).toMatch(message);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
    expect(String(r.stdout)).toBe('');
  });

  it('documents itself in --help and in the command list', async () => {
    const help = await cli(['compare', '--help']);
    expect(help.exitCode).toBe(0);
    for (const s of ['--json', '--top', '.hoptrace', 'stats --json']) expect(String(help.stdout)).toContain(s);
    const list = await cli(['--help']);
    expect(String(list.stdout)).toMatch(/^ {2}compare +compare per-segment latency/m);
  });
});
