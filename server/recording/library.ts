/**
 * The recordings library the service serves from its `--data-dir`: safe names, listing with
 * metadata read from each file's header and tail (not its whole body), and validation of
 * uploads before they are stored.
 */
import { readdir, lstat } from 'node:fs/promises';
import { basename, resolve, sep } from 'node:path';
import {
  RecordingDecoder, RecordingError, type RecordingHeader, type RecordingRecord,
} from '../../shared/recording/index.js';
import { RecordingFile } from './reader.js';

export const RECORDING_EXTENSION = '.hoptrace';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class RecordingNameError extends Error {
  override name = 'RecordingNameError';
}

/**
 * Path of the recording a user calls `userName`, inside `dataDir`: letters, digits, '.', '_' and
 * '-' only, not starting with '.', at most 100 characters; `.hoptrace` is appended when missing.
 * Anything else (slashes, '..', NUL, empty) throws RecordingNameError, so no name can leave the folder.
 */
export function recordingPath(dataDir: string, userName: string): string {
  // A trailing '.' would make 'x..hoptrace', which the '..' rule then refuses when listed.
  if (typeof userName !== 'string' || !NAME_RE.test(userName) || userName.includes('..') || userName.endsWith('.')) {
    throw new RecordingNameError('a recording name may only hold letters, digits, ".", "_" and "-" (at most 100, not starting or ending with ".")');
  }
  const file = userName.endsWith(RECORDING_EXTENSION) ? userName : `${userName}${RECORDING_EXTENSION}`;
  const root = resolve(dataDir);
  const full = resolve(root, file);
  // Belt and braces: the pattern already rules this out.
  if (!full.startsWith(root + sep) || basename(full) !== file) throw new RecordingNameError('a recording name must stay inside the recordings folder');
  return full;
}

export interface RecordingMeta {
  /** File name (the library's name for it). */
  readonly name: string;
  readonly path: string;
  /** Bytes on disk. */
  readonly size: number;
  readonly host: string;
  readonly kernel: string;
  readonly filter: string;
  /** Start, wall clock, ms since epoch (ISO text in `startIso`). */
  readonly start: number;
  readonly startIso: string;
  /** From the start to the last event, ns. */
  readonly durationNs: number;
  readonly events: number;
  /** Packets the recorder reconstructed; null when the file was not finished (not known without a full replay). */
  readonly packets: number | null;
  readonly lost: number;
  /** Whether the recorder finished the file (an end record); false after a crash or disk full. */
  readonly complete: boolean;
  /** Why the recording ended (end record), or null. */
  readonly endReason: string | null;
  /** Format version, e.g. "1.0". */
  readonly format: string;
  /** What the recorded session traced beyond hops (format 1.1 headers; false for older files). */
  readonly depth: { readonly netfilter: boolean; readonly notes: boolean };
  /** 1 in this many flows were recorded (format 1.2 headers; 1 for older files and unsampled ones). */
  readonly sampleRate: number;
}

/** Metadata of one recording; throws RecordingError when it is not a readable recording. */
export async function readRecordingMeta(path: string): Promise<RecordingMeta> {
  const file = await RecordingFile.open(path);
  try {
    const tail = await file.tail();
    const h = file.header;
    const startMs = Number(h.startWallNs / 1_000_000n);
    const lastT = tail.end ? Math.max(tail.end.t, tail.maxT) : tail.maxT;
    return {
      name: basename(path),
      path,
      size: file.size,
      host: h.host,
      kernel: h.kernel,
      filter: h.filter,
      start: startMs,
      startIso: new Date(startMs).toISOString(),
      durationNs: lastT > h.startMonoNs ? lastT - h.startMonoNs : 0,
      events: tail.events,
      packets: tail.end ? tail.end.packets : null,
      lost: tail.lost,
      complete: tail.end !== null,
      endReason: tail.end?.reason ?? null,
      format: `${file.preamble.major}.${file.preamble.minor}`,
      depth: { netfilter: h.netfilter === true, notes: h.notes === true },
      sampleRate: h.sampleRate ?? 1,
    };
  } finally {
    await file.close();
  }
}

export interface LibraryEntry {
  readonly name: string;
  readonly meta: RecordingMeta | null;
  /** Why the file could not be read as a recording (one sentence), null when meta is set. */
  readonly problem: string | null;
}

/** Every `*.hoptrace` regular file directly in `dir` (symlinks ignored), newest first. */
export async function listRecordings(dir: string): Promise<LibraryEntry[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(RECORDING_EXTENSION) && NAME_RE.test(n));
  const out = await Promise.all(names.map(async (name): Promise<LibraryEntry | null> => {
    const path = resolve(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile()) return null;
    } catch {
      return null;
    }
    try {
      return { name, meta: await readRecordingMeta(path), problem: null };
    } catch (err) {
      return { name, meta: null, problem: err instanceof RecordingError ? err.message : String(err) };
    }
  }));
  return out
    .filter((e): e is LibraryEntry => e !== null)
    .sort((a, b) => (b.meta?.start ?? 0) - (a.meta?.start ?? 0) || a.name.localeCompare(b.name));
}

export interface Validation {
  /** Readable, not damaged (a truncated file is ok: it replays up to the cut). */
  readonly ok: boolean;
  /** One sentence when not ok. */
  readonly problem: string | null;
  readonly header: RecordingHeader | null;
  readonly events: number;
  readonly truncatedAt: number | null;
  readonly damagedRegions: number;
  readonly complete: boolean;
}

/**
 * Reads a whole recording (uploads: bytes in memory, already size-limited by the caller; or a
 * path) and says whether it is fit to store.
 */
export async function validateRecording(input: Uint8Array | string): Promise<Validation> {
  const dec = new RecordingDecoder();
  let events = 0;
  const on = (r: RecordingRecord): void => {
    if (r.kind === 'event') events++;
  };
  try {
    if (typeof input === 'string') {
      const file = await RecordingFile.open(input);
      try {
        const buf = new Uint8Array(1024 * 1024);
        for (let pos = 0; pos < file.size;) {
          const n = await file.readInto(buf, pos);
          if (n === 0) break;
          pos += n;
          dec.push(buf.subarray(0, n), on);
        }
      } finally {
        await file.close();
      }
    } else {
      dec.push(input, on);
    }
    const s = dec.finish(on);
    const damaged = s.damage.regions > 0 || s.invalid > 0;
    return {
      ok: !damaged,
      problem: damaged ? `it is damaged: ${s.damage.regions + s.invalid} damaged stretch(es), first at byte ${s.damage.firstOffset ?? '?'}` : null,
      header: dec.header, events, truncatedAt: s.truncatedAt, damagedRegions: s.damage.regions + s.invalid, complete: s.ended,
    };
  } catch (err) {
    if (!(err instanceof RecordingError)) throw err;
    return { ok: false, problem: err.message, header: null, events, truncatedAt: null, damagedRegions: 0, complete: false };
  }
}
