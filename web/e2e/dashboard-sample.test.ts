/**
 * A flow-sampled session started from the page, in headless Chromium on the real service with live
 * bpftrace: the new-session popover's flows choice starts a 1-in-4 session; the status bar, the
 * packet list's header and the address bar say the rate; the packets listed are exactly the flows
 * the kernel hash picks (shared/stats/sampling.ts mirrors it), each packet whole. Root only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { labFor, type Lab } from '../../server/lab/lab.js';
import type { RunningService } from '../../server/service/index.js';
import { sampledFlows, sendFlows } from '../../test/helpers/traffic.js';
import { browserMissing, screenshot, startLiveDashboard, watchErrors, type LiveDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : browserMissing();

describe.skipIf(why !== null)(`a sampled session on the live service${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab: Lab = labFor(`s${randomBytes(3).toString('hex')}`);
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

  it('should start a 1-in-4 session from the popover, say its rate beside the counts, and list only the hashed flows', async () => {
    if (!browser || !service) throw new Error('not started');
    const rate = 4;
    const perFlow = 3;
    const port = 20000 + Math.floor(Math.random() * 20000);
    // Which flows the kernel hash follows (sampledFlows checks it picks some, not all).
    const { sports, expected } = sampledFlows(lab, port, rate);

    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors = watchErrors(page);
    // Narrowed to this lab's pod2 (others' labs share the addresses).
    await page.goto(`${service.url}?ns=${statSync(`/run/netns/${lab.ns.pod2}`).ino}`);
    await page.getByRole('button', { name: '+ new' }).click();
    await page.locator('.popover input.field').fill(`udp and dst port ${port}`);
    await page.locator('[data-testid="new-sample"]').selectOption(String(rate));
    await page.locator('[data-testid="new-session-start"]').click();
    const said = `sampled 1 in ${rate} flows — counts not scaled`;
    await expect.poll(() => page.locator('[data-testid="status-sampling"]').textContent(), { timeout: 30_000 }).toBe(said);
    expect(await page.locator('[data-testid="packets-sampling"]').textContent()).toBe(said);
    expect(await page.locator('[data-testid="status-packets-sampling"]').textContent()).toBe(`· 1 in ${rate} flows`);
    expect(await page.locator('[data-testid="topology-sampling"]').textContent()).toBe(`rates of 1 in ${rate} flows`);
    await expect.poll(() => new URL(page.url()).searchParams.get('sample'), { timeout: 5000 }).toBe(String(rate));
    await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent(), { timeout: 30_000 }).toMatch(/running pid \d+/);

    await sendFlows(lab, port, perFlow, sports);
    const listed = (): Promise<number[]> => page.evaluate((p) => {
      const d = (window as unknown as { __hoptrace?: { rows: { value: Array<{ sport: number; dport: number; hops: number }> } } }).__hoptrace;
      return (d?.rows.value ?? []).filter((r) => r.dport === p).map((r) => r.sport);
    }, port);
    await expect.poll(async () => (await listed()).length, { timeout: 30_000 }).toBe(expected.length * perFlow);
    // Late packets of other flows would show up now: give them a moment.
    await page.waitForTimeout(500);
    const sportsListed = await listed();
    expect(sportsListed).toHaveLength(expected.length * perFlow);
    expect([...new Set(sportsListed)].sort((a, b) => a - b)).toEqual(expected);
    await screenshot(page, 'live-sampled-session');
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});
