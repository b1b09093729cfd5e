/**
 * The CNI reference plugins (Debian's containernetworking-plugins, /usr/lib/cni) driven the way
 * a container runtime drives them: for each plugin of a network configuration list, in order,
 * CNI_COMMAND=ADD with CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH in the environment and the
 * plugin's config on stdin (with `prevResult` and the runtime's `runtimeConfig` capabilities);
 * DEL runs the list in reverse. The "containers" are namespaces this lab creates. After ADD the
 * harness also writes libcni's result cache entry (/var/lib/cni/results), as libcni does for
 * containerd and CRI-O, with the CNI_ARGS a CRI runtime passes (K8S_POD_NAMESPACE/K8S_POD_NAME):
 * hoptrace names such namespaces from it. Every name starts with the lab's prefix (the bridge is
 * `<prefix>br`).
 *
 *   const lab = await CniLab.create('rtcni', '10.214.3.0/24');
 *   const web = await lab.add('web', { portMappings: [{ hostPort: 18090, containerPort: 80, protocol: 'tcp' }] });
 *   ...
 *   await lab.cleanup();
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomPrefix } from './cli.js';

export const CNI_PATH = '/usr/lib/cni';
/** libcni's result cache, where containerd and CRI-O keep what ADD returned (hoptrace reads it for names). */
export const CNI_CACHE = '/var/lib/cni/results';

/** Why CNI tests cannot run here, or null when they can. */
export function cniMissing(): string | null {
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall']) {
    if (!existsSync(join(CNI_PATH, p))) return `${CNI_PATH}/${p} is missing: containernetworking-plugins is not installed (npm run setup installs it)`;
  }
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed (the tests\' HTTP server and client; npm run setup installs it)';
  if (process.getuid?.() !== 0) return 'needs root (creates namespaces and iptables rules)';
  return null;
}

export interface PortMapping {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
}

export interface CniContainer {
  /** Short name given to add(). */
  readonly name: string;
  /** CNI_CONTAINERID: 64 hex digits, as containerd and CRI-O give their pod sandboxes. */
  readonly id: string;
  /** The pod a CRI runtime would name in CNI_ARGS (K8S_POD_NAMESPACE/K8S_POD_NAME), null for a plain CNI runtime. */
  readonly pod: { readonly namespace: string; readonly name: string } | null;
  /** `ip netns` name; the namespace file is /run/netns/<netnsName>. */
  readonly netnsName: string;
  /** Inode of its namespace, as probes report it. */
  readonly netns: number;
  /** Its address (from host-local IPAM). */
  readonly addr: string;
  readonly portMappings: readonly PortMapping[];
  /** The last plugin's result (the CNI result a runtime would keep for DEL). */
  readonly result: unknown;
}

type PluginConf = Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> };

/**
 * One bridge network (`cni-<random>` bridge, host-local IPAM keeping its state in a temporary
 * directory, portmap with SNAT for hairpin/localhost, the firewall plugin's iptables backend),
 * with containers added and removed as a runtime would.
 */
export class CniLab {
  readonly containers: CniContainer[] = [];
  private readonly dataDir: string;
  readonly bridge: string;
  readonly networkName: string;
  readonly gateway: string;

  private constructor(
    readonly prefix: string,
    readonly subnet: string,
  ) {
    const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet);
    if (!m) throw new Error(`CniLab wants a /24 subnet like 10.214.3.0/24, got ${subnet}`);
    this.gateway = `${m[1]}.1`;
    this.dataDir = mkdtempSync(join(tmpdir(), 'ht-cni-'));
    // Interface names are at most 15 bytes; the prefix (a tag and 5 random digits) keeps them unique.
    this.bridge = `${prefix.slice(0, 12)}br`;
    this.networkName = `${prefix}-net`;
  }

  static async create(tag: string, subnet: string): Promise<CniLab> {
    return new CniLab(randomPrefix(tag), subnet);
  }

  /** The configuration list, as a runtime reads it from /etc/cni/net.d (here: in memory). */
  get conflist(): { cniVersion: string; name: string; plugins: PluginConf[] } {
    return {
      cniVersion: '0.4.0',
      name: this.networkName,
      plugins: [
        {
          type: 'bridge',
          bridge: this.bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', dataDir: this.dataDir, ranges: [[{ subnet: this.subnet, gateway: this.gateway }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
        { type: 'firewall', backend: 'iptables' },
      ],
    };
  }

  /**
   * Creates namespace `<prefix>-<name>` and runs ADD through the whole plugin list, then writes
   * libcni's cache entry as libcni does after a successful ADD. `pod`: the Kubernetes pod a CRI
   * runtime would pass in CNI_ARGS (default: pod `<prefix>-<name>` in Kubernetes namespace
   * `<prefix>`); null for a runtime that passes none.
   */
  async add(name: string, opts: { portMappings?: readonly PortMapping[]; pod?: { namespace: string; name: string } | null } = {}): Promise<CniContainer> {
    const netnsName = `${this.prefix}-${name}`;
    const id = randomBytes(32).toString('hex');
    await execa('ip', ['netns', 'add', netnsName]);
    const portMappings = opts.portMappings ?? [];
    const pod = opts.pod === undefined ? { namespace: this.prefix, name: `${this.prefix}-${name}` } : opts.pod;
    // Registered before ADD, so cleanup runs DEL and removes the namespace after a failed ADD too.
    const c: CniContainer = { name, id, pod, netnsName, netns: statSync(`/run/netns/${netnsName}`).ino, addr: '', portMappings, result: null };
    this.containers.push(c);
    await execa('ip', ['-n', netnsName, 'link', 'set', 'lo', 'up']);
    let prev: unknown = undefined;
    for (const plugin of this.conflist.plugins) prev = await this.exec('ADD', c, plugin, prev);
    const ips = (prev as { ips?: Array<{ address?: string }> } | undefined)?.ips ?? [];
    const addr = ips[0]?.address?.split('/')[0] ?? '';
    if (!addr) throw new Error(`CNI ADD for ${netnsName} gave no address: ${JSON.stringify(prev)}`);
    const done: CniContainer = { ...c, addr, result: prev };
    this.containers[this.containers.indexOf(c)] = done;
    this.writeCache(done);
    return done;
  }

  /** CNI_ARGS as a CRI runtime sets them (IgnoreUnknown: plugins that do not know a key ignore it). */
  private cniArgs(c: CniContainer): Array<[string, string]> {
    if (!c.pod) return [];
    return [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', c.pod.namespace], ['K8S_POD_NAME', c.pod.name], ['K8S_POD_INFRA_CONTAINER_ID', c.id]];
  }

  private cacheFile(c: CniContainer): string {
    return join(CNI_CACHE, `${this.networkName}-${c.id}-eth0`);
  }

  /** libcni's cacheAdd: kind cniCacheV1 with the container id, netns, CNI_ARGS and the result. */
  private writeCache(c: CniContainer): void {
    mkdirSync(CNI_CACHE, { recursive: true, mode: 0o700 });
    const entry = {
      kind: 'cniCacheV1',
      containerId: c.id,
      config: Buffer.from(JSON.stringify(this.conflist)).toString('base64'),
      ifName: 'eth0',
      networkName: this.networkName,
      netns: `/run/netns/${c.netnsName}`,
      ...(c.pod ? { cniArgs: this.cniArgs(c) } : {}),
      ...(c.portMappings.length > 0 ? { capabilityArgs: { portMappings: c.portMappings } } : {}),
      result: c.result,
    };
    writeFileSync(this.cacheFile(c), JSON.stringify(entry), { mode: 0o600 });
  }

  /** Runs DEL through the plugin list in reverse (as runtimes do) and removes the namespace. */
  async remove(c: CniContainer): Promise<void> {
    const errors: string[] = [];
    for (const plugin of [...this.conflist.plugins].reverse()) {
      try {
        await this.exec('DEL', c, plugin, c.result ?? undefined);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    rmSync(this.cacheFile(c), { force: true });
    await execa('ip', ['netns', 'del', c.netnsName], { reject: false });
    const i = this.containers.findIndex((x) => x.id === c.id);
    if (i >= 0) this.containers.splice(i, 1);
    if (errors.length > 0) throw new Error(errors.join('; '));
  }

  /** Removes every container (DEL), the bridge and the IPAM state; never throws. */
  async cleanup(): Promise<void> {
    for (const c of [...this.containers]) await this.remove(c).catch(() => undefined);
    await execa('ip', ['link', 'del', this.bridge], { reject: false });
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async exec(command: 'ADD' | 'DEL', c: CniContainer, plugin: PluginConf, prevResult: unknown): Promise<unknown> {
    const conf: Record<string, unknown> = { cniVersion: this.conflist.cniVersion, name: this.networkName, ...plugin };
    if (prevResult !== undefined && prevResult !== null) conf.prevResult = prevResult;
    // A runtime passes only the capabilities a plugin declares.
    if (plugin.capabilities?.portMappings) conf.runtimeConfig = { portMappings: c.portMappings };
    const r = await execa(join(CNI_PATH, plugin.type), [], {
      input: JSON.stringify(conf),
      reject: false,
      timeout: 30_000,
      env: {
        CNI_COMMAND: command,
        CNI_CONTAINERID: c.id,
        CNI_NETNS: `/run/netns/${c.netnsName}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH,
        ...(c.pod ? { CNI_ARGS: this.cniArgs(c).map(([k, v]) => `${k}=${v}`).join(';') } : {}),
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      },
      extendEnv: false,
    });
    if (r.exitCode !== 0) throw new Error(`CNI ${command} ${plugin.type} for ${c.netnsName} failed: ${r.stdout || r.stderr}`);
    if (command === 'DEL' || r.stdout.trim() === '') return prevResult;
    // ADD: each plugin returns the result the next one gets as prevResult.
    return JSON.parse(r.stdout) as unknown;
  }
}
