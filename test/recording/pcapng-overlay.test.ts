/**
 * pcapng export of tunnelled packets (issue 14 §4): an underlay hop is written as the outer
 * packet it was (outer IP, UDP, the tunnel's header with its VNI, inner Ethernet and IP), so that
 * tshark decodes the tunnel and the packet inside it. Rebuilt frames of every tunnel kind are read
 * by real tshark; then a real vxlan overlay lab is recorded with the real probes, exported, and
 * tshark must show vxlan with the lab's VNI and the pods' addresses inside on the underlay.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { enhancedPacketBlock, interfaceDescriptionBlock, sectionHeaderBlock, LINKTYPE_RAW } from '../../shared/pcapng.js';
import { synthesizeTunnelled, type HeaderFields } from '../../shared/recording/packet-bytes.js';
import { tunnelsAlong } from '../../shared/tunnel.js';
import type { Encap, Hop, OuterTuple, Packet } from '../../shared/packet.js';
import { RecordingFile, exportPcapng, replayRecording } from '../../server/recording/index.js';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startReady } from '../helpers/cli.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, type OverlayLab } from '../helpers/overlay-lab.js';
import { tempDir } from './fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const haveTshark = (await execa('tshark', ['--version'], { reject: false })).exitCode === 0;

const INNER: HeaderFields = {
  family: 4, proto: 17, src: '10.165.1.10', dst: '10.165.2.10', sport: 40000, dport: 5433, len: 60,
  ipId: 77, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0,
};
const OUTER4: OuterTuple = { family: 4, proto: 17, src: '10.165.77.1', dst: '10.165.77.2', sport: 35000, dport: 4789 };

function hop(over: Partial<Hop>): Hop {
  return {
    t: 0, event: 'xmit', netns: 1, ns: 'n1', ifname: 'ul0', ifindex: 2, src: INNER.src, dst: INNER.dst, sport: 40000, dport: 5433,
    cpu: 0, len: 60, ipId: 77, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null, ...over,
  };
}

describe('the tunnel each hop is inside', () => {
  it('should carry the encap hop\'s kind and VNI to the underlay hops, with each hop\'s own outer headers, until the decap', () => {
    const enc: Encap = { type: 'vxlan', vni: 42, outer: OUTER4 };
    const natted = { ...OUTER4, src: '10.165.77.9' };
    const hops = [hop({ ifname: 'br0' }), hop({ ifname: 'vx0', encap: enc }), hop({ outer: OUTER4 }), hop({ event: 'recv', outer: natted }), hop({ event: 'recv', ifname: 'vx0', decap: enc }), hop({ ifname: 'vp0' })];
    const t = tunnelsAlong(hops);
    expect(t.map((x) => x?.type ?? null)).toEqual([null, null, 'vxlan', 'vxlan', null, null]);
    expect(t[2]).toEqual({ type: 'vxlan', vni: 42, outer: OUTER4 });
    expect(t[3]?.outer.src).toBe('10.165.77.9');
    expect(t[3]?.vni).toBe(42);
  });

  it('should name an underlay hop seen without its encap from the outer protocol and port, without a VNI', () => {
    expect(tunnelsAlong([hop({ outer: { ...OUTER4, dport: 6081 } })])[0]).toMatchObject({ type: 'geneve', vni: null });
    expect(tunnelsAlong([hop({ outer: { ...OUTER4, proto: 4, sport: 0, dport: 0 } })])[0]).toMatchObject({ type: 'ipip' });
    expect(tunnelsAlong([hop({ outer: { ...OUTER4, dport: 9999 } })])[0]).toMatchObject({ type: 'unknown' });
  });
});

/** Writes frames to a pcapng file and returns tshark's fields for each, in order. */
async function tsharkFields(frames: Uint8Array[], fields: string[]): Promise<Array<Record<string, string>>> {
  const blocks = [sectionHeaderBlock(), interfaceDescriptionBlock(LINKTYPE_RAW, 136, { name: 'n1/ul0', tsresolExp10: 9 }),
    ...frames.map((f, i) => enhancedPacketBlock(0, BigInt(i + 1) * 1000n, f, f.length))];
  const all = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) { all.set(b, at); at += b.length; }
  const path = tmp.file(`frames-${randomBytes(3).toString('hex')}.pcapng`, all);
  // Geneve on 6081 and vxlan on 4789 are tshark's defaults; 8472 (Linux's vxlan default) is not.
  const r = await execa('tshark', ['-r', path, '-d', 'udp.port==8472,vxlan', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])]);
  expect(r.stderr.replace(/Running as user "root".*\n?/, '').trim()).toBe('');
  return r.stdout.trim().split('\n').map((l) => Object.fromEntries(l.split('|').map((v, i) => [fields[i], v])));
}

describe.skipIf(!haveTshark)('rebuilt tunnelled frames read by tshark', () => {
  it('should decode vxlan, geneve, ipip, IPv6-in-IP and gre around the inner packet, and an unknown tunnel as UDP carrying it, with the VNI and lengths the tunnel gives', async () => {
    const frames = [
      synthesizeTunnelled(INNER, { type: 'vxlan', vni: 42, outer: OUTER4 }),
      synthesizeTunnelled(INNER, { type: 'vxlan', vni: 7, outer: { ...OUTER4, dport: 8472 } }),
      synthesizeTunnelled({ ...INNER, family: 6, src: 'fd42:1::10', dst: 'fd42:2::10', len: 80 }, { type: 'vxlan', vni: 42, outer: { ...OUTER4, family: 6, src: 'fd77::1', dst: 'fd77::2' } }),
      synthesizeTunnelled({ ...INNER, proto: 6, tcpFlags: 0x02, tcpSeq: 99 }, { type: 'geneve', vni: 16_000_000, outer: { ...OUTER4, dport: 6081 } }),
      synthesizeTunnelled(INNER, { type: 'ipip', vni: null, outer: { ...OUTER4, proto: 4, sport: 0, dport: 0 } }),
      synthesizeTunnelled({ ...INNER, family: 6, src: 'fd42:1::10', dst: 'fd42:2::10', len: 80 }, { type: 'ip6ip', vni: null, outer: { ...OUTER4, proto: 41, sport: 0, dport: 0 } }),
      synthesizeTunnelled(INNER, { type: 'gre', vni: null, outer: { ...OUTER4, proto: 47, sport: 0, dport: 0 } }),
      // A tunnel hoptrace does not know (UDP to a port no tunnel uses): the outer datagram, the inner packet its payload.
      synthesizeTunnelled(INNER, { type: 'unknown', vni: null, outer: { ...OUTER4, dport: 9999 } }),
    ];
    const rows = await tsharkFields(frames, ['frame.protocols', 'ip.src', 'ip.dst', 'ip.len', 'ipv6.src', 'vxlan.vni', 'geneve.vni', 'udp.dstport', 'tcp.flags.syn']);
    expect(rows.map((r) => r['frame.protocols'])).toEqual([
      'raw:ip:udp:vxlan:eth:ethertype:ip:udp',
      'raw:ip:udp:vxlan:eth:ethertype:ip:udp',
      'raw:ipv6:udp:vxlan:eth:ethertype:ipv6:udp',
      'raw:ip:udp:geneve:eth:ethertype:ip:tcp',
      'raw:ip:ip:udp',
      'raw:ip:ipv6:udp',
      'raw:ip:gre:ip:udp',
      'raw:ip:udp:data',
    ]);
    // Outer then inner, in header order; the outer length is the inner's plus what the tunnel adds.
    expect(rows[0]).toMatchObject({ 'ip.src': '10.165.77.1,10.165.1.10', 'ip.dst': '10.165.77.2,10.165.2.10', 'ip.len': `${60 + 50},60`, 'vxlan.vni': '42', 'udp.dstport': '4789,5433' });
    expect(rows[1]?.['vxlan.vni']).toBe('7');
    expect(rows[2]).toMatchObject({ 'ipv6.src': 'fd77::1,fd42:1::10', 'vxlan.vni': '42' });
    // tshark prints geneve's VNI in hex: 16,000,000.
    expect(rows[3]).toMatchObject({ 'geneve.vni': '0xf42400', 'tcp.flags.syn': '1' });
    expect(rows[4]).toMatchObject({ 'ip.src': '10.165.77.1,10.165.1.10', 'ip.len': '80,60' });
    expect(rows[6]).toMatchObject({ 'ip.src': '10.165.77.1,10.165.1.10', 'ip.len': '84,60' });
    expect(rows[7]).toMatchObject({ 'ip.src': '10.165.77.1', 'ip.len': '88', 'udp.dstport': '9999' });
  });
});

describe.skipIf(!isRoot || !haveTshark)(`pcapng export of a recorded vxlan overlay read by tshark (${NEEDS_ROOT}, tshark)`, () => {
  let lab: OverlayLab | null = null;
  let echo: Server | null = null;
  afterEach(async () => {
    await echo?.stop();
    if (lab) await overlayLabDown(lab);
    echo = null;
    lab = null;
  });

  it.each<['vxlan' | 'vxlan-flannel']>([['vxlan'], ['vxlan-flannel']])('%s: underlay hops are vxlan frames with VNI 42 around the pods\' packet; the tunnel devices\' and pods\' hops are the inner packet', async (kind) => {
    const PORT = 5433;
    lab = overlayLabFor(`h6w${randomBytes(2).toString('hex')}`, { kind, addressBase: 165 });
    await overlayLabUp(lab, { kind, addressBase: 165 });
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const rec = tmp.file(`overlay-${kind}.hoptrace`);
    const { child } = await startReady(['record', '-o', rec, '--force', '--filter', `udp and host ${lab.addr.pod2} and port ${PORT}`]);
    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 3, 64, 50);
    expect(sent.replies).toBe(3);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);

    const out = tmp.file(`overlay-${kind}.pcapng`);
    const file = await RecordingFile.open(rec);
    const packets: Packet[] = [];
    try {
      await replayRecording(file, { onPacket: (p) => { packets.push(p); } });
      await exportPcapng(file, out);
    } finally {
      await file.close();
    }
    const mine = new Set(Object.values(lab.ns));
    const requests = packets.filter((p) => p.dst === lab?.addr.pod2 && p.hops.some((h) => h.ns !== null && mine.has(h.ns)));
    expect(requests).toHaveLength(3);
    expect(readFileSync(out).length).toBeGreaterThan(0);

    const fields = ['frame.interface_name', 'frame.comment', 'frame.protocols', 'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'vxlan.vni', 'frame.len'];
    const t = await execa('tshark', ['-r', out, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])]);
    expect(t.stderr.replace(/Running as user "root".*\n?/, '').trim()).toBe('');
    const rows = t.stdout.trim().split('\n').map((l) => Object.fromEntries(l.split('|').map((v, i) => [fields[i], v])));
    const { ns, addr, tunnel } = lab;
    for (const p of requests) {
      const hops = rows.filter((row) => row['frame.comment']?.startsWith(`hoptrace packet ${p.id} hop `));
      expect(hops).toHaveLength(p.hops.length);
      const underlay = hops.filter((row) => row['frame.interface_name']?.endsWith('/ul0'));
      expect(underlay.length).toBeGreaterThanOrEqual(3); // xmit in node1, rx and recv in node2
      for (const row of underlay) {
        expect(row['frame.protocols']).toBe('raw:ip:udp:vxlan:eth:ethertype:ip:udp');
        expect(row['vxlan.vni']).toBe('42');
        expect(row['ip.src']).toBe(`${addr.ul1},${addr.pod1}`);
        expect(row['ip.dst']).toBe(`${addr.ul2},${addr.pod2}`);
        expect(row['udp.dstport']).toBe(`4789,${PORT}`);
        expect(row['frame.comment']).toMatch(/; inside vxlan vni 42 /);
        // The outer datagram is 50 bytes longer than the pod's (IP 20 + UDP 8 + VXLAN 8 + Ethernet 14).
        expect(Number(row['frame.len'])).toBe((p.hops[0]?.len ?? 0) + 50);
      }
      // Off the underlay the frame is the pod's packet alone, and the tunnel devices say where it went in and out.
      for (const row of hops.filter((x) => !x['frame.interface_name']?.endsWith('/ul0'))) {
        expect(row['frame.protocols']).toBe('raw:ip:udp');
        expect(row['ip.src']).toBe(addr.pod1);
      }
      expect(hops.find((x) => x['frame.interface_name'] === `${ns.node1}/${tunnel}`)?.['frame.comment']).toMatch(/; encap vxlan vni 42 10\.165\.77\.1:\d+ → 10\.165\.77\.2:4789/);
      expect(hops.find((x) => x['frame.interface_name'] === `${ns.node2}/${tunnel}`)?.['frame.comment']).toMatch(/; decap vxlan vni 42 /);
    }
  }, 120_000);
});
