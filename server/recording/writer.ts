/**
 * Appends a recording to a file as it is made. Bytes from the encoder are written in order, at
 * least every `flushIntervalMs`, and fsynced per policy; the preamble and header are synced at
 * once. A crash at any moment leaves a file whose every complete record replays (the framing
 * lets readers stop at the cut). Disk full, I/O errors or the file being deleted stop the writer
 * with a RecordingWriteError; what was written stays readable.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, unlinkSync, writeSync, constants } from 'node:fs';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { RecordingEncoder, type EncoderOptions, type RecordingHeader, type TopologyRecord, type EndRecord } from '../../shared/recording/index.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface WriterOptions extends EncoderOptions {
  /** 'always': after every flush; 'interval' (default): at most every fsyncIntervalMs; 'never': leave it to the kernel. */
  readonly fsync?: FsyncPolicy;
  readonly fsyncIntervalMs?: number;
  /** Longest time bytes wait in memory before they are written (default 200 ms). */
  readonly flushIntervalMs?: number;
  /** Bytes waiting in memory that trigger a write at once (default 256 KiB). */
  readonly flushBytes?: number;
  /** Replace an existing file (default false: refuse, so a recording is never clobbered by accident). */
  readonly overwrite?: boolean;
  /** Called once when the writer stops on an error. */
  readonly onError?: (err: RecordingWriteError) => void;
}

export type WriteErrorCode = 'exists' | 'no-space' | 'removed' | 'io';

export class RecordingWriteError extends Error {
  override name = 'RecordingWriteError';
  constructor(readonly code: WriteErrorCode, message: string, readonly path: string) {
    super(message);
  }
}

function describeFsError(err: unknown, path: string): RecordingWriteError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new RecordingWriteError('no-space', `no space left on the device holding ${path}`, path);
  if (code === 'EEXIST') return new RecordingWriteError('exists', `${path} already exists`, path);
  if (code === 'EACCES' || code === 'EPERM') return new RecordingWriteError('io', `not allowed to write ${path}`, path);
  if (code === 'ENOENT') return new RecordingWriteError('io', `the folder of ${path} does not exist`, path);
  if (code === 'EISDIR') return new RecordingWriteError('io', `${path} is a folder`, path);
  return new RecordingWriteError('io', `writing ${path} failed: ${(err as Error).message}`, path);
}

export interface WriterStats {
  readonly events: number;
  readonly lost: number;
  /** Bytes in the file (written), not counting what waits in memory. */
  readonly bytesWritten: number;
  readonly maxT: number;
}

export class RecordingFileWriter {
  private readonly enc: RecordingEncoder;
  private fd: number | null;
  private written = 0;
  private lastSync = 0;
  private lastCheck = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly policy: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly flushBytes: number;
  private constructing = false;
  /** The error that stopped the writer, if any. */
  error: RecordingWriteError | null = null;

  /** Creates the file and writes preamble and header durably; throws RecordingWriteError. */
  constructor(readonly path: string, header: RecordingHeader, private readonly options: WriterOptions = {}) {
    this.policy = options.fsync ?? 'interval';
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000;
    this.flushBytes = options.flushBytes ?? 256 * 1024;
    this.enc = new RecordingEncoder(header, options);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (options.overwrite ? constants.O_TRUNC : constants.O_EXCL);
    try {
      this.fd = openSync(path, flags, 0o640);
    } catch (err) {
      throw describeFsError(err, path);
    }
    this.constructing = true;
    this.flush(true);
    this.constructing = false;
    if (this.error) {
      // The file is ours (O_EXCL, or O_TRUNC when asked to overwrite) and holds no readable
      // header: a failed start leaves nothing behind to take the name or be listed as broken.
      this.discard();
      throw this.error;
    }
    this.timer = setInterval(() => this.flush(false), options.flushIntervalMs ?? 200);
    this.timer.unref();
  }

  get stats(): WriterStats {
    const c = this.enc.counts;
    return { events: c.events, lost: c.lost, bytesWritten: this.written, maxT: c.maxT };
  }

  get failed(): boolean {
    return this.error !== null;
  }

  get closed(): boolean {
    return this.fd === null;
  }

  event(ev: HopEvent): void {
    if (this.fd === null) return;
    this.enc.event(ev);
    if (this.enc.pending >= this.flushBytes) this.flush(false);
  }

  note(n: HopNote): void {
    if (this.fd === null) return;
    this.enc.note(n);
  }

  netfilter(ev: NetfilterEvent): void {
    if (this.fd === null) return;
    this.enc.netfilter(ev);
  }

  lost(t: number, count: number): void {
    if (this.fd === null) return;
    this.enc.lostEvents(t, count);
  }

  /** The live reconstruction's clock moved to `t` (kernel ns). */
  clock(t: number): void {
    if (this.fd === null) return;
    this.enc.clock(t);
  }

  topology(r: Omit<TopologyRecord, 'prevOffset'>): void {
    if (this.fd === null) return;
    this.enc.topology(r);
    this.flush(false);
  }

  /** Writes what waits in memory; syncs per policy (always when `sync`). */
  flush(sync = false): void {
    const fd = this.fd;
    if (fd === null) return;
    try {
      const bytes = this.enc.take();
      let off = 0;
      while (off < bytes.length) {
        const n = writeSync(fd, bytes, off, bytes.length - off);
        off += n;
        this.written += n;
      }
      const now = Date.now();
      if (sync || this.policy === 'always' || (this.policy === 'interval' && now - this.lastSync >= this.fsyncIntervalMs)) {
        if (bytes.length > 0 || sync) fdatasyncSync(fd);
        this.lastSync = now;
      }
      // Deleting an open file does not fail writes on Linux: look for it, or we would record into nothing.
      if (now - this.lastCheck >= 1000) {
        this.lastCheck = now;
        if (fstatSync(fd).nlink === 0) throw new RecordingWriteError('removed', `${this.path} was deleted while recording`, this.path);
      }
    } catch (err) {
      this.fail(err instanceof RecordingWriteError ? err : describeFsError(err, this.path));
    }
  }

  /** Finishes the file: last index, end record, sync, close. Returns the error if the file could not be finished. */
  close(end: Omit<EndRecord, 'events' | 'lost'>): RecordingWriteError | null {
    if (this.fd !== null) {
      this.enc.end(end);
      this.flush(true);
    }
    this.release();
    return this.error;
  }

  /** Closes without an end record (the file reads as cut short). */
  abort(): void {
    if (this.fd !== null) this.flush(true);
    this.release();
  }

  /** Closes and removes the file: for a recording that never started (nothing in it is worth keeping). */
  discard(): void {
    this.release();
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone (deleted under us): nothing to discard.
    }
  }

  private fail(err: RecordingWriteError): void {
    if (this.error) return;
    this.error = err;
    this.release();
    if (!this.constructing) this.options.onError?.(err);
  }

  private release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // Closing after ENOSPC/EIO may fail again; the fd is gone either way.
      }
      this.fd = null;
    }
  }
}
