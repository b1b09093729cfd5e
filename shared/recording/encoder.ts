/**
 * Builds a recording as bytes, record by record, and places index records on its own. It never
 * touches storage: the caller appends what `take()` returns, in order, to a file (server) or a
 * buffer (tests, the browser). `offset` is the byte position the next record will start at.
 */
import type { HopEvent, HopNote } from '../hop-event.js';
import type { NetfilterEvent } from '../netfilter/types.js';
import { encodeHop } from '../wire.js';
import { MAX_FRAME_OVERHEAD, RecordType, preamble, writeFrame } from './format.js';
import {
  encodeClock, encodeEnd, encodeHeader, encodeIndex, encodeLost, encodeNetfilter, encodeNote, encodeTopology,
  type EndRecord, type RecordingHeader, type TopologyRecord,
} from './messages.js';

export interface EncoderOptions {
  /** An index record is written once events have moved this far in kernel time since the last one... */
  readonly indexEveryNs?: number;
  /** ... or after this many events, whichever comes first. Bounds how much a seek must scan. */
  readonly indexEveryEvents?: number;
}

export interface EncoderCounts {
  readonly events: number;
  readonly lost: number;
  /** Largest event time so far (0 before the first event). */
  readonly maxT: number;
  /** Bytes produced, preamble included. */
  readonly bytes: number;
}

export class RecordingEncoder {
  private buf = new Uint8Array(64 * 1024);
  private len = 0;
  private base = 0;
  private events = 0;
  private lost = 0;
  private maxT = 0;
  private topologyOffset = 0;
  private eventsAtIndex = 0;
  private tAtIndex = -1;
  private readonly indexEveryNs: number;
  private readonly indexEveryEvents: number;

  /** Starts the file: preamble and header. */
  constructor(header: RecordingHeader, options: EncoderOptions = {}) {
    this.indexEveryNs = options.indexEveryNs ?? 1_000_000_000;
    this.indexEveryEvents = options.indexEveryEvents ?? 4096;
    this.append(preamble());
    this.record(RecordType.header, encodeHeader(header));
  }

  /** Byte position of the next record. */
  get offset(): number {
    return this.base + this.len;
  }

  get counts(): EncoderCounts {
    return { events: this.events, lost: this.lost, maxT: this.maxT, bytes: this.offset };
  }

  /** A topology snapshot or change; `prevOffset` is filled in here. */
  topology(r: Omit<TopologyRecord, 'prevOffset'>): void {
    const at = this.offset;
    this.record(RecordType.topology, encodeTopology({ ...r, prevOffset: this.topologyOffset }));
    this.topologyOffset = at;
  }

  event(ev: HopEvent): void {
    if (this.events - this.eventsAtIndex >= this.indexEveryEvents || (this.tAtIndex >= 0 && ev.t - this.tAtIndex >= this.indexEveryNs)) {
      this.index();
    }
    if (this.tAtIndex < 0) this.tAtIndex = ev.t;
    this.record(RecordType.event, encodeHop(ev));
    this.events++;
    if (ev.t > this.maxT) this.maxT = ev.t;
  }

  /** A note of the notes tier (sessions with `notes`), in the order the session delivered it. */
  note(n: HopNote): void {
    this.record(RecordType.note, encodeNote(n));
  }

  /** A netfilter rule-trace event (sessions with `netfilter`), in the order it was received. */
  netfilter(ev: NetfilterEvent): void {
    this.record(RecordType.netfilter, encodeNetfilter(ev));
  }

  lostEvents(t: number, count: number): void {
    this.record(RecordType.lost, encodeLost({ t, count }));
    this.lost += count;
  }

  /** The live reconstruction's clock moved to `t` (see ClockRecord in wire.proto). */
  clock(t: number): void {
    this.record(RecordType.clock, encodeClock({ t }));
  }

  /** Writes an index record now (also done on its own as events come). */
  index(): void {
    const at = this.offset;
    this.record(RecordType.index, encodeIndex({
      maxTBefore: this.maxT, eventsBefore: this.events, lostBefore: this.lost, topologyOffset: this.topologyOffset, offset: at,
    }));
    this.eventsAtIndex = this.events;
    this.tAtIndex = this.maxT;
  }

  /** Closes the recording: a last index (so readers find everything from the tail), then the end record. */
  end(r: Omit<EndRecord, 'events' | 'lost'>): void {
    this.index();
    this.record(RecordType.end, encodeEnd({ ...r, events: this.events, lost: this.lost }));
  }

  /** Bytes produced since the last call. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.base += this.len;
    this.len = 0;
    return out;
  }

  /** Bytes waiting in `take()`. */
  get pending(): number {
    return this.len;
  }

  private record(type: number, payload: Uint8Array): void {
    this.reserve(payload.length + MAX_FRAME_OVERHEAD);
    this.len = writeFrame(this.buf, this.len, type, payload);
  }

  private append(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }
}
