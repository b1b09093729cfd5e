/**
 * The one error type recording readers throw. `code` says what is wrong so callers can choose an
 * exit code or HTTP status; `message` is one sentence fit for a user (no file name: callers
 * prefix the name they know the file by).
 */
export type RecordingErrorCode =
  /** Does not start with the .hoptrace magic. */
  | 'not-a-recording'
  /** Written by a newer hoptrace whose format this one cannot read. */
  | 'newer-version'
  /** Ends before its header record is complete: nothing to replay. */
  | 'truncated-header'
  /** The first record is missing, damaged or not a header. */
  | 'bad-header'
  /** Reading the file failed (server side: permissions, I/O). */
  | 'io';

export class RecordingError extends Error {
  override name = 'RecordingError';
  constructor(readonly code: RecordingErrorCode, message: string) {
    super(message);
  }
}
