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
  del(path: string): Promise<void>;
}

export function restClient(token: () => string | null, base = ''): RestClient {
  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError('unreachable', 'The hoptrace service does not answer.', 0);
    }
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
    async del(path) {
      await call('DELETE', path);
    },
  };
}
