/**
 * The dashboard when things are wrong, on the real service in headless Chromium: a service
 * started without root (it answers, but cannot trace) and a service that goes away while the
 * page watches a live session. Each state must say what happened and what to do, and the status
 * bar must not keep showing the last figures as if they were current. Root only (the service that
 * cannot trace runs as uid 0 with every capability dropped, test/helpers/privileges.ts, so it reads
 * any checkout; the live one runs bpftrace).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser } from 'playwright-core';
import { startService, type RunningService } from '../../server/service/index.js';
import { WITHOUT_CAPABILITIES } from '../../test/helpers/privileges.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it drops its capabilities for one service and runs a live session' : browserMissing();
const VIEWPORT = { width: 1440, height: 900 };

/** The service as uid 0 without capabilities (cannot trace), serving `dist`; resolves with its URL once it listens. */
async function serveWithoutCapabilities(dist: string, data: string): Promise<{ url: string; child: ChildProcess }> {
  const script = new URL('./serve-unprivileged.ts', import.meta.url).pathname;
  const [setpriv, ...flags] = WITHOUT_CAPABILITIES;
  const child = spawn(setpriv, [...flags, process.execPath, '--import', 'tsx', script, dist, data], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, HOME: data },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`unprivileged service did not start: ${stderr}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`unprivileged service exited ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      try {
        const { url: u } = JSON.parse(line) as { url: string };
        clearTimeout(timer);
        resolve(u);
      } catch {
        // not the ready line
      }
    });
  });
  return { url, child };
}

describe.skipIf(why !== null)(`dashboard error states on the real service${why ? ` (skipped: ${why})` : ''}`, () => {
  let built: BuiltDashboard | undefined;
  let browser: Browser | undefined;
  let data: string | undefined;

  beforeAll(async () => {
    built = await buildDashboard();
    data = await mkdtemp(join(tmpdir(), 'hoptrace-nocaps-'));
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await built?.remove();
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('should say the host cannot trace, and how to fix it, when the service runs without root', async () => {
    if (!browser || !built || !data) throw new Error('not started');
    const { url, child } = await serveWithoutCapabilities(built.dir, data);
    try {
      const page = await browser.newPage({ viewport: VIEWPORT });
      await page.goto(url);
      const empty = page.locator('[data-testid="empty-state"]').filter({ hasText: 'This host cannot trace' });
      await empty.waitFor({ timeout: 20_000 });
      expect(await empty.textContent()).toContain('root');
      expect(await empty.textContent()).toContain('sudo hoptrace serve');
      // The service answered: the page must not call it disconnected.
      await expect.poll(() => page.locator('[data-testid="status-connection"]').textContent(), { timeout: 10_000 }).toContain('service up · not tracing');
      // The notice does not repeat the same sentence as its own hint.
      const notice = page.locator('.notice').filter({ hasText: 'This host cannot trace' });
      expect(await notice.locator('li').count()).toBe(0);
      await screenshot(page, 'not-root');
      // The way out offered there works: the demo recording replays.
      await empty.getByRole('button', { name: 'open the demo recording' }).click();
      await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 20_000 });
      await page.close();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('should say the service is gone, and what to do, when it stops under a live page', async () => {
    if (!browser || !built) throw new Error('not started');
    const service: RunningService = await startService({ port: 0, webDist: built.dir, log: () => undefined });
    let closed = false;
    try {
      const page = await browser.newPage({ viewport: VIEWPORT });
      const errors = watchErrors(page);
      await page.goto(service.url);
      await expect.poll(() => page.locator('[data-testid="status-connection"]').textContent(), { timeout: 30_000 }).toContain('connected');
      await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent(), { timeout: 30_000 }).toMatch(/running pid \d+/);
      await service.close();
      closed = true;
      await expect.poll(() => page.locator('[data-testid="status-connection"]').textContent(), { timeout: 20_000 }).toContain('disconnected');
      const bar = (await page.locator('[data-testid="status-bar"]').textContent()) ?? '';
      expect(bar).not.toMatch(/running pid/);
      expect(bar).toContain('unknown (no connection)');
      expect(await page.locator('[data-testid="status-eps"]').textContent()).toBe('—');
      // With packets listed a banner says it above them; with none, the list's empty state does.
      const says = page.locator('.conn-banner, [data-testid="empty-state"]').filter({ hasText: 'hoptrace serve' });
      await says.first().waitFor({ timeout: 10_000 });
      await screenshot(page, 'service-gone');
      // Only the refused reconnections are logged: the page itself stays clean.
      expect(errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e))).toEqual([]);
      await page.close();
    } finally {
      if (!closed) await service.close();
    }
  });
});
