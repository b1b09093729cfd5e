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
export function toApiError(err: unknown, log?: (line: string) => void): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof FilterError) return new ApiError(400, 'bad-filter', `bad filter: ${err.message}`, { offset: err.offset, length: err.length });
  if (err instanceof ZodError) return new ApiError(400, 'bad-request', describeZodError(err));
  if (err instanceof CannotTraceError) return new ApiError(503, 'cannot-trace', err.problems.join(' '));
  // body-parser's errors carry a status and a type; their messages are safe to show.
  const e = err as { status?: unknown; type?: unknown; message?: unknown };
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
  return (err: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    sendError(res, toApiError(err, log));
  };
}
