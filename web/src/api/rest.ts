/** REST calls to the service (same origin), with the bearer token and the service's error shape. */
import { isApiError } from './contract.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    /** The service's error code, or 'unreachable' / 'bad-response' for transport problems. */
    readonly code: string,
    message: string,
    readonly status: number,
    readonly detail?: { readonly offset: number; readonly length: number },
  ) {
    super(message);
  }
}

export interface RestClient {
  get<T>(path: string, guard: (v: unknown) => v is T): Promise<T>;
  post<T>(path: string, body: unknown, guard: (v: unknown) => v is T): Promise<T>;
  /** DELETE; with a guard, the answer's body checked (an empty answer is undefined). */
  del(path: string): Promise<void>;
  del<T>(path: string, guard: (v: unknown) => v is T): Promise<T>;
  /** A binary download (a recording), as bytes. */
  bytes(path: string): Promise<ArrayBuffer>;
  /** POST of a raw binary body (application/octet-stream), JSON answer. */
  upload<T>(path: string, body: Blob | ArrayBuffer, guard: (v: unknown) => v is T): Promise<T>;
}

export function restClient(token: () => string | null, base = ''): RestClient {
  function headersFor(accept: string, contentType?: string): Record<string, string> {
    const headers: Record<string, string> = { accept };
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    if (contentType) headers['content-type'] = contentType;
    return headers;
  }

  async function send(method: string, path: string, accept: string, body?: { type: string; data: BodyInit }): Promise<Response> {
    try {
      return await fetch(`${base}${path}`, { method, headers: headersFor(accept, body?.type), body: body?.data });
    } catch {
      // A service that refuses an upload early (too large) may close the connection before the
      // browser finished sending: fetch then fails without an answer to read.
      throw new ApiError('unreachable', body && !body.type.includes('json')
        ? 'The upload was cut off: the service closed the connection (the file may be larger than it accepts), or it does not answer.'
        : 'The hoptrace service does not answer.', 0);
    }
  }

  /** The service's error for a failed answer (its JSON error body when there is one). */
  async function failure(res: Response): Promise<ApiError> {
    try {
      const json: unknown = await res.json();
      if (isApiError(json)) return new ApiError(json.error.code, json.error.message, res.status, json.error.detail);
    } catch {
      // not JSON: fall through
    }
    return new ApiError('bad-response', `The service answered ${res.status}.`, res.status);
  }

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await send(method, path, 'application/json', body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) });
    return answer(res);
  }

  async function answer(res: Response): Promise<unknown> {
    if (res.status === 204) return undefined;
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new ApiError('bad-response', `The service answered ${res.status} without JSON (is this a hoptrace service?).`, res.status);
    }
    if (!res.ok) {
      if (isApiError(json)) throw new ApiError(json.error.code, json.error.message, res.status, json.error.detail);
      throw new ApiError('bad-response', `The service answered ${res.status}.`, res.status);
    }
    return json;
  }
  return {
    async get(path, guard) {
      const v = await call('GET', path);
      if (!guard(v)) throw new ApiError('bad-response', `Unexpected answer from ${path}.`, 200);
      return v;
    },
    async post(path, body, guard) {
      const v = await call('POST', path, body);
      if (!guard(v)) throw new ApiError('bad-response', `Unexpected answer from ${path}.`, 200);
      return v;
    },
    async del<T>(path: string, guard?: (v: unknown) => v is T): Promise<T | void> {
      const v = await call('DELETE', path);
      if (!guard) return;
      if (!guard(v)) throw new ApiError('bad-response', `Unexpected answer from ${path}.`, 200);
      return v;
    },
    async bytes(path) {
      const res = await send('GET', path, 'application/octet-stream');
      if (!res.ok) throw await failure(res);
      return res.arrayBuffer();
    },
    async upload(path, body, guard) {
      const v = await answer(await send('POST', path, 'application/json', { type: 'application/octet-stream', data: body }));
      if (!guard(v)) throw new ApiError('bad-response', `Unexpected answer from ${path}.`, 200);
      return v;
    },
  } as RestClient;
}
