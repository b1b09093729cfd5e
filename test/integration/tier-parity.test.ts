/**
 * Both probe tiers from one source see the same packets. A fast-tier trace (raw tracepoints,
 * bpftrace ≥ 0.21: the default when `npm run setup` made one) and a classic-tier trace (the
 * system's older bpftrace through HOPTRACE_BPFTRACE) run at the same time over the same lab
 * traffic — bridge, MASQUERADE and its reply, a DNAT port-forward, a FORWARD drop, IPv6, a root
 * ping's raw-socket reply — and must report the same packets: paths, fates, drop reasons, NAT.
 * The same holds for `record` (replayed), `--sample`, `--notes` (kinds of notes per namespace),
 * `--netfilter` (rules met, one tier after the other) and the service (a session's /packets, one
 * `serve` per tier). Then `stats` on each tier must count the same segments for the same packets.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { labNets } from '../../server/lab/lab.js';
import { trafficRound, ECHO } from '../../server/lab/rounds.js';
import { ping, sendUdp } from '../../server/lab/traffic.js';
import { decide, parseBpftraceVersion, privateBpftracePath, versionAtLeast } from '../../server/bpftrace-binary.js';
import type { Packet } from '../../shared/packet.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { api, postJson, runCli, waitFor } from '../service/helpers.js';
import { cli, startReady, startTrace, type CliProcess } from '../helpers/cli.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The classic tier: the system's bpftrace when older than 0.21 (Debian 12's 0.17). */
const systemPath = await execa('sh', ['-c', 'command -v bpftrace'], { reject: false }).then((r) => String(r.stdout).trim());
const systemVersion = systemPath ? await execa(systemPath, ['--version'], { reject: false }).then((r) => parseBpftraceVersion(String(r.stdout))) : null;
const fast = await decide(undefined, privateBpftracePath(), 'bpftrace');
const bothTiers = isRoot && systemVersion !== null && !versionAtLeast(systemVersion, [0, 21]) && fast.tier === 'fast';
const why = !isRoot ? NEEDS_ROOT : bothTiers ? '' : `needs a classic system bpftrace and a fast one (system ${systemVersion ?? 'none'}, chosen ${fast.version ?? 'none'} ${fast.tier}): run npm run setup`;

const CLASSIC = { HOPTRACE_BPFTRACE: systemPath };
const FAST = { HOPTRACE_BPFTRACE: '' };

describe.skipIf(!bothTiers)(`fast and classic tiers on the same traffic (${why || 'both tiers present'})`, () => {
  const demo = useLabWithServers('tp');

  const hop = (h: Packet['hops'][number]): string => {
    const nat = h.nat ? ` ${h.nat.kind} ${JSON.stringify(h.nat.to)}` : '';
    return `${demo.roles.get(h.netns) ?? '?'}/${h.ifname}/${h.event} ${h.src}:${h.sport}>${h.dst}:${h.dport}${nat}`;
  };
  /** A packet as both tiers must agree on it: tuple, TCP flags, hop path with tuples and NAT, fate, drop. */
  const canonical = (p: Packet): string =>
    [`${p.proto} ${p.src}:${p.sport}>${p.dst}:${p.dport} flags=${p.hops[0]?.tcpFlags ?? 0} icmp=${p.hops[0]?.icmpType ?? ''}`,
      ...p.hops.map(hop), `fate=${p.fate} by=${p.fateBy} drop=${p.drop ? `${p.drop.reason}@${demo.roles.get(p.drop.netns) ?? '?'}/${p.drop.ifname}` : '-'}`].join('\n  ');

  const ours = (p: Packet): boolean => p.hops.length > 0 && p.hops.every((h) => demo.roles.has(h.netns)) && !p.src.startsWith('fe80:') && !p.dst.startsWith('ff02:');

  async function stop(child: CliProcess, withNotes = false): Promise<{ packets: string[]; notes: string[]; stderr: string; exitCode: number | undefined; lost: number }> {
    child.kill('SIGINT');
    const r = await child;
    const lines = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Packet | { type: 'lost'; events: number });
    // Only what the test sends: router solicitations and neighbour discovery come and go on their
    // own schedule, around either tracer's start and stop.
    const packets = lines.filter((l): l is Packet => 'id' in l).filter(ours);
    const lost = lines.reduce((n, l) => n + ('type' in l && l.type === 'lost' ? l.events : 0), 0);
    // The kinds of notes each packet got, where (namespace role): their timing is the kernel's own.
    const notes = withNotes ? [...new Set(packets.flatMap((p) => (p.notes ?? []).map((n) => `${demo.roles.get(n.netns) ?? '?'} ${n.kind}`)))].sort() : [];
    return { packets: packets.map(canonical).sort(), notes, stderr: String(r.stderr), exitCode: r.exitCode, lost };
  }

  it('should report the same packets, paths, fates and NAT on both tiers', async () => {
    const nets = labNets(demo.lab);
    const filter = `net ${nets.pods} or net ${nets.ext} or ip6`;
    const [classic, fastTrace] = await Promise.all([
      startTrace(['--json', '--no-model', '--filter', filter], CLASSIC),
      startTrace(['--json', '--no-model', '--filter', filter], FAST),
    ]);
    const round = await trafficRound(demo.lab);
    const pinged = await ping(demo.lab.ns.pod1, demo.lab.addr.pod2, 2);
    await new Promise((r) => setTimeout(r, 1500));
    const [c, f] = await Promise.all([stop(classic.child), stop(fastTrace.child)]);
    expect(round.every((x) => x.result.error === undefined), JSON.stringify(round)).toBe(true);
    expect(pinged.replies).toBe(2);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(c.lost + f.lost).toBe(0);
    // bpftrace 0.21+ warns at run time for each delete() of a missing key: the probes never do one.
    expect(f.stderr).not.toMatch(/WARNING/);
    // Every kind of packet the round makes is there: bridged, NATed both ways, dropped, IPv6, ping replies consumed.
    const all = f.packets.join('\n');
    expect(all).toMatch(/fate=dropped by=drop drop=NETFILTER_DROP@node\/br0/);
    expect(all).toMatch(/ dnat /);
    expect(all).toMatch(/ snat /);
    expect(all).toMatch(new RegExp(`^icmp ${demo.lab.addr.pod2.replaceAll('.', '\\.')}:0>${demo.lab.addr.pod1.replaceAll('.', '\\.')}:0 flags=0 icmp=0[\\s\\S]*?fate=delivered by=consume`, 'm'));
    expect(all).toMatch(new RegExp(`^udp ${demo.lab.addr.pod1v6}`, 'm'));
    expect(f.packets.length).toBeGreaterThanOrEqual(10);
    if (process.env.HOPTRACE_PARITY_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(`${process.env.HOPTRACE_PARITY_DUMP}.classic`, c.packets.join('\n'));
      writeFileSync(`${process.env.HOPTRACE_PARITY_DUMP}.fast`, f.packets.join('\n'));
    }
    expect(f.packets).toEqual(c.packets);
  }, 180_000);

  it('should record the same packets on both tiers, and replay them the same', async () => {
    const nets = labNets(demo.lab);
    const filter = `net ${nets.pods} or net ${nets.ext}`;
    const dir = mkdtempSync(join(tmpdir(), 'hoptrace-parity-'));
    try {
      const paths = { classic: join(dir, 'classic.hoptrace'), fast: join(dir, 'fast.hoptrace') };
      const [classic, fastRec] = await Promise.all([
        startReady(['record', '-o', paths.classic, '--filter', filter], CLASSIC),
        startReady(['record', '-o', paths.fast, '--filter', filter], FAST),
      ]);
      await trafficRound(demo.lab);
      await new Promise((r) => setTimeout(r, 1500));
      for (const c of [classic.child, fastRec.child]) c.kill('SIGINT');
      for (const c of [classic.child, fastRec.child]) expect((await c).exitCode).toBe(0);
      const replayed = await Promise.all([paths.classic, paths.fast].map(async (path) => {
        const r = await cli(['replay', path, '--json']);
        expect(r.exitCode, String(r.stderr)).toBe(0);
        return String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet).filter(ours).map(canonical).sort();
      }));
      expect(replayed[1]?.length).toBeGreaterThanOrEqual(10);
      expect(replayed[1]).toEqual(replayed[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('should follow the same sampled flows on both tiers (--sample 3)', async () => {
    const nets = labNets(demo.lab);
    const args = ['--json', '--no-model', '--sample', '3', '--filter', `udp and net ${nets.pods}`];
    const [classic, fastTrace] = await Promise.all([startTrace(args, CLASSIC), startTrace(args, FAST)]);
    // Many flows (each send from its own process: its own source port); 1 in 3 is followed, so
    // with 16 of them none followed is a (2/3)^16 = 0.15 % chance.
    for (let i = 0; i < 16; i++) await sendUdp(demo.lab.ns.pod1, demo.lab.addr.pod2, ECHO.podUdp, 2, 32, 5);
    await new Promise((r) => setTimeout(r, 1500));
    const [c, f] = await Promise.all([stop(classic.child), stop(fastTrace.child)]);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(f.packets.length).toBeGreaterThanOrEqual(2);
    // Not every flow: the sampling did leave some out (16 flows × 2 requests and 2 replies).
    expect(f.packets.length).toBeLessThan(64);
    expect(f.packets).toEqual(c.packets);
  }, 180_000);

  it('should see the same packets and the same kinds of notes with --notes on both tiers', async () => {
    const args = ['--json', '--no-model', '--notes', '--filter', `icmp and host ${demo.lab.addr.pod2}`];
    const [classic, fastTrace] = await Promise.all([startTrace(args, CLASSIC), startTrace(args, FAST)]);
    const pinged = await ping(demo.lab.ns.pod1, demo.lab.addr.pod2, 3);
    await new Promise((r) => setTimeout(r, 1500));
    const [c, f] = await Promise.all([stop(classic.child, true), stop(fastTrace.child, true)]);
    expect(pinged.replies).toBe(3);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(f.packets).toEqual(c.packets);
    expect(f.notes.length).toBeGreaterThan(0);
    expect(f.notes).toEqual(c.notes);
  }, 180_000);

  it('should meet the same netfilter rules with --netfilter on both tiers', async () => {
    // One tier after the other (each arms and disarms the rule trace): the same sends each time,
    // compared without the source port, which changes from send to send, and without the fate,
    // which depends on how soon the last hops arrive on a loaded machine. The first packet of a
    // connection meets the nat chains, the later ones only the filter chain (conntrack).
    const runs: string[][] = [];
    for (const env of [CLASSIC, FAST]) {
      const { child } = await startTrace(['--json', '--no-model', '--netfilter', '--filter', `udp and host ${demo.lab.addr.pod2}`], env);
      await sendUdp(demo.lab.ns.pod1, demo.lab.addr.pod2, ECHO.podUdp, 2, 32, 20);
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      // Each kind of packet once: the two sends of a kind meet the same rules.
      runs.push([...new Set(String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet).filter(ours)
        .map((p) => `${p.proto} ${p.src}>${p.dst}:${p.sport === ECHO.podUdp || p.sport === 80 ? 'reply' : p.dport} ${(p.netfilter ?? []).map((v) => `${demo.roles.get(v.netns) ?? '?'}/${v.hook}/${v.table}/${v.chain}/${v.type}/${v.verdict}`).join(' ')}`))].sort());
    }
    expect(runs[1]?.some((l) => /\/nat\/PREROUTING\//.test(l)) && runs[1]?.some((l) => /\/filter\/FORWARD\//.test(l)), runs[1]?.join('\n')).toBe(true);
    expect(runs[1]).toEqual(runs[0]);
  }, 180_000);

  it('should give the same packets through the service on both tiers', async () => {
    // Two services, one per tier (the bpftrace choice is per process), each with a session on the
    // same filter, over the same traffic; their /packets must agree.
    const nets = labNets(demo.lab);
    const filter = `net ${nets.pods} or net ${nets.ext}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'hoptrace-parity-svc-'));
    const services = [CLASSIC, FAST].map((env, i) => runCli(['serve', '--port', '0', '--data-dir', join(dataDir, String(i))], env));
    try {
      const urls = await Promise.all(services.map((child) => new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 90_000);
        child.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+\/)/.exec(out);
          if (m?.[1] && out.includes('Press Ctrl-C')) { clearTimeout(timer); resolve(m[1]); }
        });
        void child.then((r) => { clearTimeout(timer); reject(new Error(`serve exited (${r.exitCode}): ${String(r.stderr)}`)); });
      })));
      const ids = await Promise.all(urls.map(async (url) => {
        const created = await postJson<{ id: string }>(url, '/api/sessions', { filter });
        expect(created.status).toBe(201);
        await waitFor('the session running', async () => (await api<{ state: string }>(url, `/api/sessions/${created.body.id}`)).body.state === 'running', 60_000, 200);
        return created.body.id;
      }));
      await trafficRound(demo.lab);
      await new Promise((r) => setTimeout(r, 2500));
      const got = await Promise.all(urls.map(async (url, i) => {
        const r = await api<Packet[]>(url, `/api/sessions/${ids[i] ?? ''}/packets?limit=1000`);
        expect(r.status).toBe(200);
        return r.body.filter(ours).map(canonical).sort();
      }));
      expect(got[1]?.length).toBeGreaterThanOrEqual(10);
      expect(got[1]).toEqual(got[0]);
    } finally {
      for (const child of services) child.kill('SIGINT');
      for (const child of services) await child;
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);

  it('should count the same segments in stats on both tiers', async () => {
    const port = ECHO.podUdp;
    const filter = `udp and dst port ${port} and host ${demo.lab.addr.pod1}`;
    const [classic, fastStats] = await Promise.all([
      startReady(['stats', '--json', '--filter', filter], CLASSIC),
      startReady(['stats', '--json', '--filter', filter], FAST),
    ]);
    const sent = await sendUdp(demo.lab.ns.pod1, demo.lab.addr.pod2, port, 25, 32, 5);
    expect(sent.replies).toBe(25);
    await new Promise((r) => setTimeout(r, 800));
    const docs = await Promise.all([classic.child, fastStats.child].map(async (child) => {
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const last = String(r.stdout).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatsDocument).pop();
      return (last?.segments ?? [])
        .filter((s) => s.from.ns.startsWith(demo.lab.prefix) && s.to.ns.startsWith(demo.lab.prefix))
        .map((s) => `${s.from.ns}/${s.from.ifname}/${s.from.event} → ${s.to.ns}/${s.to.ifname}/${s.to.event} ${s.count}`).sort();
    }));
    expect(docs[1]?.length).toBeGreaterThanOrEqual(5);
    expect(docs[1]?.join('\n')).toMatch(/-pod1\/eth0\/xmit → .*-node\/veth-pod1\/rx 25/);
    expect(docs[1]).toEqual(docs[0]);
  }, 180_000);
});
