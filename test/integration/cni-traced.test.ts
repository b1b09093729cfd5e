/**
 * The CNI reference plugins (bridge + host-local + portmap + firewall, /usr/lib/cni) driven as a
 * CRI runtime drives them (test/helpers/cni.ts: CNI_ARGS with the pod's name, libcni's result
 * cache written after ADD), traced with the real `hoptrace trace --json` while traffic flows:
 * - container to container on the bridge;
 * - the published port (portmap hostPort) from the host through its own address and through
 *   127.0.0.1 (portmap's OUTPUT DNAT, masqueraded by its mark; route_localnet on the bridge);
 * - hairpin: a container calling the host's address on the published port, landing on the other
 *   container and on itself (portmap masquerades only the latter).
 * Every ordinary packet must be whole (known fate), on its expected path (no divergence) and
 * named by its pod on every hop in a container's namespace (the names a containerd or CRI-O user
 * sees: libcni's cache keeps the K8S_POD_NAMESPACE/K8S_POD_NAME the runtime passed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { statSync } from 'node:fs';
import { CniLab, cniMissing, type CniContainer } from '../helpers/cni.js';
import { cli, startTrace } from '../helpers/cli.js';
import { expectOrdinary, hostAddress, ncGet, parseTrace, what } from '../helpers/traced.js';

const missing = cniMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(missing !== null)(`CNI plugins traced: names, paths and NAT of a published port (${missing ?? 'containernetworking-plugins, root'})`, () => {
  let lab: CniLab;
  let web: CniContainer;
  let client: CniContainer;
  let host = '';
  let hostNetns = 0;
  const procs: ResultPromise[] = [];
  const hostPort = 18000 + Math.floor(Math.random() * 900);
  const label = (c: CniContainer): string => `${c.pod?.namespace}/${c.pod?.name}`;

  beforeAll(async () => {
    host = await hostAddress();
    hostNetns = statSync('/proc/self/ns/net').ino;
    lab = await CniLab.create('h6c', `10.161.${100 + Math.floor(Math.random() * 100)}.0/24`);
    try {
      web = await lab.add('web', { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] });
      client = await lab.add('cli');
      // Long-lived processes, as a container's: an HTTP server in web, a sleeper in cli.
      procs.push(execa('ip', ['netns', 'exec', web.netnsName, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'], { reject: false }));
      procs.push(execa('ip', ['netns', 'exec', client.netnsName, 'sleep', '600'], { reject: false }));
      await sleep(500);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill();
    await lab?.cleanup();
  });

  it('should name each CNI namespace by the pod in libcni\'s cache, in topology --json', async () => {
    const r = await cli(['topology', '--json', '--ns', web.netnsName]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const [ns] = (JSON.parse(String(r.stdout)) as { namespaces: Array<{ name: string; workload: string | null; workloads: unknown[] }> }).namespaces;
    expect(ns?.name).toBe(web.netnsName);
    expect(ns?.workload).toBe(label(web));
    expect(ns?.workloads).toEqual([{ runtime: 'cni', id: web.id, name: null, pod: web.pod?.name, k8sNamespace: web.pod?.namespace, image: null, sandbox: true }]);
  });

  it('should trace every packet of the published port whole, named and on its path: direct, host address, localhost, hairpin', async () => {
    const { child } = await startTrace(['--json', '--filter', `net ${lab.subnet} or tcp port ${hostPort}`]);
    const answers: Record<string, string> = {};
    try {
      answers.direct = await ncGet(client.netnsName, web.addr, 80);
      answers.hostAddr = await ncGet(null, host, hostPort);
      answers.localhost = await ncGet(null, '127.0.0.1', hostPort);
      answers.hairpinOther = await ncGet(client.netnsName, host, hostPort);
      answers.hairpinSelf = await ncGet(web.netnsName, host, hostPort);
      await sleep(1500);
    } finally {
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    // busybox httpd answers 404 for / (no index in /etc): any status line means the connection worked.
    for (const [k, v] of Object.entries(answers)) expect(v, k).toMatch(/^HTTP\/1\.[01] \d{3}/);

    const { packets: all, summary } = parseTrace(String(r.stdout));
    const mine = new Set([web.netns, client.netns]);
    const packets = all.filter((p) => p.proto === 'tcp' && p.cloneOf === null && p.hops.some((h) => mine.has(h.netns)) && p.hops.every((h) => mine.has(h.netns) || h.netns === hostNetns));
    // Five connections, each with a handshake, a request, a response and a teardown both ways.
    expect(packets.length, all.map(what).join('\n')).toBeGreaterThanOrEqual(5 * 6);
    expectOrdinary(packets, new Map([[web.netns, label(web)], [client.netns, label(client)]]));
    // Whole: each packet starts where a stack sent it (a transmit) and ends delivered. TCP frees
    // what it took in without a tracepoint, so the kernel reuses skb addresses at once: the trace
    // tells those packets apart (the summary's splits), and none may start mid-path.
    for (const p of packets) {
      expect(p.hops[0]?.event, what(p)).toBe('xmit');
      expect(p.fate, what(p)).toBe('delivered');
    }
    expect(summary, 'the summary line').not.toBeNull();

    const syns = packets.filter((p) => p.hops[0]?.tcpFlags === 0x02);
    // Direct: never NATed.
    const direct = syns.find((p) => p.hops[0]?.netns === client.netns && p.hops[0]?.dst === web.addr);
    expect(direct && direct.hops.every((h) => h.nat === null), direct && what(direct)).toBe(true);
    // Hairpin through the host address, from the other container and from web itself: DNATed to
    // web:80 in the host's PREROUTING (portmap's CNI-DN-… chain behind CNI-HOSTPORT-DNAT,
    // `--dst-type LOCAL`) and masqueraded by portmap's mark (CNI-DN-… marks sources of the
    // container network and 127.0.0.1 with 0x2000; CNI-HOSTPORT-MASQ masquerades on it): the SYN
    // reaches web from the gateway, and web's reply is de-NATed back to host:hostPort.
    for (const [who, from] of [['hairpin to the other', client], ['hairpin to itself', web]] as const) {
      const syn = syns.find((p) => p.hops[0]?.netns === from.netns && p.hops[0]?.dst === host && p.hops[0]?.dport === hostPort);
      expect(syn, `${who}: SYN to ${host}:${hostPort}\n${syns.map(what).join('\n')}`).toBeDefined();
      if (!syn) continue;
      expect(syn.hops.at(-1), what(syn)).toMatchObject({ netns: web.netns, src: lab.gateway, dst: web.addr, dport: 80 });
      expect(syn.hops.some((h) => h.netns === hostNetns && h.nat?.kind === 'both'), what(syn)).toBe(true);
      const rules = syn.expected?.hops.flatMap((h) => h.rules) ?? [];
      expect(rules.find((x) => x.verdict === `dnat to ${web.addr}:80`)?.chain, what(syn)).toMatch(/^CNI-DN-/);
      expect(rules.find((x) => x.verdict.startsWith('masquerade'))?.rule, what(syn)).toContain('--mark 0x2000/0x2000');
      const reply = packets.find((p) => p.hops[0]?.netns === web.netns && p.hops[0]?.sport === 80 && p.hops[0]?.dport === syn.sport && p.hops.at(-1)?.netns === from.netns);
      expect(reply?.hops.at(-1), reply && what(reply)).toMatchObject({ src: host, sport: hostPort, dst: from.addr });
    }
    // From the host: the host's own stack DNATs in OUTPUT before any device, so its packets are
    // first seen on the bridge already NATed (to web:80, from the host address; through
    // 127.0.0.1 also masqueraded from the gateway). Replies of the localhost connection are
    // de-NATed to 127.0.0.1 on the bridge, and the model expects them so.
    expect(syns.find((p) => p.hops[0]?.netns === hostNetns && p.hops[0]?.src === host && p.hops[0]?.dst === web.addr), 'the host-address SYN').toBeDefined();
    expect(syns.find((p) => p.hops[0]?.netns === hostNetns && p.hops[0]?.src === lab.gateway && p.hops[0]?.dst === web.addr), 'the localhost SYN').toBeDefined();
    const localReplies = packets.filter((p) => p.hops.some((h) => h.netns === hostNetns && h.event === 'recv' && h.dst === '127.0.0.1'));
    expect(localReplies.length, all.map(what).join('\n')).toBeGreaterThan(0);
    for (const p of localReplies) expect(p.hops.some((h) => h.nat !== null), what(p)).toBe(true);
  }, 180_000);

  it('should read route_localnet (portmap sets it on the bridge) and, with it off, expect the localhost forward dropped in OUTPUT', async () => {
    const topo = async (): Promise<{ all: boolean; devices: string[] } | undefined> => {
      const r = await cli(['topology', '--json']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      return (JSON.parse(String(r.stdout)) as { namespaces: Array<{ netns: number; routeLocalnet?: { all: boolean; devices: string[] } }> }).namespaces.find((n) => n.netns === hostNetns)?.routeLocalnet;
    };
    const key = `net.ipv4.conf.${lab.bridge}.route_localnet`;
    expect((await execa('sysctl', ['-n', key])).stdout.trim()).toBe('1');
    expect((await topo())?.devices).toContain(lab.bridge);
    const all = (await execa('sysctl', ['-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim();
    await execa('sysctl', ['-w', `${key}=0`]);
    try {
      expect((await topo())?.devices ?? []).not.toContain(lab.bridge);
      const { child } = await startTrace(['--json', '--filter', `net ${lab.subnet} or tcp port ${hostPort}`]);
      let answer = '';
      try {
        answer = await ncGet(null, '127.0.0.1', hostPort);
        await sleep(1000);
      } finally {
        child.kill('SIGINT');
      }
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const { packets } = parseTrace(String(r.stdout));
      if (all === '1') return; // route_localnet on all (set by someone else): nothing is dropped.
      expect(answer).toBe('');
      // The SYN (and its retransmissions): DNATed to web:80, then refused a route off lo.
      const dropped = packets.filter((p) => p.proto === 'tcp' && p.fate === 'dropped' && p.hops.every((h) => h.netns === hostNetns) && p.dst === web.addr && p.src === '127.0.0.1');
      expect(dropped.length, packets.map(what).join('\n')).toBeGreaterThan(0);
      for (const p of dropped) {
        expect(p.divergence, what(p)).toBeNull();
        expect(p.expected?.fate, what(p)).toBe('dropped');
        expect(p.expected?.drop?.reason, what(p)).toContain(`route_localnet is 0 on ${lab.bridge} and on all`);
      }
    } finally {
      await execa('sysctl', ['-w', `${key}=1`]);
    }
  }, 120_000);
});
