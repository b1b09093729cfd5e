/**
 * The .hoptrace container: preamble, record framing and record types. Layout and the reasons
 * behind it are in README.md beside this file; keep the two in step.
 */
import { crc32Update } from './crc32.js';

/** PNG-style magic: a high byte (catches 7-bit transfers), a name, CR LF (catches newline conversion), ^Z, LF. */
export const MAGIC = Uint8Array.of(0x89, 0x48, 0x4f, 0x50, 0x54, 0x52, 0x41, 0x43, 0x45, 0x0d, 0x0a, 0x1a, 0x0a);
/** Bumped for changes old readers cannot follow (they refuse the file). */
export const FORMAT_MAJOR = 1;
/**
 * Bumped for additions old readers can skip (new record types, new protobuf fields).
 * 1.1: note (8) and netfilter (9) records, the header's `netfilter`/`notes` flags.
 * 1.2: the header's `sample_rate` (field 12): 1 in N flows recorded.
 */
export const FORMAT_MINOR = 2;
/** MAGIC, then major and minor version as one byte each. */
export const PREAMBLE_LENGTH = MAGIC.length + 2;

/** Two bytes that start every record. 0xF7 never occurs in UTF-8 text, which keeps false starts rare. */
export const SYNC0 = 0xf7;
export const SYNC1 = 0xb3;

export const RecordType = {
  header: 1,
  topology: 2,
  event: 3,
  lost: 4,
  index: 5,
  end: 6,
  clock: 7,
  /** A note of the notes tier (HopNote), sessions with `notes` (1.1). */
  note: 8,
  /** A netfilter rule-trace event (NetfilterEvent), sessions with `netfilter` (1.1). */
  netfilter: 9,
} as const;
export type RecordTypeName = keyof typeof RecordType;

/** Types above this are never written; a byte above it after SYNC is damage. Unknown types up to it are skipped. */
export const MAX_RECORD_TYPE = 63;

const KIB = 1024;
const MIB = 1024 * KIB;
/** Largest payload a record of each type may have: a damaged length cannot make a reader wait for more. */
export function maxPayload(type: number): number {
  switch (type) {
    case RecordType.event:
    case RecordType.note:
    case RecordType.netfilter: return 4 * KIB;
    case RecordType.lost:
    case RecordType.index:
    case RecordType.end:
    case RecordType.clock: return 1 * KIB;
    default: return 16 * MIB; // header, topology and types of later minor versions
  }
}

/** SYNC, type, length (varint, ≤ 5 bytes), CRC-32. */
export const MAX_FRAME_OVERHEAD = 2 + 1 + 5 + 4;

export function preamble(major = FORMAT_MAJOR, minor = FORMAT_MINOR): Uint8Array {
  const out = new Uint8Array(PREAMBLE_LENGTH);
  out.set(MAGIC, 0);
  out[MAGIC.length] = major;
  out[MAGIC.length + 1] = minor;
  return out;
}

/**
 * Writes one frame into `out` at `at` (which must have room for payload + MAX_FRAME_OVERHEAD);
 * returns the offset after it. The CRC covers type, length and payload.
 */
export function writeFrame(out: Uint8Array, at: number, type: number, payload: Uint8Array): number {
  let p = at;
  out[p++] = SYNC0;
  out[p++] = SYNC1;
  const typeAt = p;
  out[p++] = type;
  let len = payload.length;
  while (len > 0x7f) {
    out[p++] = (len & 0x7f) | 0x80;
    len >>>= 7;
  }
  out[p++] = len;
  const crcAt = p;
  p += 4;
  out.set(payload, p);
  let crc = crc32Update(0, out, typeAt, crcAt);
  crc = crc32Update(crc, payload);
  out[crcAt] = crc & 0xff;
  out[crcAt + 1] = (crc >>> 8) & 0xff;
  out[crcAt + 2] = (crc >>> 16) & 0xff;
  out[crcAt + 3] = crc >>> 24;
  return p + payload.length;
}

export function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + MAX_FRAME_OVERHEAD);
  return out.subarray(0, writeFrame(out, 0, type, payload));
}
