/**
 * server/bpftrace.ts's ProbeOutputReader: bpftrace's output cut into reads anywhere (inside a
 * line, right after a '\n', many lines or none per read) reaches the engine as the same packets,
 * and the other lines as the same ProbeLines, whether hop lines go straight into the engine,
 * arrive as 'hop' ProbeLines, or either from read to read.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ProbeOutputReader } from '../../server/bpftrace.js';
import { toPackedLine, type ProbeLine } from '../../probes/hop-line.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import type { Packet } from '../../shared/packet.js';

const long = readFileSync(new URL('../../probes/fixtures/lab-round.txt', import.meta.url), 'utf8');
const lines = long.split('\n');
// As the probes print now, with a few lines that are not hops or are damaged.
const output = [
  ...lines.map((l) => toPackedLine(l) ?? l),
  'Lost 12 events',
  'N 1 2 3',
  `${toPackedLine(lines.find((l) => l.startsWith('H ')) ?? '') ?? ''}`.replace(/ /, ' x'),
  ...lines.slice(0, 40),
  'P',
  '',
].join('\n');

interface Read {
  readonly packets: Packet[];
  readonly others: ProbeLine[];
  readonly hops: number;
}

/** Feeds `text` cut at `cuts`; `direct(i)` says whether read i may write hops straight into the engine. */
function read(text: string, cuts: readonly number[], direct: (i: number) => boolean): Read {
  const engine = new Reconstructor({ reorderWindowNs: 1000, idleNs: 1_000_000 });
  const others: ProbeLine[] = [];
  let hops = 0;
  let i = 0;
  const reader = new ProbeOutputReader(
    { hopEngine: () => (direct(i) ? engine : null), onHops: (n) => (hops += n) },
    (line) => {
      if (line.type === 'hop') {
        hops++;
        engine.push(line.hop);
      } else {
        others.push(line);
      }
    },
  );
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...at, text.length]) {
    reader.feed(text.slice(from, to));
    from = to;
    i++;
  }
  return { packets: engine.flush(), others, hops };
}

describe('bpftrace output reader', () => {
  const whole = read(output, [], () => false);

  it('reads a capture whole as parse-then-push does', () => {
    expect(whole.packets.length).toBeGreaterThan(10);
    expect(whole.others.map((o) => o.type)).toEqual(['attaching', 'ready', 'lost', 'other', 'other', 'attaching', 'ready', 'other']);
    expect(read(output, [], () => true)).toEqual(whole);
  });

  it('reads it the same however it is cut into reads, hops straight into the engine or not', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 60 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), (cuts, pattern) => {
        expect(read(output, cuts, (i) => pattern[i % pattern.length] ?? true)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps an unfinished line for the next read, however many reads it spans', () => {
    const text = output.slice(0, 2000);
    const cuts = Array.from({ length: 400 }, (_, k) => k * 5);
    expect(read(text, cuts, () => true)).toEqual(read(text, [], () => false));
  });
});
