/**
 * Recording → pcapng: one interface per (namespace, interface) named `ns/ifname`, one Enhanced
 * Packet Block per hop, the same epb_packetid on every hop of one packet, hop time (converted to
 * wall clock with the header's paired clocks) as the timestamp. Packet bytes are the header bytes the
 * probes captured (`record --capture-bytes N`), else headers rebuilt from the hop's fields
 * (shared/recording/packet-bytes.ts). A hop inside a tunnel (between a vxlan/geneve/ipip/gre
 * device's encap and the far device's decap: the underlay) is written as the outer packet it was
 * on that interface — outer IP, UDP, the tunnel's header with its VNI, the inner Ethernet and IP
 * headers — so Wireshark decodes the tunnel and the packet inside it.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Encap, Packet, Hop } from '../../shared/packet.js';
import { protoNumber } from '../../shared/hop-event.js';
import { MinHeap } from '../../shared/min-heap.js';
import {
  EPB_INBOUND, EPB_OUTBOUND, LINKTYPE_RAW, enhancedPacketBlock, interfaceDescriptionBlock, sectionHeaderBlock,
} from '../../shared/pcapng.js';
import { synthesizeHeaders, synthesizeTunnelled } from '../../shared/recording/packet-bytes.js';
import { describeEncap, tunnelsAlong } from '../../shared/tunnel.js';
import { wallClockNs } from '../../shared/recording/index.js';
import type { RecordingFile } from './reader.js';
import { replayRecording, type ReplayResult } from './replay.js';

export interface ExportOptions {
  readonly fromNs?: number | undefined;
  readonly toNs?: number | undefined;
  /** Replace an existing output file (default: refuse). */
  readonly overwrite?: boolean;
}

export interface ExportResult {
  readonly packets: number;
  /** Enhanced Packet Blocks written (one per hop). */
  readonly hops: number;
  readonly interfaces: number;
  readonly bytes: number;
  readonly replay: ReplayResult;
}

/** Hops are buffered and written in time order once no packet still to come can precede them. */
const ORDER_WINDOW_NS = 3_000_000_000;
// The most a rebuilt frame holds: IPv6 + UDP + Geneve + Ethernet around IPv6 + TCP (130 bytes).
// Captured header bytes (record --capture-bytes) may be longer: the interface block says so.
const SNAPLEN = 136;

/** A hop's block, encoded when its packet completes and held until its time comes. */
interface PendingBlock {
  readonly t: number;
  readonly seq: number;
  readonly block: Uint8Array;
}

export async function exportPcapng(file: RecordingFile, outPath: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const fd = openSync(outPath, opts.overwrite ? 'w' : 'wx', 0o644);
  let out: Uint8Array[] = [];
  let outLen = 0;
  let bytes = 0;
  const write = (b: Uint8Array): void => {
    out.push(b);
    outLen += b.length;
    if (outLen >= 1 << 20) flush();
  };
  const flush = (): void => {
    if (outLen === 0) return;
    const joined = new Uint8Array(outLen);
    let at = 0;
    for (const b of out) {
      joined.set(b, at);
      at += b.length;
    }
    for (let off = 0; off < joined.length;) off += writeSync(fd, joined, off);
    bytes += joined.length;
    out = [];
    outLen = 0;
  };

  try {
    const h = file.header;
    write(sectionHeaderBlock({
      hardware: h.host,
      os: `Linux ${h.kernel}`,
      userAppl: `${h.recorder} export`,
      comment: `hoptrace recording from ${h.host}${h.filter ? `, filter: ${h.filter}` : ''}. Packet bytes are the IP/L4 header bytes the probes captured where the recording has them (record --capture-bytes), else headers rebuilt from the probes' fields; epb_packetid links the hops of one packet.`,
    }));
    const names = await file.namespaceNames();
    const interfaces = new Map<string, number>();
    const ifaceId = (hop: Hop): number => {
      const key = `${hop.netns}/${hop.ifindex}/${hop.ifname}`;
      let id = interfaces.get(key);
      if (id === undefined) {
        id = interfaces.size;
        interfaces.set(key, id);
        const ns = hop.ns ?? names.get(hop.netns) ?? `netns-${hop.netns}`;
        write(interfaceDescriptionBlock(LINKTYPE_RAW, SNAPLEN, {
          name: `${ns}/${hop.ifname || '-'}`,
          description: `network namespace ${ns} (inode ${hop.netns}), ${hop.ifname ? `interface ${hop.ifname} (ifindex ${hop.ifindex})` : 'no device'}`,
          tsresolExp10: 9,
        }));
      }
      return id;
    };

    let hops = 0;
    let seq = 0;
    const heap = new MinHeap<PendingBlock>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));
    // Encoded at once (interface blocks go out first, as pcapng needs): the heap holds bytes, not packets.
    const encode = (hop: Hop, index: number, packet: Packet, packetNo: bigint, tunnel: Encap | undefined): PendingBlock => {
      // Captured header bytes when the recording has them (never on underlay hops: probes/README.md);
      // else headers rebuilt from the fields, inside the tunnel's outer headers on the underlay.
      const fields = { ...hop, family: packet.family, proto: protoNumber(packet.proto) };
      const data = hop.head && !tunnel ? Uint8Array.from(Buffer.from(hop.head, 'hex'))
        : tunnel ? synthesizeTunnelled(fields, tunnel) : synthesizeHeaders(fields);
      const where = `${hop.ns ?? `netns-${hop.netns}`}${hop.ifname ? `/${hop.ifname}` : ''}`;
      let comment = `hoptrace packet ${packet.id} hop ${index + 1}/${packet.hops.length}: ${hop.event} in ${where}`;
      if (hop.event === 'drop' && packet.drop) comment += `: dropped, ${packet.drop.reason}`;
      if (hop.nat) comment += `; ${hop.nat.kind} ${hop.nat.from.dst}:${hop.nat.from.dport} → ${hop.nat.to.dst}:${hop.nat.to.dport}`;
      if (hop.encap) comment += `; encap ${describeEncap(hop.encap)}`;
      else if (tunnel) comment += `; inside ${describeEncap(tunnel)}`;
      if (hop.decap) comment += `; decap ${describeEncap(hop.decap)}`;
      const flags = hop.event === 'xmit' ? EPB_OUTBOUND : hop.event === 'rx' || hop.event === 'recv' ? EPB_INBOUND : undefined;
      const length = tunnel ? readIpLength(data) : hop.len;
      const block = enhancedPacketBlock(ifaceId(hop), wallClockNs(h, hop.t), data, Math.max(length, data.length), {
        comment, packetId: packetNo, ...(flags !== undefined ? { flags } : {}),
      });
      return { t: hop.t, seq: seq++, block };
    };
    const emit = (b: PendingBlock): void => {
      write(b.block);
      hops++;
    };
    let packetNo = 0n;
    let newestFirst = 0;
    const replay = await replayRecording(file, {
      fromNs: opts.fromNs,
      toNs: opts.toNs,
      onPacket: (p) => {
        packetNo++;
        const tunnels = tunnelsAlong(p.hops);
        p.hops.forEach((hop, index) => heap.push(encode(hop, index, p, packetNo, tunnels[index])));
        const first = p.hops[0]?.t ?? 0;
        if (first > newestFirst) newestFirst = first;
        for (let top = heap.peek(); top && top.t < newestFirst - ORDER_WINDOW_NS; top = heap.peek()) emit(heap.pop() as PendingBlock);
      },
    });
    for (let top = heap.pop(); top; top = heap.pop()) emit(top);
    flush();
    return { packets: Number(packetNo), hops, interfaces: interfaces.size, bytes, replay };
  } finally {
    closeSync(fd);
  }
}

/** The length an IP header gives its packet (the outer one, for a rebuilt tunnelled frame). */
function readIpLength(data: Uint8Array): number {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return (data[0] ?? 0) >> 4 === 6 ? 40 + v.getUint16(4) : v.getUint16(2);
}
