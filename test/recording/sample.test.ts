/**
 * The sample rate of a flow-sampled recording (`record --sample N`, format 1.2): the header keeps
 * it (RecordingHeader field 12), a header without it reads as every flow, a reader that does not
 * know the field still reads the rest; the library, `replay` and `replay --stats` show it; and
 * `record` refuses rates outside 1..65536 as `trace` does, before touching the kernel.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { hoptrace as wire } from '../../shared/wire-generated.js';
import { decodeRecording, FORMAT_MINOR } from '../../shared/recording/index.js';
import { decodeHeader, encodeHeader } from '../../shared/recording/messages.js';
import { readRecordingMeta } from '../../server/recording/index.js';
import { cli } from '../helpers/cli.js';
import { buildRecording, tempDir } from './fixtures.js';
import { syntheticEvents, syntheticHeader } from './synthetic.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('the sample rate in a recording header', () => {
  it('should read back the rate it was written with, and nothing for every flow', () => {
    expect(FORMAT_MINOR).toBeGreaterThanOrEqual(2);
    for (const rate of [2, 16, 256, 65536]) expect(decodeHeader(encodeHeader(syntheticHeader({ sampleRate: rate }))).sampleRate).toBe(rate);
    // Every flow writes the bytes a header without the field has: files of every flow are as before.
    expect(encodeHeader(syntheticHeader({ sampleRate: 1 }))).toEqual(encodeHeader(syntheticHeader()));
    expect(decodeHeader(encodeHeader(syntheticHeader())).sampleRate).toBeUndefined();
  });

  it('should leave the other fields readable by a reader that does not know the rate', () => {
    const h = syntheticHeader({ sampleRate: 64, netfilter: true, filter: 'udp' });
    const bytes = encodeHeader(h);
    // The generated decoder of the .proto without the field, as an older hoptrace reads it.
    const old = wire.RecordingHeader.decode(bytes);
    expect([old.host, old.filter, old.netfilter, old.recorder]).toEqual([h.host, 'udp', true, h.recorder]);
    const back = decodeHeader(bytes);
    expect({ ...back, dropReasons: [...back.dropReasons] }).toEqual({ ...h, dropReasons: [...h.dropReasons] });
  });

  it('should show in the library: the rate of a sampled file, 1 for a file without it', async () => {
    const events = syntheticEvents(30, 5);
    const sampled = tmp.file('sampled.hoptrace', buildRecording(events, { header: { sampleRate: 16 } }).bytes);
    const plain = tmp.file('plain.hoptrace', buildRecording(events).bytes);
    expect((await readRecordingMeta(sampled)).sampleRate).toBe(16);
    expect((await readRecordingMeta(plain)).sampleRate).toBe(1);
    expect(decodeRecording(buildRecording(events, { header: { sampleRate: 16 } }).bytes).header.sampleRate).toBe(16);
  });
});

describe('replay of a sampled recording', () => {
  const events = syntheticEvents(200, 9);
  const sampled = tmp.file('s.hoptrace', buildRecording(events, { header: { sampleRate: 16 } }).bytes);
  const plain = tmp.file('p.hoptrace', buildRecording(events).bytes);

  it('should say the rate on stderr with its totals, leaving the --json lines as trace prints them', async () => {
    const [s, p] = await Promise.all([cli(['replay', sampled, '--json']), cli(['replay', plain, '--json'])]);
    expect(s.exitCode, String(s.stderr)).toBe(0);
    expect(String(s.stdout)).toBe(String(p.stdout));
    expect(String(p.stderr)).toBe('');
    const lines = String(s.stderr).trim().split('\n');
    const packets = String(p.stdout).trim().split('\n').filter((l) => l.startsWith('{"id"')).length;
    expect(packets).toBeGreaterThan(0);
    expect(lines).toEqual([
      'hoptrace: recorded following 1 in 16 flows, chosen in the kernel by flow hash',
      `hoptrace: ${packets} packets, ${events.length} hop events, 0 lost in the kernel (sampled: 1 in 16 flows)`,
    ]);
  });

  it('should show the rate in --stats and --stats --json (1 for a file of every flow)', async () => {
    const [text, json, plainJson] = await Promise.all([
      cli(['replay', sampled, '--stats']), cli(['replay', sampled, '--stats', '--json']), cli(['replay', plain, '--stats', '--json']),
    ]);
    expect(String(text.stdout)).toMatch(/^flows {6}sampled: 1 in 16 flows \(counts not scaled\)$/m);
    expect((JSON.parse(String(json.stdout)) as { sampleRate: number }).sampleRate).toBe(16);
    expect((JSON.parse(String(plainJson.stdout)) as { sampleRate: number }).sampleRate).toBe(1);
  });
});

describe('record --sample validation', () => {
  it.each(['0', '65537', '1.5', 'x', '-4'])('should refuse --sample %s with exit 2 and the accepted range', async (v) => {
    const r = await cli(['record', '-o', `${tmp.dir}/never.hoptrace`, `--sample=${v}`, '--duration', '1']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toBe(`hoptrace: --sample takes a whole number from 1 to 65536, got '${v}'`);
  });

  it('should document --sample in --help', async () => {
    const r = await cli(['record', '--help']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/--sample N\s+record 1 in N flows \(1 to 65536\)/);
  });
});
