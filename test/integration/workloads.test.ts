/**
 * Workload names on a real podman host (netavark, runc): containers and a pod started by the
 * test are named in `topology --json`, on every hop of `trace --json` (and in its human output),
 * selected by `container NAME` / `pod NAME` filters, followed as a container starts mid-trace,
 * and kept in a recording replayed after the containers are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, startReady, startTrace } from '../helpers/cli.js';
import { HTTPD, httpGet, PodmanLab, podmanMissing, type PodmanContainer } from '../helpers/podman.js';
import type { Packet } from '../../shared/packet.js';

const missing = podmanMissing();
type HopJ = Packet['hops'][number];

/** Packets of NDJSON output (lost-event lines left out). */
function packets(stdout: string): Packet[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Packet & { type?: string }).filter((p) => p.type === undefined);
}

/** Sends one HTTP request from `from` to addr:port and checks it was answered. */
async function get(lab: PodmanLab, from: PodmanContainer, addr: string, port = 80): Promise<void> {
  const out = await lab.exec(from.name, httpGet(addr, port));
  expect(out).toMatch(/^HTTP\/1\.[01] 200/);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(missing !== null)(`workload names on real podman containers (${missing ?? 'podman, runc, busybox-static installed'})`, () => {
  let lab: PodmanLab;
  let web: PodmanContainer;
  let client: PodmanContainer;
  let side: PodmanContainer;
  let pod: string;
  const dir = mkdtempSync(join(tmpdir(), 'ht-workloads-'));

  beforeAll(async () => {
    // A subnet of this run's own: other test files and helpers run podman labs at the same time.
    lab = await PodmanLab.create('rtw', `10.213.${100 + Math.floor(Math.random() * 100)}.0/24`);
    web = await lab.run('web', { cmd: HTTPD });
    client = await lab.run('cli');
    pod = await lab.pod('pp');
    side = await lab.run('side', { pod, cmd: HTTPD });
  }, 180_000);

  afterAll(async () => {
    await lab?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('should list each namespace\'s containers in topology --json, a pod\'s namespace under the pod', async () => {
    const r = await cli(['topology', '--json']);
    expect(r.exitCode).toBe(0);
    const topo = JSON.parse(String(r.stdout)) as { namespaces: Array<{ netns: number; workload?: string | null; workloads?: Array<{ runtime: string; id: string; name: string | null; pod: string | null; k8sNamespace: string | null; image: string | null; sandbox?: boolean }> }> };
    const ns = (c: PodmanContainer): (typeof topo.namespaces)[number] | undefined => topo.namespaces.find((n) => n.netns === c.netns);
    expect(ns(web)?.workload).toBe(web.name);
    expect(ns(web)?.workloads).toEqual([{ runtime: 'podman', id: web.id, name: web.name, pod: null, k8sNamespace: null, image: lab.image }]);
    expect(ns(client)?.workload).toBe(client.name);
    // The pod: its infra container (holding the namespace) and the container in it, named by the pod.
    expect(ns(side)?.workload).toBe(pod);
    const members = ns(side)?.workloads ?? [];
    expect(members.map((w) => [w.sandbox === true, w.pod])).toEqual([[true, pod], [false, pod]]);
    expect(members[1]?.name).toBe(side.name);
    // `path` starts from a container by its name.
    const path = await cli(['path', '--from', client.name, '--dst', web.addr, '--proto', 'tcp', '--dport', '80']);
    expect(path.exitCode).toBe(0);
    expect(String(path.stdout)).toContain(`sent from ${client.sandboxKey.replace('/run/netns/', '')}`);
    expect(String(path.stdout)).toContain(web.sandboxKey.replace('/run/netns/', ''));
    // The host is the host's: no workload.
    expect(topo.namespaces.find((n) => n.netns !== web.netns && (n.workloads ?? []).length === 0)).toBeDefined();
  });

  it('should keep the namespace named as before, with a note, when podman hangs or talks nonsense', async () => {
    // A podman first on PATH that never answers (exec: the killed process is the sleeper itself),
    // and one that prints garbage.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    for (const [name, body] of [['hang', 'exec sleep 60'], ['junk', 'echo "{not json"']] as const) {
      mkdirSync(join(bin, name), { recursive: true });
      writeFileSync(join(bin, name, 'podman'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    for (const [name, note] of [['hang', /^podman ps: no answer within 3000 ms \(killed\)/], ['junk', /^podman ps: unparsable JSON/]] as const) {
      const t0 = Date.now();
      const r = await cli(['topology', '--json', '--ns', web.sandboxKey.replace('/run/netns/', '')], { env: { PATH: `${join(bin, name)}:${process.env.PATH ?? ''}` } });
      expect(r.exitCode).toBe(0);
      const [ns] = (JSON.parse(String(r.stdout)) as { namespaces: Array<{ name: string; workload: string | null; workloadNote?: string; workloads: Array<{ id: string; name: string | null }> }> }).namespaces;
      expect(ns?.name).toBe(web.sandboxKey.replace('/run/netns/', ''));
      expect(ns?.workloadNote).toMatch(note);
      // What the cgroup said is kept: the runtime and the container's id.
      expect(ns?.workloads).toEqual([expect.objectContaining({ id: web.id, name: null })]);
      expect(ns?.workload).toBe(`podman ${web.id.slice(0, 12)}`);
      // Bounded: the 3 s deadline, not podman's 60 s (discovery itself is slow on a loaded machine).
      expect(Date.now() - t0).toBeLessThan(45_000);
    }
  }, 120_000);

  it('should trace as ever while podman hangs, saying once why names are missing', async () => {
    const bin = join(dir, 'bin', 'hang');
    const { child } = await startTrace(['--json', '--filter', `host ${web.addr} and tcp port 80`], { PATH: `${bin}:${process.env.PATH ?? ''}` });
    await get(lab, client, web.addr);
    await sleep(1500);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    const err = String(r.stderr);
    expect(err).toContain('hoptrace: some namespaces are not named by their containers: podman ps: no answer within 3000 ms (killed)');
    expect(err.split('not named by their containers').length).toBe(2);
    const hops = packets(String(r.stdout)).flatMap((p) => p.hops).filter((h) => h.netns === web.netns);
    expect(hops.length).toBeGreaterThan(0);
    for (const h of hops) expect(h.workload).toBe(`podman ${web.id.slice(0, 12)}`);
  }, 180_000);

  it('should name the container on every hop in its namespace, with a container filter resolved to its address', async () => {
    const { child } = await startTrace(['--json', '--filter', `container ${web.name} and tcp port 80`]);
    await get(lab, client, web.addr);
    await sleep(1500);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toContain(`hoptrace: filter: host ${web.addr} and tcp and port 80`);
    const ps = packets(String(r.stdout));
    // SYN, its reply, the request, the response...: every packet is between the two containers.
    expect(ps.length).toBeGreaterThanOrEqual(4);
    const hops = ps.flatMap((p) => p.hops);
    for (const p of ps) expect([p.src, p.dst].sort()).toEqual([client.addr, web.addr].sort());
    const inNs = (c: PodmanContainer): HopJ[] => hops.filter((h) => h.netns === c.netns);
    expect(inNs(web).length).toBeGreaterThan(0);
    expect(inNs(client).length).toBeGreaterThan(0);
    for (const h of inNs(web)) expect(h.workload).toBe(web.name);
    for (const h of inNs(client)) expect(h.workload).toBe(client.name);
    // `ns` keeps its meaning: the namespace's own name (netavark's netns-<uuid> file).
    for (const h of inNs(web)) expect(h.ns).toBe(web.sandboxKey.replace('/run/netns/', ''));
    // The host's hops (bridge, host-side veths) carry no workload.
    const host = hops.filter((h) => h.netns !== web.netns && h.netns !== client.netns);
    expect(host.length).toBeGreaterThan(0);
    for (const h of host) expect(h.workload).toBeUndefined();
  }, 180_000);

  it('should show the pod or container name in the human output, and take pod filters, also without the model', async () => {
    // --no-model: no topology watcher; the names come from the resolver alone, read at start.
    const { child } = await startTrace(['--no-model', '--filter', `pod ${pod} and tcp port 80`]);
    await get(lab, client, side.addr);
    await sleep(1500);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    const out = String(r.stdout);
    expect(out).toMatch(/^packet \d+ {2}tcp /m);
    const hopLines = out.split('\n').filter((l) => /^\s+\+/.test(l));
    expect(hopLines.some((l) => l.includes(`${pod} (netns-`) && l.includes(' eth0 '))).toBe(true);
    expect(hopLines.some((l) => l.includes(`${client.name} (netns-`))).toBe(true);
  }, 180_000);

  it('should refuse an unknown container or pod clearly, listing the known ones', async () => {
    const r = await cli(['trace', '--filter', 'tcp and container no-such-thing']);
    expect(r.exitCode).toBe(2);
    const err = String(r.stderr);
    expect(err).toContain("hoptrace: bad filter: no container named 'no-such-thing' (known containers: ");
    expect(err).toContain(web.name);
    // The caret line points at the name.
    expect(err).toMatch(/\ntcp and container no-such-thing\n {18}\^{13} no container named/);
    expect(err).not.toMatch(/\n\s+at /);
    const p = await cli(['trace', '--filter', 'pod no-such-pod']);
    expect(p.exitCode).toBe(2);
    expect(String(p.stderr)).toContain(`no pod named 'no-such-pod' (known pods: `);
    expect(String(p.stderr)).toContain(pod);
  });

  it('should name a container that starts while the trace runs', async () => {
    const { child } = await startTrace(['--json', '--filter', `host ${web.addr} and tcp port 80`]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    const late = await lab.run('late');
    const started = Date.now();
    // The watcher sees the new namespace (and its first process) within a second, then discovers
    // it; on a loaded machine a discovery takes seconds. Ask until the name shows, 60 s at most.
    const lateHops = (): Packet['hops'][number][] => packets(out.slice(0, out.lastIndexOf('\n') + 1)).flatMap((p) => p.hops).filter((h) => h.netns === late.netns);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !lateHops().some((h) => h.workload === late.name)) {
      await get(lab, late, web.addr);
      await sleep(2000);
    }
    // (Before its discovery, a namespace whose inode a removed container had may still carry
    // that container's name: other test files start and remove containers at the same time.)
    const firstNamed = lateHops().findIndex((h) => h.workload === late.name);
    // One more request once named: every later hop keeps the name.
    await get(lab, late, web.addr);
    await sleep(1500);
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    expect(firstNamed, `no hop of ${late.name} named within ${Date.now() - started} ms; stderr: ${String((await child).stderr)}`).toBeGreaterThanOrEqual(0);
    const after = lateHops().slice(firstNamed);
    expect(after.length).toBeGreaterThan(1);
    for (const h of after) expect(h.workload).toBe(late.name);
  }, 240_000);

  it('should keep the names in a recording, replayed after the containers are gone', async () => {
    const file = join(dir, 'w.hoptrace');
    const { child } = await startReady(['record', '-o', file, '--filter', `container ${web.name} and tcp port 80`]);
    // The recorder writes the model (with the names) once its discovery finishes.
    await sleep(3000);
    await get(lab, client, web.addr);
    await sleep(1500);
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    await lab.cleanup();
    const r = await cli(['replay', file, '--json']);
    expect(r.exitCode).toBe(0);
    const hops = packets(String(r.stdout)).flatMap((p) => p.hops);
    expect(hops.filter((h) => h.netns === web.netns).length).toBeGreaterThan(0);
    for (const h of hops.filter((x) => x.netns === web.netns)) expect(h.workload).toBe(web.name);
    for (const h of hops.filter((x) => x.netns === client.netns)) expect(h.workload).toBe(client.name);
  }, 180_000);
});
