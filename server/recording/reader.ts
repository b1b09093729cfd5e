/**
 * Reads a .hoptrace file from disk: header at open, the tail for totals and the index, seeks by
 * bisecting over index records (reading a few windows, not the file), and streams records from
 * an offset. Throws only RecordingError (code 'io' for file system trouble).
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  FrameScanner, RecordingDecoder, RecordingError, RecordType, MAX_FRAME_OVERHEAD, maxPayload, namespaceNamesOf,
  type DecodeSummary, type EndRecord, type Frame, type IndexRecord, type Preamble, type RecordingHeader,
  type RecordingRecord, type TopologyRecord,
} from '../../shared/recording/index.js';
import { decodeIndex, decodeTopology } from '../../shared/recording/messages.js';

const CHUNK = 1024 * 1024;
const TAIL_WINDOW = 1024 * 1024;
/** Seeking stops bisecting when the range is this small and scans it. */
const SEEK_SCAN = 256 * 1024;

export interface TailInfo {
  /** The last index record, null when the file has none. */
  readonly lastIndex: IndexRecord | null;
  /** The end record: null when the recorder did not finish the file. */
  readonly end: EndRecord | null;
  /** Events in the file (exact). */
  readonly events: number;
  readonly lost: number;
  /** Largest event time (kernel ns), 0 without events. */
  readonly maxT: number;
  /** Offset of the record the file stops in the middle of (recorder killed mid-write), null when whole. */
  readonly truncatedAt: number | null;
  /** Damaged stretches in the part read (after the last index). */
  readonly damagedRegions: number;
}

function ioError(err: unknown): RecordingError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a folder' : (err as Error).message;
  return new RecordingError('io', `cannot read it: ${why}`);
}

/** Records streamed from an offset in batches (one batch per chunk read); `summary` once done. */
export class RecordStream implements AsyncIterable<RecordingRecord[]> {
  summary: DecodeSummary | null = null;
  /** Offset up to which the file has been read. */
  position: number;

  constructor(private readonly file: RecordingFile, private readonly from: number, private readonly chunkSize = CHUNK) {
    this.position = from;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RecordingRecord[]> {
    const dec = new RecordingDecoder({ baseOffset: this.from, fromStart: false });
    const buf = new Uint8Array(this.chunkSize);
    let batch: RecordingRecord[] = [];
    const on = (r: RecordingRecord): void => { batch.push(r); };
    while (this.position < this.file.size) {
      const n = await this.file.readInto(buf, this.position);
      if (n === 0) break;
      this.position += n;
      dec.push(buf.subarray(0, n), on);
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
    }
    this.summary = dec.finish(on);
    if (batch.length > 0) yield batch;
  }
}

export class RecordingFile {
  private tailInfo: TailInfo | undefined;
  private names: Map<number, string> | undefined;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly header: RecordingHeader,
    readonly preamble: Preamble,
    /** Offset just past the header record: where the first record after it starts. */
    readonly headerEnd: number,
  ) {}

  /** Opens a recording and reads its header; throws RecordingError. */
  static async open(path: string): Promise<RecordingFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioError(err);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new RecordingError('io', 'cannot read it: it is not a regular file');
      const dec = new RecordingDecoder();
      let header: { header: RecordingHeader; next: number } | null = null;
      const on = (r: RecordingRecord): void => {
        if (r.kind === 'header') header = { header: r.header, next: r.next };
      };
      const buf = new Uint8Array(64 * 1024);
      let pos = 0;
      while (!header && pos < st.size) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        dec.push(buf.subarray(0, bytesRead), on);
      }
      if (!header) dec.finish(on); // throws the right RecordingError
      const h = header as unknown as { header: RecordingHeader; next: number };
      return new RecordingFile(path, fh, st.size, h.header, dec.preamble ?? { major: 1, minor: 0 }, h.next);
    } catch (err) {
      await fh.close().catch(() => undefined);
      if (err instanceof RecordingError) throw err;
      throw ioError(err);
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  /** @internal Reads into buf at a file offset; returns bytes read. */
  async readInto(buf: Uint8Array, position: number): Promise<number> {
    try {
      const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, Math.max(0, this.size - position)), position);
      return bytesRead;
    } catch (err) {
      throw ioError(err);
    }
  }

  /** Streams records from `fromOffset` (a record boundary: headerEnd, or what seek() returned). */
  stream(fromOffset = this.headerEnd, chunkSize = CHUNK): RecordStream {
    return new RecordStream(this, Math.max(fromOffset, this.headerEnd), chunkSize);
  }

  /**
   * Calls onFrame for each valid frame from `from` (need not be a boundary) until it returns
   * true or the scan reaches `limit`. Returns whether it was stopped.
   */
  private async scanFrames(from: number, limit: number, onFrame: (f: Frame) => boolean): Promise<boolean> {
    const scanner = new FrameScanner({ baseOffset: from });
    const buf = new Uint8Array(64 * 1024);
    let pos = from;
    let stopped = false;
    const on = (f: Frame): void => {
      if (!stopped && f.offset < limit && onFrame(f)) stopped = true;
    };
    while (!stopped && pos < this.size && pos < limit + MAX_FRAME_OVERHEAD + maxPayload(RecordType.index)) {
      const n = await this.readInto(buf, pos);
      if (n === 0) break;
      pos += n;
      scanner.push(buf.subarray(0, n), on);
      if (scanner.offset >= limit) break;
    }
    if (!stopped && pos >= this.size) scanner.finish(on);
    return stopped;
  }

  /** Totals from the tail of the file: the last index record plus the records after it. */
  async tail(): Promise<TailInfo> {
    if (this.tailInfo) return this.tailInfo;
    let lastIndex: IndexRecord | null = null;
    for (let window = TAIL_WINDOW; ; window *= 4) {
      const from = Math.max(this.headerEnd, this.size - window);
      await this.scanFrames(from, this.size, (f) => {
        if (f.type === RecordType.index) {
          try {
            const idx = decodeIndex(f.payload);
            if (idx.offset === f.offset) lastIndex = idx;
          } catch {
            // Undecodable index: look for an earlier one.
          }
        }
        return false;
      });
      if (lastIndex || from === this.headerEnd) break;
    }
    const idx = lastIndex as IndexRecord | null;
    let events = idx?.eventsBefore ?? 0;
    let lost = idx?.lostBefore ?? 0;
    let maxT = idx?.maxTBefore ?? 0;
    let end: EndRecord | null = null;
    const s = this.stream(idx ? idx.offset : this.headerEnd, 256 * 1024);
    for await (const batch of s) {
      for (const r of batch) {
        if (r.kind === 'event') {
          events++;
          if (r.event.t > maxT) maxT = r.event.t;
        } else if (r.kind === 'lost') lost += r.lost.count;
        else if (r.kind === 'end') end = r.end;
      }
    }
    const summary = s.summary as DecodeSummary;
    this.tailInfo = { lastIndex: idx, end, events, lost, maxT, truncatedAt: summary.truncatedAt, damagedRegions: summary.damage.regions };
    return this.tailInfo;
  }

  /** Reads the one record that starts at `offset`, or null when there is none intact. */
  private async frameAt(offset: number): Promise<Frame | null> {
    if (offset < this.headerEnd || offset >= this.size) return null;
    const head = new Uint8Array(Math.min(MAX_FRAME_OVERHEAD, this.size - offset));
    await this.readInto(head, offset);
    let len = 0;
    let p = 3;
    for (let shift = 0; p < head.length && shift <= 28; shift += 7) {
      const b = head[p++] as number;
      len += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) break;
    }
    const total = Math.min(p + 4 + Math.min(len, maxPayload(head[2] ?? 0)), this.size - offset);
    const bytes = new Uint8Array(total);
    await this.readInto(bytes, offset);
    let found: Frame | null = null;
    const scanner = new FrameScanner({ baseOffset: offset });
    const on = (f: Frame): void => {
      if (f.offset === offset && !found) found = { ...f, payload: f.payload.slice() };
    };
    scanner.push(bytes, on);
    scanner.finish(on);
    return found;
  }

  /**
   * Namespace names as the recording host had them: every topology record, found by following
   * the chain back from the last index (a few reads), or by scanning when the chain is broken.
   */
  async namespaceNames(): Promise<Map<number, string>> {
    if (this.names) return this.names;
    const records = await this.topologyRecords();
    this.names = namespaceNamesOf(records);
    return this.names;
  }

  /** Every topology record in file order. */
  async topologyRecords(): Promise<TopologyRecord[]> {
    const tail = await this.tail();
    const chain: TopologyRecord[] = [];
    // Topology records after the last index are not in its chain: pick them up from the tail.
    const after: TopologyRecord[] = [];
    const from = tail.lastIndex ? tail.lastIndex.offset : this.headerEnd;
    if (tail.lastIndex) {
      let at = tail.lastIndex.topologyOffset;
      const seen = new Set<number>();
      let broken = false;
      while (at !== 0) {
        if (seen.has(at)) { broken = true; break; }
        seen.add(at);
        const f = await this.frameAt(at);
        if (!f || f.type !== RecordType.topology) { broken = true; break; }
        let r: TopologyRecord;
        try {
          r = decodeTopology(f.payload);
        } catch {
          broken = true;
          break;
        }
        chain.push(r);
        if (r.prevOffset >= at) { broken = true; break; }
        at = r.prevOffset;
      }
      if (broken) return this.scanTopology(this.headerEnd, this.size);
      chain.reverse();
    } else {
      return this.scanTopology(this.headerEnd, this.size);
    }
    after.push(...(await this.scanTopology(from, this.size)));
    return [...chain, ...after];
  }

  private async scanTopology(from: number, to: number): Promise<TopologyRecord[]> {
    const out: TopologyRecord[] = [];
    await this.scanFrames(from, to, (f) => {
      if (f.type === RecordType.topology) {
        try {
          out.push(decodeTopology(f.payload));
        } catch {
          // damaged beyond its CRC's reach: skip
        }
      }
      return false;
    });
    return out;
  }

  /** The first index record starting in [from, limit), or null. */
  private async indexAtOrAfter(from: number, limit: number): Promise<IndexRecord | null> {
    let found: IndexRecord | null = null;
    await this.scanFrames(from, limit, (f) => {
      if (f.type !== RecordType.index) return false;
      try {
        const idx = decodeIndex(f.payload);
        if (idx.offset !== f.offset) return false;
        found = idx;
        return true;
      } catch {
        return false;
      }
    });
    return found;
  }

  /**
   * Offset to read from so that every event with t ≥ tNs comes after it: the last index record
   * whose maxTBefore < tNs (events before it are all earlier). Bisects over the file, reading a
   * window per step; falls back to headerEnd when there is no such index.
   */
  async seek(tNs: number): Promise<number> {
    let best = this.headerEnd;
    let lo = this.headerEnd;
    let hi = this.size;
    while (hi - lo > SEEK_SCAN) {
      const mid = Math.floor((lo + hi) / 2);
      const idx = await this.indexAtOrAfter(mid, hi);
      if (!idx) {
        hi = mid;
      } else if (idx.maxTBefore < tNs) {
        best = idx.offset;
        lo = idx.offset + 1;
      } else {
        hi = mid;
      }
    }
    await this.scanFrames(lo, hi, (f) => {
      if (f.type !== RecordType.index) return false;
      try {
        const idx = decodeIndex(f.payload);
        if (idx.offset !== f.offset) return false;
        if (idx.maxTBefore >= tNs) return true;
        best = Math.max(best, idx.offset);
      } catch {
        // skip
      }
      return false;
    });
    return best;
  }
}
