/**
 * Recordings from the dashboard on the real service (root only: a lab of its own, live bpftrace):
 * record a few seconds of the live session with the record button, stop, find the file in the
 * recordings library, upload (a good file, a bad one, one too large, a name taken) and delete, and
 * open the recording: it replays with the scrubber, this lab's packets in it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { labDown, labFor, labUp, type Lab } from '../../server/lab/lab.js';
import { startDemoTraffic, type DemoTraffic } from '../../server/lab/demo-traffic.js';
import { startService, type RunningService } from '../../server/service/index.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };
const FIXTURE = new URL('../fixtures/demo-lab.hoptrace', import.meta.url).pathname;
/** Small enough that a 150 kB upload is refused, large enough for the 88 kB demo recording. */
const MAX_UPLOAD = 120_000;

describe.skipIf(why !== null)(`recordings in the dashboard, on the live service${why ? ` (skipped: ${why})` : ''}`, () => {
  const tag = randomBytes(3).toString('hex');
  const lab: Lab = labFor(`r${tag}`);
  const name = `e2e-${tag}`;
  let traffic: DemoTraffic | undefined;
  let built: BuiltDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser | undefined;
  let dataDir = '';
  let scratch = '';
  const inode = (ns: string): number => statSync(`/run/netns/${ns}`).ino;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-data-'));
    scratch = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-files-'));
    await labUp(lab);
    traffic = startDemoTraffic(lab, { intervalMs: 300 });
    await traffic.ready;
    built = await buildDashboard();
    service = await startService({ port: 0, webDist: built.dir, dataDir, maxUploadBytes: MAX_UPLOAD, log: () => undefined });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await traffic?.stop();
    await built?.remove();
    await labDown(lab);
    await rm(dataDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  async function open(query: string): Promise<{ page: Page; errors: string[] }> {
    if (!browser || !service) throw new Error('not started');
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(`${service.url}${query}`);
    return { page, errors };
  }

  it('should record the live session from the record button, list it in the library, and replay it', async () => {
    const { page, errors } = await open(`?ns=${inode(lab.ns.ext)}`);
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 30_000 });

    await page.locator('[data-testid="record"]').click();
    await page.locator('[data-testid="record-name"]').fill(name);
    await page.locator('[data-testid="record-start"]').click();
    const rec = page.locator('[data-testid="status-recording"]');
    await rec.waitFor();
    expect(await rec.textContent()).toContain(`REC ${name}`);
    // Events are written and counted while it runs (the status refreshes every second).
    const recStats = page.locator('[data-testid="status-recording-stats"]');
    await expect.poll(async () => (await recStats.textContent()) ?? '', { timeout: 15_000 }).toMatch(/^[1-9][\d.]*k? events/);
    await page.waitForTimeout(3000);
    expect(await page.locator('[data-testid="record"]').textContent()).toMatch(/stop\s+0:\d\d/);
    await screenshot(page, 'live-recording');

    await page.locator('[data-testid="record"]').click();
    await page.locator('.notice').filter({ hasText: `Recording '${name}' saved` }).waitFor();
    expect(await rec.count()).toBe(0);

    await page.locator('[data-testid="library"]').click();
    const row = page.locator(`[data-testid="recording-row"][data-name="${name}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('complete');
    expect(await row.locator('[data-testid="download-recording"]').getAttribute('href')).toBe(`/api/recordings/${name}`);
    await screenshot(page, 'library-after-recording');

    await row.locator('[data-testid="open-recording"]').click();
    await expect.poll(() => page.locator('[data-testid="replay-name"]').textContent()).toBe(name);
    expect(new URL(page.url()).searchParams.get('recording')).toBe(name);
    await expect.poll(() => page.evaluate(() => (window as unknown as { __hoptrace: { state: { replay: { building: boolean } | null } } }).__hoptrace.state.replay?.building), { timeout: 15_000 }).toBe(false);
    // Jump to the end: every recorded packet that this view's facet (the lab's ext namespace) keeps.
    await page.locator('[data-testid="timeline"]').focus();
    await page.keyboard.press('End');
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 15_000 });
    const paths = await page.locator('[data-testid="packet-row"]').evaluateAll((els) => els.map((e) => [...e.querySelectorAll('.chip')].map((c) => c.getAttribute('title'))));
    expect(paths.length).toBeGreaterThan(0);
    expect(paths.every((p) => p.includes(lab.ns.ext))).toBe(true);
    await screenshot(page, 'library-recording-replayed');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should upload into the library with the service\'s refusals shown, and delete', async () => {
    const { page } = await open(`?ns=${inode(lab.ns.ext)}`);
    await page.locator('[data-testid="library"]').click();
    const panel = page.locator('[data-testid="recordings-panel"]');
    await panel.waitFor();
    const input = panel.locator('[data-testid="library-file"]');
    const uploaded = `demo-up-${tag}`;

    // Not a recording: 400, the service's sentence.
    const junk = join(scratch, 'notes.hoptrace');
    await writeFile(junk, 'these are my notes, not a recording\n');
    await input.setInputFiles(junk);
    await panel.locator('[data-testid="upload-name"]').fill(`junk-${tag}`);
    await panel.locator('[data-testid="upload"]').click();
    await expect.poll(() => panel.locator('[data-testid="upload-error"]').textContent()).toMatch(/^not stored: /);

    // Too large for this service: 413 (or the connection cut while sending), said as such.
    const big = join(scratch, 'big.hoptrace');
    await writeFile(big, randomBytes(150_000));
    await input.setInputFiles(big);
    await panel.locator('[data-testid="upload"]').click();
    await expect.poll(() => panel.locator('[data-testid="upload-error"]').textContent()).toMatch(/larger than/);

    // A good one, then the same name again: 409.
    await input.setInputFiles(FIXTURE);
    await panel.locator('[data-testid="upload-name"]').fill(uploaded);
    await panel.locator('[data-testid="upload"]').click();
    const row = panel.locator(`[data-testid="recording-row"][data-name="${uploaded}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('complete');
    await input.setInputFiles(FIXTURE);
    await panel.locator('[data-testid="upload-name"]').fill(uploaded);
    await panel.locator('[data-testid="upload"]').click();
    await expect.poll(() => panel.locator('[data-testid="upload-error"]').textContent()).toContain('already exists');
    await screenshot(page, 'library-upload-conflict');

    await row.locator('[data-testid="delete-recording"]').click();
    await row.locator('[data-testid="confirm-delete"]').click();
    await expect.poll(() => row.count()).toBe(0);
    const list = await page.evaluate(async () => (await fetch('/api/recordings')).json() as Promise<{ recordings: { name: string }[] }>);
    expect(list.recordings.map((r) => r.name)).not.toContain(uploaded);
    expect(list.recordings.map((r) => r.name)).not.toContain(`junk-${tag}`);
    await page.close();
  });

  it('should tell when the disk fills up under a recording, the live session going on', async () => {
    if (!browser || !built) throw new Error('not started');
    // A data folder on a small tmpfs of its own, filled up once the recording runs.
    const full = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', full]);
    let small: RunningService | undefined;
    try {
      small = await startService({ port: 0, webDist: built.dir, dataDir: full, log: () => undefined });
      const page = await browser.newPage({ viewport: VIEWPORT });
      await page.goto(`${small.url}?ns=${inode(lab.ns.ext)}`);
      await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 30_000 });
      await page.locator('[data-testid="record"]').click();
      await page.locator('[data-testid="record-start"]').click();
      const rec = page.locator('[data-testid="status-recording"]');
      await expect.poll(async () => (await rec.textContent()) ?? '', { timeout: 15_000 }).toMatch(/^REC /);
      await expect.poll(async () => (await page.locator('[data-testid="status-recording-stats"]').textContent()) ?? '', { timeout: 15_000 }).toMatch(/^[1-9][\d.]*k? events/);

      const filler = openSync(join(full, '.filler'), 'w');
      try {
        const chunk = Buffer.alloc(64 * 1024, 0x55);
        for (;;) writeSync(filler, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(filler);
      }
      const notice = page.locator('.notice.error').filter({ hasText: 'Recording stopped' });
      await notice.waitFor({ timeout: 30_000 });
      expect(await notice.textContent()).toMatch(/no space/);
      expect(await notice.textContent()).toContain('The live session goes on');
      await expect.poll(() => rec.textContent()).toMatch(/recording stopped: .*no space/);
      expect(await page.locator('[data-testid="record"]').textContent()).toContain('record');
      // The session goes on: packets keep coming.
      const before = await page.evaluate(() => (window as unknown as { __hoptrace: { state: { workerStats: { packets: number } | null } } }).__hoptrace.state.workerStats?.packets ?? 0);
      await expect.poll(() => page.evaluate(() => (window as unknown as { __hoptrace: { state: { workerStats: { packets: number } | null } } }).__hoptrace.state.workerStats?.packets ?? 0), { timeout: 15_000 }).toBeGreaterThan(before);
      await screenshot(page, 'live-recording-disk-full');
      await page.close();
    } finally {
      await small?.close();
      execFileSync('umount', [full]);
      await rm(full, { recursive: true, force: true });
    }
  });
});
