/**
 * `startService`: the hoptrace service on one port — express for /api and the dashboard,
 * socket.io for the live stream — wired together with its safety checks (helmet headers, own
 * origin only, bearer token, loopback unless a token is set). `close()` ends every session and
 * waits until every bpftrace process has exited.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import express from 'express';
import helmet from 'helmet';
import { Server } from 'socket.io';
import type { Capabilities, HubHealth } from '../../shared/api-types.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Topology } from '../../shared/topology/model.js';
import { watchedModel, fixedModel } from './model.js';
import { detectCapabilities } from '../capabilities.js';
import { AccessPolicy, isLoopbackHost } from './access.js';
import { apiRouter } from './api.js';
import { ApiError, errorHandler, sendError } from './errors.js';
import { DEFAULT_BACKOFF, traceSessionSource, type BackoffOptions, type SourceFactory } from './feed.js';
import { DEFAULT_BATCHING, type BatchingOptions } from './batcher.js';
import { DEFAULT_CHANNEL_LIMITS, type ChannelLimits } from './client-channel.js';
import { loadNamespaceNames, type LiveNamespaceNamer } from '../topology/namespace-names.js';
import { SessionRegistry } from './sessions.js';
import { cachedNoteSupport, nftNetfilterSource, type NetfilterSourceFactory } from './depth.js';
import type { NoteSupport } from '../capabilities.js';
import { attachStream, type ServiceIo } from './stream.js';
import { webRouter } from './static-web.js';
import { RecordingManager, type ExternalRecordings } from './recording-manager.js';
import { DEFAULT_MAX_UPLOAD_BYTES, recordingsRouter } from './recordings-routes.js';
import { createStatsService } from './stats.js';
import { defaultStatsSource, type StatsHub, type StatsSourceFactory } from '../stats/hub.js';

export interface ServiceOptions {
  /** Default 127.0.0.1. Anything but loopback requires `token`. */
  readonly host?: string;
  /** Default 7070; 0 picks a free port (see RunningService.port). */
  readonly port?: number;
  readonly token?: string | undefined;
  /** Origins allowed besides the service's own (e.g. a dev server). */
  readonly allowOrigins?: readonly string[];
  /** Where recordings live (created, mode 0700). Without it the recording routes answer 503. */
  readonly dataDir?: string | undefined;
  /** Largest recording upload accepted (POST /api/recordings). Default 256 MiB. */
  readonly maxUploadBytes?: number;
  /** How long an unwatched, unrecorded session lives on. Default 60 s. */
  readonly graceMs?: number;
  /** Most bpftrace processes at once. Default 8. */
  readonly maxFeeds?: number;
  /** Most sessions at once. Default 64. */
  readonly maxSessions?: number;
  readonly batching?: Partial<BatchingOptions>;
  readonly limits?: Partial<ChannelLimits>;
  readonly backoff?: Partial<BackoffOptions>;
  /** Default 1000 ms. */
  readonly statsIntervalMs?: number;
  /** Packets kept per session for the packets endpoint. Default 1000. */
  readonly packetsKept?: number;
  /** Where hop events come from. Default: a TraceSession (bpftrace). */
  readonly source?: SourceFactory;
  /** Where netfilter rule-trace events of `netfilter: true` sessions come from. Default: nft (server/netfilter); null: refused. */
  readonly netfilterSource?: NetfilterSourceFactory | null;
  /** What the kernel supports of the notes tier. Default: detected on the first notes session. */
  readonly detectNotes?: () => Promise<NoteSupport>;
  /** The dashboard build to serve; null for none. Default: web/dist of this checkout. */
  readonly webDist?: string | null;
  /** Default: detectCapabilities() once at start-up. */
  readonly capabilities?: Capabilities;
  /** Default: the host's (server/topology/namespace-names.ts). null: do not read this host (synthetic sources in tests): no names, no live model. */
  readonly namespaceNames?: LiveNamespaceNamer | null;
  /** Default: the live model (server/topology/watch.ts); a fixed one for tests. */
  readonly topology?: () => Promise<Topology>;
  readonly log?: (line: string) => void;
  /** Where stats sessions come from. Default: a StatsSession (bpftrace) each. */
  readonly statsSource?: StatsSourceFactory;
  /** More routes under /api, behind the same token and origin checks (`serve --hub`: server/service/cluster-routes.ts). */
  readonly extraApi?: express.Router;
  /** `serve --hub`: /api/health says `hub: true` (the dashboard then shows the cluster). */
  readonly hub?: boolean;
  /** `serve --hub`: the hub's sessions and nodes for /api/health; stats sessions then need no local bpftrace (statsSource runs them on the agents). */
  readonly hubHealth?: () => HubHealth;
  /** Recordings written into the library by another part (`serve --hub`'s sessions): listed, guarded. */
  readonly externalRecordings?: ExternalRecordings;
  /** More socket.io namespaces, given the service's token check to put in front of them (`serve --hub`). */
  readonly extraIo?: (io: Server, auth: SocketAuth) => { close(): void };
}

/** The token check every socket.io namespace runs on connection. */
export type SocketAuth = (socket: { handshake: { auth: unknown; url: string; headers: { authorization?: string | undefined } } }, next: (err?: Error) => void) => void;

export interface RunningService {
  /** Base URL, e.g. http://127.0.0.1:7070/ */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly registry: SessionRegistry;
  readonly recordings: RecordingManager;
  readonly capabilities: Capabilities;
  /** Stats sessions (/api/stats, /metrics, the /stats namespace): server/stats/. */
  readonly stats: StatsHub;
  /** Ends all sessions, waits for every bpftrace to exit, closes the port. Idempotent. */
  close(): Promise<void>;
}

/** The service was asked to start in a way that is not safe or not possible. */
export class ServiceConfigError extends Error {
  override name = 'ServiceConfigError';
}

function defaultWebDist(): string | null {
  // From source (server/service/) and from the build (dist/server/service/) alike.
  for (const rel of ['../../web/dist', '../../../web/dist']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}/index.html`)) return dir;
  }
  return null;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Counts requests not yet answered, so that close() can let them finish. */
function trackRequests(server: HttpServer): { settled(timeoutMs: number): Promise<void> } {
  let open = 0;
  let idle: (() => void) | null = null;
  server.on('request', (_req, res) => {
    open++;
    res.once('close', () => {
      open--;
      if (open === 0) idle?.();
    });
  });
  return {
    settled: (timeoutMs) => {
      if (open === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}

export async function startService(options: ServiceOptions = {}): Promise<RunningService> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token || undefined;
  if (!isLoopbackHost(host) && !token) {
    throw new ServiceConfigError(`refusing to listen on ${host} without a token: anyone who can reach it could drive kernel probes as root. Pass --token, or bind to 127.0.0.1.`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`hoptrace serve: ${line}\n`));
  if (options.dataDir) {
    let mode: number;
    try {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      const st = statSync(options.dataDir);
      if (!st.isDirectory()) throw new Error('it is not a folder');
      mode = st.mode & 0o7777;
    } catch (err) {
      throw new ServiceConfigError(`cannot keep recordings in ${options.dataDir}: ${(err as Error).message} (pass --data-dir DIR)`);
    }
    // The service runs as root and links, reads and deletes files there by name: a folder others
    // can write to (a 1777 /tmp-like one) lets them plant files or links under names it will use.
    if ((mode & 0o022) !== 0) {
      throw new ServiceConfigError(`the data folder ${options.dataDir} is writable by other users (mode ${mode.toString(8)}): another user could plant files or links there. Run chmod go-w ${options.dataDir}, or pass another --data-dir`);
    }
  }
  const capabilities = options.capabilities ?? (await detectCapabilities());
  const names = options.namespaceNames === undefined ? await loadNamespaceNames() : options.namespaceNames;
  // The service's own connections (its port, in its namespace) are left out of every session: with
  // a broad filter, streaming their packets would make more packets to stream.
  const selfNetns = statSync('/proc/self/ns/net').ino;
  let port = 0;
  const ignore = (ev: HopEvent): boolean => ev.netns === selfNetns && (ev.sport === port || ev.dport === port);
  // namespaceNames: null means "do not read this host" (synthetic sources in tests): no live model either.
  const model = options.topology
    ? fixedModel(options.topology, log)
    : options.namespaceNames === null
      ? fixedModel(() => Promise.reject(new ApiError(503, 'unavailable', 'the topology model is off in this service')))
      : watchedModel(log);
  const registry: SessionRegistry = new SessionRegistry({
    // The loopback is traced (a localhost port forward is a common question); only the
    // service's own connections are left out, in the kernel, by its listening port.
    source: options.source ?? ((filter, depth) => traceSessionSource(filter, { ...depth, ...(port > 0 ? { selfPorts: [port] } : {}) })),
    ...(options.netfilterSource === null ? {} : { netfilter: options.netfilterSource ?? nftNetfilterSource }),
    detectNotes: options.detectNotes ?? cachedNoteSupport(),
    graceMs: options.graceMs ?? 60_000,
    maxFeeds: options.maxFeeds ?? 8,
    maxSessions: options.maxSessions ?? 64,
    batching: { ...DEFAULT_BATCHING, ...options.batching },
    backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    packetsKept: options.packetsKept ?? 1000,
    nsName: names ? (netns) => names.name(netns) : () => null,
    topology: model.topology,
    isLocal: model.isLocal,
    noteHop: model.noteHop,
    ignore,
    // The manager listens to the registry, the registry describes the manager's recordings.
    recordingStatus: (s) => manager.status(s.id),
    log,
  });
  const manager: RecordingManager = new RecordingManager({
    dataDir: options.dataDir ? resolve(options.dataDir) : null,
    registry,
    names,
    topology: model.topology,
    followTopology: !options.topology && options.namespaceNames !== null,
    log,
    ...(options.externalRecordings ? { external: options.externalRecordings } : {}),
  });

  const httpServer: HttpServer = createServer();
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 7070, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  }).catch(async (err: unknown) => {
    await manager.close();
    await registry.close();
    model.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new ServiceConfigError(`port ${options.port ?? 7070} on ${host} is already in use`);
    if (e.code === 'EADDRNOTAVAIL') throw new ServiceConfigError(`${host} is not an address of this machine`);
    throw err;
  });
  port = (httpServer.address() as AddressInfo).port;
  const policy = new AccessPolicy({ host, port, token, allowOrigins: options.allowOrigins });
  const stats = createStatsService({
    // A hub's stats sessions run on its nodes' agents, which answer for themselves.
    canTrace: () => (options.hubHealth ? { ok: true, problems: [] } : { ok: capabilities.canTrace, problems: capabilities.problems }),
    checkToken: (authorization) => policy.checkToken(AccessPolicy.bearer(authorization)),
    log,
    // As for traces: the loopback counts, except the service's own connections (its port).
    source: options.statsSource ?? ((o) => defaultStatsSource({ ...o, selfPorts: [port] })),
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Served over plain http (often by IP): upgrading subresources to https would break it.
          upgradeInsecureRequests: null,
          connectSrc: ["'self'"],
          // Scripts only from this origin, and no eval: the page and the ingest worker decode
          // protobuf with pbjs static code (shared/wire-generated.js), never with reflection's
          // new Function() (test/shared/wire.test.ts runs the codecs with code generation off).
          scriptSrc: ["'self'"],
          workerSrc: ["'self'", 'blob:'],
        },
      },
      // HSTS means nothing over http and would pin a name to https if a proxy ever adds TLS.
      strictTransportSecurity: false,
    }),
  );
  app.use((req, res, next) => {
    const why = policy.checkOrigin(req.get('origin'), req.get('host'));
    if (why) sendError(res, new ApiError(403, 'forbidden-origin', why));
    else next();
  });
  app.use('/api', (req, res, next) => {
    if (policy.checkToken(AccessPolicy.bearer(req.get('authorization')))) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="hoptrace"');
    sendError(res, new ApiError(401, 'unauthorized', 'this service needs a token: send Authorization: Bearer <token>'));
  });
  // Prometheus scrapes /metrics (its own token check: scrapers send the same bearer token).
  app.get('/metrics', stats.metrics);
  // Before apiRouter: its last route answers 404 for anything it does not know.
  if (options.extraApi) app.use('/api', options.extraApi);
  app.use('/api', stats.router);
  app.use('/api', recordingsRouter({ manager, registry, maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES }));
  app.use('/api', apiRouter({ registry, capabilities, startedAt: Date.now(), topology: model.topology, annotate: model.annotate, ...(options.hub ? { hub: true } : {}), ...(options.hubHealth ? { hubHealth: options.hubHealth } : {}) }));
  app.use(webRouter(options.webDist === undefined ? defaultWebDist() : options.webDist));
  app.use((req, res) => sendError(res, new ApiError(404, 'not-found', `not found: ${req.method} ${req.path.slice(0, 100)}`)));
  app.use(errorHandler(log));
  const inFlight = trackRequests(httpServer);
  httpServer.on('request', app);

  const io: ServiceIo = new Server(httpServer, {
    serveClient: false,
    maxHttpBufferSize: 64 * 1024,
    // Binary batches gain little from compression and cost CPU per client.
    perMessageDeflate: false,
    httpCompression: false,
    // Runs on the engine.io handshake, before a sid or any buffer is allocated: a peer from
    // another origin, or without the token, costs nothing but this answer (403).
    allowRequest: (req, callback) => {
      const why = policy.checkOrigin(req.headers.origin, req.headers.host);
      if (why) callback(`forbidden-origin: ${why}`, false);
      else if (!policy.checkToken(AccessPolicy.handshakeToken(req))) callback('unauthorized: this service needs a token: send Authorization: Bearer <token> or ?token=<token> with the handshake', false);
      else callback(null, true);
    },
  });
  // Behind allowRequest, which has checked the handshake; namespaces (/, /stats) check again,
  // so that no namespace is ever reachable without the token whatever the engine did.
  const socketAuth: SocketAuth = (socket, next): void => {
    if (policy.checkToken(AccessPolicy.handshakeToken(socket.handshake))) {
      next();
      return;
    }
    const err = new Error('unauthorized') as Error & { data?: unknown };
    err.data = { code: 'unauthorized', message: 'this service needs a token: send Authorization: Bearer <token> or ?token=<token> with the handshake' };
    next(err);
  };
  io.use(socketAuth);
  // The stats stream is its own namespace (/stats), behind the same check.
  stats.attach(io, socketAuth);
  const extraIo = options.extraIo?.(io, socketAuth);
  const stream = attachStream(io, {
    registry,
    limits: { ...DEFAULT_CHANNEL_LIMITS, ...options.limits },
    statsIntervalMs: options.statsIntervalMs ?? 1000,
    names,
    onTopologyChange: model.onChange,
    log,
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      extraIo?.close();
      await stats.close();
      // Recordings first, so their files end with the shutdown as the reason; then the sessions,
      // while the stream still listens, so each subscriber is told its session `stopped`.
      await manager.close();
      await registry.close();
      stream.close();
      io.disconnectSockets(true);
      model.close();
      // Requests still running (a session that was starting) get their answer, briefly waited for.
      await inFlight.settled(1000);
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
    })();
    return closing;
  };

  return { url: `http://${urlHost(host)}:${port}/`, host, port, registry, recordings: manager, capabilities, stats: stats.hub, close };
}

export { detectCapabilities } from '../capabilities.js';
export type { SourceFactory, HopSource, SourceDepth } from './feed.js';
export type { NetfilterSource, NetfilterSourceFactory } from './depth.js';
