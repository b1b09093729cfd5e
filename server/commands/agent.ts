/**
 * `hoptrace agent --hub nats://HOST:PORT --node NAME [--namespaces SELECTOR]`: this node's side of
 * a cluster (server/hub/agent.ts). Runs until interrupted; bpftrace ends with it.
 */
import { Agent, checkSelector } from '../hub/agent.js';
import { BUS_HELP, BUS_OPTIONS, RETENTION_HELP, RETENTION_OPTIONS, busOptionsFrom, retentionFrom } from '../hub/cli-options.js';
import { OUTBOX_DEFAULT_BATCHES, OUTBOX_DEFAULT_BYTES } from '../../shared/cluster/outbox.js';
import { BusConfigError, parseBusUrl } from '../hub/connect.js';
import { checkNodeName } from '../../shared/cluster/subjects.js';
import { preflight } from '../preflight.js';
import { CannotTraceError } from '../trace-session.js';
import { runCommand, UsageError } from './common.js';

export const summary = 'run on a node of a cluster: trace what a hub asks for, publish it to NATS JetStream';

const HELP = `usage: hoptrace agent --hub nats://HOST:PORT --node NAME [--namespaces SELECTOR] [NATS options]

  --node NAME         this node's name in the cluster (letters, digits, - and _; a NATS subject token)
  --namespaces SEL    only these namespaces: comma-separated names, 'prefix*' for every name with
                      that prefix (e.g. 'cni-*'); applied in the kernel. Default: every namespace
  --topology-every S  publish this node's topology model every S seconds (1-3600, default 30): how
                      soon the hub's expected paths see a changed rule or route
  --buffer-mb N       hop batches waiting for the bus (NATS away, restarting) are kept up to N MiB
                      (default ${OUTBOX_DEFAULT_BYTES / 1048576}) and --buffer-batches M batches (default ${OUTBOX_DEFAULT_BATCHES}), then sent in
                      order; past either, the oldest are dropped and counted (the hub shows them)
${RETENTION_HELP}
${BUS_HELP}

The agent traces nothing by itself: a hub (\`hoptrace serve --hub URL\`) asks it for sessions over
NATS, and it publishes their hop batches to hoptrace.<node>.hops and its topology to
hoptrace.<node>.topology. Needs root, like \`trace\`.`;

const OPTIONS = {
  ...BUS_OPTIONS, ...RETENTION_OPTIONS, node: { kind: 'string' }, namespaces: { kind: 'string' }, 'topology-every': { kind: 'string' },
  'buffer-mb': { kind: 'number', min: 0.01, max: 65_536 }, 'buffer-batches': { kind: 'number', integer: true, min: 1, max: 10_000_000 },
} as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (v) => {
    if (!v.hub) throw new UsageError('agent needs --hub nats://HOST:PORT');
    if (!v.node) throw new UsageError('agent needs --node NAME');
    let retention;
    try {
      checkNodeName(v.node);
      if (v.namespaces) checkSelector(v.namespaces);
      parseBusUrl(v.hub);
      retention = retentionFrom(v);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const every = v['topology-every'];
    const topologyMs = every === undefined ? undefined : Number(every) * 1000;
    if (topologyMs !== undefined && (!Number.isFinite(topologyMs) || topologyMs < 1000 || topologyMs > 3_600_000)) {
      throw new UsageError(`--topology-every must be 1-3600 seconds, got '${String(every).slice(0, 40)}'`);
    }
    const pre = await preflight();
    if (!pre.ok) throw new CannotTraceError(pre.problems);
    const agent = new Agent({
      bus: busOptionsFrom(v, v.hub), node: v.node, ...(v.namespaces ? { namespaces: v.namespaces } : {}), retention,
      capability: { canTrace: pre.ok, problems: pre.problems, bpftrace: pre.bpftraceVersion },
      ...(topologyMs !== undefined ? { topologyMs } : {}),
      buffer: {
        ...(v['buffer-mb'] !== undefined ? { maxBytes: Math.round(v['buffer-mb'] * 1024 * 1024) } : {}),
        ...(v['buffer-batches'] !== undefined ? { maxBatches: v['buffer-batches'] } : {}),
      },
    });
    try {
      await agent.start();
    } catch (err) {
      await agent.stop().catch(() => undefined);
      if (err instanceof BusConfigError) throw new UsageError(err.message);
      throw err;
    }
    process.stdout.write(`hoptrace agent ${v.node}: connected to ${v.hub}${v.namespaces ? `, namespaces '${v.namespaces}'` : ''}; waiting for a hub's sessions\n`);
    return new Promise<number>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void agent.stop().finally(() => resolve(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}
