/**
 * Rebuilds a packet's IP and L4 headers from what a hop recorded (addresses, ports, IPv4 id,
 * TCP flags and sequence, ICMP type and id, length), so that a pcapng export shows the tuple at
 * each hop in Wireshark. The probes do not capture header bytes yet: fields they do not record
 * (TTL, TCP ack/window, options, payload) are made up (TTL 64, zeros) and checksums are computed
 * over these made-up headers only. Documented as reconstructed in shared/recording/README.md.
 */
import { parseAddress } from '../filter/address.js';
import type { Encap, Hop } from '../packet.js';

/** A hop's header fields (`len`: the IP packet length, the capture's original length) with its packet's family and protocol. */
export type HeaderFields = Pick<Hop, 'src' | 'dst' | 'sport' | 'dport' | 'len' | 'ipId' | 'tcpFlags' | 'tcpSeq' | 'icmpType' | 'icmpId'> & {
  readonly family: 4 | 6;
  readonly proto: number;
};

// Flows repeat addresses: parse each text once.
const addressCache = new Map<string, readonly number[]>();

function addressBytes(text: string, family: 4 | 6): readonly number[] {
  const key = `${family}${text}`;
  let b = addressCache.get(key);
  if (!b) {
    const a = parseAddress(text);
    b = a && a.family === family ? a.bytes : new Array<number>(family === 4 ? 4 : 16).fill(0);
    if (addressCache.size >= 4096) addressCache.clear();
    addressCache.set(key, b);
  }
  return b;
}

/** One's-complement sum of 16-bit words, for the IPv4 header checksum. */
function checksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
  if ((end - start) & 1) sum += (bytes[end - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function l4Length(proto: number): number {
  switch (proto) {
    case 6: return 20;
    case 17: return 8;
    case 1:
    case 58: return 8;
    default: return 0;
  }
}

/** IP header + L4 header bytes for a hop (no payload). */
export function synthesizeHeaders(f: HeaderFields): Uint8Array {
  const ipLen = f.family === 4 ? 20 : 40;
  const l4 = l4Length(f.proto);
  const out = new Uint8Array(ipLen + l4);
  const v = new DataView(out.buffer);
  const src = addressBytes(f.src, f.family);
  const dst = addressBytes(f.dst, f.family);
  const totalLen = Math.max(f.len, ipLen + l4);
  if (f.family === 4) {
    out[0] = 0x45;
    v.setUint16(2, Math.min(totalLen, 0xffff));
    v.setUint16(4, f.ipId & 0xffff);
    out[8] = 64;
    out[9] = f.proto & 0xff;
    out.set(src, 12);
    out.set(dst, 16);
    v.setUint16(10, checksum(out, 0, 20));
  } else {
    out[0] = 0x60;
    v.setUint16(4, Math.min(totalLen - 40, 0xffff));
    out[6] = f.proto & 0xff;
    out[7] = 64;
    out.set(src, 8);
    out.set(dst, 24);
  }
  const l = ipLen;
  switch (f.proto) {
    case 6:
      v.setUint16(l, f.sport & 0xffff);
      v.setUint16(l + 2, f.dport & 0xffff);
      v.setUint32(l + 4, f.tcpSeq >>> 0);
      out[l + 12] = 5 << 4; // data offset: 5 words, no options
      out[l + 13] = f.tcpFlags & 0xff;
      break;
    case 17:
      v.setUint16(l, f.sport & 0xffff);
      v.setUint16(l + 2, f.dport & 0xffff);
      v.setUint16(l + 4, Math.min(Math.max(totalLen - ipLen, 8), 0xffff));
      // checksum 0: "not computed" for IPv4 UDP; Wireshark does not validate it by default.
      break;
    case 1:
    case 58:
      out[l] = f.icmpType & 0xff;
      v.setUint16(l + 4, f.icmpId & 0xffff);
      v.setUint16(l + 2, checksum(out, l, l + 8));
      break;
    default:
      break;
  }
  return out;
}

/** How many bytes a tunnel adds between its outer IP (+UDP) header and the inner IP header. */
function tunnelHeaderLength(type: Encap['type']): number {
  switch (type) {
    case 'vxlan':
    case 'geneve': return 8 + 14; // the tunnel's header, then the inner Ethernet header
    case 'gre': return 4;
    default: return 0;
  }
}

/**
 * The frame an underlay hop carried: the outer IP header (and UDP for vxlan and geneve), the
 * tunnel's header (VXLAN with its VNI, Geneve with its VNI and no options, a 4-byte GRE header),
 * the inner Ethernet header for the L2 tunnels, then the inner IP and L4 headers as
 * synthesizeHeaders builds them, so Wireshark decodes the tunnel and the packet inside it.
 * The probes read neither the inner MAC addresses nor the outer IP id: the inner Ethernet
 * addresses are zeros and the outer id 0, rebuilt like TTL and checksums. The outer length is
 * the inner packet's plus the headers added, as the tunnel made it.
 * An 'unknown' tunnel gets its outer headers followed by the inner IP packet.
 */
export function synthesizeTunnelled(inner: HeaderFields, tunnel: Encap): Uint8Array {
  const o = tunnel.outer;
  const outerIp = o.family === 4 ? 20 : 40;
  const udp = o.proto === 17 ? 8 : 0;
  const between = tunnelHeaderLength(tunnel.type);
  const innerBytes = synthesizeHeaders(inner);
  const innerLen = Math.max(inner.len, innerBytes.length);
  const outerBytes = synthesizeHeaders({
    family: o.family, proto: o.proto, src: o.src, dst: o.dst, sport: o.sport, dport: o.dport,
    len: outerIp + udp + between + innerLen, ipId: 0, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0,
  }).subarray(0, outerIp + udp);
  const out = new Uint8Array(outerBytes.length + between + innerBytes.length);
  out.set(outerBytes, 0);
  const v = new DataView(out.buffer);
  let at = outerBytes.length;
  const innerEtherType = inner.family === 4 ? 0x0800 : 0x86dd;
  const vni = (tunnel.vni ?? 0) & 0xffffff;
  if (tunnel.type === 'vxlan') {
    out[at] = 0x08; // I flag: the VNI is valid (RFC 7348 §5)
    v.setUint32(at + 4, vni << 8);
    at += 8;
  } else if (tunnel.type === 'geneve') {
    // Version 0, no options, protocol type Transparent Ethernet Bridging (RFC 8926 §3.4).
    v.setUint16(at + 2, 0x6558);
    v.setUint32(at + 4, vni << 8);
    at += 8;
  } else if (tunnel.type === 'gre') {
    v.setUint16(at + 2, innerEtherType); // no checksum, key or sequence (RFC 2784)
    at += 4;
  }
  if (tunnel.type === 'vxlan' || tunnel.type === 'geneve') {
    // Inner Ethernet: MAC addresses unknown (zeros), then the inner packet's EtherType.
    v.setUint16(at + 12, innerEtherType);
    at += 14;
  }
  out.set(innerBytes, at);
  return out;
}
