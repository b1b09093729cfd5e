/**
 * The reconstruction engine attaches notes to the packet whose skb they name, after the hop
 * they followed (captured lab run: probes/notes/fixtures/notes-lab.txt), and leaves packets
 * without a `notes` field when no note was ever pushed (the --json contract stays as it was).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseProbeLine } from '../../probes/hop-line.js';
import { parseNoteLine } from '../../probes/notes/note-line.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { formatPacket } from '../../shared/format.js';
import type { Packet } from '../../shared/packet.js';

const text = readFileSync(new URL('../../probes/notes/fixtures/notes-lab.txt', import.meta.url), 'utf8');
const roles = new Map<number, string>();
for (const m of text.matchAll(/(node|pod1|pod2|ext) (\d{6,})/g)) roles.set(Number(m[2]), m[1] ?? '');

function replay(withNotes: boolean): Packet[] {
  const rec = new Reconstructor({ nsName: (n) => roles.get(n) ?? null });
  const out: Packet[] = [];
  for (const line of text.split('\n')) {
    const p = parseProbeLine(line);
    if (p.type === 'hop') rec.push(p.hop);
    const note = parseNoteLine(line);
    if (note && withNotes) rec.pushNote(note);
    out.push(...rec.drain());
  }
  return [...out, ...rec.flush()];
}

const where = (p: Packet | undefined, kind: string): string[] =>
  (p?.notes ?? []).filter((n) => n.kind === kind).map((n) => `${n.ns}/${n.afterHop < 0 ? '-' : `${p?.hops[n.afterHop]?.ifname}/${p?.hops[n.afterHop]?.event}`}`);

describe('notes on reconstructed packets', () => {
  const packets = replay(true);
  const toClosed = packets.find((p) => p.dport === 7001 && p.family === 4 && p.hops.some((h) => h.event === 'drop'));
  const echoed = packets.find((p) => p.dport === 7000 && p.src === '10.244.1.11');

  it('puts each note after the hop it followed, in the namespace it names', () => {
    expect(where(echoed, 'qdisc')).toEqual(['pod1/-']);
    expect(where(echoed, 'fdb')).toEqual(['node/veth-pod1/recv']);
    expect(where(echoed, 'fib')).toEqual(['node/br0/recv', 'node/br0/recv', 'ext/eth0/recv']);
    expect(where(echoed, 'neigh')).toEqual(['node/br0/recv']);
    expect(echoed?.notes?.find((n) => n.kind === 'neigh')?.data).toMatchObject({ addr: '10.99.0.2', state: 1, rc: 1, dev: 'eth-node' });
    expect(where(toClosed, 'icmp')).toEqual(['ext/eth0/recv']);
    // Notes are in time order and every one belongs to a hop of its packet's life.
    for (const p of packets) {
      const ts = (p.notes ?? []).map((n) => n.t);
      expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    }
  });

  it('gives every note of the capture to exactly one packet', () => {
    const noteLines = text.split('\n').filter((l) => l.startsWith('N '));
    const attached = packets.flatMap((p) => p.notes ?? []);
    expect(attached).toHaveLength(noteLines.length);
  });

  it('shows notes inline in human output', () => {
    const block = formatPacket(echoed as Packet, 1).split('\n');
    const br0 = block.findIndex((l) => /node\s+br0\s+recv/.test(l));
    expect(block.slice(br0 + 1, br0 + 4).join('\n')).toMatch(/↳ route 10\.99\.0\.2: table main → dev eth-node[\s\S]*↳ waits for neighbour 10\.99\.0\.2 on eth-node \(INCOMPLETE, queued\)/);
    expect(block[1]).toMatch(/↳ waited [\d.]+µs in qdisc \w+: \(ifindex 2\)/);
    expect(formatPacket(toClosed as Packet)).toMatch(/↳ kernel sent ICMP port unreachable to 10\.99\.0\.1 about this packet/);
  });

  it('adds no notes field when notes are off', () => {
    const plain = replay(false);
    expect(plain.length).toBe(packets.length);
    for (const p of plain) expect('notes' in p).toBe(false);
  });
});
