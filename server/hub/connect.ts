/**
 * Connecting to the bus (issue 17): one place that turns the CLI's --hub URL and credential
 * options into @nats-io connection options, for the agent and the hub alike. Credentials are
 * passed through to NATS as they are: user/password, a token, or an nkey/JWT .creds file; TLS
 * with a CA, and a client certificate and key. Secrets may come from the environment
 * (HOPTRACE_NATS_PASSWORD, HOPTRACE_NATS_TOKEN) so they need not show in `ps`.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';

export interface BusOptions {
  /** nats://HOST:PORT (or tls://); several may be given, comma-separated. */
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** A .creds file (JWT and nkey seed), as `nsc` writes it. */
  readonly credsFile?: string;
  /** A file holding an nkey seed (SU...), for nkey-only users. */
  readonly nkeyFile?: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Connection name the server shows (e.g. hoptrace-agent node1). */
  readonly name?: string;
}

export class BusConfigError extends Error {
  override name = 'BusConfigError';
}

export function parseBusUrl(url: string): string[] {
  const servers = url.split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new BusConfigError('--hub needs a NATS URL such as nats://127.0.0.1:4222');
  for (const s of servers) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new BusConfigError(`--hub: not a URL: '${s.slice(0, 200)}' (expected nats://HOST:PORT)`);
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') throw new BusConfigError(`--hub: expected a nats:// or tls:// URL, got '${u.protocol}'`);
    if (!u.hostname) throw new BusConfigError(`--hub: no host in '${s.slice(0, 200)}'`);
  }
  return servers;
}

function readSecretFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BusConfigError(`cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export async function busConnectionOptions(o: BusOptions): Promise<ConnectionOptions> {
  const nats = await import('@nats-io/transport-node');
  const servers = parseBusUrl(o.url);
  const password = o.password ?? (process.env.HOPTRACE_NATS_PASSWORD || undefined);
  const token = o.token ?? (process.env.HOPTRACE_NATS_TOKEN || undefined);
  const kinds = [o.user !== undefined || password !== undefined, token !== undefined, o.credsFile !== undefined, o.nkeyFile !== undefined].filter(Boolean).length;
  if (kinds > 1) throw new BusConfigError('give one kind of NATS credentials: --nats-user/--nats-password, --nats-token, --nats-creds or --nats-nkey');
  if ((o.user === undefined) !== (password === undefined)) throw new BusConfigError('--nats-user and --nats-password go together');
  const authenticator = o.credsFile !== undefined
    ? nats.credsAuthenticator(readSecretFile(o.credsFile, 'NATS credentials file'))
    : o.nkeyFile !== undefined
      ? nats.nkeyAuthenticator(new TextEncoder().encode(new TextDecoder().decode(readSecretFile(o.nkeyFile, 'nkey seed file')).trim()))
      : undefined;
  const tls = o.tlsCa !== undefined || o.tlsCert !== undefined || o.tlsKey !== undefined || servers.some((s) => s.startsWith('tls:'))
    ? { ...(o.tlsCa ? { caFile: o.tlsCa } : {}), ...(o.tlsCert ? { certFile: o.tlsCert } : {}), ...(o.tlsKey ? { keyFile: o.tlsKey } : {}) }
    : undefined;
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new BusConfigError('--nats-tls-cert and --nats-tls-key go together');
  return {
    servers: servers.map((s) => s.replace(/^tls:/, 'nats:')),
    ...(o.name ? { name: o.name } : {}),
    ...(o.user !== undefined ? { user: o.user, pass: password } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(authenticator ? { authenticator } : {}),
    ...(tls ? { tls } : {}),
    // Keep trying for ever: an agent that loses the bus keeps its session and reconnects.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
  };
}

export async function connectBus(o: BusOptions): Promise<NatsConnection> {
  const nats = await import('@nats-io/transport-node');
  const opts = await busConnectionOptions(o);
  try {
    return await nats.connect(opts);
  } catch (err) {
    throw new BusConfigError(`cannot connect to NATS at ${o.url}: ${(err as Error).message}`);
  }
}

/**
 * The stream's retention: the oldest messages are discarded past either limit, whoever has read
 * them. This bounds the server's store however slow (or absent) the hub is; what a slow hub did
 * not read in time is gone, and the hub counts it (missing batch sequence numbers, `gaps`).
 */
export interface RetentionOptions {
  /** Longest a message is kept (default 1 h). */
  readonly maxAgeMs?: number;
  /** Most bytes the stream keeps (default 1 GiB). */
  readonly maxBytes?: number;
}

export const DEFAULT_RETENTION = { maxAgeMs: 3_600_000, maxBytes: 1024 * 1024 * 1024 } as const;

/**
 * The stream every node publishes into; made by whoever connects first. Limits given explicitly
 * (--retention-mb/--retention-age) are applied to a stream that exists already; without them an
 * existing stream is left as it is.
 */
export async function ensureStream(nc: NatsConnection, opts: RetentionOptions = {}): Promise<void> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const { STREAM, STREAM_SUBJECTS } = await import('../../shared/cluster/subjects.js');
  const jsm = await jetstreamManager(nc);
  const limits = {
    max_age: (opts.maxAgeMs ?? DEFAULT_RETENTION.maxAgeMs) * 1_000_000,
    max_bytes: opts.maxBytes ?? DEFAULT_RETENTION.maxBytes,
  };
  const existing = await jsm.streams.info(STREAM).catch(() => null);
  if (existing) {
    const c = existing.config;
    // A stream made by an older hoptrace lacks newer subjects (depth): added, the rest kept.
    const missing = STREAM_SUBJECTS.filter((s) => !(c.subjects ?? []).includes(s));
    const wanted = {
      ...(missing.length > 0 ? { subjects: [...(c.subjects ?? []), ...missing] } : {}),
      ...(opts.maxAgeMs !== undefined && c.max_age !== limits.max_age ? { max_age: limits.max_age } : {}),
      ...(opts.maxBytes !== undefined && c.max_bytes !== limits.max_bytes ? { max_bytes: limits.max_bytes } : {}),
    };
    if (Object.keys(wanted).length > 0) await jsm.streams.update(STREAM, wanted);
    return;
  }
  try {
    // Retention: what a hub that was away (or a later `record --hub --since`) can still read.
    await jsm.streams.add({ name: STREAM, subjects: [...STREAM_SUBJECTS], ...limits });
  } catch (err) {
    // Another process made it in between: fine.
    try { await jsm.streams.info(STREAM); } catch { throw err; }
  }
}
