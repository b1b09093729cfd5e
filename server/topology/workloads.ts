/**
 * Names namespaces by their workloads: reads /proc/PID/cgroup of each namespace's processes,
 * asks each runtime that owns one of them once per discovery for all its containers (`podman ps`,
 * `docker inspect`, `crictl ps`/`crictl pods`), and caches what it learnt by container id, so a
 * host whose containers did not change costs no runtime call at all.
 *
 * Bounded: every runtime call has a deadline (default 3 s; a hanging podman is killed), the
 * runtimes are asked in parallel, and whatever is missing, unreadable, malformed or late leaves
 * the namespace named as before with a note saying why. Never throws.
 */
import { execa } from 'execa';
import { access, readFile } from 'node:fs/promises';
import type { Workload } from '../../shared/topology/workloads.js';
import { parseCrictl, parseDockerInspect, parsePodmanPs, parseProcCgroup, parseSandboxKeys, podLabel, workloadLabel, workloadsFromCgroups, type CgroupRef, type RuntimeContainer } from '../../shared/topology/workloads.js';
import type { NamespaceEntry } from './namespaces.js';

export interface NamespaceWorkloads {
  readonly workloads: readonly Workload[];
  /** The name a person knows it by (pod, or container names), null when none. */
  readonly label: string | null;
  /** Why the workloads are incomplete (runtime missing, slow, unreadable), absent when they are not. */
  readonly note?: string;
}

export interface CommandResult {
  readonly ok: boolean;
  readonly stdout: string;
  /** One line: stderr, or why it failed (timeout, not found). */
  readonly error: string;
}

export type CommandRunner = (argv: readonly string[], timeoutMs: number) => Promise<CommandResult>;

export interface WorkloadOptions {
  /** Deadline of each runtime call (default 3000 ms). */
  readonly timeoutMs?: number;
  /** Replaceable in tests (a hanging or lying runtime). */
  readonly run?: CommandRunner;
  readonly readCgroup?: (pid: number) => Promise<string | null>;
  /** At most this many processes per namespace are looked at (default 64): one per container is enough. */
  readonly pidsPerNamespace?: number;
}

export const runCommand: CommandRunner = async (argv, timeoutMs) => {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return { ok: false, stdout: '', error: 'empty command' };
  const r = await execa(cmd, args, { reject: false, timeout: timeoutMs, forceKillAfterDelay: 500, stdin: 'ignore', env: { LC_ALL: 'C' } });
  const stdout = typeof r.stdout === 'string' ? r.stdout : '';
  const stderr = typeof r.stderr === 'string' ? r.stderr.trim() : '';
  if (r.timedOut) return { ok: false, stdout, error: `no answer within ${timeoutMs} ms (killed)` };
  if (r.failed) {
    const notFound = (r as { code?: string }).code === 'ENOENT';
    return { ok: false, stdout, error: notFound ? 'not installed' : (stderr || r.shortMessage || 'failed').split('\n')[0] ?? 'failed' };
  }
  return { ok: true, stdout, error: '' };
};

async function readProcCgroup(pid: number): Promise<string | null> {
  try {
    return await readFile(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
}

async function installed(bin: string): Promise<boolean> {
  for (const dir of ['/usr/bin', '/usr/local/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (await access(`${dir}/${bin}`).then(() => true, () => false)) return true;
  }
  return false;
}

function parseJson(text: string, what: string, errors: string[]): unknown {
  try {
    return JSON.parse(text.trim() === '' ? 'null' : text);
  } catch (e) {
    errors.push(`${what}: unparsable JSON (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    return undefined;
  }
}

type RuntimeKey = 'podman' | 'docker' | 'cri';

/** The netns files netavark creates for podman containers. */
const NETAVARK_NETNS = /^\/run\/netns\/netns-[0-9a-f-]+$/;

function runtimeKey(ref: CgroupRef): RuntimeKey {
  return ref.runtime === 'podman' ? 'podman' : ref.runtime === 'docker' ? 'docker' : 'cri';
}

/** Keeps the runtimes' answers between discoveries (a long-running trace or the service). */
export class WorkloadResolver {
  private readonly byId = new Map<string, Workload>();
  private readonly podsByUid = new Map<string, Workload>();
  /** netns file → podman container id (SandboxKey); paths are unique per container. */
  private readonly sandboxByPath = new Map<string, string>();
  /** Every container the last `podman ps` listed. */
  private podmanIds: string[] = [];
  private readonly timeoutMs: number;
  private readonly run: CommandRunner;
  private readonly readCgroup: (pid: number) => Promise<string | null>;
  private readonly pidsPerNamespace: number;

  constructor(opts: WorkloadOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.run = opts.run ?? runCommand;
    this.readCgroup = opts.readCgroup ?? readProcCgroup;
    this.pidsPerNamespace = opts.pidsPerNamespace ?? 64;
  }

  /** Workloads of each namespace (by inode). The host's own namespace is left out: its processes are the host's. */
  async resolve(entries: readonly NamespaceEntry[], hostNetns: number | null): Promise<Map<number, NamespaceWorkloads>> {
    const refsByNs = new Map<number, CgroupRef[]>();
    // hoptrace itself may run in a container (a CI job, a debug pod): processes it starts in a
    // namespace (`ip netns exec` of a lab) share its cgroup and are no workload of that namespace.
    const ownText = await this.readCgroup(process.pid);
    const own = ownText === null ? null : parseProcCgroup(ownText);
    await Promise.all(entries.map(async (e) => {
      if (e.netns === hostNetns) return;
      const texts = await Promise.all(e.pids.slice(0, this.pidsPerNamespace).map((pid) => this.readCgroup(pid)));
      const refs = texts.map((t) => (t === null ? null : parseProcCgroup(t)))
        .filter((r): r is CgroupRef => r !== null && !(own !== null && r.id === own.id && r.podUid === own.podUid));
      if (refs.length > 0) refsByNs.set(e.netns, refs);
    }));

    // Ask each runtime that owns a container we do not know yet, once, all at the same time.
    const missing = new Set<RuntimeKey>();
    for (const refs of refsByNs.values()) {
      for (const r of refs) {
        const known = r.id ? this.byId.has(r.id) : r.podUid !== null && this.podsByUid.has(r.podUid);
        if (!known) missing.add(runtimeKey(r));
      }
    }
    // netavark's netns files (/run/netns/netns-<uuid>) with no process we can see (the container
    // not started yet, or hoptrace in a pid namespace of its own): podman's SandboxKey names them.
    const orphans = entries.filter((e) => e.netns !== hostNetns && !refsByNs.has(e.netns) && NETAVARK_NETNS.test(e.path));
    const sandboxesWanted = orphans.some((e) => !this.sandboxByPath.has(e.path)) && (await installed('podman'));
    if (sandboxesWanted) missing.add('podman');
    const ids = (key: RuntimeKey): string[] => [...new Set([...refsByNs.values()].flat().filter((r) => runtimeKey(r) === key && r.id && !this.byId.has(r.id)).map((r) => r.id as string))];
    const notes = new Map<RuntimeKey, string>();
    await Promise.all([...missing].map(async (key) => {
      const criName = [...refsByNs.values()].flat().find((r) => r.runtime === 'containerd' || r.runtime === 'cri-o')?.runtime ?? 'kubernetes';
      const note = await this.ask(key, ids(key), criName);
      if (note) notes.set(key, note);
      else if (key === 'podman' && sandboxesWanted) {
        const why = await this.askSandboxKeys();
        if (why) notes.set(key, why);
      }
    }));
    // Forget containers that are gone, so the cache stays the size of the host's.
    const live = new Set([...refsByNs.values()].flat().map((r) => r.id).filter((x): x is string => x !== null));
    for (const id of [...this.byId.keys()]) if (!live.has(id) && this.byId.size > 1000) this.byId.delete(id);

    const out = new Map<number, NamespaceWorkloads>();
    for (const e of orphans) {
      const id = this.sandboxByPath.get(e.path);
      const w = id ? this.byId.get(id) : undefined;
      if (w) out.set(e.netns, { workloads: [w], label: workloadLabel([w]) ?? podLabel(w) });
      else if (notes.has('podman')) out.set(e.netns, { workloads: [], label: null, note: notes.get('podman') as string });
    }
    for (const [netns, refs] of refsByNs) {
      const workloads = workloadsFromCgroups(refs, this.byId, this.podsByUid);
      const why = [...new Set(refs.map(runtimeKey))].map((k) => notes.get(k)).filter((n): n is string => n !== undefined);
      out.set(netns, { workloads, label: workloadLabel(workloads), ...(why.length > 0 ? { note: why.join('; ') } : {}) });
    }
    return out;
  }

  /** Every podman container's SandboxKey (its netns file), in one call. Returns a note when unusable. */
  private async askSandboxKeys(): Promise<string | null> {
    if (this.podmanIds.length === 0) return null;
    const r = await this.run(['podman', 'container', 'inspect', '--format', '{{.Id}}\t{{.NetworkSettings.SandboxKey}}', ...this.podmanIds], this.timeoutMs);
    // Fails as a whole when one container went away meanwhile, but still prints the others.
    if (!r.ok && r.stdout.trim() === '') return `podman container inspect: ${r.error}: netns files not matched to containers`;
    for (const [path, id] of parseSandboxKeys(r.stdout)) this.sandboxByPath.set(path, id);
    if (this.sandboxByPath.size > 1000) this.sandboxByPath.clear();
    return null;
  }

  /** Asks one runtime; returns a note when its answer is missing or unusable. */
  private async ask(key: RuntimeKey, ids: readonly string[], criName: string): Promise<string | null> {
    const errors: string[] = [];
    let found: RuntimeContainer[];
    if (key === 'podman') {
      if (!(await installed('podman'))) return 'podman containers, but podman is not installed: names unknown';
      const r = await this.run(['podman', 'ps', '-a', '--no-trunc', '--pod', '--format', 'json'], this.timeoutMs);
      if (!r.ok) return `podman ps: ${r.error}: container names unknown`;
      found = parsePodmanPs(parseJson(r.stdout, 'podman ps', errors), errors);
      this.podmanIds = found.map((c) => c.workload.id);
    } else if (key === 'docker') {
      if (ids.length === 0) return null;
      if (!(await installed('docker'))) return 'docker containers, but docker is not installed: names unknown';
      const r = await this.run(['docker', 'inspect', ...ids], this.timeoutMs);
      // docker inspect fails when one id vanished but still prints the others.
      if (!r.ok && r.stdout.trim() === '') return `docker inspect: ${r.error}: container names unknown`;
      found = parseDockerInspect(parseJson(r.stdout, 'docker inspect', errors), errors);
    } else {
      if (!(await installed('crictl'))) return 'Kubernetes (CRI) containers, but crictl is not installed: pod names unknown';
      const [ps, pods] = await Promise.all([
        this.run(['crictl', 'ps', '-a', '-o', 'json'], this.timeoutMs),
        this.run(['crictl', 'pods', '-o', 'json'], this.timeoutMs),
      ]);
      if (!ps.ok || !pods.ok) return `crictl: ${ps.ok ? pods.error : ps.error}: pod names unknown`;
      const cri = parseCrictl(parseJson(ps.stdout, 'crictl ps', errors), parseJson(pods.stdout, 'crictl pods', errors), criName, errors);
      found = cri.containers;
      for (const [uid, w] of cri.podsByUid) this.podsByUid.set(uid, w);
    }
    for (const c of found) this.byId.set(c.workload.id, c.workload);
    if (errors.length > 0) return `${errors[0]}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}: some names unknown`;
    const unanswered = ids.filter((id) => !this.byId.has(id));
    return unanswered.length > 0 ? `${key} does not know ${unanswered.length} container(s) (gone meanwhile?)` : null;
  }
}

/** One resolver per process: its cache serves every discovery (trace, service, record). */
export const sharedWorkloadResolver = new WorkloadResolver();
