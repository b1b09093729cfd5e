/**
 * The first hop of a port forward reached from the host itself. `curl 127.0.0.1:PORT` to a port
 * podman publishes is DNATed in the host's OUTPUT (and masqueraded: route_localnet) before any
 * device sees it: the packet never crosses `lo`, and its first hop is the bridge's transmit,
 * already rewritten. The probes read the sending socket's own tuple on that first hop, so the hop
 * reads "was 127.0.0.1:PORT" and the model expects the connection's very first SYN from what the
 * socket sent, not from a guess. The same through the host's own address (DNAT only), and on both
 * probe tiers (raw tracepoints and classic ones) at once.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { statSync } from 'node:fs';
import { execa } from 'execa';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import { decide, parseBpftraceVersion, privateBpftracePath, versionAtLeast } from '../../server/bpftrace-binary.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startReady, startTrace, type CliProcess } from '../helpers/cli.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { podmanMissing, usePublishedWeb } from '../helpers/podman.js';

type Annotated = Packet & PacketExpectation;

const systemPath = await execa('sh', ['-c', 'command -v bpftrace'], { reject: false }).then((r) => String(r.stdout).trim());
const systemVersion = systemPath ? await execa(systemPath, ['--version'], { reject: false }).then((r) => parseBpftraceVersion(String(r.stdout))) : null;
const fast = await decide(undefined, privateBpftracePath(), 'bpftrace');
const bothTiers = systemVersion !== null && !versionAtLeast(systemVersion, [0, 21]) && fast.tier === 'fast';
const missing = !isRoot ? NEEDS_ROOT : podmanMissing() ?? (bothTiers ? null : `needs a classic system bpftrace and a fast one (system ${systemVersion ?? 'none'}, chosen ${fast.version ?? 'none'} ${fast.tier}): run npm run setup`);
const TIERS = { classic: { HOPTRACE_BPFTRACE: systemPath }, fast: { HOPTRACE_BPFTRACE: '' } } as const;

const what = (p: Annotated): string => `${p.proto} ${p.src}:${p.sport} > ${p.dst}:${p.dport} flags=${p.hops[0]?.tcpFlags} len=${p.hops[0]?.len} [${p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event} ${h.src}:${h.sport}>${h.dst}:${h.dport}${h.nat ? ` ${h.nat.kind} was ${h.nat.from.src}:${h.nat.from.sport}>${h.nat.from.dst}:${h.nat.from.dport}` : ''}`).join(', ')}] expected ${p.expected?.flow.src}:${p.expected?.flow.sport}>${p.expected?.flow.dst}:${p.expected?.flow.dport} guess=${p.expected?.guess} ${p.expected?.notes.join('; ')} ${p.divergence?.summary ?? ''}`;

async function stop(child: CliProcess): Promise<{ packets: Annotated[]; stderr: string; exitCode: number | undefined }> {
  child.kill('SIGINT');
  const r = await child;
  const packets = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated | { type: string }).filter((p): p is Annotated => 'id' in p);
  return { packets, stderr: String(r.stderr), exitCode: r.exitCode };
}

/**
 * `trace --json --filter FILTER` on both tiers at once while the published page is fetched
 * through 127.0.0.1 and the host address: what each tier printed, classic first.
 */
async function bothTiersFetching(filterText: string, host: string, port: number): Promise<Awaited<ReturnType<typeof stop>>[]> {
  const filter = ['--json', '--filter', filterText];
  const [classic, fastTrace] = await Promise.all([startTrace(filter, TIERS.classic), startTrace(filter, TIERS.fast)]);
  try {
    for (const addr of ['127.0.0.1', host]) {
      const r = await fetch(`http://${addr}:${port}/`, { signal: AbortSignal.timeout(10_000) });
      expect(await r.text()).toContain('hello');
    }
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    classic.child.kill('SIGINT');
    fastTrace.child.kill('SIGINT');
  }
  return Promise.all([stop(classic.child), stop(fastTrace.child)]);
}

describe.skipIf(missing !== null)(`a published port reached from the host's own namespace (${missing ?? 'root, podman, both tiers'})`, () => {
  const published = usePublishedWeb('h6lfw', `10.162.${10 + Math.floor(Math.random() * 200)}.0/24`);

  it('should show the DNAT from the socket\'s own tuple on the first hop and expect the first SYN from it, on both tiers', async () => {
    const { lab, web, host, port } = published;
    const tiers = await bothTiersFetching(`net ${lab.net.subnet}`, host, port);
    for (const [i, t] of tiers.entries()) {
      const tier = i === 0 ? 'classic' : 'fast';
      expect(t.exitCode, `${tier}: ${t.stderr}`).toBe(0);
      const mine = t.packets.filter((p) => p.proto === 'tcp' && p.cloneOf === null && p.hops.some((h) => h.netns === web.netns));
      const syns = mine.filter((p) => p.hops[0]?.tcpFlags === 0x02 && p.hops[0]?.ns === 'host');
      const dump = mine.map(what).join('\n');
      // One SYN through 127.0.0.1, one through the host address.
      expect(syns, `${tier}:\n${dump}`).toHaveLength(2);
      const [local, viaHost] = [syns.find((p) => p.hops[0]?.nat?.from.dst === '127.0.0.1'), syns.find((p) => p.hops[0]?.nat?.from.dst === host)];
      // 127.0.0.1: DNAT to the container and masquerade (route_localnet), both on the first hop.
      expect(local?.hops[0], `${tier}:\n${dump}`).toMatchObject({ ifname: lab.net.bridge, event: 'xmit', src: lab.net.gateway, dst: web.addr, dport: 80,
        nat: { kind: 'both', from: { src: '127.0.0.1', dst: '127.0.0.1', dport: port } } });
      // The host address: DNAT only (the socket's source is the host address, not masqueraded).
      expect(viaHost?.hops[0], `${tier}:\n${dump}`).toMatchObject({ ifname: lab.net.bridge, event: 'xmit', dst: web.addr, dport: 80,
        nat: { kind: 'dnat', from: { src: host, dst: host, dport: port } } });
      // route_localnet read from the host (netavark turns it on for its bridge), not assumed.
      expect(local?.expected?.notes.join('\n'), `${tier}: ${local && what(local)}`).toContain(`route_localnet=1 on ${lab.net.bridge}`);
      for (const s of [local, viaHost]) {
        // Expected from the rules, not guessed: the path starts at what the socket sent.
        expect(s?.expected?.flow, `${tier}: ${s && what(s)}`).toMatchObject({ dst: s?.hops[0]?.nat?.from.dst, dport: port });
        expect(s?.expected?.guess, `${tier}: ${s && what(s)}`).toBe(false);
        expect(s?.expected?.hops[0]?.rules.map((x) => x.verdict), `${tier}: ${s && what(s)}`).toContain(`dnat to ${web.addr}:80`);
      }
      // Every packet of both connections on its expected path.
      expect(mine.length, `${tier}:\n${dump}`).toBeGreaterThanOrEqual(2 * 6);
      for (const p of mine) {
        expect(p.expected, `${tier}: ${what(p)}`).not.toBeNull();
        expect(p.divergence, `${tier}: ${what(p)}`).toBeNull();
      }
    }
  }, 180_000);
});

/**
 * `--filter 'tcp port <published>'` is what a user types to see their port forward, but no hop of
 * a connection made from the host itself carries that port: its OUTPUT DNAT ran before the first
 * device. The probes try the filter on the sending socket's own tuple on that first hop too
 * (probes/emit.bt, shared/filter compileSocketToBpftrace), so the requests are followed from
 * their first SYN; the replies match by the flow the requests left (and show the port once
 * de-NATed).
 */
describe.skipIf(missing !== null)(`a published port filtered by its own number from the host (${missing ?? 'root, podman, both tiers'})`, () => {
  const published = usePublishedWeb('h6qlf', `10.169.${10 + Math.floor(Math.random() * 200)}.0/24`);

  it('should follow the requests through 127.0.0.1 and the host address from their first SYN, on both tiers', async () => {
    const { lab, web, host, port } = published;
    const tiers = await bothTiersFetching(`tcp port ${port}`, host, port);
    for (const [i, t] of tiers.entries()) {
      const tier = i === 0 ? 'classic' : 'fast';
      expect(t.exitCode, `${tier}: ${t.stderr}`).toBe(0);
      const mine = t.packets.filter((p) => p.proto === 'tcp' && p.cloneOf === null && p.hops.some((h) => h.netns === web.netns));
      const dump = mine.map(what).join('\n');
      // No hop of a request carries the published port: only its socket's tuple does.
      const requests = mine.filter((p) => p.hops[0]?.ns === 'host' && p.hops[0]?.dport === 80);
      for (const p of requests) expect(p.hops.some((h) => h.dport === port), `${tier}: ${what(p)}`).toBe(false);
      const syns = requests.filter((p) => p.hops[0]?.tcpFlags === 0x02);
      expect(syns, `${tier}:\n${dump}`).toHaveLength(2);
      const [local, viaHost] = [syns.find((p) => p.hops[0]?.nat?.from.dst === '127.0.0.1'), syns.find((p) => p.hops[0]?.nat?.from.dst === host)];
      expect(local?.hops[0], `${tier}:\n${dump}`).toMatchObject({ ifname: lab.net.bridge, event: 'xmit', src: lab.net.gateway, dst: web.addr, dport: 80,
        nat: { kind: 'both', from: { src: '127.0.0.1', dst: '127.0.0.1', dport: port } } });
      expect(viaHost?.hops[0], `${tier}:\n${dump}`).toMatchObject({ ifname: lab.net.bridge, event: 'xmit', dst: web.addr, dport: 80,
        nat: { kind: 'dnat', from: { src: host, dst: host, dport: port } } });
      for (const s of [local, viaHost]) {
        // The SYN is followed to the container and taken there.
        expect(s?.hops.some((h) => h.netns === web.netns && h.event === 'recv'), `${tier}: ${s && what(s)}`).toBe(true);
        expect(s?.expected?.flow, `${tier}: ${s && what(s)}`).toMatchObject({ dst: s?.hops[0]?.nat?.from.dst, dport: port });
      }
      // The request data too (its socket's tuple), and the replies (the flow the requests left).
      expect(requests.filter((p) => (p.hops[0]?.len ?? 0) > 60).length, `${tier}:\n${dump}`).toBeGreaterThanOrEqual(2);
      expect(mine.filter((p) => p.sport === 80 && p.hops[0]?.netns === web.netns).length, `${tier}:\n${dump}`).toBeGreaterThanOrEqual(4);
      for (const p of mine) {
        expect(p.expected, `${tier}: ${what(p)}`).not.toBeNull();
        expect(p.divergence, `${tier}: ${what(p)}`).toBeNull();
      }
    }
  }, 180_000);

  it('should count the requests in stats filtered by the published port, on both tiers', async () => {
    const { lab, web, host, port } = published;
    const args = ['stats', '--json', '--filter', `tcp port ${port}`];
    const [classic, fastStats] = await Promise.all([startReady(args, TIERS.classic), startReady(args, TIERS.fast)]);
    try {
      for (const addr of ['127.0.0.1', host, '127.0.0.1', host]) {
        const r = await fetch(`http://${addr}:${port}/`, { signal: AbortSignal.timeout(10_000) });
        expect(await r.text()).toContain('hello');
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      classic.child.kill('SIGINT');
      fastStats.child.kill('SIGINT');
    }
    const hostNetns = statSync('/proc/self/ns/net').ino;
    for (const [tier, child] of [['classic', classic.child], ['fast', fastStats.child]] as const) {
      const r = await child;
      expect(r.exitCode, `${tier}: ${String(r.stderr)}`).toBe(0);
      const docs = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatsDocument);
      const segs = docs.flatMap((d) => d.segments);
      // No request carries the port on any hop: only the socket's tuple on the bridge's transmit
      // (their first hop) lets them count. Four connections of at least SYN, request and ACK.
      const requests = segs.filter((x) => x.from.netns === hostNetns && x.from.ifname === lab.net.bridge && x.from.event === 'xmit').reduce((n, x) => n + x.count, 0);
      expect(requests, `${tier}: ${JSON.stringify(segs.map((x) => [x.from, x.to, x.count]))}`).toBeGreaterThanOrEqual(4 * 3);
      // And they reach the container.
      expect(segs.some((x) => x.to.netns === web.netns && x.from.netns === hostNetns), tier).toBe(true);
    }
  }, 180_000);
});

/** busybox's nc (busybox-static is a test dependency): `nc` itself is not installed everywhere. */
const BUSYBOX = '/bin/busybox';

describe.skipIf(!isRoot || !bothTiers)(`an IPv6 connection DNATed in its own namespace's OUTPUT (${!isRoot ? NEEDS_ROOT : bothTiers ? 'root, both tiers' : 'needs both tiers'})`, () => {
  const tag = Math.random().toString(16).slice(2, 7);
  const [a, b] = [`h6l${tag}-a`, `h6l${tag}-b`];
  const ip = (...args: string[]): Promise<unknown> => execa('ip', args);

  beforeAll(async () => {
    await ip('netns', 'add', a);
    await ip('netns', 'add', b);
    await ip('link', 'add', 'h6lva', 'netns', a, 'type', 'veth', 'peer', 'name', 'h6lvb', 'netns', b);
    for (const [ns, dev, addr] of [[a, 'h6lva', 'fd62:6::1/64'], [b, 'h6lvb', 'fd62:6::2/64']] as const) {
      await ip('-n', ns, 'addr', 'add', addr, 'dev', dev, 'nodad');
      await ip('-n', ns, 'link', 'set', dev, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    await execa('ip', ['netns', 'exec', a, 'ip6tables', '-t', 'nat', '-A', 'OUTPUT', '-d', 'fd62:6::99', '-p', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', '[fd62:6::2]:80']);
  }, 60_000);

  afterAll(async () => {
    await execa('ip', ['netns', 'del', a], { reject: false });
    await execa('ip', ['netns', 'del', b], { reject: false });
  });

  it("should read the IPv6 socket's own destination on the first hop, on both tiers", async () => {
    const filter = ['--json', '--no-model', '--filter', 'net fd62:6::/64'];
    const [classic, fastTrace] = await Promise.all([startTrace(filter, TIERS.classic), startTrace(filter, TIERS.fast)]);
    const server = execa('ip', ['netns', 'exec', b, BUSYBOX, 'nc', '-l', '-p', '80'], { reject: false, timeout: 30_000 });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await execa('ip', ['netns', 'exec', a, BUSYBOX, 'nc', 'fd62:6::99', '8080'], { input: 'hello\n', timeout: 10_000 });
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      server.kill();
      classic.child.kill('SIGINT');
      fastTrace.child.kill('SIGINT');
    }
    await server;
    const ino = statSync(`/run/netns/${a}`).ino;
    for (const t of await Promise.all([stop(classic.child), stop(fastTrace.child)])) {
      expect(t.exitCode, t.stderr).toBe(0);
      const sent = t.packets.filter((p) => p.proto === 'tcp' && p.hops[0]?.netns === ino);
      expect(sent.length, sent.map(what).join('\n')).toBeGreaterThanOrEqual(3);
      // The connection's own packets carry its socket's tuple. An ACK the kernel sends for a
      // TIME_WAIT connection goes out on its per-namespace control socket, which has no peer:
      // such a packet may carry none (the model knows the connection by then).
      const own = sent.filter((p) => (p.hops[0]?.tcpFlags ?? 0) & 0x02 || (p.hops[0]?.len ?? 0) > 40 + 32);
      expect(own.length, sent.map(what).join('\n')).toBeGreaterThanOrEqual(2);
      for (const p of [...own, ...sent.filter((x) => x.hops[0]?.nat)]) {
        expect(p.hops[0], what(p)).toMatchObject({ ifname: 'h6lva', event: 'xmit', dst: 'fd62:6::2', dport: 80,
          nat: { kind: 'dnat', from: { src: 'fd62:6::1', dst: 'fd62:6::99', dport: 8080, sport: p.hops[0]?.sport } } });
      }
      // The replies left a listening socket's connection whose tuple is the header's: no NAT.
      const replies = t.packets.filter((p) => p.proto === 'tcp' && p.hops[0]?.netns !== ino && p.sport === 80);
      expect(replies.length).toBeGreaterThan(0);
      for (const p of replies) expect(p.hops[0]?.nat, what(p)).toBeNull();
    }
  }, 120_000);
});
