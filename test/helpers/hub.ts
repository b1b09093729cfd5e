/**
 * Processes of the many-node tests (issue 17): `hoptrace agent` and `hoptrace serve --hub` run
 * from source as users run them (test/helpers/cli.ts), optionally behind a wrapper (`unshare
 * --time --fork --monotonic 2` for a node whose clock is off), started once they print their
 * ready line and stopped by signal; and a poll with a deadline for what the hub makes
 * asynchronously. The one copy for hub-*, test/hub/* and the hub dashboard e2e; and the setup
 * the hub-* files share (useHubCluster): nats-server, a two-node lab, an agent per node, a hub.
 */
import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cli, randomPrefix, type CliProcess } from './cli.js';
import { startNatsServer, type NatsServer } from './nats.js';
import { clusterLabDown, clusterLabFor, clusterLabUp, type ClusterLab, type ClusterNode, type ClusterUnderlay } from './cluster-lab.js';
import type { NodeInfo } from '../../server/hub/hub.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';

export interface HubProcess {
  readonly child: CliProcess;
  /** Everything it printed so far (stdout and stderr). */
  out(): string;
  /** Behind a wrapper (unshare --fork) whose child is the CLI. */
  readonly wrapped: boolean;
}

export interface StartOptions {
  /** Argv prefix the CLI runs behind. */
  readonly wrap?: readonly string[];
  readonly env?: Record<string, string>;
  /** How long it may take to print `ready` (default 120 s: bpftrace and tsx are slow on a loaded machine). */
  readonly timeoutMs?: number;
}

/** Starts the CLI with `args`; resolves once its output (stdout or stderr) matches `ready`. */
export function startHubCli(args: string[], ready: RegExp, opts: StartOptions = {}): Promise<HubProcess> {
  const wrap = opts.wrap ?? [];
  const child = cli(args, { ...(opts.env ? { env: opts.env } : {}), wrap });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), opts.timeoutMs ?? 120_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve({ child, out: () => out, wrapped: wrap.length > 0 }); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited: ${out}`)); });
  });
}

/**
 * Sends `signal` (default SIGTERM) and waits for the exit. Behind `unshare --fork` (which waits
 * for its child and does not pass signals on) the CLI is told itself.
 */
export async function stopHubCli(p: HubProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  if (p.wrapped) {
    const kids = await execa('pgrep', ['-P', String(p.child.pid)], { reject: false });
    for (const pid of String(kids.stdout).split('\n').filter(Boolean)) process.kill(Number(pid), signal);
  }
  p.child.kill(signal);
  await p.child;
}

/**
 * Polls `get` every 250 ms until it gives a value; a `get` that throws (a server not answering
 * yet) counts as no value. Throws naming `what` (and the last error) after `ms`.
 */
export async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await get().catch((err: unknown) => { last = err; return undefined; });
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last: ${last instanceof Error ? last.message : String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface HubClusterOptions {
  /** Namespace prefix tag (a random suffix is added; HOPTRACE_TEST_PREFIX before it). */
  readonly tag: string;
  readonly underlay: ClusterUnderlay;
  /** Second octet of the lab's addresses (clusterBase(...)). */
  readonly base: number;
  /** Run once the lab is up, before the agents start (an nft rule, a stand-in binary). */
  readonly setup?: (c: HubCluster) => Promise<void>;
  /** Environment of a node's agent (absent: the test's own). */
  readonly agentEnv?: (node: ClusterNode) => Record<string, string> | undefined;
  /**
   * `serve --hub` arguments after the bus URL (--durable, --filter, …): the hub is started in
   * beforeAll and waited for until every node traces its session. Absent: no hub (the test starts one).
   */
  readonly hub?: readonly string[];
  /** How long beforeAll may take (default 240 s: bpftrace compiles slowly on a loaded machine). */
  readonly timeoutMs?: number;
}

/** A hub cluster brought up once for a describe block (fields set once beforeAll has run). */
export interface HubCluster {
  readonly nats: NatsServer;
  readonly lab: ClusterLab;
  /** A temp folder of the block's (the hub's data in `dir/data`), removed after. */
  readonly dir: string;
  /** The agents, node1 first (replaced by startAgents). */
  agents: HubProcess[];
  hub: HubProcess | undefined;
  /** The hub's base URL (`http://…/`). */
  url: string;
  /** Starts an agent per node (`extra` arguments after the usual), replacing `agents`. */
  startAgents(extra?: readonly string[]): Promise<void>;
  /** Starts `serve --hub` with `args` after the bus URL; sets `hub` and `url`. */
  startHub(args: readonly string[]): Promise<void>;
  /** Until every node traces the hub's cluster session (and is up). */
  allTracing(ms?: number): Promise<NodeInfo[]>;
  /** GET /api/cluster's nodes, and its stitched packets. */
  nodes(): Promise<NodeInfo[]>;
  packets(): Promise<ClusterPacket[]>;
}

/**
 * Registers beforeAll/afterAll in the calling describe block: a nats-server (JetStream, temp
 * store), the two-node cluster lab, an agent per node limited to its namespaces, optionally the
 * hub; on the way out every process is stopped (continued first, if a test stopped it), the lab
 * taken down, the server stopped and the temp folder removed.
 */
export function useHubCluster(o: HubClusterOptions): HubCluster {
  let nats: NatsServer | undefined;
  let lab: ClusterLab | undefined;
  let dir = '';
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`the hub cluster has no ${what}: use it inside a test, after beforeAll`);
    return v;
  };
  const c: HubCluster = {
    get nats() { return need(nats, 'nats-server'); },
    get lab() { return need(lab, 'lab'); },
    get dir() { return need(dir || undefined, 'folder'); },
    agents: [],
    hub: undefined,
    url: '',
    async startAgents(extra = []) {
      c.agents = [];
      for (const n of c.lab.nodes) {
        const env = o.agentEnv?.(n);
        c.agents.push(await startHubCli(['agent', '--hub', c.nats.url, '--node', `node${n.index}`, '--namespaces', n.selector, ...extra], /waiting for a hub/, env ? { env } : {}));
      }
    },
    async startHub(args) {
      c.hub = await startHubCli(['serve', '--port', '0', '--data-dir', join(c.dir, 'data'), '--hub', c.nats.url, ...args], /listening on (http:\S+)/);
      c.url = /listening on (http:\S+)/.exec(c.hub.out())![1]!;
    },
    allTracing: (ms = 120_000) => until('every node tracing', async () => {
      const ns = await c.nodes();
      return ns.length === c.lab.nodes.length && ns.every((n) => n.session?.ok && n.state === 'up') ? ns : undefined;
    }, ms),
    nodes: async () => ((await (await fetch(`${c.url}api/cluster`)).json()) as { nodes: NodeInfo[] }).nodes,
    packets: async () => (await (await fetch(`${c.url}api/cluster/packets`)).json()) as ClusterPacket[],
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `${o.tag}-hub-`));
    nats = await startNatsServer();
    lab = clusterLabFor(randomPrefix(o.tag).slice(0, 8), o.underlay, o.base);
    await clusterLabUp(lab);
    await o.setup?.(c);
    await c.startAgents();
    if (o.hub) {
      await c.startHub(o.hub);
      await c.allTracing();
    }
  }, o.timeoutMs ?? 240_000);

  afterAll(async () => {
    // A test may have left one stopped (SIGSTOP): it could not hear SIGTERM.
    for (const p of [c.hub, ...c.agents]) if (p?.child.pid && p.child.exitCode === null && p.child.signalCode === null) process.kill(p.child.pid, 'SIGCONT');
    await Promise.all(c.agents.map((a) => stopHubCli(a)));
    await stopHubCli(c.hub);
    if (lab) await clusterLabDown(lab);
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  return c;
}
