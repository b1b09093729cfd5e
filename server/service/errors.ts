/**
 * Errors as the API shows them: `{error: {code, message}}` with a code from the fixed set in
 * shared/api-types.ts and a status to match. Whatever else is thrown becomes `internal` with a
 * generic message (the details go to the service's log, never to the client).
 */
import type { Request, Response, NextFunction, Router } from 'express';
import { ZodError } from 'zod';
import { FilterError } from '../../shared/filter/index.js';
import { describeZodError, type ApiErrorBody, type ErrorCode } from '../../shared/api-types.js';
import { CannotTraceError } from '../trace-session.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly detail?: { readonly offset: number; readonly length: number },
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.detail ? { detail: this.detail } : {}) } };
  }
}

/** bpftrace's stderr can be long; the first lines say what went wrong. */
function firstLines(text: string, n = 5): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, n).join('\n') + (lines.length > n ? '\n…' : '');
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Maps anything thrown to the ApiError a client should see. */
export function toApiError(err: unknown, log?: (line: string) => void, req?: Pick<Request, 'get'>): ApiError {
  if (err instanceof ApiError) return err;
  // Nobody is left to answer, and nothing went wrong on our side.
  if (err instanceof ClientGoneError) return new ApiError(400, 'bad-request', err.message);
  if (err instanceof FilterError) return new ApiError(400, 'bad-filter', `bad filter: ${err.message}`, { offset: err.offset, length: err.length });
  if (err instanceof ZodError) return new ApiError(400, 'bad-request', describeZodError(err));
  if (err instanceof CannotTraceError) return new ApiError(503, 'cannot-trace', err.problems.join(' '));
  // The router decodes path parameters; a `%` not followed by two hex digits, or escapes that
  // are not UTF-8, fail there (status 400 on the error), before any route runs.
  if (err instanceof URIError) return new ApiError(400, 'bad-request', 'the path has a malformed percent-escape (a % must be followed by two hex digits, and the escapes must spell UTF-8)');
  // body-parser's errors carry a status and a type; their messages are safe to show.
  const e = err as { status?: unknown; type?: unknown; message?: unknown; code?: unknown };
  if (e.status === 400 && typeof e.code === 'string' && e.code.startsWith('Z_')) {
    // zlib's error, passed on by body-parser when a body says it is compressed and is not.
    const encoding = req?.get('content-encoding')?.toLowerCase().slice(0, 20) ?? 'compressed';
    return new ApiError(400, 'bad-request', `the request body is not valid ${encoding} (Content-Encoding: ${encoding})`);
  }
  if (e.status === 415 && e.type === 'encoding.unsupported') {
    return new ApiError(415, 'unsupported-encoding', 'the request body\'s Content-Encoding is not supported (send it uncompressed, or as gzip, deflate or br)');
  }
  if (typeof e.status === 'number' && typeof e.type === 'string') {
    if (e.type === 'entity.too.large') {
      const limit = (err as { limit?: unknown }).limit;
      return new ApiError(413, 'payload-too-large', `the request body is too large${typeof limit === 'number' ? ` (at most ${Math.round(limit / 1024)} KiB)` : ''}`);
    }
    if (e.type === 'entity.parse.failed') {
      // Strict parsing refuses valid JSON that is not an object or array (null, "x", 5) with the
      // same error type: say which mistake it was.
      const raw = (err as { body?: unknown }).body;
      return new ApiError(400, 'bad-request', typeof raw === 'string' && isJson(raw)
        ? 'the request body must be a JSON object, e.g. {"filter": "host 10.0.0.1"}'
        : 'the request body is not valid JSON');
    }
    if (e.status >= 400 && e.status < 500) return new ApiError(e.status, 'bad-request', `the request body could not be read (${e.type})`);
  }
  if (err instanceof TraceStartError) return new ApiError(500, 'trace-failed', `bpftrace failed to start: ${firstLines(err.message)}`);
  log?.(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return new ApiError(500, 'internal', 'internal error (see the service log)');
}

/** The client went away before its request was read (an upload aborted): not our error, not logged. */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError';
}

/** bpftrace could not attach for a session; the message is its stderr. */
export class TraceStartError extends Error {
  override name = 'TraceStartError';
}

/**
 * Answers 405 (with `Allow`) for the methods a known path does not take, so that a wrong method
 * reads as such rather than as a missing endpoint. Register after the path's real routes.
 */
export function allowOnly(router: Router, path: string, methods: readonly string[]): void {
  const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])].join(', ');
  router.all(path, (req, res) => {
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    sendError(res, new ApiError(405, 'method-not-allowed', `${req.method} is not allowed on /api${req.path.slice(0, 100)} (allowed: ${allow})`));
  });
}

export function sendError(res: Response, err: ApiError): void {
  res.status(err.status).json(err.body());
}

/** Express error middleware: the last `app.use`. */
export function errorHandler(log: (line: string) => void) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    sendError(res, toApiError(err, log, req));
  };
}
