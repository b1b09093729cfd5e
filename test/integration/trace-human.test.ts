/**
 * `hoptrace trace` as a person runs it, on a real lab: `ready` on stderr once attached, one block
 * per packet with one line per hop (+Δt, namespace, interface, event, tuple), Ctrl-C detaching and
 * printing what was collected, --count and --duration ending the trace, no bpftrace left behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { sendUdp, startEcho, type Server } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, startTrace, randomPrefix, type CliProcess } from '../helpers/cli.js';

/** bpftrace processes started by `child` (its direct children), to check none outlives it. */
async function bpftraceOf(child: CliProcess): Promise<number[]> {
  const { stdout } = await execa('pgrep', ['-P', String(child.pid), '-x', 'bpftrace'], { reject: false });
  return String(stdout).split('\n').filter(Boolean).map(Number);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The packet blocks of human output whose every hop is in this lab's namespaces. */
function blocksOf(stdout: string, lab: Lab): string[][] {
  return stdout.split('\n\n').map((b) => b.trim().split('\n')).filter((b) => b[0]?.startsWith('packet ')
    && b.slice(1).filter((l) => /^\s*\+/.test(l)).every((l) => l.includes(`${lab.prefix}-`)));
}

describe.skipIf(!isRoot)(`trace for a person on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];
  // A port of this run's own: other test files trace and flood the same lab addresses in their
  // own labs at the same time, and a filter on it keeps their packets out of this trace.
  const port = 20000 + Math.floor(Math.random() * 10000);

  beforeAll(async () => {
    lab = labFor(randomPrefix('th'));
    await labUp(lab);
    servers = [await startEcho(lab.ns.pod2, 'udp', '0.0.0.0', port)];
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
  });

  it('should print ready, then on Ctrl-C each packet as a block of hop lines, and detach', async () => {
    const { child } = await startTrace(['--filter', `udp and dst port ${port} and src host ${lab.addr.pod1}`]);
    const [bpftrace] = await bpftraceOf(child);
    expect(bpftrace).toBeGreaterThan(0);
    await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 1);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr).split('\n')[0]).toBe('ready');
    expect(String(r.stderr)).toMatch(/hoptrace: \d+ packets, \d+ hop events, \d+ lost in the kernel/);
    const blocks = blocksOf(String(r.stdout), lab);
    expect(blocks).toHaveLength(1);
    const [head, ...hops] = blocks[0] ?? [];
    expect(head).toMatch(new RegExp(`^packet \\d+  udp 10\\.244\\.1\\.11:(\\d+) → 10\\.244\\.1\\.12:${port}  delivered  \\(\\d+ hops, [\\d.]+µs\\)$`));
    const sport = /:(\d+) →/.exec(head ?? '')?.[1];
    const tuple = `10.244.1.11:${sport} → 10.244.1.12:${port}`;
    const rows = hops.map((l) => l.trim().split(/\s{2,}/));
    expect(rows.slice(0, 6).map((c) => c.slice(1).join(' '))).toEqual([
      `${lab.ns.pod1} eth0 xmit ${tuple}`, `${lab.ns.node} veth-pod1 rx ${tuple}`, `${lab.ns.node} veth-pod1 recv ${tuple}`,
      `${lab.ns.node} veth-pod2 xmit ${tuple}`, `${lab.ns.pod2} eth0 rx ${tuple}`, `${lab.ns.pod2} eth0 recv ${tuple}`,
    ]);
    expect(rows[0]?.[0]).toBe('+0');
    for (const row of rows.slice(1)) expect(row[0]).toMatch(/^\+[\d.]+(ns|µs|ms|s)$/);
    // Detached: the bpftrace it ran is gone.
    expect(alive(bpftrace as number)).toBe(false);
  });

  it('should stop by itself after --count packets', async () => {
    const child = cli(['trace', '--count', '2', '--filter', `udp and dst port ${port} and src host ${lab.addr.pod1}`]);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    while (!err.includes('ready\n') && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const pids = await bpftraceOf(child);
    await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 5, 32, 20);
    const r = await Promise.race([child, new Promise<null>((res) => setTimeout(() => res(null), 20_000))]);
    if (r === null) child.kill('SIGKILL');
    expect(r?.exitCode).toBe(0);
    expect(String(r?.stdout).split('\n').filter((l) => l.startsWith('packet '))).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('should stop by itself after --duration seconds', async () => {
    const started = Date.now();
    const r = await cli(['trace', '--duration', '2', '--filter', 'udp port 1']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toMatch(/^ready$/m);
    // Attaching takes a few seconds on a busy machine; the trace then runs its 2 s and stops.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
