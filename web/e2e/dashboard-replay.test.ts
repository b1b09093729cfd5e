/**
 * The dashboard in a real headless Chromium, replaying the recorded demo lab (no root, no
 * service): packets appear, a NATed packet's timeline spans pod, node and external namespace
 * with the rewrite shown, a dropped packet shows the kernel's reason, filter errors show inline,
 * the topology filters the list, and the URL brings a view back. Screenshots: test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserMissing, buildDashboard, launchBrowser, screenshot, serveStatic, watchErrors, type BuiltDashboard, type StaticServer } from './browser.js';

const missing = browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };

describe.skipIf(missing !== null)(`dashboard, replaying the demo lab${missing ? ` (skipped: ${missing})` : ''}`, () => {
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

  async function open(query: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(`${server.url}/${query}`);
    return { page, errors };
  }

  async function replay(extra = ''): Promise<{ page: Page; errors: string[] }> {
    const r = await open(`?replay=demo&speed=max&loop=0${extra}`);
    await r.page.waitForFunction(() => document.querySelector('[data-testid="status-connection"]')?.textContent?.includes('replay finished'));
    await r.page.locator('[data-testid="packet-row"]').first().waitFor();
    return r;
  }

  it('should list the packets and draw the lab\'s namespaces', async () => {
    const { page, errors } = await replay();
    expect(await page.locator('[data-testid="packet-row"]').count()).toBeGreaterThan(10);
    const names = (): Promise<(string | null)[]> => page.locator('[data-testid="ns-node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')).sort());
    await expect.poll(names).toEqual(['demo-ext', 'demo-node', 'demo-pod1', 'demo-pod2']);
    await expect.poll(() => page.locator('[data-testid="topology"] .link.veth').count()).toBe(3);
    await screenshot(page, 'replay-overview');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should show a MASQUERADEd packet\'s hops across pod, node and external namespace with the rewrite', async () => {
    const { page, errors } = await replay('&filter=' + encodeURIComponent('udp and src host 10.244.1.11 and port 7000'));
    const row = page.locator('[data-testid="packet-row"]').filter({ has: page.locator('.badge.nat') }).first();
    // It reached ext, which owns 10.99.0.2: delivered (the replayed model's addresses are known).
    expect(await row.getAttribute('data-fate')).toBe('delivered');
    await row.click();
    const timeline = page.locator('[data-testid="hop-timeline"]');
    await timeline.waitFor();
    const hopNs = await timeline.locator('[data-testid="hop"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-ns')));
    expect(new Set(hopNs)).toEqual(new Set(['demo-pod1', 'demo-node', 'demo-ext']));
    expect(hopNs[0]).toBe('demo-pod1');
    const nat = timeline.locator('[data-nat] .nat-note').first();
    await expect.poll(() => nat.textContent()).toMatch(/^SNAT src 10\.244\.1\.11:\d+ → 10\.99\.0\.1:\d+$/);
    expect(await nat.isVisible()).toBe(true);
    // The hop table repeats it as before ⇒ after.
    expect(await page.locator('table.hops .after').first().textContent()).toMatch(/^10\.99\.0\.1:\d+ → 10\.99\.0\.2:7000$/);
    // The same path is highlighted on the topology.
    await expect.poll(() => page.locator('[data-testid="ns-node"].onpath').count()).toBe(3);
    expect(page.url()).toContain('packet=');
    await screenshot(page, 'replay-nat-packet');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should show a dropped packet\'s kernel reason and the rule the model expected to drop it', async () => {
    const { page } = await replay();
    await page.locator('[data-testid="packet-row"][data-fate="dropped"]').filter({ hasText: ':9999' }).first().click();
    const reason = page.locator('[data-testid="drop-reason"]');
    await reason.waitFor();
    expect(await reason.textContent()).toMatch(/demo-node.*NETFILTER_DROP/);
    expect(await page.locator('[data-testid="hop"][data-event="drop"] .drop-note').textContent()).toBe('NETFILTER_DROP');
    expect(await page.locator('[data-testid="expected-hop"]').last().textContent()).toContain('FORWARD');
    expect(await page.locator('[data-testid="divergence"]').count()).toBe(0);
    await screenshot(page, 'replay-dropped-packet');
    await page.close();
  });

  it('should show filter errors inline and apply a good filter', async () => {
    const { page } = await replay();
    const input = page.locator('[data-testid="filter-input"]');
    await input.fill('udp and port');
    const err = page.locator('[data-testid="filter-error"]');
    await err.waitFor();
    expect(await err.textContent()).toMatch(/udp and port\n\s+\^ .*port/);
    await screenshot(page, 'replay-filter-error');
    await input.fill('icmp6');
    await input.press('Enter');
    await expect.poll(() => page.locator('[data-testid="packet-row"]').evaluateAll((els) => els.map((e) => e.textContent ?? ''))).toSatisfy(
      (rows: string[]) => rows.length > 0 && rows.every((t) => t.includes('icmpv6')),
    );
    expect(new URL(page.url()).searchParams.get('filter')).toBe('icmp6');
    await page.close();
  });

  it('should filter by a namespace clicked on the topology, and bring the view back from the URL', async () => {
    const { page } = await replay();
    await page.locator('[data-testid="ns-node"][data-name="demo-ext"] .ns-head').click();
    await page.locator('[data-testid="facet"]').waitFor();
    const chips = (): Promise<(string | null)[][]> => page.locator('[data-testid="packet-row"]').evaluateAll((els) => els.map((e) => [...e.querySelectorAll('.chip')].map((c) => c.getAttribute('title'))));
    await expect.poll(chips).toSatisfy((rows: (string | null)[][]) => rows.length > 0 && rows.every((c) => c.includes('demo-ext')));
    // Keyboard: the list takes ↑/↓ and selects as it moves.
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    await page.locator('[data-testid="hop-timeline"]').waitFor();
    const selected = await page.locator('[data-testid="packet-row"][aria-selected="true"]').getAttribute('data-id');
    expect(selected).toBeTruthy();
    const url = new URL(page.url());
    expect(url.searchParams.get('ns')).toMatch(/^\d+$/);
    expect(url.searchParams.get('packet')).toBe(selected);

    const again = await browser.newPage({ viewport: VIEWPORT });
    await again.goto(page.url());
    await again.locator('[data-testid="hop-timeline"]').waitFor();
    expect(await again.locator('[data-testid="facet"]').textContent()).toContain('demo-ext');
    expect(await again.locator('[data-testid="packet-row"][aria-selected="true"]').getAttribute('data-id')).toBe(selected);
    await screenshot(again, 'replay-from-url');
    await again.close();
    await page.close();
  });

  it('should say what to do when the service does not answer', async () => {
    const { page } = await open('');
    const empty = page.locator('[data-testid="empty-state"]').filter({ hasText: 'does not answer' });
    await empty.waitFor();
    expect(await empty.textContent()).toContain('hoptrace serve');
    expect(await page.locator('[data-testid="status-connection"]').textContent()).toContain('unreachable');
    await screenshot(page, 'service-unreachable');
    await page.close();
  });
});
