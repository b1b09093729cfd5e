/**
 * `hoptrace serve` as a user runs it: refuses unsafe or malformed flags with exit 2, prints the
 * URL of the port it got, answers, and stops cleanly on SIGTERM/SIGINT without leaving bpftrace
 * (or, with --lab demo, the lab) behind.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { labAddrIn, labDown, labExists, labFor, LAB_ADDR } from '../../server/lab/lab.js';
import { demoFilter } from '../../server/commands/serve.js';
import { compileMatcher, parseFilter } from '../../shared/filter/index.js';
import type { HealthResponse, SessionInfo } from '../../shared/api-types.js';
import type { Packet } from '../../shared/packet.js';
import { api, isRoot, postJson, runCli, waitFor } from './helpers.js';

type Child = ReturnType<typeof runCli>;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CRASH_ON_SIGNAL = fileURLToPath(new URL('./crash-on-signal.ts', import.meta.url));

/** Waits for the `Press Ctrl-C` line (all start-up output printed); resolves with the URL and that output. */
function started(child: Pick<Child, 'stdout' | 'then'>): Promise<{ url: string; out: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 90_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+\/)/.exec(out);
      if (m?.[1] && out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve({ url: m[1], out });
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${r.exitCode}): ${String(r.stderr)}`));
    });
  });
}

async function listeningUrl(child: Child): Promise<string> {
  return (await started(child)).url;
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe('hoptrace serve', () => {
  it.each([
    [['--host', '0.0.0.0'], /refusing to listen on 0\.0\.0\.0 without --token/],
    [['--host', '10.1.2.3', '--token', 'short'], /--token must be 8 to 256/],
    [['--port', 'http'], /--port takes a whole number/],
    [['--port', '70000'], /--port takes a port number/],
    [['--lab', 'big'], /--lab takes 'demo'/],
    [['--allow-origin', 'evil'], /--allow-origin takes an origin/],
    [['--colour'], /Unknown option '--colour'/],
  ])('refuses %j with exit 2', async (args, message) => {
    const r = await runCli(['serve', ...args]);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(message);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('prints the port it got with --port 0, serves, and exits 0 on SIGTERM', async () => {
    const child = runCli(['serve', '--port', '0']);
    const url = await listeningUrl(child);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(url).not.toContain(':7070/');
    const health = await api<HealthResponse>(url, '/api/health');
    expect(health.body.status).toBe('ok');
    let pid: number | null = null;
    if (isRoot) {
      const s = await postJson<SessionInfo>(url, '/api/sessions', { filter: 'udp and port 9' });
      expect(s.status).toBe(201);
      pid = s.body.bpftrace.pid;
      expect(pid).toBeGreaterThan(0);
    }
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toMatch(/terminated, stopping/);
    if (pid !== null) expect(() => process.kill(pid as number, 0)).toThrow();
  }, 60_000);

  it.skipIf(!isRoot)('takes its bpftrace with it even when SIGKILLed', async () => {
    const child = runCli(['serve', '--port', '0']);
    const url = await listeningUrl(child);
    const s = await postJson<SessionInfo>(url, '/api/sessions', { filter: 'udp and port 7' });
    const pid = s.body.bpftrace.pid as number;
    expect(() => process.kill(pid, 0)).not.toThrow();
    child.kill('SIGKILL');
    await child;
    // setpriv --pdeathsig: the kernel signals bpftrace when its parent dies.
    await waitFor('bpftrace to exit', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000);
  }, 60_000);

  it.skipIf(!isRoot).each(['exception', 'rejection'])('on an uncaught %s: stops its sessions and bpftrace, says why, exits 1', async (kind) => {
    const child = execa(process.execPath, ['--import', 'tsx', '--import', CRASH_ON_SIGNAL, 'server/cli.ts', 'serve', '--port', '0'], {
      reject: false, cwd: REPO, env: { HOPTRACE_TEST_CRASH: kind },
    });
    try {
      const { url } = await started(child);
      const s = await postJson<SessionInfo>(url, '/api/sessions', { filter: 'udp and port 11' });
      expect(s.status).toBe(201);
      const pid = s.body.bpftrace.pid as number;
      expect(gone(pid)).toBe(false);
      child.kill('SIGUSR2');
      const r = await child;
      expect(r.exitCode).toBe(1);
      expect(String(r.stderr)).toMatch(kind === 'exception' ? /internal error: .*a bug in the service/ : /internal error: .*a rejected promise nobody handled/);
      expect(String(r.stderr)).toMatch(/crashed, stopping \(sessions, bpftrace\)/);
      // Stopped by the shutdown itself, not left to pdeathsig: gone as soon as the process is.
      await waitFor('bpftrace to be gone', () => gone(pid), 2000);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);

  it('with a token, wants it on every API call', async () => {
    const child = runCli(['serve', '--port', '0'], { HOPTRACE_TOKEN: 'a-long-enough-token' });
    const url = await listeningUrl(child);
    expect((await api(url, '/api/health')).status).toBe(401);
    expect((await api(url, '/api/health', { headers: { authorization: 'Bearer a-long-enough-token' } })).status).toBe(200);
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
  }, 60_000);

  it.each([['the default addresses', LAB_ADDR], ['addresses moved by HOPTRACE_LAB_NET', labAddrIn(171)]])('traces every address of the demo lab, and not the rest of the host (%s)', (_, addrs) => {
    const lab = labFor('x', addrs);
    const matches = compileMatcher(parseFilter(demoFilter(lab)));
    const hop = (src: string, dst: string): boolean => matches({ family: src.includes(':') ? 6 : 4, proto: 17, src, dst, sport: 40000, dport: 53 });
    for (const addr of Object.values(addrs)) {
      expect(hop(addr, addr.includes(':') ? 'fd00:9::1' : '192.0.2.1'), addr).toBe(true);
      expect(hop(addr.includes(':') ? 'fd00:9::1' : '192.0.2.1', addr), addr).toBe(true);
    }
    expect(hop('127.0.0.1', '127.0.0.1')).toBe(false);
    expect(hop('::1', '::1')).toBe(false);
    // Another lab's addresses (the default lab beside a moved one) are not this demo's.
    const other = addrs === LAB_ADDR ? labAddrIn(171).pod1 : LAB_ADDR.pod1;
    expect(hop(other, '192.0.2.1')).toBe(false);
  });

  // A prefix of our own (HOPTRACE_LAB_PREFIX) rather than htdemo, which someone may be using.
  const demo = labFor(`sv${randomBytes(3).toString('hex')}`);
  it.skipIf(!isRoot)('with --lab demo: builds the lab, traces its traffic, and removes it on SIGINT', async () => {
    const child = runCli(['serve', '--port', '0', '--lab', 'demo'], { HOPTRACE_LAB_PREFIX: demo.prefix });
    try {
      const { url, out } = await started(child);
      expect(await labExists(demo)).toBe(true);
      // The lab is traced from the start, in a session the service keeps; the dashboard address opens it.
      const id = /dashboard: http:\/\/\S+\/\?session=([a-z0-9]+)/.exec(out)?.[1];
      expect(id, out).toBeDefined();
      expect(out).toContain(`traced live in session ${id}`);
      const s = await api<SessionInfo>(url, `/api/sessions/${id}`);
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({ filter: demoFilter(demo), pinned: true, state: 'running' });
      const inodes = new Set(Object.values(demo.ns).map((ns) => statSync(`/run/netns/${ns}`).ino));
      // The background traffic goes through MASQUERADE and the DNAT port-forward every second.
      const packets = await waitFor('demo traffic with NAT', async () => {
        const r = await api<Packet[]>(url, `/api/sessions/${s.body.id}/packets?limit=1000`);
        const mine = r.body.filter((p) => p.hops.every((h) => inodes.has(h.netns)));
        const snat = mine.some((p) => p.hops.some((h) => h.nat?.kind === 'snat'));
        const dnat = mine.some((p) => p.hops.some((h) => h.nat?.kind === 'dnat'));
        return snat && dnat ? mine : undefined;
      }, 30_000, 500);
      expect(packets.length).toBeGreaterThan(0);
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode).toBe(0);
      expect(await labExists(demo)).toBe(false);
      expect(() => process.kill(s.body.bpftrace.pid as number, 0)).toThrow();
    } finally {
      child.kill('SIGKILL');
      await labDown(demo);
    }
  }, 120_000);
});
