/**
 * Workload identity: cgroup paths of every runtime layout, the runtimes' listings (a real
 * `podman ps --pod` capture from this machine: a container and a pod with its infra container),
 * and the resolver's bounds when a runtime is missing, hangs or lies.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeWorkloads, parseCniCache, parseSandboxKeys, parseCgroupPath, parseCrictl, parseDockerInspect, parsePodmanPs, parseProcCgroup, workloadLabel, workloadsFromCgroups, type Workload } from '../../shared/topology/workloads.js';
import { runCommand, WorkloadResolver, type CommandRunner } from '../../server/topology/workloads.js';
import type { NamespaceEntry } from '../../server/topology/namespaces.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
/** The resolver asks podman only where it is installed (else it notes that). */
const podmanInstalled = existsSync('/usr/bin/podman');
const ID = 'e5dd462bb4e105ee4999fd333a6afbb8046748a52b40046afd095cb878c3d694';
const ID2 = '527abdb0d2ec9e5c93f4fa5bbcab67da488f1f149dc14623c28d3fd0fa01d8f5';

describe('cgroup paths', () => {
  it('should find the container of every runtime layout', () => {
    // podman with cgroupfs (this machine), alone and in a pod; with systemd.
    expect(parseCgroupPath(`/libpod_parent/libpod-${ID}`)).toEqual({ runtime: 'podman', id: ID, podUid: null });
    expect(parseCgroupPath(`/libpod_parent/3e4371f1822f86ffb1e0dcf7ebe681682117cab9a2785c25acbce742d0ad67ce/libpod-${ID}`)?.id).toBe(ID);
    expect(parseCgroupPath(`/machine.slice/libpod-${ID}.scope/container`)?.id).toBe(ID);
    expect(parseCgroupPath(`/system.slice/docker-${ID}.scope`)).toEqual({ runtime: 'docker', id: ID, podUid: null });
    expect(parseCgroupPath(`/docker/${ID}`)).toEqual({ runtime: 'docker', id: ID, podUid: null });
    expect(parseCgroupPath(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0c5e2b1a_7d3f_4c1e_9a2b_3f4e5d6c7b8a.slice/cri-containerd-${ID}.scope`))
      .toEqual({ runtime: 'containerd', id: ID, podUid: '0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a' });
    expect(parseCgroupPath(`/kubepods.slice/kubepods-pod0c5e2b1a_7d3f_4c1e_9a2b_3f4e5d6c7b8a.slice/crio-${ID}.scope`)?.runtime).toBe('cri-o');
    expect(parseCgroupPath(`/kubepods/burstable/pod0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a/${ID}`)).toEqual({ runtime: 'cri', id: ID, podUid: '0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a' });
    expect(parseCgroupPath('/kubepods/burstable/pod0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a')).toEqual({ runtime: 'cri', id: null, podUid: '0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a' });
  });

  it('should not take monitors, host services or look-alikes for containers', () => {
    expect(parseCgroupPath(`/libpod_parent/conmon`)).toBeNull();
    expect(parseCgroupPath(`/machine.slice/libpod-conmon-${ID}.scope`)).toBeNull();
    expect(parseCgroupPath('/system.slice/ssh.service')).toBeNull();
    expect(parseCgroupPath(`/user.slice/${ID}`)).toBeNull();
    expect(parseCgroupPath(`/system.slice/docker-${ID.slice(1)}.scope`)).toBeNull();
    expect(parseCgroupPath('/pod0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a')).toBeNull();
  });

  it('should read /proc/PID/cgroup of a hybrid host (v1 lines and the unified one)', () => {
    const text = ['12:pids:/libpod_parent/libpod-' + ID, '1:name=systemd:/libpod_parent/libpod-' + ID, '0::/libpod_parent/libpod-' + ID, ''].join('\n');
    expect(parseProcCgroup(text)?.id).toBe(ID);
    expect(parseProcCgroup('0::/init.scope\n')).toBeNull();
    expect(parseProcCgroup('')).toBeNull();
    expect(parseProcCgroup('garbage without colons\n::\n')).toBeNull();
  });
});

describe('runtime listings', () => {
  it('should read podman ps --pod: containers, the pod name and its infra container', () => {
    const errors: string[] = [];
    const found = parsePodmanPs(JSON.parse(fixture('fx-podman-ps.json')), errors);
    expect(errors).toEqual([]);
    expect(found.map((c) => [c.workload.name, c.workload.pod, c.workload.sandbox ?? false, c.pid > 0])).toEqual([
      ['rtfix07597-web', null, false, true],
      ['3e4371f1822f-infra', 'rtfix07597-pp', true, true],
      ['rtfix07597-side', 'rtfix07597-pp', false, true],
    ]);
    expect(found[0]?.workload.image).toBe('localhost/rtfix07597-busybox:latest');
  });

  it('should name a namespace by its pod, even when only the pause process holds it', () => {
    const found = parsePodmanPs(JSON.parse(fixture('fx-podman-ps.json')), []);
    const byId = new Map(found.map((c) => [c.workload.id, c.workload]));
    const infra = found[1]?.workload as Workload;
    const onlyInfra = workloadsFromCgroups([{ runtime: 'podman', id: infra.id, podUid: null }], byId);
    expect(workloadLabel(onlyInfra)).toBe('rtfix07597-pp');
    const both = workloadsFromCgroups([{ runtime: 'podman', id: ID2, podUid: null }, { runtime: 'podman', id: infra.id, podUid: null }], byId);
    expect(both[0]?.sandbox).toBe(true);
    expect(workloadLabel(both)).toBe('rtfix07597-pp');
    expect(describeWorkloads(both)).toBe('podman pod rtfix07597-pp (container rtfix07597-side)');
  });

  it('should read CRI labels from docker inspect and crictl, naming pods as namespace/pod', () => {
    const errors: string[] = [];
    const docker = parseDockerInspect([
      { Id: ID, Name: '/k8s_app_web-7d4b_shop_uid_0', State: { Pid: 42 }, Config: { Image: 'nginx:1.27', Labels: { 'io.kubernetes.pod.name': 'web-7d4b', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.container.name': 'app' } } },
      { Id: ID2, Name: '/db', State: { Pid: 0 }, Config: { Image: 'postgres:16', Labels: null } },
    ], errors);
    expect(errors).toEqual([]);
    expect(docker.map((c) => c.workload)).toEqual([
      { runtime: 'docker', id: ID, name: 'app', pod: 'web-7d4b', k8sNamespace: 'shop', image: 'nginx:1.27' },
      { runtime: 'docker', id: ID2, name: 'db', pod: null, k8sNamespace: null, image: 'postgres:16' },
    ]);
    expect(workloadLabel(docker.map((c) => c.workload).slice(0, 1))).toBe('shop/web-7d4b');

    const cri = parseCrictl(
      { containers: [{ id: ID, podSandboxId: 'sb1', metadata: { name: 'app' }, image: { image: 'nginx:1.27' }, labels: { 'io.kubernetes.pod.name': 'web-7d4b', 'io.kubernetes.pod.namespace': 'shop' } }] },
      { items: [{ id: 'sb1', metadata: { name: 'web-7d4b', uid: '0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a', namespace: 'shop' } }] },
      'containerd', errors,
    );
    expect(errors).toEqual([]);
    // The pause process is in the pod's cgroup with no container we know: the pod names it.
    const pauseOnly = workloadsFromCgroups([{ runtime: 'containerd', id: 'f'.repeat(64), podUid: '0c5e2b1a-7d3f-4c1e-9a2b-3f4e5d6c7b8a' }], new Map(cri.containers.map((c) => [c.workload.id, c.workload])), cri.podsByUid);
    expect(workloadLabel(pauseOnly)).toBe('shop/web-7d4b');
  });

  it('should read SandboxKeys, skipping containers without a netns file of their own', () => {
    expect([...parseSandboxKeys(`${ID}\t/run/netns/netns-1\n${ID2}\t\n\ngarbage\nshort\t/run/netns/x\n`)]).toEqual([['/run/netns/netns-1', ID]]);
  });

  it('should list malformed listings as errors, never throw', () => {
    const errors: string[] = [];
    expect(parsePodmanPs({ not: 'an array' }, errors)).toEqual([]);
    expect(parsePodmanPs([null, 3, { Names: ['x'] }], errors)).toEqual([]);
    expect(parseDockerInspect('text', errors)).toEqual([]);
    expect(parseCrictl(null, 7, 'containerd', errors).containers).toEqual([]);
    expect(errors.length).toBeGreaterThanOrEqual(5);
  });

  it('should fall back to runtime and short id for containers nobody could name', () => {
    const ws = workloadsFromCgroups([{ runtime: 'podman', id: ID, podUid: null }], new Map());
    expect(workloadLabel(ws)).toBe(`podman ${ID.slice(0, 12)}`);
    expect(workloadLabel([])).toBeNull();
  });
});

describe('WorkloadResolver', () => {
  const entry = (netns: number, pids: number[], name = `ns${netns}`): NamespaceEntry => ({ netns, name, path: `/proc/${pids[0]}/ns/net`, pids });
  const cgroups = new Map([[100, `0::/libpod_parent/libpod-${ID}\n`], [200, '0::/user.slice/session-1.scope\n']]);
  const readCgroup = (pid: number): Promise<string | null> => Promise.resolve(cgroups.get(pid) ?? null);
  const podmanPs = JSON.stringify([{ Id: ID, Names: ['web'], Image: 'busybox', Pid: 100, IsInfra: false, PodName: '' }]);

  it('should ask podman once and then serve from its cache', async () => {
    let calls = 0;
    const run: CommandRunner = (argv) => {
      calls++;
      expect(argv.slice(0, 2)).toEqual(['podman', 'ps']);
      return Promise.resolve({ ok: true, stdout: podmanPs, error: '' });
    };
    const r = new WorkloadResolver({ run, readCgroup });
    const first = await r.resolve([entry(1, [100]), entry(2, [200]), entry(3, [300])], null);
    expect(first.get(1)).toEqual({ workloads: [{ runtime: 'podman', id: ID, name: 'web', pod: null, k8sNamespace: null, image: 'busybox' }], label: 'web' });
    expect(first.has(2)).toBe(false);
    expect(first.has(3)).toBe(false);
    await r.resolve([entry(1, [100])], null);
    expect(calls).toBe(podmanInstalled ? 1 : 0);
  });

  it.skipIf(!podmanInstalled)('should give up on a hanging podman within its deadline, with a note, and kill it', async () => {
    // A real process that never answers stands in for a hung podman.
    let elapsed = 0;
    const run: CommandRunner = async (_argv, timeoutMs) => {
      const started = Date.now();
      const r = await runCommand(['sleep', '30'], timeoutMs);
      elapsed = Date.now() - started;
      return r;
    };
    const r = new WorkloadResolver({ run, readCgroup, timeoutMs: 400 });
    const t0 = Date.now();
    const got = await r.resolve([entry(1, [100])], null);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(3000);
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(got.get(1)?.label).toBe(`podman ${ID.slice(0, 12)}`);
    expect(got.get(1)?.note).toMatch(/^podman ps: no answer within 400 ms \(killed\)/);
  });

  it.skipIf(!podmanInstalled)('should note unreadable answers and keep the namespace unnamed by them', async () => {
    for (const [stdout, ok, want] of [
      ['{"broken', true, /podman ps: unparsable JSON/],
      ['', false, /podman ps: boom/],
      ['{"an": "object"}', true, /expected a JSON array/],
    ] as const) {
      const r = new WorkloadResolver({ run: () => Promise.resolve({ ok, stdout, error: 'boom' }), readCgroup });
      const got = await r.resolve([entry(1, [100])], null);
      expect(got.get(1)?.note).toMatch(want);
      expect(got.get(1)?.workloads[0]?.name).toBeNull();
    }
  });

  it.skipIf(!podmanInstalled)('should match a netavark netns file with no visible process to its container by SandboxKey', async () => {
    const calls: string[] = [];
    const run: CommandRunner = (argv) => {
      calls.push(argv.slice(0, 3).join(' '));
      if (argv[1] === 'ps') return Promise.resolve({ ok: true, stdout: podmanPs, error: '' });
      expect(argv.slice(-1)).toEqual([ID]);
      return Promise.resolve({ ok: true, stdout: `${ID}\t/run/netns/netns-0b1c2d3e-aaaa-bbbb-cccc-000000000001\n`, error: '' });
    };
    const r = new WorkloadResolver({ run, readCgroup });
    const file = (netns: number, uuid: string): NamespaceEntry => ({ netns, name: `netns-${uuid}`, path: `/run/netns/netns-${uuid}`, pids: [] });
    const got = await r.resolve([file(5, '0b1c2d3e-aaaa-bbbb-cccc-000000000001'), file(6, '0b1c2d3e-aaaa-bbbb-cccc-000000000002')], null);
    expect(got.get(5)?.label).toBe('web');
    expect(got.has(6)).toBe(false);
    expect(calls).toEqual(['podman ps -a', 'podman container inspect']);
    // The known file is served from the cache; the unknown one is asked about again (it may be new).
    await r.resolve([file(5, '0b1c2d3e-aaaa-bbbb-cccc-000000000001')], null);
    expect(calls).toHaveLength(2);
  });

  it('should not take processes of hoptrace\'s own container for a namespace\'s workload', async () => {
    // hoptrace (this process) in container ID, and a lab process it started in namespace 1.
    const texts = new Map([[process.pid, `0::/system.slice/docker-${ID}.scope\n`], [100, `0::/system.slice/docker-${ID}.scope\n`]]);
    const r = new WorkloadResolver({ run: () => Promise.reject(new Error('must not run')), readCgroup: (pid) => Promise.resolve(texts.get(pid) ?? null) });
    expect((await r.resolve([entry(1, [100])], null)).size).toBe(0);
  });

  it('should leave the host namespace and unreadable processes alone', async () => {
    const r = new WorkloadResolver({ run: () => Promise.reject(new Error('must not run')), readCgroup });
    expect((await r.resolve([entry(1, [100], 'host'), entry(4, [999])], 1)).size).toBe(0);
  });
});

describe('libcni result cache (namespaces only a CNI runtime knows)', () => {
  const entry = (over: Record<string, unknown>): Record<string, unknown> => ({
    kind: 'cniCacheV1', containerId: 'a'.repeat(64), config: 'e30=', ifName: 'eth0', networkName: 'k8s-pod-network',
    netns: '/var/run/netns/cni-1234', cniArgs: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'shop'], ['K8S_POD_NAME', 'web-7d9f']],
    result: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/cni-1234' }, { name: 'cni0' }], ips: [] },
    ...over,
  });

  it('should read the pod a CRI runtime passed in CNI_ARGS, else the container id; refuse what is not a cache entry', () => {
    const errors: string[] = [];
    expect(parseCniCache(entry({}), errors)).toEqual({
      workload: { runtime: 'cni', id: 'a'.repeat(64), name: null, pod: 'web-7d9f', k8sNamespace: 'shop', image: null, sandbox: true },
      netnsPaths: ['/var/run/netns/cni-1234'], network: 'k8s-pod-network', ifName: 'eth0',
    });
    const plain = parseCniCache(entry({ cniArgs: undefined, netns: undefined }), errors);
    expect(plain?.workload).toEqual({ runtime: 'cni', id: 'a'.repeat(64), name: null, pod: null, k8sNamespace: null, image: null });
    expect(plain?.netnsPaths).toEqual(['/var/run/netns/cni-1234']);
    expect(workloadLabel([plain?.workload as Workload])).toBe(`cni ${'a'.repeat(12)}`);
    expect(errors).toEqual([]);
    expect(parseCniCache({ kind: 'other' }, errors)).toBeNull();
    expect(parseCniCache(entry({ containerId: 7 }), errors)).toBeNull();
    expect(parseCniCache('junk', errors)).toBeNull();
    expect(errors).toEqual(['CNI cache: not a cniCacheV1 entry (kind other)', 'CNI cache: an entry without containerId', 'CNI cache: not a cniCacheV1 entry']);
  });

  it('should name a namespace with no container process from the cache file whose netns is its inode, and note unreadable files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h6c-cnicache-'));
    try {
      // Our own namespace file stands for the sandbox's: matched by inode, not by path.
      writeFileSync(join(dir, 'net-aaa-eth0'), JSON.stringify(entry({ netns: '/proc/self/ns/net', result: {} })));
      writeFileSync(join(dir, 'net-bbb-eth0'), '{broken');
      const ino = statSync('/proc/self/ns/net').ino;
      const r = new WorkloadResolver({ run: () => Promise.reject(new Error('must not run')), readCgroup: () => Promise.resolve('0::/user.slice\n'), cniCacheDir: dir });
      const ns: NamespaceEntry = { netns: ino, name: 'cni-1234', path: '/proc/self/ns/net', pids: [1] };
      const other: NamespaceEntry = { netns: ino + 1, name: 'lab', path: '/run/netns/lab', pids: [] };
      const got = await r.resolve([ns, other], null);
      expect(got.get(ino)).toEqual({ workloads: [expect.objectContaining({ runtime: 'cni', pod: 'web-7d9f' })], label: 'shop/web-7d9f' });
      // Nothing names the other one, and a broken file is no note on a namespace no runtime claimed.
      expect(got.get(ino + 1)).toBeUndefined();
      // Missing directory: no CNI runtime, no note.
      const none = new WorkloadResolver({ run: () => Promise.reject(new Error('must not run')), readCgroup: () => Promise.resolve(null), cniCacheDir: join(dir, 'absent') });
      expect((await none.resolve([other], null)).get(other.netns)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
