/**
 * A vxlan overlay in the dashboard, live (issue 14 §4): a real overlay lab (two node namespaces
 * joined by an underlay veth, a vxlan device in each, a pod behind each node's bridge), the real
 * service on port 0 tracing it with live bpftrace, headless Chromium. A pod → pod datagram is one
 * packet with a VXLAN badge and the tunnel on its path chips; its timeline marks "encap vxlan vni
 * 42" on node1's vx0 and "decap" on node2's; its hop table shows the outer (underlay) tuple next
 * to the inner one on the ul0 hops; the topology draws the tunnel between the two vx0 devices,
 * labelled, on the packet's path. Root only; addresses inside 10.165.0.0/16 in namespaces of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startService, type RunningService } from '../../server/service/index.js';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, type OverlayLab } from '../../test/helpers/overlay-lab.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };
const PORT = 5433;

describe.skipIf(why !== null)(`a vxlan overlay in the dashboard, on the live service${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab: OverlayLab = overlayLabFor(`h6w${randomBytes(2).toString('hex')}`, { kind: 'vxlan', addressBase: 165 });
  let echo: Server | undefined;
  let built: BuiltDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser | undefined;
  let dataDir = '';
  let sending = true;
  let traffic: Promise<void> = Promise.resolve();
  const inode = (ns: string): number => statSync(`/run/netns/${ns}`).ino;

  beforeAll(async () => {
    await overlayLabUp(lab, { kind: 'vxlan', addressBase: 165 });
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    // A datagram (and its reply) through the tunnel twice a second, for as long as the test runs.
    traffic = (async () => {
      while (sending) {
        await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 1, 64);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    dataDir = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-overlay-'));
    built = await buildDashboard();
    service = await startService({ port: 0, webDist: built.dir, dataDir, log: () => undefined });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    sending = false;
    try {
      // A send stuck on a loaded machine must not keep the lab up: wait for the loop a while only.
      await Promise.race([traffic, new Promise((r) => setTimeout(r, 10_000))]);
      await browser?.close();
      await service?.close();
      await built?.remove();
      await echo?.stop();
    } finally {
      await overlayLabDown(lab);
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('should show the pod-to-pod packet through the tunnel: encap and decap on the vx0 hops, the outer tuple on the underlay, the tunnel link drawn on its path', async () => {
    if (!browser || !service) throw new Error('not started');
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    // A session of its own that follows only this lab's datagrams (inner or outer headers: the
    // filter matches both): a session of all packets on a busy shared host loses events in the
    // kernel, and a packet missing its tunnel hops would not show them.
    const created = await fetch(new URL('/api/sessions', service.url), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ filter: `udp and dst host ${lab.addr.pod2} and port ${PORT}` }),
    });
    expect(created.status).toBe(201);
    const { id } = await created.json() as { id: string };
    await page.goto(`${service.url}?session=${id}&ns=${inode(lab.ns.node1)}`);
    // One packet from pod1 to pod2, badged with its tunnel, the tunnel's arrow between the nodes.
    const row = page.locator('[data-testid="packet-row"]').filter({ has: page.locator('[data-testid="row-tunnel"]') }).first();
    // The service starts its bpftrace for the page's session first: on a loaded machine that takes a while.
    try {
      await row.waitFor({ timeout: 150_000 });
    } catch (err) {
      // Say what the page had instead: rows (without the badge?), the pipeline's state.
      await screenshot(page, 'overlay-no-tunnel-row');
      const seen = await page.locator('[data-testid="packet-row"]').evaluateAll((els) => els.slice(0, 5).map((e) => e.textContent?.replace(/\s+/g, ' ').trim()));
      const status = await page.locator('[data-testid="status-bar"]').textContent();
      throw new Error(`no row with a tunnel badge: ${String(err)}; rows: ${JSON.stringify(seen)}; status: ${status}`, { cause: err });
    }
    expect(await row.locator('[data-testid="row-tunnel"]').textContent()).toBe('VXLAN');
    expect(await row.locator('.c-tuple').textContent()).toContain(`${lab.addr.pod1}:`);
    expect(await row.locator('[data-testid="path-tunnel"]').getAttribute('title')).toBe('through the vxlan vni 42 tunnel');
    await row.click();

    const timeline = page.locator('[data-testid="hop-timeline"]');
    await timeline.waitFor();
    const encap = timeline.locator('[data-encap="vxlan"]');
    expect(await encap.getAttribute('data-ns')).toBe(lab.ns.node1);
    expect(await encap.locator('[data-testid="hop-encap"]').textContent()).toBe('encap vxlan vni 42');
    expect(await encap.locator('.hop-label').textContent()).toContain(lab.tunnel);
    const decap = timeline.locator('[data-decap="vxlan"]');
    expect(await decap.getAttribute('data-ns')).toBe(lab.ns.node2);
    expect(await decap.locator('[data-testid="hop-decap"]').textContent()).toBe('decap vxlan vni 42');
    const outers = await timeline.locator('.hop.underlay').evaluateAll((els) => els.map((e) => e.getAttribute('data-outer')));
    expect(outers.length).toBeGreaterThanOrEqual(3);
    for (const o of outers) expect(o).toMatch(new RegExp(`^${lab.addr.ul1.replace(/\./g, '\\.')}:\\d+ → ${lab.addr.ul2.replace(/\./g, '\\.')}:4789 udp$`));

    // The hop table: the inner tuple, and beside it the outer one, on every ul0 hop.
    const under = page.locator('[data-testid="hop-row"]').filter({ has: page.locator('[data-testid="row-outer"]') });
    expect(await under.count()).toBe(outers.length);
    for (const r of await under.all()) {
      expect(await r.textContent()).toContain(`→ ${lab.addr.pod2}:${PORT}`);
      expect(await r.locator('td').nth(4).textContent()).toBe('ul0');
      expect(await r.locator('[data-testid="row-outer"]').textContent()).toMatch(new RegExp(`^outer ${lab.addr.ul1.replace(/\./g, '\\.')}:\\d+ → ${lab.addr.ul2.replace(/\./g, '\\.')}:4789 udp$`));
    }
    expect(await page.locator('[data-testid="detail-tunnel"]').textContent()).toBe('vxlan vni 42');

    // The topology: the tunnel between the two vx0 devices, labelled, on the packet's path.
    const link = page.locator('[data-testid="link-tunnel"]').filter({ has: page.locator('[data-testid="tunnel-label"]', { hasText: 'vxlan vni 42 · udp 4789' }) });
    await expect.poll(() => link.evaluateAll((els) => els.filter((e) => e.classList.contains('onpath')).length), { timeout: 10_000 }).toBe(1);
    const onPath = link.and(page.locator('.onpath'));
    const title = (await onPath.locator('title').textContent()) ?? '';
    expect([`underlay ${lab.addr.ul1} → ${lab.addr.ul2}`, `underlay ${lab.addr.ul2} → ${lab.addr.ul1}`].some((t) => title.includes(t))).toBe(true);
    // Both ends are the nodes' vx0 boxes (drawn expanded: they are on the packet's path).
    for (const n of [lab.ns.node1, lab.ns.node2]) {
      expect(await page.locator(`[data-testid="iface-node"][data-netns="${inode(n)}"][data-name="${lab.tunnel}"]`).getAttribute('class')).toContain('onpath');
    }
    // Drawn unlike a veth, even on the packet's path: long dashes where a veth is a solid line.
    const dash = (sel: string): Promise<string> => page.locator(sel).first().evaluate((e) => getComputedStyle(e).strokeDasharray);
    expect(await dash('[data-testid="link-tunnel"].onpath path.line')).not.toBe('none');
    expect(await dash('[data-testid="link-veth"].onpath path.line')).toBe('none');
    await screenshot(page, 'overlay-packet');
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);
});
