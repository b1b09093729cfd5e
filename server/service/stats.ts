/**
 * Stats as a part of the service, in one piece for server/service/index.ts to mount:
 *
 *   const stats = createStatsService({ canTrace, checkToken, log });
 *   app.get('/metrics', stats.metrics);        // after the origin check
 *   app.use('/api', stats.router);             // after the token check, before apiRouter's 404
 *   stats.attach(io, authMiddleware);          // socket.io namespace /stats, same token check
 *   await stats.close();                       // in close(): stops every stats bpftrace
 *
 * Routes and events are documented in shared/stats/api.ts.
 */
import type { RequestHandler, Router } from 'express';
import type { ExtendedError, Server, Socket } from 'socket.io';
import { StatsHub, type StatsSourceFactory } from '../stats/hub.js';
import { metricsHandler, statsRouter } from './stats-routes.js';
import { attachStatsStream, type StatsNamespace } from './stats-stream.js';

export interface StatsServiceOptions {
  /** Whether the host can trace, and the sentences naming the fix when not (capabilities). */
  readonly canTrace: () => { ok: boolean; problems: readonly string[] };
  /** The service's bearer-token check (true when no token is configured). */
  readonly checkToken: (authorization: string | undefined) => boolean;
  readonly log?: (line: string) => void;
  /** Replaces bpftrace (tests, synthetic services). */
  readonly source?: StatsSourceFactory;
  /** Seconds per /metrics interval (default 5). */
  readonly metricsIntervalS?: number;
  readonly maxSessions?: number;
}

export interface StatsService {
  readonly hub: StatsHub;
  readonly router: Router;
  readonly metrics: RequestHandler;
  /** `auth` is the main namespace's middleware: it only reads the handshake. */
  attach(io: Pick<Server, 'of'>, auth: (socket: Pick<Socket, 'handshake'>, next: (err?: ExtendedError) => void) => void): void;
  close(): Promise<void>;
}

export function createStatsService(opts: StatsServiceOptions): StatsService {
  const hub = new StatsHub({
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.maxSessions ? { maxSessions: opts.maxSessions } : {}),
  });
  let stream: { close(): void } | null = null;
  return {
    hub,
    router: statsRouter({ hub, canTrace: opts.canTrace }),
    metrics: metricsHandler({ hub, canTrace: opts.canTrace, checkToken: opts.checkToken, intervalMs: (opts.metricsIntervalS ?? 5) * 1000 }),
    attach(io, auth) {
      const nsp = io.of('/stats');
      nsp.use(auth);
      stream = attachStatsStream(nsp as unknown as StatsNamespace, hub);
    },
    async close() {
      stream?.close();
      await hub.close();
    },
  };
}
