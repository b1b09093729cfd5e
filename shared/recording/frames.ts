/**
 * Incremental frame scanner: bytes in (any chunking), CRC-checked frames out. It resynchronises
 * after damage by searching for the next SYNC whose frame checks out, and tells a file that
 * merely stops (truncated: the recorder died mid-write) from one that is damaged.
 */
import { crc32Update } from './crc32.js';
import { MAGIC, FORMAT_MAJOR, MAX_RECORD_TYPE, PREAMBLE_LENGTH, SYNC0, SYNC1, maxPayload } from './format.js';
import { RecordingError } from './errors.js';

export interface Frame {
  readonly type: number;
  /** File offset of the frame's first byte. */
  readonly offset: number;
  /** Offset just past the frame. */
  readonly end: number;
  /** A view into the scanner's buffer: valid only during the callback. */
  readonly payload: Uint8Array;
}

/** Stretches of bytes that were not valid frames, each skipped to the next good frame. */
export interface Damage {
  regions: number;
  bytes: number;
  /** Offset where the first damaged stretch starts, null when none. */
  firstOffset: number | null;
}

export interface FrameScannerOptions {
  /** File offset of the first byte pushed (when scanning from the middle of a file). */
  readonly baseOffset?: number;
  /** Whether the bytes start with the file preamble (magic and version), checked and skipped. */
  readonly preamble?: boolean;
}

export interface ScanEnd {
  /** Offset of the incomplete record the input stopped in, null when it ended on a record boundary. */
  readonly truncatedAt: number | null;
  /** Offset just past the last complete frame (or the preamble). */
  readonly goodEnd: number;
}

export interface Preamble {
  readonly major: number;
  readonly minor: number;
}

const EMPTY = new Uint8Array(0);

/** A copy even when handed a Node Buffer (whose slice() is a view). */
function copyOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

export class FrameScanner {
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  /** File offset of buf[0]. */
  private bufOffset: number;
  /** Bytes (from pos) needed before parsing can go on; chunks are stashed until they arrive. */
  private need = 0;
  private stash: Uint8Array[] = [];
  private stashLen = 0;
  private damageFrom: number | null = null;
  private goodEnd: number;
  private finished = false;
  preamble: Preamble | null = null;
  readonly damage: Damage = { regions: 0, bytes: 0, firstOffset: null };

  constructor(options: FrameScannerOptions = {}) {
    this.bufOffset = options.baseOffset ?? 0;
    this.goodEnd = this.bufOffset;
    if (!options.preamble) this.preamble = { major: FORMAT_MAJOR, minor: 0 };
  }

  /** Parses what it can of `chunk`; throws RecordingError only for a bad preamble. */
  push(chunk: Uint8Array, onFrame: (f: Frame) => void): void {
    if (this.finished) throw new Error('FrameScanner: push after finish');
    if (chunk.length === 0) return;
    const avail = this.buf.length - this.pos;
    if (avail === 0 && this.stashLen === 0) {
      this.bufOffset += this.buf.length;
      this.buf = chunk;
      this.pos = 0;
    } else if (avail + this.stashLen + chunk.length < this.need) {
      this.stash.push(copyOf(chunk)); // the caller may reuse its buffer
      this.stashLen += chunk.length;
      return;
    } else {
      const joined = new Uint8Array(avail + this.stashLen + chunk.length);
      joined.set(this.buf.subarray(this.pos), 0);
      let at = avail;
      for (const s of this.stash) {
        joined.set(s, at);
        at += s.length;
      }
      joined.set(chunk, at);
      this.bufOffset += this.pos;
      this.buf = joined;
      this.pos = 0;
      this.stash = [];
      this.stashLen = 0;
    }
    this.parse(onFrame, false);
    // Keep only the unparsed tail, as a copy: the caller may reuse the chunk's memory.
    if (this.pos < this.buf.length && this.buf === chunk) {
      this.bufOffset += this.pos;
      this.buf = copyOf(this.buf.subarray(this.pos));
      this.pos = 0;
    }
  }

  /** End of input: parses the rest and reports where and how the input stopped. */
  finish(onFrame: (f: Frame) => void): ScanEnd {
    if (!this.finished) {
      if (this.stashLen > 0) {
        const joined = new Uint8Array(this.buf.length - this.pos + this.stashLen);
        joined.set(this.buf.subarray(this.pos), 0);
        let at = this.buf.length - this.pos;
        for (const s of this.stash) {
          joined.set(s, at);
          at += s.length;
        }
        this.bufOffset += this.pos;
        this.buf = joined;
        this.pos = 0;
        this.stash = [];
        this.stashLen = 0;
      }
      this.finished = true;
    }
    const truncatedAt = this.parse(onFrame, true);
    // Damage running into the end of input (not a cut-off record) ends there.
    if (this.damageFrom !== null) this.closeDamage(truncatedAt ?? this.bufOffset + this.buf.length);
    return { truncatedAt, goodEnd: this.goodEnd };
  }

  /** Offset of the first byte not yet consumed. */
  get offset(): number {
    return this.bufOffset + this.pos;
  }

  /** Returns, in final mode, the offset of an incomplete trailing frame (or null). */
  private parse(onFrame: (f: Frame) => void, final: boolean): number | null {
    const buf = this.buf;
    const end = buf.length;
    let pos = this.pos;
    this.need = 0;
    if (!this.preamble) {
      if (end - pos < PREAMBLE_LENGTH) {
        const have = buf.subarray(pos);
        if (!isPrefixOfMagic(have)) throw new RecordingError('not-a-recording', 'it is not a hoptrace recording (no .hoptrace signature at its start)');
        if (final) throw new RecordingError('truncated-header', `it ends after ${have.length} bytes, before its header: nothing to replay`);
        this.need = PREAMBLE_LENGTH;
        return null;
      }
      for (let i = 0; i < MAGIC.length; i++) {
        if (buf[pos + i] !== MAGIC[i]) throw new RecordingError('not-a-recording', 'it is not a hoptrace recording (no .hoptrace signature at its start)');
      }
      const major = buf[pos + MAGIC.length] as number;
      const minor = buf[pos + MAGIC.length + 1] as number;
      if (major > FORMAT_MAJOR) {
        throw new RecordingError('newer-version', `it was written in recording format ${major}.${minor}, newer than this hoptrace reads (${FORMAT_MAJOR}.x); upgrade hoptrace to replay it`);
      }
      if (major < 1) throw new RecordingError('not-a-recording', `it has an unknown recording format version ${major}.${minor}`);
      this.preamble = { major, minor };
      pos += PREAMBLE_LENGTH;
      this.goodEnd = this.bufOffset + pos;
    }
    let truncatedAt: number | null = null;
    while (pos < end) {
      if (buf[pos] !== SYNC0 || (pos + 1 < end && buf[pos + 1] !== SYNC1)) {
        this.openDamage(pos);
        pos = nextSync(buf, pos + 1, end);
        continue;
      }
      const r = checkFrame(buf, pos, end);
      if (r > 0) {
        if (this.damageFrom !== null) this.closeDamage(this.bufOffset + pos);
        const type = buf[pos + 2] as number;
        const payloadStart = frameHeaderEnd(buf, pos);
        this.goodEnd = this.bufOffset + r;
        onFrame({ type, offset: this.bufOffset + pos, end: this.bufOffset + r, payload: buf.subarray(payloadStart, r) });
        pos = r;
        continue;
      }
      if (r === BAD) {
        this.openDamage(pos);
        pos = nextSync(buf, pos + 1, end);
        continue;
      }
      // Incomplete: -r is the number of bytes the frame needs from pos.
      if (!final) {
        this.need = -r;
        break;
      }
      // No more input: a good frame further on means this one is damaged; otherwise the input was cut here.
      const next = findGoodFrame(buf, pos + 1, end);
      if (next < 0) {
        truncatedAt = this.bufOffset + pos;
        pos = end;
        break;
      }
      this.openDamage(pos);
      pos = next;
    }
    this.pos = pos;
    return truncatedAt;
  }

  private openDamage(pos: number): void {
    if (this.damageFrom !== null) return;
    this.damageFrom = this.bufOffset + pos;
    this.damage.firstOffset ??= this.damageFrom;
  }

  private closeDamage(at: number): void {
    if (this.damageFrom === null) return;
    this.damage.regions++;
    this.damage.bytes += at - this.damageFrom;
    this.damageFrom = null;
  }
}

/** checkFrame: not a frame (distinct from every "needs n bytes" answer). */
const BAD = Number.MIN_SAFE_INTEGER;

function isPrefixOfMagic(b: Uint8Array): boolean {
  for (let i = 0; i < b.length && i < MAGIC.length; i++) if (b[i] !== MAGIC[i]) return false;
  return true;
}

/** Next position of SYNC0 SYNC1 (or of a SYNC0 ending the buffer, whose pair may follow). */
function nextSync(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  for (;;) {
    i = buf.indexOf(SYNC0, i);
    if (i < 0 || i >= end) return end;
    if (i + 1 >= end || buf[i + 1] === SYNC1) return i;
    i++;
  }
}

function frameHeaderEnd(buf: Uint8Array, pos: number): number {
  let p = pos + 3;
  while ((buf[p] as number) & 0x80) p++;
  return p + 1 + 4;
}

/**
 * Checks the frame at pos (which starts with SYNC0): returns its end offset when it is complete
 * and its CRC matches, BAD when it cannot be a frame, or -n when it needs n bytes from pos.
 */
function checkFrame(buf: Uint8Array, pos: number, end: number): number {
  if (pos + 4 > end) return -4;
  const type = buf[pos + 2] as number;
  if (type === 0 || type > MAX_RECORD_TYPE) return BAD;
  let len = 0;
  let p = pos + 3;
  for (let shift = 0; ; shift += 7) {
    if (p >= end) return -(p - pos + 1);
    if (shift > 28) return BAD;
    const b = buf[p++] as number;
    len += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) break;
  }
  if (len > maxPayload(type)) return BAD;
  const payloadStart = p + 4;
  const frameEnd = payloadStart + len;
  if (frameEnd > end) return -(frameEnd - pos);
  const stored = ((buf[p] as number) | ((buf[p + 1] as number) << 8) | ((buf[p + 2] as number) << 16) | ((buf[p + 3] as number) << 24)) >>> 0;
  let crc = crc32Update(0, buf, pos + 2, p);
  crc = crc32Update(crc, buf, payloadStart, frameEnd);
  return crc === stored ? frameEnd : BAD;
}

/** Position of the first complete, CRC-valid frame at or after `from`, or -1. */
export function findGoodFrame(buf: Uint8Array, from: number, end: number): number {
  for (let i = nextSync(buf, from, end); i < end; i = nextSync(buf, i + 1, end)) {
    if (checkFrame(buf, i, end) > 0) return i;
  }
  return -1;
}
