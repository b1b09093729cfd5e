/**
 * Incremental recording decoder: bytes in (Uint8Array chunks of any size, in Node or a
 * browser), typed records out. Damaged stretches are skipped and counted; records of types this
 * version does not know (later minor versions) are skipped. Only RecordingError is thrown, and
 * only when the file cannot be a readable recording at all (see errors.ts).
 */
import type { HopEvent, HopNote } from '../hop-event.js';
import type { NetfilterEvent } from '../netfilter/types.js';
import { decodeHop } from '../wire.js';
import { RecordingError } from './errors.js';
import { FrameScanner, type Damage, type Frame, type Preamble } from './frames.js';
import { PREAMBLE_LENGTH, RecordType } from './format.js';
import {
  decodeClock, decodeEnd, decodeHeader, decodeIndex, decodeLost, decodeNetfilter, decodeNote, decodeTopology,
  type ClockRecord, type EndRecord, type IndexRecord, type LostRecord, type RecordingHeader, type TopologyRecord,
} from './messages.js';

/** A decoded record, with the file offsets it starts at and ends before. */
export type RecordingRecord = { readonly offset: number; readonly next: number } & (
  | { readonly kind: 'header'; readonly header: RecordingHeader }
  | { readonly kind: 'topology'; readonly topology: TopologyRecord }
  | { readonly kind: 'event'; readonly event: HopEvent }
  | { readonly kind: 'lost'; readonly lost: LostRecord }
  | { readonly kind: 'index'; readonly index: IndexRecord }
  | { readonly kind: 'end'; readonly end: EndRecord }
  | { readonly kind: 'clock'; readonly clock: ClockRecord }
  | { readonly kind: 'note'; readonly note: HopNote }
  | { readonly kind: 'netfilter'; readonly netfilter: NetfilterEvent });

export interface DecoderOptions {
  /** File offset of the first byte pushed. */
  readonly baseOffset?: number;
  /**
   * true (default): the bytes are a whole file from its first byte: preamble, then the header
   * record, which must be intact. false: a stretch from the middle of a file (after a seek).
   */
  readonly fromStart?: boolean;
}

export interface DecodeSummary {
  /** Offset of the record the input stopped in the middle of, null when it ended on a record boundary. */
  readonly truncatedAt: number | null;
  /** Offset just past the last complete record. */
  readonly goodEnd: number;
  /** Damaged stretches skipped. */
  readonly damage: Readonly<Damage>;
  /** Records whose frame checked out but whose payload did not decode (skipped). */
  readonly invalid: number;
  /** Records of types this version does not know (skipped). */
  readonly unknown: number;
  /** Whether the end record was seen: the recorder finished the file. */
  readonly ended: boolean;
  readonly preamble: Preamble | null;
}

export class RecordingDecoder {
  private readonly scanner: FrameScanner;
  private readonly fromStart: boolean;
  private frames = 0;
  private invalid = 0;
  private unknown = 0;
  private ended = false;
  header: RecordingHeader | null = null;

  constructor(options: DecoderOptions = {}) {
    this.fromStart = options.fromStart ?? true;
    this.scanner = new FrameScanner({ baseOffset: options.baseOffset ?? 0, preamble: this.fromStart });
  }

  push(chunk: Uint8Array, onRecord: (r: RecordingRecord) => void): void {
    this.scanner.push(chunk, (f) => this.frame(f, onRecord));
  }

  finish(onRecord: (r: RecordingRecord) => void): DecodeSummary {
    const end = this.scanner.finish((f) => this.frame(f, onRecord));
    if (this.fromStart && !this.header) {
      if (end.truncatedAt === PREAMBLE_LENGTH || (end.truncatedAt === null && end.goodEnd === PREAMBLE_LENGTH && this.scanner.damage.regions === 0)) {
        throw new RecordingError('truncated-header', `it ends at byte ${this.scanner.offset}, inside its header: nothing to replay`);
      }
      throw new RecordingError('bad-header', 'its header record is damaged');
    }
    return {
      truncatedAt: end.truncatedAt, goodEnd: end.goodEnd, damage: this.scanner.damage, invalid: this.invalid,
      unknown: this.unknown, ended: this.ended, preamble: this.scanner.preamble,
    };
  }

  /** Format version from the preamble, once read. */
  get preamble(): Preamble | null {
    return this.scanner.preamble;
  }

  /** Damage so far (final only after finish). */
  get damage(): Readonly<Damage> {
    return this.scanner.damage;
  }

  private frame(f: Frame, onRecord: (r: RecordingRecord) => void): void {
    const first = this.frames++ === 0;
    if (this.fromStart && first) {
      // The header must be the very first record, right after the preamble.
      if (f.type !== RecordType.header || f.offset !== PREAMBLE_LENGTH) throw new RecordingError('bad-header', 'its header record is damaged or missing');
      try {
        this.header = decodeHeader(f.payload);
      } catch {
        throw new RecordingError('bad-header', 'its header record does not decode');
      }
      onRecord({ kind: 'header', offset: f.offset, next: f.end, header: this.header });
      return;
    }
    let r: RecordingRecord;
    try {
      switch (f.type) {
        case RecordType.event: r = { kind: 'event', offset: f.offset, next: f.end, event: decodeHop(f.payload) }; break;
        case RecordType.topology: r = { kind: 'topology', offset: f.offset, next: f.end, topology: decodeTopology(f.payload) }; break;
        case RecordType.lost: r = { kind: 'lost', offset: f.offset, next: f.end, lost: decodeLost(f.payload) }; break;
        case RecordType.index: r = { kind: 'index', offset: f.offset, next: f.end, index: decodeIndex(f.payload) }; break;
        case RecordType.clock: r = { kind: 'clock', offset: f.offset, next: f.end, clock: decodeClock(f.payload) }; break;
        case RecordType.note: r = { kind: 'note', offset: f.offset, next: f.end, note: decodeNote(f.payload) }; break;
        case RecordType.netfilter: r = { kind: 'netfilter', offset: f.offset, next: f.end, netfilter: decodeNetfilter(f.payload) }; break;
        case RecordType.end: r = { kind: 'end', offset: f.offset, next: f.end, end: decodeEnd(f.payload) }; this.ended = true; break;
        case RecordType.header:
          // A second header cannot be part of this recording (e.g. two files concatenated): skip it.
          this.invalid++;
          return;
        default:
          this.unknown++;
          return;
      }
    } catch {
      this.invalid++;
      return;
    }
    onRecord(r);
  }
}

/** Decodes a whole recording held in memory. */
export function decodeRecording(bytes: Uint8Array): { header: RecordingHeader; records: RecordingRecord[]; summary: DecodeSummary } {
  const dec = new RecordingDecoder();
  const records: RecordingRecord[] = [];
  const push = (r: RecordingRecord): void => { records.push(r); };
  dec.push(bytes, push);
  const summary = dec.finish(push);
  return { header: dec.header as RecordingHeader, records, summary };
}
