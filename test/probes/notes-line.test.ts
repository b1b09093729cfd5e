/**
 * Note lines of the notes tier (captured on a lab: probes/notes/fixtures/notes-lab.txt) and of
 * the function-level tier (hand-written, this kernel has no kprobes: probes/deep/fixtures/),
 * parsed by probes/notes/note-line.ts; and the depth wire codec round-trips them.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseNoteLine, NOTE_FIELDS } from '../../probes/notes/note-line.js';
import { HOP_NOTE_KINDS, type HopNote } from '../../shared/hop-event.js';
import { encodeDepthBatch, decodeDepthBatch, DepthWireError } from '../../shared/netfilter/wire.js';
import { TraceAssembler } from '../../shared/netfilter/monitor-parse.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';

const read = (rel: string): string[] => readFileSync(new URL(rel, import.meta.url), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
const captured = read('../../probes/notes/fixtures/notes-lab.txt');
const handwritten = read('../../probes/deep/fixtures/deep-handwritten.txt');

function notesOf(lines: string[]): HopNote[] {
  return lines.filter((l) => l.startsWith('N ')).map((l) => {
    const n = parseNoteLine(l);
    expect(n, l).not.toBeNull();
    return n as HopNote;
  });
}

describe('note lines', () => {
  it('parses every note of the lab capture, with the documented fields', () => {
    const notes = notesOf(captured);
    expect(new Set(notes.map((n) => n.kind))).toEqual(new Set(['qdisc', 'fdb', 'fib', 'neigh', 'icmp', 'fib6']));
    for (const n of notes) expect(Object.keys(n.data)).toEqual(NOTE_FIELDS[n.kind].map(([name]) => name));
    expect(notes.find((n) => n.kind === 'fdb')).toEqual({
      kind: 'fdb', t: 3997772290659, cpu: 0, skb: 'ffff888188ebf300', netns: 4026532319,
      data: { vid: 0, mac: '0E:51:19:A8:87:1E', bridge: 'br0', port: 'veth-pod1' },
    });
    expect(notes.find((n) => n.kind === 'neigh')?.data).toEqual({ event: 1, family: 2, addr: '10.99.0.2', state: 1, rc: 1, dev: 'eth-node' });
    expect(notes.find((n) => n.kind === 'icmp')?.data).toEqual({ type: 3, code: 3, src: '10.99.0.1', dst: '10.99.0.2', sport: 40551, dport: 7001 });
    expect(notes.find((n) => n.kind === 'fib')?.data).toMatchObject({ table: 254, err: 0, iif: 5, dst: '10.99.0.2', dev: 'eth-node' });
    expect(notes.find((n) => n.kind === 'fib6')?.data).toMatchObject({ table: 255, dst: 'fd00:244:1::11', gw: '::', dev: 'eth0' });
    expect(notes.find((n) => n.kind === 'qdisc')?.data).toMatchObject({ ifindex: 2, parent: 4294967295 });
  });

  it('parses every hand-written function-level line (all its kinds), signed verdicts and hex status included', () => {
    const notes = notesOf(handwritten);
    expect(new Set(notes.map((n) => n.kind))).toEqual(new Set(['nfhook', 'brfwd', 'brflood', 'veth', 'ipfwd', 'nat']));
    expect(notes.find((n) => n.kind === 'nfhook' && n.data.verdict === -1)?.data).toEqual({ pf: 2, hook: 2, verdict: -1, dur_ns: 2300 });
    expect(notes.find((n) => n.kind === 'nat')?.data).toEqual({ mtype: 0, dir: 0, ret: 1, status: 0x1b8 });
    expect(notes.find((n) => n.kind === 'veth' && n.data.ret === 1)?.data).toEqual({ ifindex: 6, ret: 1, peer_netns: 4026532457, peer_ifindex: 2, dev: 'veth-pod2' });
    // Between them the fixtures cover every note kind there is.
    expect(new Set([...notesOf(captured), ...notes].map((n) => n.kind))).toEqual(new Set(HOP_NOTE_KINDS));
  });

  it('refuses malformed lines', () => {
    expect(parseNoteLine('N fib 1 0 ab 5 254 0')).toBeNull();
    expect(parseNoteLine('N nosuch 1 0 ab 5 1 2 3')).toBeNull();
    expect(parseNoteLine('N qdisc 1 0 xyz 5 2 1 1 100')).toBeNull();
    expect(parseNoteLine('N qdisc 1 0 ab 5 2 one 1 100')).toBeNull();
    expect(parseNoteLine('H 1 2 3')).toBeNull();
    // A device name may be empty (the skb had no device): one field fewer is accepted.
    expect(parseNoteLine('N brfwd 1 0 ab 5 3 0 ')?.data).toEqual({ port_ifindex: 3, local_rcv: 0, port: '' });
  });
});

describe('depth wire (DepthBatch)', () => {
  it('round-trips notes and netfilter events', () => {
    const notes = [...notesOf(captured), ...notesOf(handwritten)];
    const lines = readFileSync(new URL('../netfilter/fixtures/monitor-lab.txt', import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('node\t')).map((l) => l.slice(5));
    const a = new TraceAssembler({ ns: 'node', netns: 7, now: () => 123, hookOf: () => null });
    const netfilter = lines.map((l) => a.push(l)).filter((e): e is NetfilterEvent => e !== null);
    expect(netfilter.length).toBeGreaterThan(20);
    const back = decodeDepthBatch(encodeDepthBatch({ notes, netfilter, seq: 42 }));
    expect(back).toEqual({ notes, netfilter, seq: 42 });
  });

  it('rejects bytes that are not a batch and kinds it does not know', () => {
    expect(() => decodeDepthBatch(Uint8Array.from([0xff, 0xff, 0xff, 0xff]))).toThrow(DepthWireError);
    const bad = encodeDepthBatch({ notes: [{ kind: 'fib', t: 1, cpu: 0, skb: 'a', netns: 1, data: {} }], netfilter: [], seq: 1 });
    // Patch the kind string "fib" into "fiX".
    const at = Buffer.from(bad).indexOf('fib');
    const copy = Uint8Array.from(bad);
    copy[at + 2] = 'X'.charCodeAt(0);
    expect(() => decodeDepthBatch(copy)).toThrow(/unknown note kind/);
  });
});
