/**
 * The raw integer forms in which the probes hold addresses and ports, and conversions both
 * ways. A probe reads header fields straight from the packet into integers without
 * byte-swapping (bpftrace has no cheap bswap, and skipping it costs nothing), and x86/arm64
 * are little-endian, so a field's network-order bytes land in the integer low byte first:
 *
 *   IPv4 10.0.0.1 (bytes 0a 00 00 01)   -> u32 0x0100000a
 *   IPv6 address bytes 0-7 and 8-15     -> two u64, each read the same way ("hi" = bytes 0-7)
 *   port 5000 (bytes 13 88)              -> u16 0x8813
 *
 * The filter compiler encodes its constants into these forms at compile time, and the probe
 * line parsers decode what the probes print with the inverse functions here.
 */
import { bytesToAddress, parseAddress } from './address.js';

/** An IPv6 address as the probes hold it: bytes 0-7 and 8-15, each read little-endian. */
export interface RawV6 {
  /** Bytes 0-7 of the address (the `$sa0`/`$da0` half). */
  readonly hi: bigint;
  /** Bytes 8-15 of the address (the `$sa1`/`$da1` half). */
  readonly lo: bigint;
}

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

/** Reads `count` bytes from `start` as a little-endian unsigned integer. */
function bytesLE(bytes: readonly number[], start: number, count: number): bigint {
  let v = 0n;
  for (let i = count - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[start + i] ?? 0);
  return v;
}

/** Writes `value` as `count` little-endian bytes. */
function toBytesLE(value: bigint, count: number): number[] {
  const out: number[] = [];
  let v = value;
  for (let i = 0; i < count; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/** Raw u32 of network-order IPv4 bytes. */
export function v4BytesToRaw(bytes: readonly number[]): number {
  return Number(bytesLE(bytes, 0, 4));
}

/** Raw halves of network-order IPv6 bytes. */
export function v6BytesToRaw(bytes: readonly number[]): RawV6 {
  return { hi: bytesLE(bytes, 0, 8), lo: bytesLE(bytes, 8, 8) };
}

/** Raw u32 of an IPv4 address ("10.0.0.1" -> 0x0100000a). Throws on anything else. */
export function v4ToRaw(addr: string): number {
  const a = parseAddress(addr);
  if (a?.family !== 4) throw new RangeError(`not an IPv4 address: ${JSON.stringify(addr)}`);
  return v4BytesToRaw(a.bytes);
}

/** Raw halves of an IPv6 address. Throws on anything else. */
export function v6ToRaw(addr: string): RawV6 {
  const a = parseAddress(addr);
  if (a?.family !== 6) throw new RangeError(`not an IPv6 address: ${JSON.stringify(addr)}`);
  return v6BytesToRaw(a.bytes);
}

/** Raw u16 of a port number (5000 -> 0x8813). */
export function portToRaw(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`not a port: ${port}`);
  return ((port & 0xff) << 8) | (port >> 8);
}

/** Port number of a raw u16 as a probe read it (0x8813 -> 5000). The swap is its own inverse. */
export function rawPort(u16: number): number {
  if (!Number.isInteger(u16) || u16 < 0 || u16 > 0xffff) throw new RangeError(`not a raw u16 port: ${u16}`);
  return ((u16 & 0xff) << 8) | (u16 >> 8);
}

/** Canonical text of a raw IPv4 u32 (0x0100000a -> "10.0.0.1"). */
export function rawV4ToString(u32: number): string {
  if (!Number.isInteger(u32) || u32 < 0 || u32 > U32_MAX) throw new RangeError(`not a raw u32 address: ${u32}`);
  return bytesToAddress(toBytesLE(BigInt(u32), 4));
}

/** Canonical text of a raw IPv6 address given its two halves (bytes 0-7, bytes 8-15). */
export function rawV6ToString(hi: bigint, lo: bigint): string {
  return bytesToAddress([...toBytesLE(u64(hi), 8), ...toBytesLE(u64(lo), 8)]);
}

/** A u64 half as unsigned; a probe printing it with %d gives the two's-complement spelling. */
function u64(v: bigint): bigint {
  if (v < -(1n << 63n) || v > U64_MAX) throw new RangeError(`not a raw u64 half: ${v}`);
  return BigInt.asUintN(64, v);
}

/** Raw u32 mask keeping the first `prefix` bits of an IPv4 address (/8 -> 0x000000ff). */
export function v4MaskRaw(prefix: number): number {
  checkPrefix(prefix, 32);
  return Number(bytesLE(prefixMaskBytes(prefix, 4), 0, 4));
}

/** Raw halves of the mask keeping the first `prefix` bits of an IPv6 address. */
export function v6MaskRaw(prefix: number): RawV6 {
  checkPrefix(prefix, 128);
  return v6BytesToRaw(prefixMaskBytes(prefix, 16));
}

function checkPrefix(prefix: number, bits: number): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) throw new RangeError(`prefix /${prefix} out of range 0-${bits}`);
}

function prefixMaskBytes(prefix: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const left = prefix - i * 8;
    out.push(left >= 8 ? 0xff : left <= 0 ? 0 : (0xff << (8 - left)) & 0xff);
  }
  return out;
}
