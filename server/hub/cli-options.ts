/** The NATS options `agent` and `serve --hub` share: the same names, bounds and help text. */
import type { BusOptions } from './connect.js';

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
