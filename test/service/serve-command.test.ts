/**
 * `hoptrace serve` as a user runs it: refuses unsafe or malformed flags with exit 2, prints the
 * URL of the port it got, answers, and stops cleanly on SIGTERM/SIGINT without leaving bpftrace
 * (or, with --lab demo, the lab) behind.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { labDown, labExists, labFor } from '../../server/lab/lab.js';
import type { HealthResponse, SessionInfo } from '../../shared/api-types.js';
import type { Packet } from '../../shared/packet.js';
import { api, isRoot, postJson, runCli, waitFor } from './helpers.js';

type Child = ReturnType<typeof runCli>;

/** Waits for the `listening on URL` line. */
function listeningUrl(child: Child): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+\/)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${r.exitCode}): ${String(r.stderr)}`));
    });
  });
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

  it('with a token, wants it on every API call', async () => {
    const child = runCli(['serve', '--port', '0'], { HOPTRACE_TOKEN: 'a-long-enough-token' });
    const url = await listeningUrl(child);
    expect((await api(url, '/api/health')).status).toBe(401);
    expect((await api(url, '/api/health', { headers: { authorization: 'Bearer a-long-enough-token' } })).status).toBe(200);
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
  }, 60_000);

  // A prefix of our own (HOPTRACE_LAB_PREFIX) rather than htdemo, which someone may be using.
  const demo = labFor(`sv${randomBytes(3).toString('hex')}`);
  it.skipIf(!isRoot)('with --lab demo: builds the lab, traces its traffic, and removes it on SIGINT', async () => {
    const child = runCli(['serve', '--port', '0', '--lab', 'demo'], { HOPTRACE_LAB_PREFIX: demo.prefix });
    try {
      const url = await listeningUrl(child);
      expect(await labExists(demo)).toBe(true);
      const s = await postJson<SessionInfo>(url, '/api/sessions', { filter: 'host 10.99.0.2 or host 10.99.0.1' });
      expect(s.status).toBe(201);
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
