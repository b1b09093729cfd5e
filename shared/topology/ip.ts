/**
 * Addresses as numbers: parsing, prefixes and ranges for route lookup and rule matching.
 * Addresses become bigints so IPv4 and IPv6 share one code path.
 */
import ipaddr from 'ipaddr.js';
import type { IpFamily } from './model.js';

export interface Addr {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface Prefix {
  readonly family: IpFamily;
  readonly base: bigint;
  readonly len: number;
}

function bits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/**
 * Parsed addresses and prefixes by their text. The simulator meets the same few hundred strings
 * (interface addresses, route prefixes, rule matches) on every path: parsing them each time was
 * 70 % of a simulation (ipaddr.js), 250 µs a path on the lab. Results are immutable, so shared.
 */
const CACHE_MAX = 50_000;
const addrCache = new Map<string, Addr | null>();
const prefixCache = new Map<string, Prefix | null>();

function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
}

/** Parses a dotted-quad IPv4 or an IPv6 address (zone ids dropped); null when it is neither. */
export function parseAddr(text: string): Addr | null {
  const hit = addrCache.get(text);
  if (hit !== undefined) return hit;
  return remember(addrCache, text, parseAddrUncached(text));
}

function parseAddrUncached(text: string): Addr | null {
  const s = text.trim().replace(/%.*$/, '');
  // ipaddr.js also accepts "10" or "0x0a000001" as IPv4; users and tools never mean those.
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) {
    return { family: 4, value: bytesToBig(ipaddr.IPv4.parse(s).toByteArray()) };
  }
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) {
    const v6 = ipaddr.IPv6.parse(s);
    return { family: 6, value: bytesToBig(v6.toByteArray()) };
  }
  return null;
}

function bytesToBig(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function formatAddr(a: Addr): string {
  const n = a.family === 4 ? 4 : 16;
  const bytes: number[] = [];
  let v = a.value;
  for (let i = 0; i < n; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses `a.b.c.d/len`, a bare address (host prefix) or `default` (needs the family). */
export function parsePrefix(text: string, defaultFamily?: IpFamily): Prefix | null {
  const key = `${defaultFamily ?? ''}|${text}`;
  const hit = prefixCache.get(key);
  if (hit !== undefined) return hit;
  return remember(prefixCache, key, parsePrefixUncached(text, defaultFamily));
}

function parsePrefixUncached(text: string, defaultFamily?: IpFamily): Prefix | null {
  const s = text.trim();
  if (s === 'default' || s === 'all') {
    return defaultFamily ? { family: defaultFamily, base: 0n, len: 0 } : null;
  }
  const slash = s.indexOf('/');
  const addr = parseAddr(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return null;
  const max = bits(addr.family);
  const len = slash < 0 ? max : Number(s.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > max) return null;
  return { family: addr.family, base: addr.value & mask(addr.family, len), len };
}

function mask(family: IpFamily, len: number): bigint {
  const max = bits(family);
  if (len === 0) return 0n;
  return ((1n << BigInt(len)) - 1n) << BigInt(max - len);
}

export function prefixContains(p: Prefix, a: Addr): boolean {
  return p.family === a.family && (a.value & mask(p.family, p.len)) === p.base;
}

/**
 * Does `value` (CIDR, address, or `a-b` range) contain `addr`? Unparsable values match nothing.
 */
export function addrSpecContains(value: string, addr: Addr): boolean {
  const dash = value.indexOf('-');
  if (dash > 0) {
    const lo = parseAddr(value.slice(0, dash));
    const hi = parseAddr(value.slice(dash + 1));
    if (!lo || !hi || lo.family !== addr.family || hi.family !== addr.family) return false;
    return addr.value >= lo.value && addr.value <= hi.value;
  }
  const p = parsePrefix(value);
  return p !== null && prefixContains(p, addr);
}

export function sameAddr(a: string, b: string): boolean {
  const x = parseAddr(a);
  const y = parseAddr(b);
  return x !== null && y !== null && x.family === y.family && x.value === y.value;
}

/** The address part of a CIDR string (`10.0.0.1/24` → `10.0.0.1`). */
export function cidrAddress(cidr: string): string {
  const i = cidr.indexOf('/');
  return i < 0 ? cidr : cidr.slice(0, i);
}

/** Normalises an address for display and equality (e.g. IPv6 zero compression); input back when unparsable. */
export function normalizeAddr(text: string): string {
  const a = parseAddr(text);
  return a ? formatAddr(a) : text;
}

export function familyOf(text: string): IpFamily | null {
  return parseAddr(text)?.family ?? null;
}
