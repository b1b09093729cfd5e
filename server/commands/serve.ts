/**
 * `hoptrace serve`: runs the service (REST API, live stream, dashboard) until interrupted; with
 * `--lab demo`, also the demo lab and its traffic, torn down on the way out. However it ends
 * (Ctrl-C, SIGTERM, a crash), sessions are stopped and bpftrace exits with it.
 */
import { labDown, labExists, labFor, labNets, labUp, type Lab } from '../lab/lab.js';
import { startDemoTraffic, type DemoTraffic } from '../lab/demo-traffic.js';
import { isLoopbackHost } from '../service/access.js';
import { ServiceConfigError, startService, type RunningService } from '../service/index.js';
import { DEFAULT_MAX_UPLOAD_BYTES } from '../service/recordings-routes.js';
import { defaultDataDir } from '../recording/library.js';
import { parseOptions, reportFatal, UsageError, FILTER, SAMPLE } from './common.js';
import { BUS_HELP, BUS_OPTIONS, RETENTION_HELP, RETENTION_OPTIONS, busOptionsFrom, retentionFrom } from '../hub/cli-options.js';
import { BusConfigError, parseBusUrl } from '../hub/connect.js';
import type { Hub } from '../hub/hub.js';
import type { HubRecordings } from '../hub/hub-recording.js';
import type { ServiceOptions } from '../service/index.js';
import { resolve } from 'node:path';

export const summary = 'run the service: REST API, live hop stream and dashboard on one port';

const HELP = `usage: hoptrace serve [--host H] [--port P] [--token T] [--lab demo] [--data-dir DIR] [--max-upload-mb N]

  --host H          address to listen on (default 127.0.0.1); anything but loopback needs --token
  --port P          port (default 7070; 0 picks a free one and prints it)
  --token T         require Authorization: Bearer T on /api and on the socket's handshake (or ?token=T);
                    HOPTRACE_TOKEN in the environment does the same without showing T in ps
  --lab demo        build the demo lab (namespaces htdemo-*), send its traffic every second,
                    trace it live in a session the service keeps while it runs (the printed
                    dashboard address opens it), and remove the lab on exit (an existing lab is
                    used and left in place)
  --data-dir DIR    where recordings are kept (created if missing, mode 0700); default
                    /var/lib/hoptrace/recordings as root, else $XDG_DATA_HOME/hoptrace/recordings
                    (~/.local/share/hoptrace/recordings). Recording names never leave it.
  --max-upload-mb N largest recording upload accepted (default ${DEFAULT_MAX_UPLOAD_BYTES / 1024 / 1024})
  --allow-origin O  also accept browser requests from origin O (e.g. http://localhost:5173);
                    may be repeated

Many nodes (\`hoptrace agent\` on each, one NATS server with JetStream):
${BUS_HELP}
${RETENTION_HELP}
  --filter F        the cluster session's filter, asked of every agent (default: every packet)
  --sample N        follow 1 in N flows on every node
  --durable NAME    the hub's durable consumer (default hoptrace-hub): a hub restarted with the
                    same name resumes where it stopped
  With --hub: GET /api/cluster (nodes, links, clock offsets), /api/cluster/topology and /api/cluster/packets (packets
  stitched across nodes, \`node\` on every hop); POST /api/sessions starts a session (filter, sample, notes,
  netfilter; \`nodes\` to pick some) on the agents, each node's answer in its \`nodes\`. Without --hub nothing of this runs.

The service runs as root and drives kernel probes: it accepts browser requests only from its
own origin, and binds to loopback unless a token is set.`;

/**
 * What `--lab demo` traces: the lab's pod, external and IPv6 networks (every address of the lab,
 * which HOPTRACE_LAB_NET moves; made from the lab's own addresses, never user input), so the demo
 * shows the lab's packets and not the rest of the host.
 */
export function demoFilter(lab: Lab): string {
  const nets = labNets(lab);
  return `net ${nets.pods} or net ${nets.ext} or net ${nets.podsV6}`;
}

/** After a clean shutdown the process should end by itself; if a stray handle keeps it up this long, it is ended. */
const EXIT_GRACE_MS = 3000;

interface Running {
  service: RunningService | undefined;
  hub: Hub | undefined;
  hubRecordings: HubRecordings | undefined;
  traffic: DemoTraffic | undefined;
  lab: Lab | undefined;
  ownLab: boolean;
}

async function shutdown(r: Running): Promise<void> {
  await r.traffic?.stop().catch(() => undefined);
  // Hub sessions' recordings end with the reason before the sessions do.
  r.hubRecordings?.close();
  await r.service?.close();
  await r.hub?.stop();
  if (r.lab && r.ownLab) await labDown(r.lab);
}

const OPTIONS = {
  host: { kind: 'string' }, port: { kind: 'number', integer: true, min: 0 }, token: { kind: 'string' }, lab: { kind: 'string' },
  'data-dir': { kind: 'string' }, 'max-upload-mb': { kind: 'number', min: 0.001 }, 'allow-origin': { kind: 'strings' },
  ...BUS_OPTIONS, ...RETENTION_OPTIONS, filter: FILTER, sample: SAMPLE, durable: { kind: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const r: Running = { service: undefined, hub: undefined, hubRecordings: undefined, traffic: undefined, lab: undefined, ownLab: false };
  try {
    const { values, positionals, help } = parseOptions(argv, OPTIONS);
    if (help) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const host = values.host ?? '127.0.0.1';
    const port = values.port ?? 7070;
    if (port > 65535) throw new UsageError(`--port takes a port number (0-65535), got ${port}`);
    const token = values.token ?? (process.env.HOPTRACE_TOKEN || undefined);
    if (token !== undefined && !/^[\x21-\x7e]{8,256}$/.test(token)) {
      throw new UsageError('--token must be 8 to 256 printable characters without spaces');
    }
    if (!isLoopbackHost(host) && !token) {
      throw new UsageError(`refusing to listen on ${host} without --token: anyone who can reach it could drive kernel probes as root. Pass --token T (or HOPTRACE_TOKEN), or keep the default 127.0.0.1.`);
    }
    for (const o of values['allow-origin']) {
      if (!/^https?:\/\/[^/\s]+$/.test(o)) throw new UsageError(`--allow-origin takes an origin like http://localhost:5173, got '${o}'`);
    }
    if (values.lab !== undefined && values.lab !== 'demo') throw new UsageError(`--lab takes 'demo', got '${values.lab}'`);

    if (values.lab === 'demo') {
      if (process.getuid?.() !== 0) throw new UsageError('--lab demo creates network namespaces: run it as root (sudo).');
      // HOPTRACE_LAB_PREFIX lets tests (and a second demo) use their own namespaces.
      r.lab = labFor(process.env.HOPTRACE_LAB_PREFIX || 'htdemo');
      if (await labExists(r.lab)) {
        process.stdout.write(`demo lab: using the existing lab (${Object.values(r.lab.ns).join(', ')}); it stays when the service stops\n`);
      } else {
        r.ownLab = true;
        await labUp(r.lab);
        process.stdout.write(`demo lab: up (${Object.values(r.lab.ns).join(', ')})\n`);
      }
    }

    const maxUploadMb = values['max-upload-mb'];
    const dataDir = values['data-dir'] || defaultDataDir();

    if (!values.hub && (values.filter !== undefined || values.sample !== undefined || values.durable !== undefined || values['retention-mb'] !== undefined || values['retention-age'] !== undefined)) {
      throw new UsageError('--filter, --sample, --durable and --retention-* are options of --hub (the cluster session)');
    }
    let hubParts: Partial<ServiceOptions> = {};
    if (values.hub) {
      // Loaded only with --hub: `serve` alone never touches NATS.
      const { Hub } = await import('../hub/hub.js');
      const { HubRecordings } = await import('../hub/hub-recording.js');
      const { clusterStatsSource } = await import('../hub/hub-stats.js');
      const { hubRouter, clusterStream } = await import('../service/cluster-routes.js');
      let retention;
      try {
        parseBusUrl(values.hub);
        retention = retentionFrom(values);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (values.durable !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(values.durable)) throw new UsageError('--durable must be 1-64 letters, digits, - or _');
      r.hub = new Hub({
        bus: busOptionsFrom(values, values.hub), retention,
        filter: values.filter ?? '',
        ...(values.sample !== undefined ? { sample: values.sample } : {}),
        ...(values.durable !== undefined ? { durable: values.durable } : {}),
      });
      try {
        await r.hub.start();
      } catch (err) {
        if (err instanceof BusConfigError) throw new UsageError(err.message);
        throw err;
      }
      const hub = r.hub;
      r.hubRecordings = new HubRecordings({ dataDir: resolve(dataDir), hub, log: (l) => process.stderr.write(`hoptrace serve: ${l}\n`) });
      hubParts = {
        extraApi: hubRouter(hub, { recordings: r.hubRecordings }), extraIo: clusterStream(hub), hub: true,
        hubHealth: () => hub.health(), statsSource: clusterStatsSource(hub), externalRecordings: r.hubRecordings,
      };
    }

    r.service = await startService({
      host, port, token, dataDir, allowOrigins: values['allow-origin'],
      // Tests serve a dashboard built from the tree into a folder of their own, never web/dist.
      ...(process.env.HOPTRACE_WEB_DIST ? { webDist: process.env.HOPTRACE_WEB_DIST } : {}),
      ...hubParts,
      ...(maxUploadMb !== undefined ? { maxUploadBytes: Math.floor(maxUploadMb * 1024 * 1024) } : {}),
    });
    const s = r.service;
    const caps = s.capabilities;
    // The demo lab is traced from the start (not only once a dashboard opens), in a session the
    // service keeps: scripts can read its /packets, and the dashboard address below opens it.
    let demoSession: string | null = null;
    const demo = r.lab ? demoFilter(r.lab) : '';
    if (r.lab && caps.canTrace) {
      try {
        demoSession = (await s.registry.create(demo, undefined, 1, { pinned: true })).id;
      } catch (err) {
        process.stderr.write(`hoptrace serve: could not start the live trace of the demo lab: ${(err as Error).message.split('\n')[0]}\n`);
      }
    }
    process.stdout.write(`hoptrace service listening on ${s.url}${host === '0.0.0.0' || host === '::' ? ' (all addresses)' : ''}\n`);
    process.stdout.write(`  dashboard: ${s.url}${demoSession ? `?session=${demoSession}` : ''}${token ? '#token=<your token>' : ''}\n`);
    if (demoSession) process.stdout.write(`  demo lab:  traced live in session ${demoSession} ('${demo}'); ${s.url}api/sessions/${demoSession}/packets\n`);
    process.stdout.write(`  API:       ${s.url}api/health${token ? '  (Authorization: Bearer <token>)' : ''}\n`);
    process.stdout.write(`  recordings: ${dataDir}\n`);
    if (r.hub) process.stdout.write(`  hub:       ${values.hub}, cluster session '${r.hub.filterText}'${r.hub.clusterSessionWaiting !== null ? ' (waits for a node that has its workload)' : ''}; ${s.url}api/cluster, ${s.url}api/cluster/packets\n`);
    const kinds = Object.entries(caps.probes).map(([k, v]) => `${k} ${v.available ? 'yes' : 'no'}`).join(', ');
    process.stdout.write(`  probes:    ${kinds}; bpftrace ${caps.bpftrace.version ?? 'missing'} (${caps.bpftrace.tier ?? 'classic'} tier)\n`);
    for (const w of caps.bpftrace.warnings ?? []) process.stderr.write(`hoptrace: ${w}\n`);
    for (const p of caps.problems) process.stdout.write(`  cannot trace: ${p}\n`);

    if (r.lab) {
      r.traffic = startDemoTraffic(r.lab, { onError: (err) => process.stderr.write(`hoptrace serve: demo traffic: ${(err as Error).message}\n`) });
      process.stdout.write('  demo traffic: pod1→pod2, pod1→ext (SNAT), ext→node:8080 (DNAT), a FORWARD drop and IPv6, every second\n');
    }
    process.stdout.write('Press Ctrl-C to stop.\n');

    return await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (code: number, why: string): void => {
        if (stopping) {
          // A second signal while stopping: leave now; bpftrace follows us (pdeathsig).
          process.stderr.write('hoptrace serve: stopping immediately\n');
          process.exit(code);
        }
        stopping = true;
        process.stderr.write(`hoptrace serve: ${why}, stopping (sessions, bpftrace${r.ownLab ? ', demo lab' : ''})\n`);
        void shutdown(r).finally(() => {
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          process.off('uncaughtException', onCrash);
          process.off('unhandledRejection', onCrash);
          // Whatever crashed may have left a timer or socket open: sessions and bpftrace are
          // gone by now, so a process still up after a moment is ended rather than left serving
          // nothing. (Unref'd: it never keeps a clean exit waiting.)
          setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
          resolve(code);
        });
      };
      const onInt = (): void => stop(0, 'interrupted');
      const onTerm = (): void => stop(0, 'terminated');
      const onCrash = (err: unknown): void => {
        process.stderr.write(`hoptrace serve: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        stop(1, 'crashed');
      };
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      process.on('uncaughtException', onCrash);
      process.on('unhandledRejection', onCrash);
    });
  } catch (err) {
    await shutdown(r).catch(() => undefined);
    if (err instanceof ServiceConfigError) return reportFatal(new UsageError(err.message));
    return reportFatal(err);
  }
}
