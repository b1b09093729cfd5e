/**
 * Strict address parsing for the filter language and the raw encodings: one place decides
 * which spellings of an address we accept and what its canonical text is.
 */
import ipaddr from 'ipaddr.js';

export type IpFamily = 4 | 6;

export interface ParsedAddress {
  readonly family: IpFamily;
  /** Network-order bytes: 4 for IPv4, 16 for IPv6. */
  readonly bytes: readonly number[];
  /** Canonical text (ipaddr.js `toString()`), the form hops carry. */
  readonly text: string;
}

/**
 * Parses an address as a user would type it in a filter. Only dotted-quad IPv4 is accepted:
 * ipaddr.js also takes classful and octal spellings ("1.2.3", "010.0.0.1") whose meaning
 * surprises people, so a filter that says "1.2.3" is an error rather than 1.2.0.3.
 * IPv6 zone ids ("fe80::1%eth0") are refused: the probes do not see them.
 */
export function parseAddress(text: string): ParsedAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    const a = ipaddr.IPv4.parse(text);
    return { family: 4, bytes: a.toByteArray(), text: a.toString() };
  }
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) {
    const a = ipaddr.IPv6.parse(text);
    return { family: 6, bytes: a.toByteArray(), text: a.toString() };
  }
  return null;
}

/** Canonical text of network-order address bytes (4 or 16 of them). */
export function bytesToAddress(bytes: readonly number[]): string {
  return ipaddr.fromByteArray([...bytes]).toString();
}

/** Address width in bits for a family. */
export function familyBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** True when `bytes` agree with `net` on the first `prefix` bits. Both must be the same length. */
export function bytesInPrefix(bytes: readonly number[], net: readonly number[], prefix: number): boolean {
  if (bytes.length !== net.length) return false;
  let left = prefix;
  for (let i = 0; left > 0 && i < net.length; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if ((((bytes[i] ?? 0) ^ (net[i] ?? 0)) & mask) !== 0) return false;
  }
  return true;
}

/** `bytes` with every bit past the first `prefix` cleared. */
export function maskBytes(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const left = prefix - i * 8;
    if (left >= 8) return b;
    if (left <= 0) return 0;
    return b & (0xff << (8 - left)) & 0xff;
  });
}
