/**
 * The recordings library on disk, the folder the service serves from its `--data-dir`: safe
 * names, listing with metadata read from each file's header and tail (not its whole body), the
 * entries the API lists, validation of uploads before they are stored (linked in only when
 * readable), opening for download and deleting, never following a link planted in the folder.
 * HTTP is server/service/recordings-routes.ts; recording a session is recording-manager.ts there.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { readdir, link, lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve, sep } from 'node:path';
import type { RecordingEntry, RecordingStatus } from '../../shared/api-types.js';
import {
  RecordingDecoder, RecordingError, type RecordingHeader, type RecordingRecord,
} from '../../shared/recording/index.js';
import { RecordingFile } from './reader.js';

/** Where `serve` keeps recordings without --data-dir: a system folder for root, the XDG data folder otherwise. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  if (uid === 0) return '/var/lib/hoptrace/recordings';
  const base = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'hoptrace', 'recordings');
}

/** The library name of a file or path: its file name without the `.hoptrace` extension. */
export function libraryName(fileOrPath: string): string {
  const file = basename(fileOrPath);
  return file.endsWith(RECORDING_EXTENSION) ? file.slice(0, -RECORDING_EXTENSION.length) : file;
}

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

/** A file's metadata, or the one-sentence reason it has none. */
export async function readMetaOrProblem(path: string): Promise<RecordingMeta | string> {
  try {
    return await readRecordingMeta(path);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * A library entry from a file's metadata (or the reason it has none), with live numbers while it
 * is written (`running`: the status of each path being recorded now; `fallback`: what is known of
 * a recording whose file cannot be read).
 */
export function recordingEntry(path: string, meta: RecordingMeta | string, running: ReadonlyMap<string, RecordingStatus>, fallback?: RecordingStatus, size = 0): RecordingEntry {
  const file = basename(path);
  const live = running.get(path);
  if (typeof meta === 'string') {
    return {
      name: libraryName(file), file, startedAt: fallback?.startedAt ?? null, durationS: 0, events: fallback?.events ?? 0, packets: null,
      lost: 0, sizeBytes: size, filter: '', host: '', kernel: '', complete: false, endReason: fallback?.endReason ?? null,
      recording: live !== undefined, problem: meta,
    };
  }
  return {
    name: libraryName(file),
    file,
    startedAt: meta.startIso,
    durationS: Math.round(meta.durationNs / 1e6) / 1000,
    // The tail is read from the last index record; a file being written is ahead of it.
    events: Math.max(meta.events, live?.events ?? 0),
    packets: meta.packets ?? (live ? live.packets : null),
    lost: Math.max(meta.lost, live?.lost ?? 0),
    sizeBytes: meta.size,
    filter: meta.filter,
    host: meta.host,
    kernel: meta.kernel,
    depth: meta.depth,
    sampleRate: meta.sampleRate,
    complete: meta.complete,
    endReason: meta.endReason,
    recording: live !== undefined,
  };
}

/** Every recording in `dir` as the API lists it, newest first; unreadable files carry `problem`. */
export async function listEntries(dir: string, running: ReadonlyMap<string, RecordingStatus>): Promise<RecordingEntry[]> {
  const entries = await listRecordings(dir);
  return Promise.all(entries.map(async (e) => {
    const path = resolve(dir, e.name);
    if (e.meta) return recordingEntry(path, e.meta, running);
    const size = await lstat(path).then((s) => s.size, () => 0);
    return recordingEntry(path, e.problem ?? 'unreadable', running, undefined, size);
  }));
}

/** Opens a recording to read it, or null when there is no such file (O_NOFOLLOW: a planted symlink is not followed out of the folder). */
export async function openRecording(path: string): Promise<{ fh: FileHandle; size: number } | null> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  const st = await fh?.stat();
  if (!fh || !st?.isFile()) {
    await fh?.close();
    return null;
  }
  return { fh, size: st.size };
}

/** Deletes a recording; false when there is no such file (a link or folder under its name is not one). */
export async function deleteRecording(path: string): Promise<boolean> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isFile()) return false;
  await unlink(path);
  return true;
}

/** Why an upload was not stored: not a readable recording, the name is taken, no space. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(readonly code: 'bad-recording' | 'exists' | 'no-space', message: string) {
    super(message);
  }
}

/**
 * Stores a recording under `path` (in `dir`): `receive` writes it to a temp file in the same
 * folder (a name the library ignores: leading '.'), which is validated and then linked to its
 * name — link, not rename, so an existing name fails instead of being replaced. The temp file is
 * removed however it ends. Throws StoreError, or what `receive` threw.
 */
export async function storeRecording(dir: string, path: string, receive: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = join(dir, `.upload-${randomBytes(8).toString('hex')}.tmp`);
  try {
    try {
      await receive(tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new StoreError('no-space', 'no space left to store the upload');
      throw err;
    }
    const v = await validateRecording(tmp);
    if (!v.ok) throw new StoreError('bad-recording', `not stored: ${v.problem ?? 'it is not a readable recording'}`);
    try {
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StoreError('exists', `a recording named '${libraryName(path)}' already exists`);
      throw err;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
