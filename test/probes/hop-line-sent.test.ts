/**
 * The sending socket's own tuple on a first hop (HopEvent.sent): the probes print it in the
 * encapsulated form's spare words with enc 3 (probes/emit.bt) when a namespace's OUTPUT NAT
 * rewrote the packet before any device saw it. Parsed into `sent`, carried on the wire, and read
 * by reconstruction as the first hop's NAT ("was 127.0.0.1:PORT").
 */
import { describe, it, expect } from 'vitest';
import { parseHopLine, pushHopLines } from '../../probes/hop-line.js';
import { Reconstructor, reconstructAll } from '../../shared/reconstruct.js';
import { formatPacket } from '../../shared/format.js';
import { decodeHop, encodeHop } from '../../shared/wire.js';
import { flowFromPacket } from '../../shared/topology/compare.js';
import type { Packet } from '../../shared/packet.js';

// A SYN 10.162.57.1:56904 > 10.162.57.2:80 on podman1, sent by a socket connected 127.0.0.1:56904 > 127.0.0.1:18743
// (the layout of the real lines test/integration/localhost-forward.test.ts reads).
const HDR = 'ffff888134c15700 f000025400000005 14063c0000000001 139a20a 0 239a20a 0 48de5000 200000000';
const V4 = `PE 4cd42fff4a9 ${HDR} 3406000000000000 100007f 0 100007f 0 374948de podman1`;
// IPv6: fd00::1:56904 > fd00::2:80 from a socket that asked for ::1:18743 (words raw, each 8 bytes read little-endian).
const V6_HDR = 'ffff888134c15800 f000025400000005 1606280000000001 fd 100000000000000 fd 200000000000000 48de5000 200000000';
const V6 = `PE 4cd42fff4a9 ${V6_HDR} 3606000000000000 0 100000000000000 0 100000000000000 374948de podman1`;
const CONSUME = 'P 4cd4300aaaa ffff888134c15700 f000026000000000 54063c0000000001 139a20a 0 239a20a 0 48de5000 200000000 ';

describe("the sending socket's tuple on a first hop", () => {
  it('reads it beside the header, and the hop is not a tunnel hop', () => {
    const h = parseHopLine(V4);
    expect(h).toMatchObject({ kind: 'xmit', family: 4, proto: 6, src: '10.162.57.1', dst: '10.162.57.2', sport: 56904, dport: 80, tcpFlags: 2, ifname: 'podman1' });
    expect(h?.sent).toEqual({ src: '127.0.0.1', dst: '127.0.0.1', sport: 56904, dport: 18743 });
    expect(h?.outer).toBeUndefined();
  });

  it('reads IPv6 sockets', () => {
    const h = parseHopLine(V6);
    expect(h).toMatchObject({ family: 6, src: 'fd00::1', dst: 'fd00::2', dport: 80 });
    expect(h?.sent).toEqual({ src: '::1', dst: '::1', sport: 56904, dport: 18743 });
  });

  it('refuses a socket tuple of no family rather than guess', () => {
    expect(parseHopLine(V4.replace(' 3406000000000000 ', ' 3006000000000000 '))).toBeNull();
    expect(parseHopLine(V4.replace(' 100007f 0 374948de ', ' 100007f 374948de '))).toBeNull();
  });

  it('keeps it through the wire', () => {
    const h = parseHopLine(V4);
    if (!h) throw new Error('unparsed');
    expect(decodeHop(encodeHop(h))).toEqual(h);
    const v6 = parseHopLine(V6);
    if (!v6) throw new Error('unparsed');
    expect(decodeHop(encodeHop(v6)).sent).toEqual(v6.sent);
  });

  it('makes it the first hop\'s NAT, in the packet, its flow and its human form, through either way into the engine', () => {
    const hops = [parseHopLine(V4), parseHopLine(CONSUME)].flatMap((h) => (h ? [h] : []));
    const [p] = reconstructAll(hops, { maxGapNs: 1e9 });
    expect(p?.hops[0]?.nat).toEqual({ kind: 'both', from: { src: '127.0.0.1', dst: '127.0.0.1', sport: 56904, dport: 18743 }, to: { src: '10.162.57.1', dst: '10.162.57.2', sport: 56904, dport: 80 } });
    expect(p?.hops[1]?.nat).toBeNull();
    expect(flowFromPacket(p as Packet)).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', sport: 56904, dport: 18743, iif: null });
    expect(formatPacket(p as Packet)).toContain('was 127.0.0.1:56904 → 127.0.0.1:18743');
    // The store path the live trace takes (lines straight into the engine) agrees.
    const engine = new Reconstructor();
    const lines = `${V4}\n${CONSUME}\n`;
    expect(pushHopLines(engine, lines, 0, lines.length, () => undefined)).toBe(2);
    const [live] = engine.flush();
    expect(live?.hops[0]?.nat).toEqual(p?.hops[0]?.nat);
  });

  it('leaves a plain first hop without NAT', () => {
    const plain = `P 4cd42fff4a9 ${HDR} podman1`;
    const [p] = reconstructAll([parseHopLine(plain), parseHopLine(CONSUME)].flatMap((h) => (h ? [h] : [])), { maxGapNs: 1e9 });
    expect(p?.hops[0]?.nat).toBeNull();
    expect(flowFromPacket(p as Packet)).toMatchObject({ src: '10.162.57.1', dport: 80 });
  });
});
