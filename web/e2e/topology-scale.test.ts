/**
 * The topology view on hosts with 50+ namespaces, in headless Chromium: replays of recordings
 * whose topology is a host of many pods (built here from the synthetic topology the unit tests
 * use, with traffic between the pods), opened from the static build. What is checked is what a
 * reader sees: namespaces grouped, text drawn large enough to read at the fitted zoom, a group
 * opening on click, and a picked packet's namespaces drawn on their own. Screenshots for the eye.
 * No root needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { HopEvent, HopKind } from '../../shared/hop-event.js';
import { RecordingEncoder } from '../../shared/recording/index.js';
import { readRecording } from '../src/api/replay-source.js';
import { syntheticTopology } from '../test/synthetic-topology.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, serveStatic, watchErrors, type BuiltDashboard, type StaticServer } from './browser.js';

const why = browserMissing();
const VIEWPORT = { width: 1440, height: 900 };

/** A recording of `nodes` × `pods` (plus the host), with one packet between neighbouring pods every 20 ms, one in 9 dropped at the bridge. */
function recording(nodes: number, pods: number): Uint8Array {
  const demo = readRecording(new Uint8Array(readFileSync(new URL('../fixtures/demo-lab.hoptrace', import.meta.url))));
  const netfilterDrop = [...demo.header.dropReasons].find(([, name]) => name === 'NETFILTER_DROP')?.[0] ?? 0;
  const topo = syntheticTopology(nodes, pods);
  const byName = new Map(topo.namespaces.map((n) => [n.name, n.netns]));
  const t0 = demo.header.startMonoNs + 1e6;
  const enc = new RecordingEncoder({ ...demo.header, recorder: 'web/e2e/topology-scale.test.ts (synthetic)', filter: '' });
  enc.topology({ t: t0, snapshot: true, namespaces: topo.namespaces.map((n) => ({ netns: n.netns, name: n.name })), model: topo, removed: [] });
  const base = { family: 4 as const, proto: 17, len: 60, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, cpu: 0 };
  for (let i = 0; i < 300; i++) {
    const n = i % nodes;
    const p = i % pods;
    const q = (i + 1) % pods;
    const from = byName.get(`node${n}-pod${p}`) ?? 0;
    const to = byName.get(`node${n}-pod${q}`) ?? 0;
    const node = byName.get(`node${n}`) ?? 0;
    const tuple = { src: `10.${n}.0.${10 + p}`, dst: `10.${n}.0.${10 + q}`, sport: 30000 + i, dport: 53, ipId: i };
    const skb = `ffff8881${(0x10000000 + i * 0x100).toString(16)}`;
    const dropped = i % 9 === 0;
    const steps: [HopKind, number, number, string][] = dropped
      ? [['xmit', from, 2, 'eth0'], ['rx', node, 10 + p, `veth${p}`], ['drop', node, 2, 'br0']]
      : [['xmit', from, 2, 'eth0'], ['rx', node, 10 + p, `veth${p}`], ['xmit', node, 10 + q, `veth${q}`], ['rx', to, 2, 'eth0'], ['consume', to, 0, '']];
    const t = t0 + i * 20e6;
    steps.forEach(([kind, netns, ifindex, ifname], j) => {
      const ev: HopEvent = { ...base, ...tuple, kind, netns, ifindex, ifname, skb, t: t + j * 15_000, reason: kind === 'drop' ? netfilterDrop : 0 };
      enc.event(ev);
    });
  }
  enc.end({ t: t0 + 300 * 20e6, wallNs: demo.header.startWallNs, packets: 0, reason: 'count' });
  return enc.take();
}

describe.skipIf(why !== null)(`topology at 50+ namespaces${why ? ` (skipped: ${why})` : ''}`, () => {
  let built: BuiltDashboard | undefined;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    built = await buildDashboard();
    await writeFile(join(built.dir, 'many-small-nodes.hoptrace'), recording(12, 4));
    await writeFile(join(built.dir, 'one-big-node.hoptrace'), recording(1, 55));
    server = await serveStatic(built.dir);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await built?.remove();
  });

  async function open(file: string): Promise<{ page: Page; errors: string[] }> {
    if (!browser || !server) throw new Error('not started');
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(`${server.url}/?replay=${file}&speed=max&loop=0`);
    await page.locator('[data-testid="packet-row"]').first().waitFor({ timeout: 30_000 });
    return { page, errors };
  }

  /** On-screen height (px) of the namespace names drawn in the topology, smallest first. */
  async function nameHeights(page: Page): Promise<number[]> {
    const boxes = await page.locator('[data-testid="topology"] .ns-name').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    return boxes.filter((h) => h > 0).sort((a, b) => a - b);
  }

  it('should group a dozen nodes\' pods and draw 61 namespaces large enough to read', async () => {
    const { page, errors } = await open('many-small-nodes.hoptrace');
    const topo = page.locator('[data-testid="topology"]');
    expect(await topo.locator('.toolbar').textContent()).toContain('61 namespaces');
    // 12 groups of 4 pods, 12 nodes and the host: 25 boxes, not 61.
    await expect.poll(() => topo.locator('[data-testid="ns-group"]').count(), { timeout: 20_000 }).toBe(12);
    expect(await topo.locator('[data-testid="ns-node"]').count()).toBe(13);
    expect(await topo.locator('[data-testid="ns-group"]').first().getAttribute('data-name')).toMatch(/^4 namespaces on node\d+\/br0$/);
    // Fitted to the panel, a 12 px name is still drawn at 9 px or more.
    await page.waitForTimeout(500);
    expect((await nameHeights(page))[0]).toBeGreaterThanOrEqual(9);
    await screenshot(page, 'topology-61-namespaces');

    // Picking a packet draws its pods on their own, out of their group, on its path.
    await page.locator('[data-testid="packet-row"]').nth(3).click();
    await page.locator('[data-testid="hop-timeline"]').waitFor();
    const lanes = await page.locator('[data-testid="hop"]').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-ns')))]);
    expect(lanes.length).toBeGreaterThanOrEqual(2);
    for (const ns of lanes) await expect.poll(() => topo.locator(`[data-testid="ns-node"][data-name="${ns}"]`).count(), { timeout: 10_000 }).toBe(1);
    await screenshot(page, 'topology-61-namespaces-packet');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('should fold 55 pods on one bridge into one box that opens on click', async () => {
    const { page } = await open('one-big-node.hoptrace');
    const topo = page.locator('[data-testid="topology"]');
    const group = topo.locator('[data-testid="ns-group"]');
    await group.first().waitFor({ timeout: 20_000 });
    expect(await group.getAttribute('data-name')).toBe('55 namespaces on node0/br0');
    expect((await nameHeights(page))[0]).toBeGreaterThanOrEqual(9);
    await screenshot(page, 'topology-55-pods-grouped');
    // Anywhere on the box opens it, not only its text.
    const box = await group.boundingBox();
    if (!box) throw new Error('group not drawn');
    await page.mouse.click(box.x + box.width - 6, box.y + box.height - 6);
    await expect.poll(() => topo.locator('[data-testid="ns-node"]').count(), { timeout: 20_000 }).toBe(57);
    await page.close();
  });
});
