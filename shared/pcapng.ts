/**
 * A minimal pcapng writer (little-endian): Section Header, Interface Description and Enhanced
 * Packet blocks with the options hoptrace uses. Pure: returns bytes; the caller writes them.
 * Block layouts follow draft-ietf-opsawg-pcapng (sections 4.1, 4.2, 4.3).
 */

/** LINKTYPE_RAW: the packet starts at its IPv4 or IPv6 header. */
export const LINKTYPE_RAW = 101;

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const EPB_PACKETID = 5;

/** epb_flags direction bits. */
export const EPB_INBOUND = 0b01;
export const EPB_OUTBOUND = 0b10;

const utf8 = new TextEncoder();

interface Option {
  readonly code: number;
  readonly value: Uint8Array;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function textOption(code: number, text: string | undefined): Option[] {
  return text === undefined || text === '' ? [] : [{ code, value: utf8.encode(text) }];
}

function optionsLength(opts: readonly Option[]): number {
  if (opts.length === 0) return 0;
  return opts.reduce((n, o) => n + 4 + pad4(o.value.length), 0) + 4;
}

function writeOptions(view: DataView, bytes: Uint8Array, at: number, opts: readonly Option[]): number {
  if (opts.length === 0) return at;
  for (const o of opts) {
    view.setUint16(at, o.code, true);
    view.setUint16(at + 2, o.value.length, true);
    bytes.set(o.value, at + 4);
    at += 4 + pad4(o.value.length);
  }
  view.setUint16(at, OPT_ENDOFOPT, true);
  view.setUint16(at + 2, 0, true);
  return at + 4;
}

/** A block: type, total length, body (fixed part + data + options), total length again. */
function block(type: number, fixedLength: number, fill: (view: DataView, bytes: Uint8Array, at: number) => void, data: Uint8Array | null, opts: readonly Option[]): Uint8Array {
  const dataLen = data ? pad4(data.length) : 0;
  const total = 12 + fixedLength + dataLen + optionsLength(opts);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setUint32(4, total, true);
  fill(view, bytes, 8);
  let at = 8 + fixedLength;
  if (data) {
    bytes.set(data, at);
    at += dataLen;
  }
  writeOptions(view, bytes, at, opts);
  view.setUint32(total - 4, total, true);
  return bytes;
}

export interface SectionOptions {
  readonly hardware?: string;
  readonly os?: string;
  readonly userAppl?: string;
  readonly comment?: string;
}

export function sectionHeaderBlock(o: SectionOptions = {}): Uint8Array {
  const opts = [...textOption(OPT_COMMENT, o.comment), ...textOption(SHB_HARDWARE, o.hardware), ...textOption(SHB_OS, o.os), ...textOption(SHB_USERAPPL, o.userAppl)];
  return block(SHB, 16, (v, _b, at) => {
    v.setUint32(at, BYTE_ORDER_MAGIC, true);
    v.setUint16(at + 4, 1, true); // major
    v.setUint16(at + 6, 0, true); // minor
    v.setBigInt64(at + 8, -1n, true); // section length: not given
  }, null, opts);
}

export interface InterfaceOptions {
  readonly name?: string;
  readonly description?: string;
  /** Timestamp units as a power of ten: 9 = ns (the pcapng default, 6 = µs, applies when absent). */
  readonly tsresolExp10?: number;
}

export function interfaceDescriptionBlock(linkType: number, snapLen: number, o: InterfaceOptions = {}): Uint8Array {
  const opts = [...textOption(IF_NAME, o.name), ...textOption(IF_DESCRIPTION, o.description)];
  if (o.tsresolExp10 !== undefined) opts.push({ code: IF_TSRESOL, value: Uint8Array.of(o.tsresolExp10) });
  return block(IDB, 8, (v, _b, at) => {
    v.setUint16(at, linkType, true);
    v.setUint16(at + 2, 0, true);
    v.setUint32(at + 4, snapLen, true);
  }, null, opts);
}

export interface PacketOptions {
  readonly comment?: string;
  /** epb_packetid: the same number on every capture of one packet (e.g. at each hop). */
  readonly packetId?: bigint;
  /** epb_flags (direction bits EPB_INBOUND / EPB_OUTBOUND, ...). */
  readonly flags?: number;
}

/** An Enhanced Packet Block; `timestamp` in the interface's units (ns with tsresolExp10 = 9). */
export function enhancedPacketBlock(interfaceId: number, timestamp: bigint, data: Uint8Array, originalLength: number, o: PacketOptions = {}): Uint8Array {
  const opts: Option[] = [...textOption(OPT_COMMENT, o.comment)];
  if (o.flags !== undefined) {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, o.flags, true);
    opts.push({ code: EPB_FLAGS, value: v });
  }
  if (o.packetId !== undefined) {
    const v = new Uint8Array(8);
    new DataView(v.buffer).setBigUint64(0, BigInt.asUintN(64, o.packetId), true);
    opts.push({ code: EPB_PACKETID, value: v });
  }
  const ts = BigInt.asUintN(64, timestamp);
  return block(EPB, 20, (v, _b, at) => {
    v.setUint32(at, interfaceId, true);
    v.setUint32(at + 4, Number(ts >> 32n), true);
    v.setUint32(at + 8, Number(ts & 0xffffffffn), true);
    v.setUint32(at + 12, data.length, true);
    v.setUint32(at + 16, Math.max(originalLength, data.length), true);
  }, data, opts);
}
