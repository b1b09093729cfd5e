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
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CniAttachment, Workload } from '../../shared/topology/workloads.js';
import { parseCniCache, parseCrictl, parseDockerInspect, parsePodmanPs, parseProcCgroup, parseSandboxKeys, podLabel, workloadLabel, workloadsFromCgroups, type CgroupRef, type RuntimeContainer } from '../../shared/topology/workloads.js';
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
  /** libcni's result cache (default /var/lib/cni/results): names namespaces only CNI knows. */
  readonly cniCacheDir?: string;
}

/** libcni's default cache (containerd, CRI-O, nerdctl, podman's CNI backend all keep it here). */
export const CNI_CACHE_DIR = '/var/lib/cni/results';
/** Cache files read per discovery at most, and the largest one read (a result is a few KiB). */
const CNI_MAX_FILES = 4096;
const CNI_MAX_BYTES = 1 << 20;

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
  private readonly cniCacheDir: string;
  /** CNI cache files already parsed, by name, kept while their mtime and size stay. */
  private readonly cniFiles = new Map<string, { mtimeMs: number; size: number; att: CniAttachment | null }>();

  constructor(opts: WorkloadOptions = {}) {
    this.cniCacheDir = opts.cniCacheDir ?? CNI_CACHE_DIR;
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
    // Namespaces no runtime named (no container cgroup, or a runtime that could not say): a CNI
    // runtime's cache may know their pod (containerd or CRI-O without crictl, a plain CNI runtime).
    const nameless = entries.filter((e) => e.netns !== hostNetns && (out.get(e.netns)?.workloads ?? []).every((w) => w.name === null && w.pod === null));
    if (nameless.length > 0) {
      const cni = await this.cniAttachments();
      for (const e of nameless) {
        const found = cni.byInode.get(e.netns);
        const had = out.get(e.netns);
        if (found && found.length > 0) {
          const workloads = [...found, ...(had?.workloads ?? [])];
          out.set(e.netns, { workloads, label: workloadLabel(workloads), ...(had?.note ? { note: had.note } : {}) });
        } else if (cni.note && had) {
          out.set(e.netns, { ...had, note: had.note ? `${had.note}; ${cni.note}` : cni.note });
        }
      }
    }
    return out;
  }

  /**
   * libcni's result cache: which sandbox (and pod) each netns file belongs to, by the namespace's
   * inode. Bounded: one deadline for the whole read, at most CNI_MAX_FILES files of at most
   * CNI_MAX_BYTES; unchanged files are not read again. A missing directory is no CNI runtime.
   */
  private async cniAttachments(): Promise<{ byInode: Map<number, Workload[]>; note: string | null }> {
    const byInode = new Map<number, Workload[]>();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), this.timeoutMs); });
    const read = async (): Promise<string | null> => {
      let names: string[];
      try {
        names = (await readdir(this.cniCacheDir)).sort().slice(0, CNI_MAX_FILES);
      } catch (e) {
        const code = (e as { code?: string }).code;
        return code === 'ENOENT' || code === 'ENOTDIR' ? null : `CNI cache ${this.cniCacheDir}: ${code ?? String(e)}`;
      }
      const errors: string[] = [];
      const seen = new Set(names);
      for (const n of [...this.cniFiles.keys()]) if (!seen.has(n)) this.cniFiles.delete(n);
      await Promise.all(names.map(async (n) => {
        const file = join(this.cniCacheDir, n);
        const st = await stat(file).catch(() => null);
        if (!st?.isFile() || st.size > CNI_MAX_BYTES) return;
        let entry = this.cniFiles.get(n);
        if (!entry || entry.mtimeMs !== st.mtimeMs || entry.size !== st.size) {
          const text = await readFile(file, 'utf8').catch(() => null);
          if (text === null) return;
          const errs: string[] = [];
          entry = { mtimeMs: st.mtimeMs, size: st.size, att: parseCniCache(parseJson(text, `CNI cache ${n}`, errs), errs) };
          if (entry.att === null) errors.push(errs[0] ?? `CNI cache ${n}: unreadable`);
          this.cniFiles.set(n, entry);
        }
        const att = entry.att;
        if (!att) return;
        // The netns file's inode is the namespace's (a bind mount of nsfs); one gone is skipped.
        for (const p of att.netnsPaths) {
          const ns = await stat(p).catch(() => null);
          if (!ns) continue;
          const list = byInode.get(ns.ino) ?? [];
          if (!list.some((w) => w.id === att.workload.id)) list.push(att.workload);
          byInode.set(ns.ino, list);
        }
      }));
      return errors.length > 0 ? `${errors[0]}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}` : null;
    };
    try {
      const r = await Promise.race([read(), deadline]);
      if (r === 'late') return { byInode: new Map(), note: `CNI cache ${this.cniCacheDir}: no answer within ${this.timeoutMs} ms` };
      return { byInode, note: r };
    } finally {
      clearTimeout(timer);
    }
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
