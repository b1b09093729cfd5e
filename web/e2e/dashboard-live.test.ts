/**
 * The dashboard served by the real service (`startService`, as `hoptrace serve --lab demo` runs
 * it) in headless Chromium, tracing a demo lab of its own with live bpftrace: packets stream in,
 * a MASQUERADEd packet's timeline spans the lab's pod, node and external namespace with the
 * rewrite shown, the FORWARD drop shows its kernel reason, the status bar tells the pipeline's
 * health. Root only. Other labs on the host are traced too, so every view is narrowed to this
 * lab's namespaces (by inode, through the URL's facet).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { labDown, labFor, labUp, type Lab } from '../../server/lab/lab.js';
import { startDemoTraffic, type DemoTraffic } from '../../server/lab/demo-traffic.js';
import { startService, type RunningService } from '../../server/service/index.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

/** An address as a regular expression's literal text. */
const esc = (a: string): string => a.replace(/[.:]/g, '\\$&');

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };

describe.skipIf(why !== null)(`dashboard on the live service${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab: Lab = labFor(`w${randomBytes(3).toString('hex')}`);
  let traffic: DemoTraffic | undefined;
  let built: BuiltDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser | undefined;
  const inode = (ns: string): number => statSync(`/run/netns/${ns}`).ino;

  beforeAll(async () => {
    await labUp(lab);
    traffic = startDemoTraffic(lab, { intervalMs: 500 });
    await traffic.ready;
    built = await buildDashboard();
    service = await startService({ port: 0, webDist: built.dir, log: () => undefined });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await traffic?.stop();
    await built?.remove();
    await labDown(lab);
  });

  async function open(query: string): Promise<{ page: Page; errors: string[] }> {
    if (!browser || !service) throw new Error('not started');
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(`${service.url}${query}`);
    return { page, errors };
  }

  /** Waits for packet rows; when none come, says what the page knows about why. */
  async function rows(page: Page, timeout = 30_000): Promise<void> {
    try {
      await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout });
    } catch {
      const state = await page.evaluate(() => {
        const d = (window as unknown as { __hoptrace?: { state: { connection: string; workerStats: unknown; notices: unknown } } }).__hoptrace;
        return JSON.stringify({ connection: d?.state.connection, worker: d?.state.workerStats, notices: d?.state.notices });
      });
      throw new Error(`no packet rows within ${timeout} ms; page state: ${state}`);
    }
  }

  it('should stream packets and show a MASQUERADEd packet across the lab\'s pod, node and external namespace', async () => {
    const { page, errors } = await open(`?ns=${inode(lab.ns.ext)}&filter=${encodeURIComponent('udp and port 7000')}`);
    await rows(page);
    const row = page.locator('[data-testid="packet-row"]').filter({ has: page.locator('.badge.nat') }).filter({ hasText: lab.addr.pod1 }).first();
    await row.waitFor({ timeout: 20_000 });
    // Times are the service host's clock, from the pair in the subscribe ack (not an estimate, whose
    // reference would be 0): this packet was sent in the last few seconds.
    const clock = await page.evaluate(() => (window as unknown as { __hoptrace?: { state: { clock: { monotonicNs: number; epochMs: number } | null } } }).__hoptrace?.state.clock);
    expect(clock?.monotonicNs).toBeGreaterThan(0);
    const shown = (await row.locator('.c-time').textContent())?.trim() ?? '';
    const m = /^(\d\d):(\d\d):(\d\d)\.\d{6}$/.exec(shown);
    expect(m, shown).not.toBeNull();
    const now = new Date();
    const secondsOfDay = (h: number, mi: number, se: number): number => h * 3600 + mi * 60 + se;
    const off = Math.abs(secondsOfDay(Number(m?.[1]), Number(m?.[2]), Number(m?.[3])) - secondsOfDay(now.getHours(), now.getMinutes(), now.getSeconds()));
    expect(Math.min(off, 86_400 - off)).toBeLessThan(30);
    await row.click();
    const timeline = page.locator('[data-testid="hop-timeline"]');
    await timeline.waitFor();
    const hopNs = await timeline.locator('[data-testid="hop"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-ns')));
    expect(new Set(hopNs)).toEqual(new Set([lab.ns.pod1, lab.ns.node, lab.ns.ext]));
    expect(await timeline.locator('[data-nat="snat"] .nat-note').first().textContent()).toMatch(new RegExp(`^SNAT src ${esc(lab.addr.pod1)}:\\d+ → ${esc(lab.addr.nodeExt)}:\\d+$`));
    expect(await page.locator('[data-testid="status-connection"]').textContent()).toContain('connected');
    expect(await page.locator('[data-testid="status-bar"]').textContent()).toMatch(/running pid \d+/);
    await screenshot(page, 'live-nat-packet');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should show the packet the node\'s FORWARD chain drops, with the kernel\'s reason', async () => {
    const { page } = await open(`?ns=${inode(lab.ns.node)}&filter=${encodeURIComponent(`udp port ${lab.blockedPort}`)}`);
    await rows(page);
    await page.locator('[data-testid="packet-row"][data-fate="dropped"]').first().click();
    const reason = page.locator('[data-testid="drop-reason"]');
    await reason.waitFor();
    expect(await reason.textContent()).toContain(lab.ns.node);
    expect(await reason.textContent()).toContain('NETFILTER_DROP');
    await page.locator('[data-testid="expected-hop"]').last().waitFor();
    expect(await page.locator('[data-testid="expected-hop"]').last().textContent()).toContain('FORWARD');
    await screenshot(page, 'live-dropped-packet');
    await page.close();
  });

  it('should start a netfilter + notes session from the page and show the FORWARD rule and the route lookup on the dropped packet\'s timeline', async () => {
    const { page, errors } = await open(`?ns=${inode(lab.ns.node)}`);
    await rows(page);
    await page.getByRole('button', { name: '+ new' }).click();
    await page.locator('.popover input.field').fill(`udp and dst port ${lab.blockedPort}`);
    await page.locator('[data-testid="new-netfilter"]').check();
    await page.locator('[data-testid="new-notes"]').check();
    await page.locator('[data-testid="new-session-start"]').click();
    await expect.poll(() => page.locator('[data-testid="status-depth-session"]').textContent(), { timeout: 20_000 }).toBe('netfilter rules + notes');
    const dropped = page.locator('[data-testid="packet-row"][data-fate="dropped"]').first();
    await dropped.waitFor({ timeout: 30_000 });
    await dropped.click();
    const step = page.locator('[data-testid="depth-step"][data-verdict="drop"]').first();
    await step.waitFor({ timeout: 10_000 });
    expect(await step.getAttribute('data-chain')).toBe('ip filter FORWARD');
    expect(await step.getAttribute('data-hook')).toBe('forward');
    expect(await step.locator('.rule-text').textContent()).toBe(`'udp dport ${lab.blockedPort} counter drop'`);
    // The node's route lookup toward ext, as a note at its hop.
    const note = page.locator('[data-testid="depth-note"][data-kind="fib"]').filter({ hasText: lab.addr.ext }).first();
    await note.waitFor({ timeout: 10_000 });
    expect(await note.textContent()).toContain(`route ${lab.addr.ext}: table main → dev eth-node`);
    expect(await page.locator('[data-testid="drop-rule"]').textContent()).toContain(`rule 'udp dport ${lab.blockedPort} counter drop' in ip filter FORWARD`);
    // The host's tiers, from /api/capabilities, in the status bar.
    expect(await page.locator('[data-testid="status-tiers"]').textContent()).toMatch(/rule-trace/);
    await screenshot(page, 'live-netfilter-drop');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should draw this lab\'s namespaces on the topology', async () => {
    const { page } = await open(`?ns=${inode(lab.ns.node)}`);
    await expect.poll(() => page.locator('[data-testid="ns-node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name'))), { timeout: 20_000 })
      .toEqual(expect.arrayContaining(Object.values(lab.ns)));
    await screenshot(page, 'live-topology');
    await page.close();
  });
});
