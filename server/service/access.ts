/**
 * Who may talk to the service. It runs as root and drives kernel probes, so:
 * - Browsers may only call it from its own origin: a request with an Origin header must come from
 *   `http://<the Host it was sent to>` (or an origin allowed explicitly, e.g. a dev server).
 * - Bound to loopback, the Host header must name a loopback address or localhost on our port,
 *   which defeats DNS rebinding (a hostile page whose name resolves to 127.0.0.1).
 * - With a token, every REST call needs `Authorization: Bearer <token>`, and so does the
 *   engine.io handshake that opens a socket (or `?token=` in its URL: a browser's WebSocket
 *   cannot send headers): a peer without it is refused before it is given a sid. Binding beyond
 *   loopback requires a token (checked at start-up).
 * Requests without an Origin header (curl, scripts, Node clients) are not browser-driven and pass
 * the origin check; the token is what guards them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export interface AccessOptions {
  /** The address the service is bound to. */
  readonly host: string;
  /** The port it actually listens on. */
  readonly port: number;
  readonly token?: string | undefined;
  /** Extra origins allowed (exact `scheme://host[:port]`). */
  readonly allowOrigins?: readonly string[] | undefined;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return /^::ffff:127\./.test(h);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class AccessPolicy {
  private readonly tokenDigest: Buffer | null;
  private readonly allowOrigins: ReadonlySet<string>;
  private readonly loopback: boolean;

  constructor(private readonly opts: AccessOptions) {
    this.tokenDigest = opts.token ? digest(opts.token) : null;
    this.allowOrigins = new Set((opts.allowOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.loopback = isLoopbackHost(opts.host);
  }

  get requiresToken(): boolean {
    return this.tokenDigest !== null;
  }

  /** null when allowed, else why not (one sentence, safe to show). */
  checkOrigin(origin: string | undefined, host: string | undefined): string | null {
    if (this.loopback) {
      const hostOk = host !== undefined && this.isOwnLoopbackHost(host);
      if (!hostOk) return `requests must be addressed to this service by a loopback name (Host: ${host ?? 'missing'} is not)`;
    }
    if (origin === undefined) return null;
    const o = origin.toLowerCase();
    if (this.allowOrigins.has(o)) return null;
    if (host !== undefined && o === `http://${host.toLowerCase()}`) return null;
    return `origin ${origin} is not this service's origin`;
  }

  /** Checks a bearer token in constant time (digests hide the length too). */
  checkToken(presented: unknown): boolean {
    if (!this.tokenDigest) return true;
    if (typeof presented !== 'string' || presented === '') return false;
    return timingSafeEqual(digest(presented), this.tokenDigest);
  }

  /** The token from an `Authorization: Bearer T` header, or undefined. */
  static bearer(header: string | undefined): string | undefined {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }

  /**
   * The token an engine.io handshake request carries: `Authorization: Bearer T`, else the `token`
   * query parameter (socket.io clients: `extraHeaders` in Node, `query: {token}` in browsers).
   */
  static handshakeToken(req: { readonly url?: string | undefined; readonly headers: { readonly authorization?: string | undefined } }): string | undefined {
    const bearer = AccessPolicy.bearer(req.headers.authorization);
    if (bearer !== undefined) return bearer;
    const query = new URL(req.url ?? '/', 'http://handshake.invalid').searchParams.get('token');
    return query ?? undefined;
  }

  private isOwnLoopbackHost(hostHeader: string): boolean {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader);
    if (!m) return false;
    const [, name = '', port] = m;
    if ((port === undefined ? 80 : Number(port)) !== this.opts.port) return false;
    return isLoopbackHost(name);
  }
}
