import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import type { HopEvent } from '../../shared/hop-event.js';
import { enhancedPacketBlock, interfaceDescriptionBlock, sectionHeaderBlock, LINKTYPE_RAW } from '../../shared/pcapng.js';
import { synthesizeHeaders } from '../../shared/recording/packet-bytes.js';
import { RecordingFile, exportPcapng, replayRecording } from '../../server/recording/index.js';
import type { Packet } from '../../shared/packet.js';
import { buildRecording, tempDir } from './fixtures.js';
import { NS, START_MONO, START_WALL, syntheticEvents } from './synthetic.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const haveTshark = (await execa('tshark', ['--version'], { reject: false })).exitCode === 0;

/** Walks pcapng blocks: every block's two length fields agree and are multiples of 4. */
function blocks(bytes: Uint8Array): Array<{ type: number; length: number }> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<{ type: number; length: number }> = [];
  for (let at = 0; at < bytes.length;) {
    const type = v.getUint32(at, true);
    const length = v.getUint32(at + 4, true);
    expect(length % 4).toBe(0);
    expect(v.getUint32(at + length - 4, true)).toBe(length);
    out.push({ type, length });
    at += length;
  }
  return out;
}

function ev(over: Partial<HopEvent> & Pick<HopEvent, 'kind' | 't' | 'netns' | 'ifname'>): HopEvent {
  return {
    cpu: 0, skb: 'ffff888100000001', ifindex: 2, family: 4, proto: 6, len: 60, ipId: 4321, src: '10.244.1.11', dst: '10.99.0.1',
    sport: 40000, dport: 8080, icmpType: 0, icmpId: 0, tcpFlags: 0x02, tcpSeq: 123456789, reason: 0, ...over,
  };
}

describe('pcapng writer', () => {
  it('should lay out blocks with matching lengths, padded to 4 bytes', () => {
    const bytes = [
      sectionHeaderBlock({ userAppl: 'x', comment: 'abc' }),
      interfaceDescriptionBlock(LINKTYPE_RAW, 60, { name: 'ns/eth0', tsresolExp10: 9 }),
      enhancedPacketBlock(0, 1_764_000_000_123_456_789n, Uint8Array.of(1, 2, 3), 1500, { comment: 'c', packetId: 7n, flags: 2 }),
    ];
    const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of bytes) { all.set(b, at); at += b.length; }
    expect(blocks(all).map((b) => b.type)).toEqual([0x0a0d0d0a, 1, 6]);
    const epb = new DataView(bytes[2]!.buffer);
    expect((BigInt(epb.getUint32(12, true)) << 32n) | BigInt(epb.getUint32(16, true))).toBe(1_764_000_000_123_456_789n);
    expect(epb.getUint32(20, true)).toBe(3);
    expect(epb.getUint32(24, true)).toBe(1500);
  });

  it('should rebuild IPv4 headers with a valid checksum', () => {
    const h = synthesizeHeaders({ family: 4, proto: 17, src: '10.244.1.11', dst: '10.244.1.12', sport: 1, dport: 2, len: 100, ipId: 7, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0 });
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
    expect(h.length).toBe(28);
  });
});

describe.skipIf(!haveTshark)('pcapng export read by tshark', () => {
  // Synthetic lab traffic plus an IPv4 TCP SYN DNATed in the node and an IPv6 TCP packet.
  const extra: HopEvent[] = [
    ev({ kind: 'xmit', t: START_MONO + 500_000_000, netns: NS.pod1, ifname: 'eth0' }),
    ev({ kind: 'recv', t: START_MONO + 500_010_000, netns: NS.node, ifname: 'veth-pod1', ifindex: 3 }),
    ev({ kind: 'xmit', t: START_MONO + 500_020_000, netns: NS.node, ifname: 'veth-pod2', ifindex: 4, dst: '10.244.1.12', dport: 80 }),
    ev({ kind: 'recv', t: START_MONO + 500_030_000, netns: NS.pod2, ifname: 'eth0', dst: '10.244.1.12', dport: 80 }),
    ev({ kind: 'xmit', t: START_MONO + 600_000_000, skb: 'ffff888100000002', netns: NS.pod1, ifname: 'eth0', family: 6, ipId: 0, src: 'fd00:244:1::11', dst: 'fd00:244:1::12', dport: 443, tcpFlags: 0x12, len: 80 }),
    ev({ kind: 'recv', t: START_MONO + 600_010_000, skb: 'ffff888100000002', netns: NS.pod2, ifname: 'eth0', family: 6, ipId: 0, src: 'fd00:244:1::11', dst: 'fd00:244:1::12', dport: 443, tcpFlags: 0x12, len: 80 }),
  ];
  const events = [...syntheticEvents(300, 8), ...extra];
  const built = buildRecording(events);
  const path = tmp.file('export.hoptrace', built.bytes);

  it('should write one interface per namespace/interface and one block per hop, linked by packet id', async () => {
    const out = tmp.file('export.pcapng');
    const file = await RecordingFile.open(path);
    const packets: Packet[] = [];
    try {
      await replayRecording(file, { onPacket: (p) => { packets.push(p); } });
      const r = await exportPcapng(file, out);
      expect(r.packets).toBe(packets.length);
      expect(r.hops).toBe(packets.reduce((n, p) => n + p.hops.length, 0));
    } finally {
      await file.close();
    }
    const bytes = readFileSync(out);
    const types = blocks(bytes).map((b) => b.type);
    expect(types[0]).toBe(0x0a0d0d0a);
    expect(types.filter((t) => t === 6)).toHaveLength(packets.reduce((n, p) => n + p.hops.length, 0));

    const info = await execa('capinfos', ['-T', '-m', '-r', '-c', '-I', out], { reject: false });
    expect(info.exitCode).toBe(0);
    const cap = await execa('capinfos', [out]);
    expect(cap.stdout).toMatch(/Number of packets:\s+\d+/);
    expect(cap.stdout).toMatch(/File encapsulation:\s+Raw IP/);
    expect(cap.stdout).toMatch(/File timestamp precision:\s+nanoseconds/);
    const ifaceNames = [...cap.stdout.matchAll(/Name = (.*)/g)].map((m) => m[1]);
    expect(new Set(ifaceNames)).toEqual(new Set(['lab-pod1/eth0', 'lab-node/veth-pod1', 'lab-node/br0', 'lab-node/veth-pod2', 'lab-pod2/eth0']));

    const fields = ['frame.interface_name', 'frame.packet_id', 'frame.time_epoch', 'frame.len', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'ip.id', 'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.flags', 'udp.srcport', 'udp.dstport', 'icmp.type', 'frame.comment'];
    const t = await execa('tshark', ['-r', out, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
    expect(t.stderr.replace(/Running as user "root".*\n?/, '').trim()).toBe('');
    const rows = t.stdout.trim().split('\n').map((l) => Object.fromEntries(l.split('|').map((v, i) => [fields[i], v])));
    // Every hop of a packet shares its packet id; the comment names the hoptrace packet.
    const byId = new Map<string, Array<Record<string, string>>>();
    for (const row of rows) byId.set(row['frame.packet_id'] as string, [...(byId.get(row['frame.packet_id'] as string) ?? []), row]);
    expect(byId.size).toBe(packets.length);
    for (const [id, hops] of byId) {
      const p = packets[Number(id) - 1] as Packet;
      expect(hops).toHaveLength(p.hops.length);
      for (const row of hops) expect(row['frame.comment']).toContain(`hoptrace packet ${p.id} hop `);
      hops.sort((a, b) => Number(a['frame.comment']?.match(/hop (\d+)\//)?.[1]) - Number(b['frame.comment']?.match(/hop (\d+)\//)?.[1]));
      p.hops.forEach((hop, i) => {
        const row = hops[i] as Record<string, string>;
        expect(row['frame.interface_name']).toBe(`${hop.ns}/${hop.ifname}`);
        const wall = START_WALL + BigInt(hop.t - START_MONO);
        expect(row['frame.time_epoch']).toBe(`${wall / 1_000_000_000n}.${String(wall % 1_000_000_000n).padStart(9, '0')}`);
        expect(Number(row['frame.len'])).toBe(hop.len);
        if (p.family === 4) {
          expect([row['ip.src'], row['ip.dst'], Number(row['ip.id'])]).toEqual([hop.src, hop.dst, hop.ipId]);
        } else {
          expect([row['ipv6.src'], row['ipv6.dst']]).toEqual([hop.src, hop.dst]);
        }
        if (p.proto === 'tcp') {
          expect([Number(row['tcp.srcport']), Number(row['tcp.dstport']), Number(row['tcp.seq_raw']), Number(row['tcp.flags'])]).toEqual([hop.sport, hop.dport, hop.tcpSeq, hop.tcpFlags]);
        } else if (p.proto === 'udp') {
          expect([Number(row['udp.srcport']), Number(row['udp.dstport'])]).toEqual([hop.sport, hop.dport]);
        } else if (p.proto === 'icmp') {
          expect(Number(row['icmp.type'])).toBe(hop.icmpType);
        }
      });
    }
    // The DNATed SYN shows the rewrite between hops, and the IPv6 packet is there.
    const nat = packets.find((p) => p.hops.some((h) => h.nat?.kind === 'dnat'));
    expect(nat?.hops.map((h) => `${h.dst}:${h.dport}`)).toEqual(['10.99.0.1:8080', '10.99.0.1:8080', '10.244.1.12:80', '10.244.1.12:80']);
    expect(rows.some((r) => r['ipv6.dst'] === 'fd00:244:1::12')).toBe(true);
  });

  it('should export through the CLI and refuse to overwrite', async () => {
    const out = tmp.file('cli.pcapng');
    const run = (...a: string[]) => execa(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'export', path, '--pcapng', out, ...a], { reject: false });
    const r = await run();
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/wrote \d+ packets as \d+ hop blocks on 5 interfaces/);
    const again = await run();
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/already exists; use --force/);
    expect((await run('--force')).exitCode).toBe(0);
    const count = await execa('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.number']);
    expect(count.stdout.trim().split('\n').length).toBeGreaterThan(300 * 4);
  });
});
