/**
 * A/B of two recordings in headless Chromium against the real service (synthetic hop source and
 * capabilities, so no root and no bpftrace): two recordings written by the shared encoder sit in
 * the service's data folder; the latency view lists them from /api/recordings, downloads both,
 * and shows per segment the packets and p50/p90/p99 of each side and the difference, flagging
 * only the segment that got slower. Screenshot: test-artifacts/stats-recordings-ab.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startService, type RunningService } from '../../server/service/index.js';
import { SYNTHETIC_CAPS, syntheticFactory } from '../../test/service/helpers.js';
import { AB_AFTER, AB_BEFORE } from '../test/ab-fixture.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

const missing = browserMissing();

describe.skipIf(missing !== null)(`A/B of two recordings in the latency view${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let built: BuiltDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser | undefined;
  let dataDir = '';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-ab-'));
    await writeFile(join(dataDir, 'before.hoptrace'), AB_BEFORE);
    await writeFile(join(dataDir, 'after.hoptrace'), AB_AFTER);
    built = await buildDashboard();
    service = await startService({
      port: 0, webDist: built.dir, dataDir, source: syntheticFactory().factory, capabilities: SYNTHETIC_CAPS, namespaceNames: null,
      topology: async () => ({ namespaces: [], errors: [], discoveredAt: 1, durationMs: 1 }), log: () => undefined,
    });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await built?.remove();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('should compare two library recordings segment by segment and flag the slower forwarding', async () => {
    if (!browser || !service) throw new Error('not started');
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(service.url);
    await page.locator('[data-testid="stats"]').click();
    await page.getByTitle("list the service's recordings").click();
    const a = page.locator('[data-testid="stats-rec-a"]');
    await expect.poll(() => a.locator('option').allTextContents()).toEqual(expect.arrayContaining(['before', 'after']));
    await a.selectOption('before');
    await page.locator('[data-testid="stats-rec-b"]').selectOption('after');
    await page.locator('[data-testid="stats-rec-compare"]').click();
    const rows = page.locator('[data-testid="stats-rec-table"] [data-testid="cmp-row"]');
    await rows.first().waitFor({ timeout: 20_000 });
    expect(await rows.count()).toBe(7);
    const flagged = page.locator('[data-testid="stats-rec-table"] [data-testid="cmp-row"][data-significant="yes"]');
    expect(await flagged.count()).toBe(1);
    expect(await flagged.textContent()).toContain('lab-node veth-pod1 recv');
    expect(await flagged.locator('[data-testid="cmp-count"]').textContent()).toBe('40 / 60');
    expect(await flagged.locator('[data-testid="cmp-a-p99"]').textContent()).toMatch(/^[\d.]+ µs$/);
    expect(await flagged.locator('[data-testid="cmp-d-p99"]').textContent()).toMatch(/^\+1\d\d(\.\d)? µs$|^\+2\d\d(\.\d)? µs$/);
    expect(await page.locator('[data-testid="stats-rec-meta"]').textContent()).toMatch(/A: before .* B: after/);
    await flagged.scrollIntoViewIfNeeded();
    await screenshot(page, 'stats-recordings-ab');
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
