/**
 * A real podman pod (netavark, runc; infra container by catatonit) with two containers and a
 * port published on the pod, traced with the real `hoptrace trace --json`: the pod's one
 * namespace is named by the pod on every hop, a container outside it by its own name, and every
 * ordinary packet of the published port — reached through the host's address, through 127.0.0.1
 * and from another container by hairpin — is whole and on its expected path. Also: a recording
 * shorter than one discovery still names the pod when replayed (record captures the names at
 * its start).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, startReady, startTrace } from '../helpers/cli.js';
import { HTTPD, httpGet, PodmanLab, podmanMissing, podmanTry, type PodmanContainer } from '../helpers/podman.js';
import { expectOrdinary, hostAddress, parseTrace, what } from '../helpers/traced.js';

const missing = podmanMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function fromHost(addr: string, port: number): Promise<string> {
  const r = await fetch(`http://${addr}:${port}/`, { signal: AbortSignal.timeout(10_000) });
  return r.text();
}

describe.skipIf(missing !== null)(`podman pod traced: its name on every hop, its published port on its path (${missing ?? 'podman, runc, catatonit, root'})`, () => {
  let lab: PodmanLab;
  let pod = '';
  let web: PodmanContainer;
  let side: PodmanContainer;
  let client: PodmanContainer;
  let host = '';
  const port = 18000 + Math.floor(Math.random() * 900);
  const dir = mkdtempSync(join(tmpdir(), 'h6c-pod-'));

  beforeAll(async () => {
    host = await hostAddress();
    // Our own /24 in 10.161.0.0/16 (other files run podman labs at the same time).
    lab = await PodmanLab.create('h6c', `10.161.${Math.floor(Math.random() * 100)}.0/24`);
    try {
      pod = await lab.pod('pp', { publish: [`${port}:80`] });
      web = await lab.run('web', { pod, cmd: HTTPD });
      side = await lab.run('side', { pod });
      client = await lab.run('cli');
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 240_000);

  afterAll(async () => {
    await lab?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('should name the pod on every hop of its namespace and keep every packet of its published port on its path', async () => {
    expect(side.netns).toBe(web.netns);
    const { child } = await startTrace(['--json', '--filter', `net ${lab.net.subnet} or tcp port ${port}`]);
    let hairpinSelf: { ok: boolean } | undefined;
    try {
      expect(await lab.exec(client.name, httpGet(web.addr, 80))).toMatch(/^HTTP\/1\.[01] 200/);
      expect(await fromHost(host, port)).toContain('hello');
      expect(await fromHost('127.0.0.1', port)).toContain('hello');
      expect(await lab.exec(client.name, httpGet(host, port))).toMatch(/^HTTP\/1\.[01] 200/);
      // From the pod's other container, by hairpin through the host address.
      hairpinSelf = await podmanTry(['exec', side.name, ...httpGet(host, port)]);
      await sleep(1500);
    } finally {
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const { packets: all } = parseTrace(String(r.stdout));
    const mine = new Set([web.netns, client.netns]);
    const hostHops = (n: number): boolean => !mine.has(n);
    const packets = all.filter((p) => p.proto === 'tcp' && p.cloneOf === null && p.hops.some((h) => mine.has(h.netns)));
    // Five connections of at least six packets each.
    expect(packets.length, all.map(what).join('\n')).toBeGreaterThanOrEqual(5 * 6);
    expectOrdinary(packets, new Map([[web.netns, pod], [client.netns, client.name]]));
    // The pod calling its own published port through the host address: netavark leaves hairpin
    // mode off on the pod's bridge port, so the bridge frees the DNATed SYN at that port, and
    // the model says so (a drop, expected, not a divergence). With hairpin mode on it would land.
    const selfSyns = packets.filter((p) => p.hops[0]?.netns === side.netns && p.hops[0]?.dst === host && p.hops[0]?.dport === port);
    expect(selfSyns.length, packets.map(what).join('\n')).toBeGreaterThan(0);
    for (const p of selfSyns) {
      if (hairpinSelf?.ok === true) continue;
      expect(p.fate, what(p)).toBe('dropped');
      expect(p.expected?.fate, what(p)).toBe('dropped');
      expect(p.expected?.drop?.reason, what(p)).toContain('is not in hairpin mode');
    }
    for (const p of packets) {
      expect(p.hops[0]?.event, what(p)).toBe('xmit');
      if (!selfSyns.includes(p)) expect(p.fate, what(p)).toBe('delivered');
      for (const h of p.hops) if (hostHops(h.netns)) expect(h.workload, what(p)).toBeUndefined();
    }
    // The hairpin from cli is DNATed to the pod and masqueraded by netavark's mark.
    for (const from of hairpinSelf?.ok === true ? [client, side] : [client]) {
      const syn = packets.find((p) => p.hops[0]?.netns === from.netns && p.hops[0]?.tcpFlags === 0x02 && p.hops[0]?.dst === host && p.hops[0]?.dport === port);
      expect(syn, `${from.name}'s SYN to ${host}:${port}\n${packets.map(what).join('\n')}`).toBeDefined();
      expect(syn?.hops.at(-1), syn && what(syn)).toMatchObject({ netns: web.netns, workload: pod, src: lab.net.gateway, dst: web.addr, dport: 80 });
      expect(syn?.expected?.hops.flatMap((h) => h.rules).find((x) => x.verdict.startsWith('masquerade'))?.rule, syn && what(syn)).toContain('--mark 0x2000/0x2000');
    }
    // Localhost: the replies reach the host de-NATed to 127.0.0.1.
    expect(packets.some((p) => p.hops.some((h) => h.event === 'recv' && h.dst === '127.0.0.1' && h.nat !== null)), packets.map(what).join('\n')).toBe(true);
  }, 240_000);

  it('should name the pod in a replay of a 1 s recording (names captured at record start)', async () => {
    const file = join(dir, 'short.hoptrace');
    // A podman that answers after 2.5 s (under the resolver's 3 s deadline): a discovery outlasts the 1 s recording, so only names
    // captured at the start can be in it (a podman slower than the wait would leave them out).
    const bin = join(dir, 'slow-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'podman'), '#!/bin/sh\nsleep 2.5\nexec /usr/bin/podman "$@"\n', { mode: 0o755 });
    const { child } = await startReady(['record', '-o', file, '--filter', `host ${web.addr} and tcp port 80`], { PATH: `${bin}:${process.env.PATH ?? ''}` });
    const t0 = Date.now();
    // From the host (no `podman exec`, which alone can take longer than the recording).
    expect(await fromHost(web.addr, 80)).toContain('hello');
    await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    child.kill('SIGINT');
    const rec = await child;
    expect(rec.exitCode, String(rec.stderr)).toBe(0);
    const r = await cli(['replay', file, '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const hops = parseTrace(String(r.stdout)).packets.flatMap((p) => p.hops);
    expect(hops.filter((h) => h.netns === web.netns).length).toBeGreaterThan(0);
    for (const h of hops.filter((x) => x.netns === web.netns)) expect(h.workload).toBe(pod);
    // The host's own hops carry none.
    for (const h of hops.filter((x) => x.netns !== web.netns)) expect(h.workload).toBeUndefined();
  }, 120_000);
});
