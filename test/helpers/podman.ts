/**
 * Real rootful podman (netavark) for tests: an image imported from busybox-static (no registry),
 * networks, containers and pods with unique names, and a cleanup that removes all of them, even
 * after a failure. Recipes from kernel-notes.md: crun refuses this machine's hybrid cgroups, so
 * runc with the cgroupfs manager and explicit ulimits.
 *
 *   const lab = await PodmanLab.create('rtweb', '10.213.7.0/24');
 *   const web = await lab.run('web', { publish: ['18080:80'], cmd: HTTPD });
 *   ...
 *   await lab.cleanup();
 */
import { execa } from 'execa';
import { statSync, existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, copyFileSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, afterAll } from 'vitest';
import { randomPrefix } from './cli.js';
import { hostAddress } from './traced.js';

/** Global options every podman call gets: runc + cgroupfs (crun fails here), netavark explicitly. */
export const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--network-backend', 'netavark'];
/** `podman run` options runc needs on this machine. */
export const RUN_LIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1024:1024'];

/** busybox httpd on port 80, in the foreground (serves an index page so wget gets a 200). */
export const HTTPD = ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www'];
export const SLEEP = ['sleep', '3600'];

/**
 * An HTTP GET from inside a container with busybox nc (busybox-static's wget segfaults in its
 * static resolver on Debian 12, even for address literals). Prints the response.
 */
export function httpGet(addr: string, port: number): string[] {
  return ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${addr} ${port}`];
}

/** Why podman tests cannot run here, or null when they can. */
export function podmanMissing(): string | null {
  for (const [bin, pkg] of [['/usr/bin/podman', 'podman'], ['/usr/sbin/runc', 'runc'], ['/bin/busybox', 'busybox-static'], ['/usr/lib/podman/netavark', 'netavark']] as const) {
    if (!existsSync(bin) && !(bin === '/usr/sbin/runc' && existsSync('/usr/bin/runc'))) return `${pkg} is not installed (npm run setup installs it)`;
  }
  if (process.getuid?.() !== 0) return 'needs root (rootful podman)';
  return null;
}

/**
 * A containers.conf of the tests' own (CONTAINERS_CONF), so the same limits reach containers
 * podman starts by itself (a pod's infra container takes no --ulimit) without changing the
 * host's configuration.
 */
let confPath: string | null = null;
function podmanEnv(): Record<string, string> {
  if (confPath === null) {
    confPath = join(mkdtempSync(join(tmpdir(), 'ht-podman-')), 'containers.conf');
    writeFileSync(confPath, [
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      '[network]',
      'network_backend = "netavark"',
      '',
    ].join('\n'));
  }
  return { CONTAINERS_CONF: confPath };
}

export async function podman(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await execa('podman', [...PODMAN_GLOBAL, ...args], { input: opts.input, timeout: opts.timeoutMs ?? 120_000, reject: false, env: podmanEnv() });
  if (r.exitCode !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.exitCode ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** podman run/exec output without failing: for commands whose failure a test inspects. */
export async function podmanTry(args: readonly string[], timeoutMs = 60_000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const r = await execa('podman', [...PODMAN_GLOBAL, ...args], { timeout: timeoutMs, reject: false, env: podmanEnv() });
  return { ok: r.exitCode === 0, stdout: r.stdout, stderr: r.stderr };
}

/** A busybox-static rootfs imported as `name`: every applet linked into /bin. */
export async function importBusybox(name: string): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'ht-rootfs-'));
  try {
    mkdirSync(join(root, 'bin'));
    for (const d of ['tmp', 'etc', 'proc', 'sys', 'dev', 'www']) mkdirSync(join(root, d));
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const applets = (await execa('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
    const tar = execa('tar', ['-C', root, '-c', '.'], { encoding: 'buffer' });
    const imp = execa('podman', [...PODMAN_GLOBAL, 'import', '--change', 'CMD ["/bin/sh"]', '-', name], { reject: false, env: podmanEnv() });
    tar.stdout?.pipe(imp.stdin!);
    const [, r] = await Promise.all([tar, imp]);
    if (r.exitCode !== 0) throw new Error(`podman import failed: ${r.stderr}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface PodmanNetwork {
  /** podman's network name. */
  readonly name: string;
  /** The bridge device on the host (podmanN, chosen by netavark: read back after create). */
  readonly bridge: string;
  readonly subnet: string;
  /** The bridge's address: the containers' gateway. */
  readonly gateway: string;
}

export interface RunOptions {
  readonly cmd?: readonly string[];
  /** `-p` specs, e.g. '18080:80'. */
  readonly publish?: readonly string[];
  /** Join this pod (its network and namespace) instead of the lab's network. */
  readonly pod?: string;
  readonly network?: PodmanNetwork;
  readonly extra?: readonly string[];
}

export interface PodmanContainer {
  /** The full name given to podman (lab prefix + short name). */
  readonly name: string;
  readonly id: string;
  /** Its address on the lab's network. */
  readonly addr: string;
  /** /run/netns/netns-<uuid>: its network namespace file (netavark's SandboxKey). */
  readonly sandboxKey: string;
  /** Inode of its network namespace, as probes report it. */
  readonly netns: number;
  readonly pid: number;
}

interface InspectLike {
  Id: string;
  State?: { Pid?: number };
  NetworkSettings?: { SandboxKey?: string; Networks?: Record<string, { IPAddress?: string }> };
}

/**
 * One test's podman objects. Everything is named `<prefix>-…` (prefix random per lab) and
 * removed by cleanup(); cleanup also sweeps anything with the prefix that a failed step left.
 */
export class PodmanLab {
  readonly containers: PodmanContainer[] = [];
  private readonly pods: string[] = [];
  private readonly networkNames: string[] = [];
  /** The lab's network (set by create()). */
  net!: PodmanNetwork;

  private constructor(
    readonly prefix: string,
    readonly image: string,
  ) {}

  /** Imports the busybox image and creates the lab's bridge network on `subnet` (a /24). */
  static async create(tag: string, subnet: string): Promise<PodmanLab> {
    const prefix = randomPrefix(tag);
    const image = `localhost/${prefix}-busybox:latest`;
    const lab = new PodmanLab(prefix, image);
    try {
      await importBusybox(image);
      lab.net = await lab.addNetwork(netFor(prefix, 'net', subnet));
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
    return lab;
  }

  /** Another bridge network, `<prefix>-<name>`. */
  async network(name: string, subnet: string): Promise<PodmanNetwork> {
    return this.addNetwork(netFor(this.prefix, name, subnet));
  }

  private async addNetwork(want: Omit<PodmanNetwork, 'bridge'>): Promise<PodmanNetwork> {
    this.networkNames.push(want.name);
    await podman(['network', 'create', '--disable-dns', '--subnet', want.subnet, '--gateway', want.gateway, want.name]);
    // Podman 4.3 has no --interface-name: netavark picks the next free podmanN.
    const [info] = JSON.parse(await podman(['network', 'inspect', want.name])) as Array<{ network_interface?: string }>;
    if (!info?.network_interface) throw new Error(`podman network inspect ${want.name}: no network_interface`);
    return { ...want, bridge: info.network_interface };
  }

  /** A pod on the lab's network (its infra container holds the namespace); returns its full name. */
  async pod(name: string, opts: { publish?: readonly string[]; network?: PodmanNetwork } = {}): Promise<string> {
    const full = `${this.prefix}-${name}`;
    this.pods.push(full);
    await podman(['pod', 'create', '--name', full, '--network', (opts.network ?? this.net).name, ...(opts.publish ?? []).flatMap((p) => ['-p', p])]);
    return full;
  }

  /** Runs a detached container `<prefix>-<name>` and returns it with its address and namespace. */
  async run(name: string, opts: RunOptions = {}): Promise<PodmanContainer> {
    const full = `${this.prefix}-${name}`;
    const where = opts.pod ? ['--pod', opts.pod] : ['--network', (opts.network ?? this.net).name];
    // Registered before it exists, so cleanup removes a half-started one too.
    this.containers.push({ name: full, id: '', addr: '', sandboxKey: '', netns: 0, pid: 0 });
    await podman(['run', '-d', ...RUN_LIMITS, '--name', full, ...where, ...(opts.publish ?? []).flatMap((p) => ['-p', p]), ...(opts.extra ?? []), this.image, ...(opts.cmd ?? SLEEP)]);
    const c = await this.inspect(full);
    this.containers[this.containers.findIndex((x) => x.name === full)] = c;
    return c;
  }

  async inspect(full: string): Promise<PodmanContainer> {
    const [info] = JSON.parse(await podman(['container', 'inspect', full])) as InspectLike[];
    if (!info) throw new Error(`podman inspect ${full}: no such container`);
    const pid = info.State?.Pid ?? 0;
    let sandboxKey = info.NetworkSettings?.SandboxKey ?? '';
    let addr = Object.values(info.NetworkSettings?.Networks ?? {})[0]?.IPAddress ?? '';
    const netns = pid > 0 ? statSync(`/proc/${pid}/ns/net`).ino : 0;
    if (!addr && pid > 0) addr = (await execa('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { reject: false })).stdout.match(/inet (\S+)\//)?.[1] ?? '';
    if (!sandboxKey) sandboxKey = `/proc/${pid}/ns/net`;
    return { name: full, id: info.Id, addr, sandboxKey, netns, pid };
  }

  /** `podman exec` in a container, returns stdout; throws on failure. */
  async exec(full: string, argv: readonly string[], timeoutMs = 30_000): Promise<string> {
    return podman(['exec', full, ...argv], { timeoutMs });
  }

  /** Removes every container, pod, network and the image this lab made; never throws. */
  async cleanup(): Promise<void> {
    const quiet = (args: string[]): Promise<unknown> => podmanTry(args, 60_000).catch(() => undefined);
    const names = this.containers.map((c) => c.name);
    // Also anything with the prefix a failed step left behind (e.g. a name registered too late).
    const listed = await podmanTry(['ps', '-a', '--format', '{{.Names}}', '--filter', `name=^${this.prefix}-`]);
    for (const n of listed.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) if (!names.includes(n)) names.push(n);
    if (names.length > 0) await quiet(['rm', '-f', '-t', '0', ...names]);
    for (const p of this.pods) await quiet(['pod', 'rm', '-f', '-t', '0', p]);
    for (const n of this.networkNames) await quiet(['network', 'rm', '-f', n]);
    await quiet(['rmi', '-f', this.image]);
  }
}

function netFor(prefix: string, name: string, subnet: string): Omit<PodmanNetwork, 'bridge'> {
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet);
  if (!m) throw new Error(`PodmanLab wants a /24 subnet like 10.213.7.0/24, got ${subnet}`);
  return { name: `${prefix}-${name}`, subnet, gateway: `${m[1]}.1` };
}

/** A podman network with a web container publishing a random host port, for a describe block. */
export interface PublishedWeb {
  readonly lab: PodmanLab;
  /** The web container (httpd on :80), published on `port`. */
  readonly web: PodmanContainer;
  /** A second, idle container on the same network (with `{ client: true }`). */
  readonly client: PodmanContainer;
  /** The host's own address (the first global IPv4 of its namespace): the port forward's other door. */
  readonly host: string;
  /** The published host port. */
  readonly port: number;
}

/**
 * Registers beforeAll/afterAll in the calling describe block: a podman network on `subnet`
 * named after `tag`, a web container publishing a random host port (18100-18899) to its :80,
 * optionally an idle client container, and everything removed on the way out (also when the
 * set-up fails half-way).
 */
export function usePublishedWeb(tag: string, subnet: string, opts: { client?: boolean } = {}): PublishedWeb {
  const port = 18100 + Math.floor(Math.random() * 800);
  let lab: PodmanLab | undefined;
  let web: PodmanContainer | undefined;
  let client: PodmanContainer | undefined;
  let host = '';

  beforeAll(async () => {
    host = await hostAddress();
    lab = await PodmanLab.create(tag, subnet);
    try {
      web = await lab.run('web', { publish: [`${port}:80`], cmd: HTTPD });
      if (opts.client) client = await lab.run('cli');
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 180_000);

  afterAll(async () => {
    await lab?.cleanup();
  }, 120_000);

  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not up: use it inside a test, after beforeAll`);
    return v;
  };
  return {
    get lab(): PodmanLab { return ready(lab, 'the podman network'); },
    get web(): PodmanContainer { return ready(web, 'the web container'); },
    get client(): PodmanContainer { return ready(client, 'the client container (usePublishedWeb(…, { client: true }))'); },
    get host(): string { return ready(host || undefined, 'the host address'); },
    port,
  };
}
