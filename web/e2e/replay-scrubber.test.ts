/**
 * The replay's time scrubber and the recordings panel in a real headless Chromium, on the recorded
 * demo lab (no root, no service): seek to the middle of the recording, step forward and back
 * packet by packet, and the list, the selection and the clock follow; a local file opens from the
 * panel or by dropping it on the page, without any upload. Screenshots: test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { browserMissing, buildDashboard, launchBrowser, screenshot, serveStatic, watchErrors, type BuiltDashboard, type StaticServer } from './browser.js';

const missing = browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };
const FIXTURE = new URL('../fixtures/demo-lab.hoptrace', import.meta.url).pathname;

interface Row { id: string; t: number }
interface Pos { t0: number; t1: number; cursor: number; index: number; total: number; playing: boolean; building: boolean }

/** What the page holds, through the handle main.ts leaves for tests. */
function rows(page: Page): Promise<Row[]> {
  return page.evaluate(() => (window as unknown as { __hoptrace: { rows: { value: Row[] } } }).__hoptrace.rows.value.map((r) => ({ id: r.id, t: r.t })));
}
function position(page: Page): Promise<Pos | null> {
  return page.evaluate(() => {
    const r = (window as unknown as { __hoptrace: { state: { replay: Pos | null } } }).__hoptrace.state.replay;
    return r ? { t0: r.t0, t1: r.t1, cursor: r.cursor, index: r.index, total: r.total, playing: r.playing, building: r.building } : null;
  });
}
function selected(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { __hoptrace: { state: { selectedId: string | null } } }).__hoptrace.state.selectedId);
}

describe.skipIf(missing !== null)(`replay scrubber and recordings panel${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let built: BuiltDashboard;
  let server: StaticServer;
  let browser: Browser;

  beforeAll(async () => {
    built = await buildDashboard();
    server = await serveStatic(built.dir);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await built?.remove();
  });

  async function openPaused(): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(`${server.url}/?replay=demo&loop=0&paused=1`);
    await expect.poll(async () => (await position(page))?.building, { timeout: 15_000 }).toBe(false);
    return { page, errors };
  }

  it('should seek to the middle, then step packet by packet with the list, selection and clock following', async () => {
    const { page, errors } = await openPaused();
    const start = await position(page);
    if (!start) throw new Error('no replay position');
    expect(start.cursor).toBe(start.t0);
    expect(start.total).toBeGreaterThan(50);
    expect(await page.locator('[data-testid="packet-row"]').count()).toBe(0);
    await page.locator('[data-testid="empty-state"]').filter({ hasText: 'No packet started yet' }).waitFor();

    // Seek: click the middle of the timeline.
    const bar = page.locator('[data-testid="timeline"]');
    const box = await bar.boundingBox();
    if (!box) throw new Error('no timeline');
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await expect.poll(async () => (await position(page))?.cursor).toBeGreaterThan(start.t0);
    const mid = await position(page) as Pos;
    expect(Math.abs(mid.cursor - (start.t0 + start.t1) / 2)).toBeLessThan((start.t1 - start.t0) / 100);
    await expect.poll(async () => (await rows(page)).length).toBe(mid.index);
    const atMid = await rows(page);
    expect(atMid.length).toBeGreaterThan(5);
    expect(atMid.length).toBeLessThan(start.total);
    expect(atMid.every((r) => r.t <= mid.cursor)).toBe(true);
    // The list follows the playhead: its last row is the newest packet that started.
    const last = atMid[atMid.length - 1] as Row;
    expect(await page.locator(`[data-testid="packet-row"][data-id="${last.id}"]`).count()).toBe(1);
    const timeMid = await page.locator('[data-testid="replay-time"]').textContent();
    expect(timeMid).toMatch(/^\+\d+\.\d{6} s/);
    await screenshot(page, 'scrubber-seek-middle');

    // Step forward: exactly one more packet, the next to start, selected, its hops shown.
    await page.locator('[data-testid="step-forward"]').click();
    await expect.poll(async () => (await rows(page)).length).toBe(atMid.length + 1);
    const stepped = await rows(page);
    const next = stepped[stepped.length - 1] as Row;
    expect(next.t).toBeGreaterThan(mid.cursor);
    expect(stepped.slice(0, -1)).toEqual(atMid);
    await expect.poll(() => selected(page)).toBe(next.id);
    const row = page.locator(`[data-testid="packet-row"][data-id="${next.id}"]`);
    expect(await row.getAttribute('aria-selected')).toBe('true');
    await page.locator('[data-testid="hop-timeline"]').waitFor();
    const pos = await position(page) as Pos;
    expect(pos.cursor).toBe(next.t);
    expect(pos.playing).toBe(false);
    // The scrubber's wall clock is the stepped packet's first hop, as the list shows it.
    const rowTime = (await row.locator('.c-time').textContent())?.trim() ?? '';
    expect(rowTime).toMatch(/^\d\d:\d\d:\d\d\.\d{6}$/);
    expect(await page.locator('[data-testid="replay-wall"]').textContent()).toMatch(new RegExp(`${rowTime.replace('.', '\\.')}$`));
    expect(await page.locator('[data-testid="replay-time"]').textContent()).not.toBe(timeMid);
    await screenshot(page, 'scrubber-step-forward');

    // Keys: '.' once more, ',' twice: back where the first step left the list.
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('.');
    await expect.poll(async () => (await rows(page)).length).toBe(atMid.length + 2);
    await page.keyboard.press(',');
    await page.keyboard.press(',');
    await expect.poll(async () => (await rows(page)).map((r) => r.id)).toEqual(atMid.map((r) => r.id));
    await expect.poll(() => selected(page)).toBe(last.id);

    // Play at 5× from here (space), pause again, the list has grown with the playhead.
    await page.locator('[data-testid="speed"]').selectOption('5');
    await page.keyboard.press(' ');
    await expect.poll(async () => (await position(page))?.playing).toBe(true);
    await expect.poll(async () => (await rows(page)).length, { timeout: 10_000 }).toBeGreaterThan(atMid.length + 3);
    await page.locator('[data-testid="play"]').click();
    await expect.poll(async () => (await position(page))?.playing).toBe(false);
    const paused = await position(page) as Pos;
    await expect.poll(async () => (await rows(page)).length).toBe(paused.index);
    expect((await rows(page)).every((r) => r.t <= paused.cursor)).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should say the library needs the service, and open a local file from the panel without uploading it', async () => {
    const { page, errors } = await openPaused();
    const posts: string[] = [];
    page.on('request', (r) => { if (r.method() !== 'GET') posts.push(`${r.method()} ${r.url()}`); });
    await page.locator('[data-testid="library"]').click();
    const panel = page.locator('[data-testid="recordings-panel"]');
    await panel.waitFor();
    expect(await panel.locator('[data-testid="library-error"]').textContent()).toContain('no service here');
    await panel.locator('[data-testid="library-file"]').setInputFiles(FIXTURE);
    await panel.locator('[data-testid="staged"]').waitFor();
    expect(await panel.locator('[data-testid="upload-name"]').inputValue()).toBe('demo-lab');
    await screenshot(page, 'recordings-panel-offline');
    await panel.locator('[data-testid="open-local"]').click();
    await expect.poll(() => page.locator('[data-testid="replay-name"]').textContent()).toBe('demo-lab.hoptrace');
    expect(await panel.count()).toBe(0);
    // Opened files play once, at 1×.
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 15_000 });
    expect(posts).toEqual([]);
    // A local file cannot be fetched again from a link: it stays out of the address bar.
    expect(new URL(page.url()).searchParams.get('replay')).toBeNull();
    expect(errors.filter((e) => !e.includes('503'))).toEqual([]);
    await page.close();
  });

  it('should replay a .hoptrace dropped on the page', async () => {
    const { page } = await openPaused();
    const b64 = readFileSync(FIXTURE).toString('base64');
    const dt = await page.evaluateHandle((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const t = new DataTransfer();
      t.items.add(new File([bytes], 'dropped.hoptrace', { type: 'application/octet-stream' }));
      return t;
    }, b64);
    await page.dispatchEvent('.app', 'dragover', { dataTransfer: dt });
    await page.locator('.page-drop').waitFor();
    await screenshot(page, 'drop-to-open');
    await page.dispatchEvent('.app', 'drop', { dataTransfer: dt });
    await expect.poll(() => page.locator('[data-testid="replay-name"]').textContent()).toBe('dropped.hoptrace');
    expect(await page.locator('.page-drop').count()).toBe(0);
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 15_000 });
    await page.close();
  });
});
