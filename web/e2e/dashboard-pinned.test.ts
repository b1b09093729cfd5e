/**
 * The newcomer's first step (issue 19 §1): `hoptrace serve --lab demo` run as a user runs it
 * (the CLI, a lab prefix of its own), then the printed address in Chromium. The page opens the
 * demo's pinned session — the root address and the printed `?session=<id>` alike — instead of
 * starting a new unfiltered one: every row is the lab's traffic, the session picker shows the
 * pinned session, the service still runs one session (one bpftrace), and "⟵ live" from a replay
 * comes back to it. Root only; serves web/dist (`npm run build:web`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { inLabNets, labDown, labFor } from '../../server/lab/lab.js';
import type { SessionInfo, SessionList } from '../../shared/api-types.js';
import { api, postJson, runCli, waitFor } from '../../test/service/helpers.js';
import { browserMissing, launchBrowser, screenshot, watchErrors, WEB_DIST } from './browser.js';

const why = process.getuid?.() !== 0
  ? 'needs root: it builds namespaces and runs bpftrace'
  : browserMissing() ?? (existsSync(join(WEB_DIST, 'index.html')) ? null : 'web/dist is missing: npm run build:web');


describe.skipIf(why !== null)(`the printed address of serve --lab demo${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab = labFor(`pn${randomBytes(3).toString('hex')}`);
  /** The demo's addresses: the lab's pod, external and IPv6 networks (the pinned session's filter), and link-local. */
  const demoAddress = (a: string): boolean => inLabNets(lab, a) || a.startsWith('fe80:') || a.startsWith('ff02:');
  let child: ReturnType<typeof runCli> | undefined;
  let url = '';
  let printed = '';
  let pinned = '';
  let dataDir = '';
  let browser: Browser | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hoptrace-pinned-'));
    child = runCli(['serve', '--port', '0', '--lab', 'demo', '--data-dir', dataDir], { HOPTRACE_LAB_PREFIX: lab.prefix });
    const proc = child;
    const out = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${text}`)), 90_000);
      proc.stdout?.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('Press Ctrl-C')) {
          clearTimeout(timer);
          resolve(text);
        }
      });
      void proc.then((r) => {
        clearTimeout(timer);
        reject(new Error(`serve exited (${r.exitCode}): ${String(r.stderr)}`));
      });
    });
    url = /listening on (http:\/\/\S+\/)/.exec(out)?.[1] ?? '';
    printed = /dashboard: (http:\/\/\S+)/.exec(out)?.[1] ?? '';
    pinned = /\?session=([a-z0-9]+)/.exec(printed)?.[1] ?? '';
    expect(pinned, out).not.toBe('');
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    child?.kill('SIGINT');
    await child?.catch(() => undefined);
    child?.kill('SIGKILL');
    await labDown(lab);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const sessions = async (): Promise<readonly SessionInfo[]> => (await api<SessionList>(url, '/api/sessions')).body.sessions;

  /** Opens `address`, waits for rows, and checks the page shows the pinned session and only the demo's packets. */
  async function opensPinned(address: string, shot: string): Promise<Page> {
    if (!browser) throw new Error('not started');
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const errors = watchErrors(page);
    await page.goto(address);
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 45_000 });
    // A few rounds of the demo's traffic (one a second; slower on a loaded machine).
    await waitFor('a few rounds of the demo', () => page.evaluate(() =>
      (window as unknown as { __hoptrace: { rows: { value: unknown[] } } }).__hoptrace.rows.value.length > 5), 45_000, 500);
    expect(new URL(page.url()).searchParams.get('session')).toBe(pinned);
    expect(await page.locator('select.sel').inputValue()).toBe(pinned);
    expect(await page.locator('select.sel option:checked').textContent()).toContain('kept by the service');
    const rows = await page.evaluate(() => {
      const d = (window as unknown as { __hoptrace: { rows: { value: { id: string; src: string; dst: string }[] } } }).__hoptrace;
      return d.rows.value.map((r) => ({ id: r.id, src: r.src, dst: r.dst }));
    });
    expect(rows.length).toBeGreaterThan(5);
    // No second session, so no second bpftrace.
    expect((await sessions()).map((s) => s.id)).toEqual([pinned]);
    expect(rows.filter((r) => demoAddress(r.src) || demoAddress(r.dst)).length).toBeGreaterThan(5);
    // Every row is a packet of the pinned session: its own /packets has it. (Not "every row has a
    // demo address at its first hop": other labs on this host use the same addresses, and the
    // kernel's filter follows a packet whose NATed hop matches.)
    await new Promise((r) => setTimeout(r, 2000));
    const served = new Set((await api<{ id: string }[]>(url, `/api/sessions/${pinned}/packets?limit=1000`)).body.map((p) => p.id));
    expect(rows.filter((r) => !served.has(r.id)), 'rows the pinned session does not have').toEqual([]);
    await screenshot(page, shot);
    expect(errors).toEqual([]);
    return page;
  }

  it('should open the pinned session from the root address and from the printed one, and start no other', async () => {
    expect(Object.values(lab.addr).every((a) => demoAddress(a))).toBe(true);
    await (await opensPinned(url, 'pinned-root')).close();
    await (await opensPinned(printed, 'pinned-printed')).close();
  }, 120_000);

  it('should come back to the pinned session with "⟵ live" from a replay', async () => {
    if (!browser) throw new Error('not started');
    const started = await postJson<{ name: string }>(url, `/api/sessions/${pinned}/recording`, { name: 'pinned-round' });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await api(url, `/api/sessions/${pinned}/recording`, { method: 'DELETE' })).status).toBe(200);
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(`${url}?recording=${encodeURIComponent(started.body.name)}`);
    await page.locator('[data-testid="replay-name"]').waitFor();
    await page.getByRole('button', { name: '⟵ live' }).click();
    await waitFor('the live view', () => new URL(page.url()).searchParams.get('session') === pinned, 30_000, 200);
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 45_000 });
    expect(await page.locator('select.sel').inputValue()).toBe(pinned);
    expect((await sessions()).map((s) => s.id)).toEqual([pinned]);
    await page.close();
  }, 120_000);
});
