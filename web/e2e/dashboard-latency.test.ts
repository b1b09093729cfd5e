/**
 * The latency view in headless Chromium on the real service with live bpftrace: start a stats
 * session from the page (filtered to this test's UDP port), send packets through a lab of its
 * own, see the segments of their path with percentiles, select one for its histogram, and the
 * topology coloured by p99 while the session runs (closing the panel ends both). Root only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { labFor, type Lab } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import type { RunningService } from '../../server/service/index.js';
import { browserMissing, screenshot, startLiveDashboard, watchErrors, type LiveDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : browserMissing();

describe.skipIf(why !== null)(`latency view on the live service${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab: Lab = labFor(`l${randomBytes(3).toString('hex')}`);
  let live: LiveDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    live = await startLiveDashboard(lab);
    ({ service, browser } = live);
  });

  afterAll(async () => {
    await live?.close();
  });

  it('should show the segments of a lab path with percentiles, a histogram and p99 on the topology', async () => {
    if (!browser || !service) throw new Error('not started');
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(service.url);
    const port = 20000 + Math.floor(Math.random() * 20000);
    await page.locator('[data-testid="stats"]').click();
    await page.locator('[data-testid="stats-filter"]').fill(`udp and dst port ${port}`);
    await page.locator('[data-testid="stats-start"]').click();
    await page.locator('[data-testid="stats-session"]').waitFor({ timeout: 60_000 });
    let sending = true;
    const send = (async () => {
      while (sending) await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 20, 32, 10);
    })();
    try {
      const row = page.locator('[data-testid="stats-segment"]').filter({ hasText: `${lab.ns.pod1} eth0 xmit` });
      await row.first().waitFor({ timeout: 30_000 });
      expect(await row.first().textContent()).toContain(`→ ${lab.ns.node} veth-pod1 rx`);
      await row.first().click();
      await page.locator('[data-testid="latency-hist"] rect').first().waitFor({ timeout: 10_000 });
      // The topology is coloured by p99 while the stats session runs (under the panel)...
      await page.locator('[data-testid="link-p99"]').first().waitFor({ state: 'attached', timeout: 20_000 });
      expect(await page.locator('[data-testid="link-p99"]').first().textContent()).toMatch(/^p99 [\d.]+ ?(ns|µs|ms)$/);
      await screenshot(page, 'latency-topology');
      // ...and closing the panel ends the session, and the colouring with it.
      await page.locator('[data-testid="stats-panel"] .x').click();
      await expect.poll(() => page.locator('[data-testid="link-p99"]').count(), { timeout: 10_000 }).toBe(0);
    } finally {
      sending = false;
      await send;
    }
    expect(errors).toEqual([]);
  }, 180_000);
});
