/**
 * Recording a real lab: record with TraceSession while the lab's traffic runs, then replay the
 * file and get exactly the packets that reconstructing the captured events gives, and the live
 * packets of the same run. Then the CLI: record, stop by signal, by duration, by count, killed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { decodeRecording } from '../../shared/recording/index.js';
import { TraceSession } from '../../server/trace-session.js';
import { NamespaceNames } from '../../server/topology/namespace-names.js';
import { RecordingFile, replayRecording, startRecording } from '../../server/recording/index.js';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startLabServers, trafficRound } from '../../server/lab/rounds.js';
import type { Server } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, labInodes, randomPrefix } from '../helpers/cli.js';
import { tempDir } from './fixtures.js';
import { TIERS_HERE } from '../helpers/tiers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)(`recording a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];
  let roles: Map<number, string>;
  const tmp = tempDir();

  beforeAll(async () => {
    lab = labFor(randomPrefix('rc'));
    await labUp(lab);
    servers = await startLabServers(lab);
    roles = labInodes(lab);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
    tmp.cleanup();
  });

  const ours = (p: Packet): boolean => p.hops.every((h) => roles.has(h.netns));

  it('should replay the same packets as the live trace, and as reconstructing the captured events', async () => {
    const session = new TraceSession({ filter: 'udp or tcp' });
    const names = new NamespaceNames();
    await session.start();
    const path = tmp.file('lab.hoptrace');
    const live: Packet[] = [];
    const captured: HopEvent[] = [];
    try {
      const rec = await startRecording(session, path, { names, topology: false, onPacket: (p) => live.push(p) });
      session.on('hop', (ev) => captured.push(ev));
      await trafficRound(lab);
      await trafficRound(lab);
      await sleep(300);
      await session.stop();
      const result = await rec.stop('test');
      expect(result.error).toBeNull();
      expect(result.events).toBe(captured.length);
    } finally {
      await session.stop();
    }

    // The file holds exactly the events the session emitted, in order.
    const decoded = decodeRecording(readFileSync(path));
    expect(decoded.summary).toMatchObject({ ended: true, truncatedAt: null, damage: { regions: 0 } });
    expect(decoded.records.flatMap((r) => (r.kind === 'event' ? [r.event] : []))).toEqual(captured);
    expect(decoded.header.filter).toBe(session.filterText);
    expect(decoded.header.dropReasons.get(session.dropReasons.notSpecified)).toBe('NOT_SPECIFIED');

    const file = await RecordingFile.open(path);
    const replayed: Packet[] = [];
    try {
      const recordedNames = await file.namespaceNames();
      for (const [inode, role] of roles) expect(recordedNames.get(inode)).toBe(lab.ns[role as keyof Lab['ns']]);
      await replayRecording(file, { onPacket: (p) => { replayed.push(p); } });
      // Events alone (no recorded clock) give exactly what reconstructing the captured events gives.
      const eventsOnly: Packet[] = [];
      await replayRecording(file, { clock: false, onPacket: (p) => { eventsOnly.push(p); } });
      const direct = reconstructAll(captured, { nsName: (n) => recordedNames.get(n) ?? null, dropReason: session.dropReasons.name, accept: session.accepts });
      expect(eventsOnly).toEqual(direct);
      expect(decoded.records.filter((r) => r.kind === 'clock').length).toBeGreaterThan(5);
    } finally {
      await file.close();
    }

    // Our lab's packets: what the trace showed live is what the replay shows.
    const mine = replayed.filter(ours);
    expect(mine.length).toBeGreaterThanOrEqual(10);
    expect(mine.some((p) => p.drop?.reason === 'NETFILTER_DROP' && p.drop.ns === lab.ns.node)).toBe(true);
    expect(mine.some((p) => p.hops.some((h) => h.nat?.kind === 'dnat'))).toBe(true);
    expect(mine.some((p) => p.family === 6)).toBe(true);
    expect(mine.every((p) => p.hops.every((h) => h.ns === lab.ns[roles.get(h.netns) as keyof Lab['ns']]))).toBe(true);
    // With the recorded clock, replay is the live run again: every packet, not only ours.
    expect(replayed).toEqual(live);
  });

  /** Starts `hoptrace record` and resolves once it printed `ready` (wrapped: a returned child would be awaited). */
  async function startRecord(args: string[]): Promise<{ child: ReturnType<typeof cli> }> {
    const child = cli(['record', ...args]);
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`record did not get ready: ${err}`)), 60_000);
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('ready\n')) { clearTimeout(timer); resolve(); }
      });
      void child.then(() => { clearTimeout(timer); reject(new Error(`record exited before ready: ${err}`)); });
    });
    return { child };
  }

  async function replayJson(path: string): Promise<{ packets: Packet[]; stderr: string; exitCode: number | undefined }> {
    const r = await cli(['replay', path, '--json']);
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet);
    return { packets: packets.filter(ours), stderr: String(r.stderr), exitCode: r.exitCode };
  }

  it('should record from the CLI until SIGTERM, and replay with the lab\'s names', async () => {
    const path = tmp.file('cli.hoptrace');
    const { child } = await startRecord(['-o', path, '--filter', `udp and host ${lab.addr.pod2}`]);
    await trafficRound(lab);
    await sleep(1500);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toMatch(/recording \d+ s, \d+ events, \d+ packets, [\d.]+ (B|KiB|MiB), \d+ lost/);
    expect(String(r.stderr)).toMatch(new RegExp(`recorded \\d+ events \\(\\d+ packets, \\d+ lost in the kernel\\) in [\\d.]+ s to ${path}`));
    const out = await replayJson(path);
    expect(out.exitCode).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.packets.length).toBeGreaterThanOrEqual(2);
    expect(out.packets.every((p) => p.hops.some((h) => h.dst === lab.addr.pod2 || h.src === lab.addr.pod2))).toBe(true);
    // Packets come out as they complete, so the reply may come before its request: pick by direction.
    const request = out.packets.find((p) => p.hops[0]?.dst === lab.addr.pod2);
    expect(request?.hops[0]?.ns).toBe(lab.ns.pod1);
    expect(request?.hops.at(-1)?.ns).toBe(lab.ns.pod2);
  });

  it.each(TIERS_HERE)('should name the probe tier and the probe points it attached in the header ($tier tier)', async ({ tier, env }) => {
    const path = tmp.file(`tier-${tier}.hoptrace`);
    const r = await cli(['record', '-o', path, '--duration', '1', '--hops', 'xmit,recv,drop', '--filter', 'udp port 1'], { env });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const { header } = decodeRecording(readFileSync(path));
    expect(header.probeTier).toBe(tier);
    const hops = tier === 'fast'
      ? ['rawtracepoint:net_dev_start_xmit', 'rawtracepoint:netif_receive_skb', 'rawtracepoint:kfree_skb']
      : ['tracepoint:net:net_dev_start_xmit', 'tracepoint:net:netif_receive_skb', 'tracepoint:skb:kfree_skb'];
    expect([...header.probes].sort()).toEqual(hops.sort());
    expect(header.bpftraceVersion).toMatch(tier === 'fast' ? /v0\.(2[1-9]|[3-9]\d)/ : /v0\.(1\d|20)\./);
  });

  it('should stop at --duration and at --count packets', async () => {
    const path = tmp.file('dur.hoptrace');
    const t = Date.now();
    const byDuration = cli(['record', '-o', path, '--duration', '2', '--filter', 'udp port 1']);
    const r = await byDuration;
    expect(r.exitCode).toBe(0);
    expect(Date.now() - t).toBeGreaterThan(2000);
    const end = decodeRecording(readFileSync(path)).records.at(-1);
    expect(end?.kind === 'end' && end.end.reason).toBe('duration');

    const path2 = tmp.file('count.hoptrace');
    const { child } = await startRecord(['-o', path2, '--count', '2', '--filter', `udp and host ${lab.addr.pod2}`]);
    for (let i = 0; i < 5 && child.exitCode === null; i++) {
      await trafficRound(lab);
      await sleep(500);
    }
    const r2 = await child;
    expect(r2.exitCode).toBe(0);
    const end2 = decodeRecording(readFileSync(path2)).records.at(-1);
    expect(end2?.kind === 'end' && end2.end.reason).toBe('count');
    expect(end2?.kind === 'end' && end2.end.packets).toBeGreaterThanOrEqual(2);

    const again = await cli(['record', '-o', path2, '--duration', '1']);
    expect(again.exitCode).toBe(2);
    expect(String(again.stderr)).toMatch(/already exists; use --force/);
  });

  it('should leave a replayable file when the recorder is killed', async () => {
    const path = tmp.file('killed.hoptrace');
    const { child } = await startRecord(['-o', path, '--filter', `udp and host ${lab.addr.pod2}`]);
    await trafficRound(lab);
    await sleep(1200); // past one flush and one fsync
    const { stdout: pids } = await execa('pgrep', ['-P', String(child.pid), '-x', 'bpftrace'], { reject: false });
    child.kill('SIGKILL');
    await child;
    expect(existsSync(path)).toBe(true);
    const out = await replayJson(path);
    expect(out.exitCode).toBe(0);
    expect(out.stderr).toMatch(/has no end record|is truncated/);
    expect(out.packets.length).toBeGreaterThanOrEqual(1);
    // bpftrace dies with its parent (pdeathsig); detaching its probes takes a moment.
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const bpftrace = String(pids).trim().split('\n').filter(Boolean).map(Number);
    expect(bpftrace.length).toBeGreaterThan(0);
    for (let i = 0; i < 100 && bpftrace.some(alive); i++) await sleep(100);
    expect(bpftrace.filter(alive)).toEqual([]);
  });

  it('should stop with a clear error when the disk fills, leaving a readable file', async () => {
    // 16 KiB holds the header and the namespace names, not the discovered topology model.
    const mnt = join(tmp.dir, 'tiny');
    mkdirSync(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'hoptrace-test', mnt]);
    try {
      const path = join(mnt, 'full.hoptrace');
      const r = await cli(['record', '-o', path, '--duration', '50', '--filter', 'udp port 1']);
      expect(r.exitCode).toBe(1);
      expect(String(r.stderr)).toMatch(new RegExp(`recording stopped: no space left on the device holding ${path}; the \\d+ events written before stay readable in ${path}`));
      const out = await replayJson(path);
      expect(out.exitCode).toBe(0);
      expect(out.stderr).toMatch(/is truncated|has no end record/);
    } finally {
      await execa('umount', [mnt], { reject: false });
      if (existsSync(mnt)) rmdirSync(mnt);
    }
  });
});
