/**
 * Which container or pod a network namespace belongs to, without a Kubernetes API: a process's
 * cgroup path names its container (`libpod-<id>`, `docker-<id>.scope`, `cri-containerd-<id>.scope`,
 * `crio-<id>.scope`, kubelet's `…pod<uid>…`), and the runtime's own listing (`podman ps`,
 * `docker inspect`, `crictl ps`/`crictl pods`) names the container, its pod, its Kubernetes
 * namespace and image. Pure parsing and joining here; server/topology/workloads.ts does the I/O.
 */
import type { WorkloadDirectory } from '../filter/workloads.js';

/** One container (or pod sandbox) whose processes live in a namespace. Public JSON of `topology --json`. */
export interface Workload {
  /** 'podman', 'docker', 'containerd', 'cri-o', or 'kubernetes' when only kubelet's cgroup named a pod. */
  readonly runtime: string;
  /** Full container id (the pod's uid when only the pod is known). */
  readonly id: string;
  /** Container name; null when the runtime's metadata could not be read. */
  readonly name: string | null;
  /** Pod name (podman pod, or the CRI label io.kubernetes.pod.name). */
  readonly pod: string | null;
  /** Kubernetes namespace (io.kubernetes.pod.namespace). */
  readonly k8sNamespace: string | null;
  readonly image: string | null;
  /** The pod's infra/pause container: holds the namespace, runs nothing of the user's. */
  readonly sandbox?: boolean;
}

/** What a process's cgroup path says about its container. */
export interface CgroupRef {
  readonly runtime: 'podman' | 'docker' | 'containerd' | 'cri-o' | 'cri';
  /** Container id (64 hex digits), null when only a Kubernetes pod was recognised. */
  readonly id: string | null;
  /** Kubernetes pod uid from kubelet's cgroup (`pod<uid>`), with dashes. */
  readonly podUid: string | null;
}

const HEX64 = '[0-9a-f]{64}';
const SCOPES: ReadonlyArray<readonly [RegExp, CgroupRef['runtime']]> = [
  // `libpod-conmon-<id>` is podman's monitor process, in the host namespace: not a container.
  [new RegExp(`^libpod-(${HEX64})(?:\\.scope)?$`), 'podman'],
  [new RegExp(`^docker-(${HEX64})\\.scope$`), 'docker'],
  [new RegExp(`^cri-containerd-(${HEX64})\\.scope$`), 'containerd'],
  [new RegExp(`^crio-(${HEX64})\\.scope$`), 'cri-o'],
];
/** kubelet: `kubepods-besteffort-pod<uid with _>.slice` (systemd) or `/kubepods/besteffort/pod<uid>` (cgroupfs). */
const POD_UID = /^(?:kubepods(?:-[a-z]+)*-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/** One cgroup path (`/libpod_parent/<pod>/libpod-<id>`) → its container, or null. */
export function parseCgroupPath(path: string): CgroupRef | null {
  const segs = path.split('/').filter((s) => s !== '');
  let podUid: string | null = null;
  const kube = segs.some((s) => s.startsWith('kubepods'));
  for (const [i, seg] of segs.entries()) {
    const pm = kube ? POD_UID.exec(seg) : null;
    if (pm?.[1]) podUid = pm[1].replace(/_/g, '-');
    for (const [re, runtime] of SCOPES) {
      const m = re.exec(seg);
      if (m?.[1]) return { runtime, id: m[1], podUid };
    }
    // cgroupfs drivers: `/docker/<id>`, and kubelet's `/kubepods/…/pod<uid>/<id>` (runtime unknown).
    if (new RegExp(`^${HEX64}$`).test(seg)) {
      if (segs[i - 1] === 'docker') return { runtime: 'docker', id: seg, podUid };
      if (podUid !== null) return { runtime: 'cri', id: seg, podUid };
    }
  }
  return podUid !== null ? { runtime: 'cri', id: null, podUid } : null;
}

/**
 * /proc/PID/cgroup (v1 lines `N:controllers:path`, v2 `0::path`) → the container, or null.
 * The first line that names one wins: on hybrid hosts every hierarchy carries the same path.
 */
export function parseProcCgroup(text: string): CgroupRef | null {
  let podOnly: CgroupRef | null = null;
  for (const line of text.split('\n')) {
    const path = line.split(':').slice(2).join(':');
    if (path === '') continue;
    const ref = parseCgroupPath(path);
    if (ref?.id) return ref;
    podOnly ??= ref;
  }
  return podOnly;
}

function str(x: unknown): string | null {
  return typeof x === 'string' && x !== '' ? x : null;
}

function obj(x: unknown): Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}

function labels(x: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(x))) if (typeof v === 'string') out[k] = v;
  return out;
}

/** A runtime's container with the pid of its main process (0 when not running). */
export interface RuntimeContainer {
  readonly workload: Workload;
  readonly pid: number;
  /** The pod sandbox's id, for CRI containers (their pod's name comes from `crictl pods`). */
  readonly sandboxId?: string;
}

/** The CRI labels kubelet puts on every container and sandbox. */
function criLabels(l: Record<string, string>): { pod: string | null; k8sNamespace: string | null; name: string | null } {
  return {
    pod: str(l['io.kubernetes.pod.name']),
    k8sNamespace: str(l['io.kubernetes.pod.namespace']),
    name: str(l['io.kubernetes.container.name']),
  };
}

/** The objects of a runtime's JSON array with their Id; what is not an array or has no Id goes to `errors`. */
function entriesWithId(json: unknown, what: string, errors: string[]): { c: Record<string, unknown>; id: string }[] {
  if (!Array.isArray(json)) {
    errors.push(`${what}: expected a JSON array`);
    return [];
  }
  const out: { c: Record<string, unknown>; id: string }[] = [];
  for (const raw of json) {
    const c = obj(raw);
    const id = str(c.Id);
    if (id === null) errors.push(`${what}: an entry without Id`);
    else out.push({ c, id });
  }
  return out;
}

/** `podman ps -a --no-trunc --pod --format json`. Entries it cannot read are listed in `errors`. */
export function parsePodmanPs(json: unknown, errors: string[]): RuntimeContainer[] {
  const out: RuntimeContainer[] = [];
  for (const { c, id } of entriesWithId(json, 'podman ps', errors)) {
    const names = Array.isArray(c.Names) ? c.Names.filter((n): n is string => typeof n === 'string') : [];
    const cri = criLabels(labels(c.Labels));
    out.push({
      pid: typeof c.Pid === 'number' ? c.Pid : 0,
      workload: {
        runtime: 'podman',
        id,
        // `podman play kube` names containers `<pod>-<container>` and sets the CRI labels.
        name: cri.name ?? names[0] ?? null,
        pod: str(c.PodName) ?? cri.pod,
        k8sNamespace: cri.k8sNamespace,
        image: str(c.Image),
        ...(c.IsInfra === true ? { sandbox: true } : {}),
      },
    });
  }
  return out;
}

/**
 * `podman container inspect --format '{{.Id}}\t{{.NetworkSettings.SandboxKey}}' ID…`: netns file →
 * container id. Lines without a netns file (a container sharing another's, or stopped) are skipped.
 */
export function parseSandboxKeys(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [id, path] = line.trim().split('\t');
    if (id && path && new RegExp(`^${HEX64}$`).test(id) && path.startsWith('/')) out.set(path, id);
  }
  return out;
}

/** `docker inspect ID…` (also the shape of `podman inspect`). */
export function parseDockerInspect(json: unknown, errors: string[]): RuntimeContainer[] {
  const out: RuntimeContainer[] = [];
  for (const { c, id } of entriesWithId(json, 'docker inspect', errors)) {
    const config = obj(c.Config);
    const l = labels(config.Labels);
    const cri = criLabels(l);
    // dockershim named sandboxes `k8s_POD_…`; its label says which one is the sandbox.
    const sandbox = l['io.kubernetes.docker.type'] === 'podsandbox' || cri.name === 'POD';
    out.push({
      pid: typeof obj(c.State).Pid === 'number' ? (obj(c.State).Pid as number) : 0,
      workload: {
        runtime: 'docker',
        id,
        name: (sandbox ? null : cri.name) ?? str(c.Name)?.replace(/^\//, '') ?? null,
        pod: cri.pod,
        k8sNamespace: cri.k8sNamespace,
        image: str(config.Image),
        ...(sandbox ? { sandbox: true } : {}),
      },
    });
  }
  return out;
}

/**
 * `crictl ps -a -o json` and `crictl pods -o json`: containers with their CRI labels, and pod
 * sandboxes (their pause process holds the namespace) named by their metadata.
 */
export function parseCrictl(psJson: unknown, podsJson: unknown, runtime: string, errors: string[]): { containers: RuntimeContainer[]; podsByUid: Map<string, Workload> } {
  const containers: RuntimeContainer[] = [];
  const podsByUid = new Map<string, Workload>();
  const pods = obj(podsJson).items;
  if (!Array.isArray(pods)) errors.push('crictl pods: expected {"items": [...]}');
  const podById = new Map<string, Workload>();
  for (const raw of Array.isArray(pods) ? pods : []) {
    const p = obj(raw);
    const meta = obj(p.metadata);
    const id = str(p.id);
    if (id === null) continue;
    const w: Workload = { runtime, id, name: null, pod: str(meta.name), k8sNamespace: str(meta.namespace), image: null, sandbox: true };
    podById.set(id, w);
    containers.push({ workload: w, pid: 0, sandboxId: id });
    const uid = str(meta.uid);
    if (uid) podsByUid.set(uid, w);
  }
  const list = obj(psJson).containers;
  if (!Array.isArray(list)) errors.push('crictl ps: expected {"containers": [...]}');
  for (const raw of Array.isArray(list) ? list : []) {
    const c = obj(raw);
    const id = str(c.id);
    if (id === null) continue;
    const cri = criLabels(labels(c.labels));
    const sandboxId = str(c.podSandboxId);
    const pod = sandboxId ? podById.get(sandboxId) : undefined;
    containers.push({
      pid: 0,
      ...(sandboxId ? { sandboxId } : {}),
      workload: {
        runtime,
        id,
        name: str(obj(c.metadata).name) ?? cri.name,
        pod: cri.pod ?? pod?.pod ?? null,
        k8sNamespace: cri.k8sNamespace ?? pod?.k8sNamespace ?? null,
        image: str(obj(c.image).image) ?? str(c.imageRef),
      },
    });
  }
  return { containers, podsByUid };
}

/** One attachment of libcni's result cache (`/var/lib/cni/results/<network>-<containerID>-<ifname>`). */
export interface CniAttachment {
  readonly workload: Workload;
  /** Network namespace files the attachment names: the runtime's CNI_NETNS and the result's sandboxes. */
  readonly netnsPaths: readonly string[];
  readonly network: string | null;
  readonly ifName: string | null;
}

/**
 * A libcni cache file (kind `cniCacheV1`, written by every runtime that drives CNI through libcni
 * or go-cni: containerd, CRI-O, podman's CNI backend, nerdctl). A CRI runtime passes the pod's
 * identity to the plugins as CNI_ARGS (`K8S_POD_NAME`, `K8S_POD_NAMESPACE`,
 * `K8S_POD_INFRA_CONTAINER_ID`), and libcni keeps them here with the container id and the netns
 * path: the names a containerd or CRI-O user knows their pods by, readable without the runtime's
 * API. Without those arguments the sandbox is known by its container id only. Null (with an entry
 * in `errors`) for a file that is not such a cache entry.
 */
export function parseCniCache(json: unknown, errors: string[], runtime = 'cni'): CniAttachment | null {
  const c = obj(json);
  if (c.kind !== 'cniCacheV1') {
    errors.push(`CNI cache: not a cniCacheV1 entry${typeof c.kind === 'string' ? ` (kind ${c.kind})` : ''}`);
    return null;
  }
  const id = str(c.containerId);
  if (id === null) {
    errors.push('CNI cache: an entry without containerId');
    return null;
  }
  const args = new Map<string, string>();
  if (Array.isArray(c.cniArgs)) {
    for (const kv of c.cniArgs) if (Array.isArray(kv) && typeof kv[0] === 'string' && typeof kv[1] === 'string') args.set(kv[0], kv[1]);
  }
  const paths = new Set<string>();
  const netns = str(c.netns);
  if (netns?.startsWith('/')) paths.add(netns);
  const ifaces = obj(c.result).interfaces;
  if (Array.isArray(ifaces)) for (const i of ifaces) { const sb = str(obj(i).sandbox); if (sb?.startsWith('/')) paths.add(sb); }
  const pod = str(args.get('K8S_POD_NAME'));
  return {
    // With a pod, the attachment is its sandbox's (named by the pod); without one, the container
    // itself (labelled `cni <short id>`).
    workload: { runtime, id, name: null, pod, k8sNamespace: pod ? str(args.get('K8S_POD_NAMESPACE')) : null, image: null, ...(pod ? { sandbox: true } : {}) },
    netnsPaths: [...paths],
    network: str(c.networkName),
    ifName: str(c.ifName),
  };
}

/**
 * A namespace's workloads from its processes' cgroups: each container id once, known ones with
 * the runtime's metadata, unknown ones with what the cgroup said (runtime and id). A process in
 * a kubelet pod cgroup without a container id (or an unknown one) names the pod by its uid.
 */
export function workloadsFromCgroups(refs: Iterable<CgroupRef>, byId: ReadonlyMap<string, Workload>, podsByUid: ReadonlyMap<string, Workload> = new Map()): Workload[] {
  const out = new Map<string, Workload>();
  for (const ref of refs) {
    const known = ref.id ? byId.get(ref.id) ?? byId.get(ref.id.slice(0, 12)) : undefined;
    if (known) {
      out.set(known.id, known);
      continue;
    }
    const pod = ref.podUid ? podsByUid.get(ref.podUid) : undefined;
    if (pod) out.set(pod.id, pod);
    if (ref.id) out.set(ref.id, { runtime: ref.runtime === 'cri' ? 'kubernetes' : ref.runtime, id: ref.id, name: null, pod: pod?.pod ?? null, k8sNamespace: pod?.k8sNamespace ?? null, image: null });
    else if (!pod && ref.podUid) out.set(ref.podUid, { runtime: 'kubernetes', id: ref.podUid, name: null, pod: null, k8sNamespace: null, image: null });
  }
  // Stable order: the sandbox (it holds the namespace) first, then by name.
  return [...out.values()].sort((a, b) => Number(b.sandbox === true) - Number(a.sandbox === true) || (a.name ?? a.id).localeCompare(b.name ?? b.id));
}

/** `ns/pod` for Kubernetes pods, the pod's name for podman pods. */
export function podLabel(w: Workload): string | null {
  if (w.pod === null) return null;
  return w.k8sNamespace ? `${w.k8sNamespace}/${w.pod}` : w.pod;
}

/**
 * The name a person knows a namespace by: its pod (the namespace is the pod's: every container
 * of a pod shares it), else its container names, else the runtime and short id. Null: none.
 */
export function workloadLabel(ws: readonly Workload[]): string | null {
  if (ws.length === 0) return null;
  const pods = [...new Set(ws.map(podLabel).filter((p): p is string => p !== null))];
  if (pods.length > 0) return pods.join(', ');
  const names = [...new Set(ws.filter((w) => w.sandbox !== true).map((w) => w.name ?? `${w.runtime} ${w.id.slice(0, 12)}`))];
  if (names.length === 0) return null;
  return names.length > 3 ? `${names.slice(0, 2).join(', ')} +${names.length - 2}` : names.join(', ');
}

/** Does `name` name this workload (as a `container` or as a `pod`)? Pods also match as `k8sns/pod`. */
export function workloadMatches(w: Workload, what: 'pod' | 'container', name: string): boolean {
  if (what === 'container') return w.sandbox !== true && w.name === name;
  return w.pod === name || podLabel(w) === name;
}

/** One line for `topology`: `podman pod web-pod (containers web, sidecar)`, `docker container db (image postgres:16)`. */
export function describeWorkloads(ws: readonly Workload[]): string | null {
  if (ws.length === 0) return null;
  const runtimes = [...new Set(ws.map((w) => w.runtime))].join('/');
  const containers = ws.filter((w) => w.sandbox !== true);
  const names = containers.map((w) => w.name ?? w.id.slice(0, 12));
  const pods = [...new Set(ws.map(podLabel).filter((p): p is string => p !== null))];
  if (pods.length > 0) return `${runtimes} pod ${pods.join(', ')}${names.length > 0 ? ` (container${names.length === 1 ? '' : 's'} ${names.join(', ')})` : ''}`;
  const images = [...new Set(containers.map((w) => w.image).filter((i): i is string => i !== null))];
  return `${runtimes} container${names.length === 1 ? '' : 's'} ${names.join(', ')}${images.length > 0 ? ` (image ${images.join(', ')})` : ''}`;
}

/** The namespaces `topology` knows, as filters see them: their workloads and interface addresses. */
interface NamespaceLike {
  readonly workloads?: readonly Workload[];
  readonly interfaces: ReadonlyArray<{ readonly kind: string; readonly addrs: readonly string[] }>;
}

/**
 * `pod NAME` / `container NAME` of the filter language against a model: the addresses of every
 * namespace whose workloads carry that name (loopback and IPv6 link-local left out: they name no
 * workload on the path).
 */
export function workloadDirectory(namespaces: readonly NamespaceLike[]): WorkloadDirectory {
  const addrsOf = (ns: NamespaceLike): string[] => ns.interfaces
    .filter((i) => i.kind !== 'loopback')
    .flatMap((i) => i.addrs.map((a) => a.split('/')[0] ?? a))
    .filter((a) => !a.toLowerCase().startsWith('fe80:'));
  return {
    addresses: (what, name) => {
      const hits = namespaces.filter((ns) => (ns.workloads ?? []).some((w) => workloadMatches(w, what, name)));
      return hits.length === 0 ? null : hits.flatMap(addrsOf);
    },
    known: (what) => [...new Set(namespaces.flatMap((ns) => (ns.workloads ?? []).flatMap((w) => (what === 'container' ? (w.sandbox !== true && w.name ? [w.name] : []) : [podLabel(w)].filter((p): p is string => p !== null)))))].sort(),
  };
}
