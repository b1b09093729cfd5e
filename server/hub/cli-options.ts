/** The NATS options `agent` and `serve --hub` share: the same names, bounds and help text. */
import type { BusOptions, RetentionOptions } from './connect.js';

export const BUS_OPTIONS = {
  hub: { kind: 'string' },
  'nats-user': { kind: 'string' }, 'nats-password': { kind: 'string' }, 'nats-token': { kind: 'string' },
  'nats-creds': { kind: 'string' }, 'nats-nkey': { kind: 'string' },
  'nats-tls-ca': { kind: 'string' }, 'nats-tls-cert': { kind: 'string' }, 'nats-tls-key': { kind: 'string' },
} as const;

export const BUS_HELP = `  --hub URL           the NATS server (JetStream on): nats://HOST:4222 (tls://HOST:PORT for TLS)
  --nats-user U       with --nats-password P (or HOPTRACE_NATS_PASSWORD): user/password login
  --nats-token T      token login (or HOPTRACE_NATS_TOKEN)
  --nats-creds FILE   a .creds file (JWT + nkey seed, as nsc writes it)
  --nats-nkey FILE    a file holding an nkey seed (nkey login)
  --nats-tls-ca FILE  CA to check the server's certificate against
  --nats-tls-cert FILE, --nats-tls-key FILE   client certificate and key (mutual TLS)`;

type BusValues = { readonly [K in keyof typeof BUS_OPTIONS]: string | undefined };

export function busOptionsFrom(v: BusValues, url: string): BusOptions {
  return {
    url,
    ...(v['nats-user'] !== undefined ? { user: v['nats-user'] } : {}),
    ...(v['nats-password'] !== undefined ? { password: v['nats-password'] } : {}),
    ...(v['nats-token'] !== undefined ? { token: v['nats-token'] } : {}),
    ...(v['nats-creds'] !== undefined ? { credsFile: v['nats-creds'] } : {}),
    ...(v['nats-nkey'] !== undefined ? { nkeyFile: v['nats-nkey'] } : {}),
    ...(v['nats-tls-ca'] !== undefined ? { tlsCa: v['nats-tls-ca'] } : {}),
    ...(v['nats-tls-cert'] !== undefined ? { tlsCert: v['nats-tls-cert'] } : {}),
    ...(v['nats-tls-key'] !== undefined ? { tlsKey: v['nats-tls-key'] } : {}),
  };
}

/** The stream's retention, on `agent` and `serve --hub` (whoever makes the stream; given, it is applied). */
export const RETENTION_OPTIONS = {
  'retention-mb': { kind: 'number', min: 0.01, max: 1_048_576 },
  'retention-age': { kind: 'string' },
} as const;

export const RETENTION_HELP = `  --retention-mb N    the stream keeps at most N MiB (default 1024); older messages are discarded
  --retention-age D   ... and nothing older than D (90s, 10m, 1h; default 1h). Given, these are
                      applied to the stream even if it exists; a hub slower than the retention
                      loses what was discarded, and counts it (batches missed, per node)`;

export function retentionFrom(v: { readonly 'retention-mb'?: number | undefined; readonly 'retention-age'?: string | undefined }): RetentionOptions {
  return {
    ...(v['retention-mb'] !== undefined ? { maxBytes: Math.round(v['retention-mb'] * 1024 * 1024) } : {}),
    ...(v['retention-age'] !== undefined ? { maxAgeMs: parseDuration(v['retention-age'], '--retention-age') } : {}),
  };
}

/** "10m", "90s", "1h30m", "2d", "500ms": ms; throws a sentence naming `option` for anything else. */
export function parseDuration(text: string, option: string): number {
  const t = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let ms = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    ms += Number(m[1]) * unit[m[2]!]!;
    end = re.lastIndex;
  }
  if (t === '' || end !== t.length || !(ms > 0) || ms > 366 * 86_400_000) {
    throw new Error(`${option} takes a duration such as 90s, 10m, 1h30m or 2d, got '${text.slice(0, 60)}'`);
  }
  return Math.round(ms);
}
