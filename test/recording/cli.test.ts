import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import type { HopEvent } from '../../shared/hop-event.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { decodeRecording, preamble } from '../../shared/recording/index.js';
import { packetJson } from '../../shared/format.js';
import { TraceSession } from '../../server/trace-session.js';
import { buildRecording, tempDir, type BuiltRecording } from './fixtures.js';
import { START_MONO, syntheticEvents } from './synthetic.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function hoptrace(...args: string[]) {
  return execa(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], { reject: false });
}

/** What `trace --json` would have printed for these events, given the recording's names, reasons and filter. */
function expectedPackets(built: BuiltRecording, filter: string, events: readonly HopEvent[] = built.events) {
  const reasons = new Map([[2, 'NOT_SPECIFIED'], [12, 'NETFILTER_DROP']]);
  return reconstructAll(events, {
    nsName: (n) => built.names.get(n) ?? null,
    dropReason: (c) => reasons.get(c) ?? `reason-${c}`,
    ...(filter ? { accept: new TraceSession({ filter }).accepts } : {}),
  });
}

describe('hoptrace replay', () => {
  const events = syntheticEvents(1500, 21);
  const built = buildRecording(events, { header: { filter: 'udp or icmp' }, lost: [[700, 9]] });
  const path = tmp.file('r.hoptrace', built.bytes);

  it('should print with --json exactly what trace --json prints for the same events', async () => {
    const r = await hoptrace('replay', path, '--json');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const lines = String(r.stdout).trim().split('\n');
    const expected = expectedPackets(built, 'udp or icmp');
    expect(expected.some((p) => p.fate === 'dropped' && p.drop?.reason === 'NETFILTER_DROP')).toBe(true);
    expect(expected.every((p) => p.proto !== 'tcp')).toBe(true);
    expect(lines.filter((l) => !l.startsWith('{"type":"lost"'))).toEqual(expected.map(packetJson));
    expect(lines.filter((l) => l.startsWith('{"type":"lost"'))).toEqual(['{"type":"lost","events":9,"total":9}']);
  });

  it('should print packets in the human format with the recorded namespace names', async () => {
    const r = await hoptrace('replay', path);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^packet 1 /);
    expect(r.stdout).toContain('lab-pod1');
    expect(r.stdout).toContain('NETFILTER_DROP');
    expect(r.stderr).toContain('lost 9 events');
  });

  it('should summarise with --stats', async () => {
    const expected = expectedPackets(built, 'udp or icmp');
    const r = await hoptrace('replay', path, '--stats', '--json');
    expect(r.exitCode).toBe(0);
    const s = JSON.parse(String(r.stdout)) as Record<string, unknown>;
    expect(s).toMatchObject({
      events: events.length, packets: expected.length, lost: 9, filter: 'udp or icmp', host: 'testhost', complete: true,
      fates: { delivered: expected.filter((p) => p.fate === 'delivered').length, dropped: expected.filter((p) => p.fate === 'dropped').length, unknown: 0 },
      drops: { NETFILTER_DROP: expected.filter((p) => p.fate === 'dropped').length },
    });
    const text = await hoptrace('replay', path, '--stats');
    expect(text.stdout).toMatch(/packets +\d+: \d+ delivered, \d+ dropped/);
    expect(text.stdout).toMatch(/drops by reason\n {2}NETFILTER_DROP +\d+/);
  });

  it('should replay only packets starting in --from/--to, complete', async () => {
    const all = expectedPackets(built, 'udp or icmp');
    const t0 = START_MONO;
    const [from, to] = [0.08, 0.2];
    const r = await hoptrace('replay', path, '--json', '--from', String(from), '--to', String(to));
    expect(r.exitCode).toBe(0);
    const got = String(r.stdout).trim().split('\n').filter((l) => l.startsWith('{"id"'));
    const want = all.filter((p) => (p.hops[0]?.t ?? 0) >= t0 + from * 1e9 && (p.hops[0]?.t ?? 0) < t0 + to * 1e9);
    expect(want.length).toBeGreaterThan(50);
    expect(want.length).toBeLessThan(all.length / 2);
    expect(got).toEqual(want.map(packetJson));
  });

  it('should pace output with --speed', async () => {
    const span = (Math.max(...events.map((e) => e.t)) - Math.min(...events.map((e) => e.t))) / 1e9;
    const t = Date.now();
    const r = await hoptrace('replay', path, '--json', '--speed', '0.5');
    expect(r.exitCode).toBe(0);
    expect((Date.now() - t) / 1000).toBeGreaterThan(span / 0.5 * 0.9);
    expect(String(r.stdout).trim().split('\n').filter((l) => l.startsWith('{"id"'))).toHaveLength(expectedPackets(built, 'udp or icmp').length);
  });

  it('should replay a truncated file up to the cut, warn with the byte offset and exit 0', async () => {
    const { records } = decodeRecording(built.bytes);
    const victim = records.filter((x) => x.kind === 'event')[6000];
    if (!victim) throw new Error('fixture too small');
    const r = await hoptrace('replay', tmp.file('cut.hoptrace', built.bytes.subarray(0, victim.offset + 7)), '--json');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe(`hoptrace: warning: ${tmp.dir}/cut.hoptrace is truncated: it stops inside a record at byte ${victim.offset}; everything before that was replayed`);
    const got = String(r.stdout).trim().split('\n').filter((l) => l.startsWith('{"id"'));
    expect(got).toEqual(expectedPackets(built, 'udp or icmp', events.slice(0, 6000)).map(packetJson));
  });

  it('should replay what is intact of a damaged file, then exit 1 with one sentence', async () => {
    const damaged = built.bytes.slice();
    const { records } = decodeRecording(built.bytes);
    const victim = records.filter((x) => x.kind === 'event')[3000];
    if (!victim) throw new Error('fixture too small');
    damaged[victim.offset + 10] = (damaged[victim.offset + 10] as number) ^ 0x40;
    const p = tmp.file('damaged.hoptrace', damaged);
    const r = await hoptrace('replay', p, '--json');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`hoptrace: ${p} is damaged: 1 damaged stretch (${victim.next - victim.offset} bytes, the first at byte ${victim.offset}) were skipped; the rest was replayed`);
    const got = String(r.stdout).trim().split('\n').filter((l) => l.startsWith('{"id"'));
    expect(got).toEqual(expectedPackets(built, 'udp or icmp', events.filter((_, i) => i !== 3000)).map(packetJson));
  });

  it('should refuse files it cannot replay with one line naming the file', async () => {
    const cases: Array<[string, Uint8Array | null, number, RegExp]> = [
      ['notes.txt', new TextEncoder().encode('just text\n'), 1, /is not a hoptrace recording/],
      ['newer.hoptrace', (() => { const b = built.bytes.slice(); b.set(preamble(3, 0), 0); return b; })(), 2, /format 3\.0, newer than this hoptrace reads .* upgrade hoptrace/],
      ['headless.hoptrace', built.bytes.subarray(0, 30), 1, /ends at byte 30, inside its header/],
      ['missing.hoptrace', null, 1, /cannot read it: no such file/],
    ];
    for (const [name, bytes, code, re] of cases) {
      const p = bytes ? tmp.file(name, bytes) : tmp.file(name);
      const r = await hoptrace('replay', p);
      expect(r.exitCode, name).toBe(code);
      expect(r.stdout).toBe('');
      const lines = String(r.stderr).split('\n');
      expect(lines, name).toHaveLength(1);
      expect(lines[0]).toContain(`cannot replay ${p}: `);
      expect(lines[0]).toMatch(re);
    }
    expect((await hoptrace('replay')).exitCode).toBe(2);
    expect((await hoptrace('replay', path, '--speed', 'fast')).exitCode).toBe(2);
  });
});
