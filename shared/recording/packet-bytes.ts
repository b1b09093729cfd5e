/**
 * Rebuilds a packet's IP and L4 headers from what a hop recorded (addresses, ports, IPv4 id,
 * TCP flags and sequence, ICMP type and id, length), so that a pcapng export shows the tuple at
 * each hop in Wireshark. The probes do not capture header bytes yet: fields they do not record
 * (TTL, TCP ack/window, options, payload) are made up (TTL 64, zeros) and checksums are computed
 * over these made-up headers only. Documented as reconstructed in shared/recording/README.md.
 */
import { parseAddress } from '../filter/address.js';
import type { Hop } from '../packet.js';

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
