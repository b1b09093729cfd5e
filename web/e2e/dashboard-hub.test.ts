/**
 * The dashboard of `hoptrace serve --hub` (issue 17 §2 and §5), end to end: a real nats-server with
 * JetStream, two "nodes" as groups of namespaces joined by an underlay veth and a VXLAN overlay
 * (test/helpers/cluster-lab.ts), `hoptrace agent --namespaces` per node, `hoptrace serve --hub` on
 * port 0 serving a dashboard built from the tree, headless Chromium.
 *
 * The page must find hub mode by itself (GET /api/cluster) and show: the two nodes as boxes around
 * their own namespaces with the tunnel between their vx0 devices; a pod → pod datagram as ONE row
 * (stitched by the hub) naming both nodes, whose timeline puts hops on both nodes with their names;
 * each node's clock offset in the status bar; the same rows, once, in a page opened afterwards; a
 * node whose agent is gone marked lost. Root only; addresses inside 10.171.0.0/16 in
 * namespaces of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../../test/helpers/nats.js';
import { startHubCli as startCli, stopHubCli as stopCli, until, type HubProcess as Started } from '../../test/helpers/hub.js';
import { clusterLabDown, clusterLabFor, clusterLabUp, sendPodDatagrams, type ClusterLab } from '../../test/helpers/cluster-lab.js';
import { browserMissing, buildDashboard, launchBrowser, screenshot, watchErrors, type BuiltDashboard } from './browser.js';

const why = process.getuid?.() !== 0 ? 'needs root: it builds namespaces and runs bpftrace' : !hasNatsServer ? NEEDS_NATS : browserMissing();
const VIEWPORT = { width: 1600, height: 1000 };
const PORT = 5171;
// Its own range, not HOPTRACE_TEST_ADDRESS_BASE: `npm test` runs it beside the second lane's hub tests, which take that one.
const BASE = 171;

/** A drawn element's box in the SVG's own coordinates (what the layout placed). */
async function box(page: Page, selector: string): Promise<{ x: number; y: number; w: number; h: number }[]> {
  return page.locator(selector).evaluateAll((els) => els.map((e) => {
    const r = (e as SVGGraphicsElement).getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  }));
}

describe.skipIf(why !== null)(`the dashboard of serve --hub, two nodes over VXLAN${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab: ClusterLab = clusterLabFor(`h6x${randomBytes(2).toString('hex')}`, 'vxlan', BASE);
  let nats: NatsServer | undefined;
  let built: BuiltDashboard | undefined;
  let hub: Started | undefined;
  const agents: Started[] = [];
  let browser: Browser | undefined;
  let dataDir = '';
  let url = '';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'h6x-hub-e2e-'));
    built = await buildDashboard();
    nats = await startNatsServer();
    await clusterLabUp(lab);
    for (const n of lab.nodes) {
      agents.push(await startCli(['agent', '--hub', nats.url, '--node', `node${n.index}`, '--namespaces', n.selector], /waiting for a hub/));
    }
    hub = await startCli(['serve', '--port', '0', '--data-dir', dataDir, '--hub', nats.url, '--filter', `net 10.${BASE}.0.0/16`], /listening on (http:\S+)/, { env: { HOPTRACE_WEB_DIST: built.dir } });
    url = /listening on (http:\S+)/.exec(hub.out())![1]!;
    browser = await launchBrowser();
  }, 180_000);

  afterAll(async () => {
    try {
      await browser?.close();
      await stopCli(hub);
      await Promise.all(agents.map((a) => stopCli(a)));
      await nats?.stop();
      await built?.remove();
    } finally {
      await clusterLabDown(lab);
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('should group namespaces by node with the tunnel between them, and show a pod → pod datagram as one row with hops on both nodes', async () => {
    if (!browser) throw new Error('not started');
    // Both agents trace the hub's session before anything is sent.
    await until('both nodes tracing', async () => {
      const v = (await (await fetch(`${url}api/cluster`)).json()) as { nodes: { session: { ok?: boolean } | null }[] };
      return v.nodes.length === 2 && v.nodes.every((n) => n.session?.ok) ? true : undefined;
    });
    // How the page knows: /api/health says hub (a single host's says nothing new).
    expect(await (await fetch(`${url}api/health`)).json()).toMatchObject({ status: 'ok', hub: true });
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = watchErrors(page);
    await page.goto(url);

    // Hub mode, found by the page itself: the cluster's session, no session of the hub host's own.
    await expect.poll(() => page.locator('[data-testid="cluster-source"]').textContent(), { timeout: 30_000 }).toMatch(new RegExp(`cluster\\s*2 nodes\\s*· net 10\\.${BASE}\\.0\\.0/16`));
    // The latency view and the record button serve the hub's sessions too.
    expect(await page.locator('[data-testid="stats"]').count()).toBe(1);
    expect(await page.locator('[data-testid="status-bpftrace"]').count()).toBe(0);

    // The topology: one box per node, each holding its own namespaces (and only those).
    const nodes = page.locator('[data-testid="cluster-node"]');
    await expect.poll(() => nodes.evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))), { timeout: 30_000 }).toEqual(['node1', 'node2']);
    for (const n of lab.nodes) {
      const [outer] = await box(page, `[data-testid="cluster-node"][data-node="node${n.index}"] .cluster-box`);
      expect(outer).toBeDefined();
      for (const ns of [n.nodeNs, n.podNs]) {
        const [inner] = await box(page, `[data-testid="ns-node"][data-name="${ns}"]`);
        expect(inner, ns).toBeDefined();
        expect(inner!.x).toBeGreaterThanOrEqual(outer!.x);
        expect(inner!.y).toBeGreaterThanOrEqual(outer!.y);
        expect(inner!.x + inner!.w).toBeLessThanOrEqual(outer!.x + outer!.w + 0.5);
        expect(inner!.y + inner!.h).toBeLessThanOrEqual(outer!.y + outer!.h + 0.5);
      }
    }
    // The VXLAN tunnel between the two nodes' vx0 devices.
    const tunnel = page.locator('[data-testid="link-tunnel"]');
    await expect.poll(() => tunnel.count(), { timeout: 10_000 }).toBe(1);
    expect(await tunnel.getAttribute('data-label')).toBe('vxlan vni 42 · udp 4789');
    expect(await page.locator('[data-testid="ns-node"]').count()).toBe(4);

    // Three datagrams pod(node1) → pod(node2): three rows, each one stitched packet crossing both nodes.
    const [n1, n2] = lab.nodes;
    await sendPodDatagrams(n1, n2, PORT);
    const ours = page.locator('[data-testid="packet-row"]').filter({ hasText: `${n2.pod}:${PORT}` });
    try {
      await expect.poll(() => ours.count(), { timeout: 60_000 }).toBe(3);
    } catch (err) {
      await screenshot(page, 'hub-no-rows');
      throw new Error(`rows: ${JSON.stringify(await page.locator('[data-testid="packet-row"]').allTextContents())}; status: ${await page.locator('[data-testid="status-bar"]').textContent()}`, { cause: err });
    }
    // No piece of one left alone as a row of its own: every row names both nodes.
    expect(await ours.locator('[data-testid="row-nodes"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-nodes')))).toEqual(['node1,node2', 'node1,node2', 'node1,node2']);

    await ours.first().click();
    const timeline = page.locator('[data-testid="hop-timeline"]');
    await timeline.waitFor();
    const hops = await timeline.locator('[data-testid="hop"]').evaluateAll((els) => els.map((e) => ({ node: e.getAttribute('data-node'), ns: e.getAttribute('data-ns'), encap: e.getAttribute('data-encap'), decap: e.getAttribute('data-decap') })));
    // Every hop carries its node, and the node is the one whose namespaces the hop is in.
    for (const h of hops) expect(h.ns?.startsWith(`${lab.prefix}-${h.node === 'node1' ? 1 : h.node === 'node2' ? 2 : 'x'}-`), JSON.stringify(h)).toBe(true);
    expect(hops[0]).toMatchObject({ node: 'node1', ns: n1.podNs });
    expect(hops[hops.length - 1]).toMatchObject({ node: 'node2', ns: n2.podNs });
    expect(hops.some((h) => h.node === 'node1' && h.encap === 'vxlan')).toBe(true);
    expect(hops.some((h) => h.node === 'node2' && h.decap === 'vxlan')).toBe(true);
    // The hop table names each hop's node, in the same order as the timeline.
    expect(await page.locator('[data-testid="hop-row-node"]').allTextContents()).toEqual(hops.map((h) => h.node));
    // The lanes name their node.
    expect(await timeline.locator('[data-testid="lane-node"]').allTextContents()).toEqual(['node1', 'node1', 'node2', 'node2']);
    // The packet pane: the hub's expected path across both nodes' models, each expected hop with
    // its node, and the packet on it (no divergence).
    const expectedNodes = await page.locator('[data-testid="expected-hop-node"]').allTextContents();
    expect(expectedNodes[0]).toBe('node1');
    expect(expectedNodes.at(-1)).toBe('node2');
    expect(await page.locator('[data-testid="path-match"]').count()).toBe(1);
    expect(await page.locator('[data-testid="divergence"]').count()).toBe(0);

    // The status bar: each node, up, with its clock against the reference (node1, by name).
    const status = page.locator('[data-testid="status-node"]');
    await expect.poll(() => status.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-state')}`))).toEqual(['node1:up', 'node2:up']);
    expect(await status.nth(0).textContent()).toContain('reference clock');
    // One kernel: node2's offset is the wire time, which the hub estimates from the stitched pairs.
    await expect.poll(() => status.nth(1).textContent(), { timeout: 10_000 }).toMatch(/clock [+−]?\d/);
    await screenshot(page, 'hub-cluster');

    // A page opened after the fact lists the hub's recent packets (REST), each once.
    await page.reload();
    await expect.poll(() => ours.count(), { timeout: 30_000 }).toBe(3);
    expect(await ours.locator('[data-testid="row-nodes"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-nodes')))).toEqual(['node1,node2', 'node1,node2', 'node1,node2']);

    // A session of its own through the hub, from the page's '+ new' (notes on): the hub asks both
    // agents; the picker then shows it, and its rows are its own traffic only, each note naming its node.
    await page.getByRole('button', { name: '+ new' }).click();
    await page.locator('.popover input.field').first().fill(`udp port ${PORT + 1}`);
    await page.locator('[data-testid="new-notes"]').check();
    await page.locator('[data-testid="new-session-start"]').click();
    const picker = page.locator('[data-testid="session-picker"]');
    await expect.poll(() => picker.inputValue(), { timeout: 120_000 }).toMatch(/^[0-9a-f]{12}$/);
    const picked = await picker.inputValue();
    type Info = { filter: string; depth: { notes: boolean }; nodes: { node: string; state: string }[] };
    // A node whose bpftrace failed to attach in time on this busy machine is asked again at the next renewal.
    const session = await until('both nodes running the session', async () => {
      const info = (await (await fetch(`${url}api/sessions/${picked}`)).json()) as Info;
      return info.nodes.map((n) => `${n.node}:${n.state}`).join() === 'node1:running,node2:running' ? info : undefined;
    }, 180_000);
    expect(session).toMatchObject({ filter: `udp and port ${PORT + 1}`, depth: { notes: true } });
    await expect.poll(() => ours.count(), { timeout: 10_000 }).toBe(0);
    // Recorded from the page while its traffic goes: the hub writes the file into its library.
    const record = page.locator('[data-testid="record"]');
    await record.click();
    await page.locator('[data-testid="record-name"]').fill('h6x-hub-rec');
    await page.locator('[data-testid="record-start"]').click();
    await expect.poll(() => record.textContent(), { timeout: 10_000 }).toMatch(/stop/);
    await sendPodDatagrams(n1, n2, PORT + 1);
    const theirs = page.locator('[data-testid="packet-row"]').filter({ hasText: `${n2.pod}:${PORT + 1}` });
    await expect.poll(() => theirs.count(), { timeout: 60_000 }).toBe(3);
    await record.click();
    await expect.poll(() => record.textContent(), { timeout: 10_000 }).toMatch(/record/);
    type Lib = { recordings: Array<{ name: string; events: number; recording: boolean; complete: boolean; host: string }> };
    const recorded = ((await (await fetch(`${url}api/recordings`)).json()) as Lib).recordings.find((r) => r.name === 'h6x-hub-rec');
    expect(recorded).toMatchObject({ recording: false, complete: true, host: expect.stringContaining('cluster node1, node2') });
    expect(recorded!.events).toBeGreaterThan(0);
    expect(await ours.count()).toBe(0);
    await theirs.first().click();
    const where = await page.locator('[data-testid="depth-list"] .depth-where').allTextContents();
    expect(where.some((w) => w.endsWith(' on node1')), where.join(' | ')).toBe(true);
    expect(where.some((w) => w.endsWith(' on node2')), where.join(' | ')).toBe(true);
    await screenshot(page, 'hub-session-notes');

    // The latency view of the cluster: a stats session on the agents; the segment across the
    // underlay names both nodes and says it is an estimate (the hub's clock offsets time it).
    await page.locator('[data-testid="stats"]').click();
    await page.locator('[data-testid="stats-filter"]').fill(`udp port ${PORT + 2}`);
    await page.locator('[data-testid="stats-start"]').click();
    await expect.poll(() => page.locator('[data-testid="stats-session"]').count(), { timeout: 180_000 }).toBe(1);
    const estimate = page.locator('[data-testid="stats-segment"]').filter({ has: page.locator('[data-testid="stats-estimate"]') });
    // A node whose bpftrace was slow to attach joins at the hub's next renewal: datagrams until the crossing shows.
    await until('a segment across the nodes', async () => {
      await sendPodDatagrams(n1, n2, PORT + 2, 3);
      return (await estimate.count()) > 0 ? true : undefined;
    }, 120_000);
    expect(await estimate.first().textContent()).toMatch(/node1: .*→ node2: .*≈ estimate/);
    await screenshot(page, 'hub-latency');
    await page.locator('[data-testid="stats-close"]').click();

    // The recording made from the page replays in another page as the hub showed it: each of its
    // datagrams one row crossing both nodes.
    const replay = await browser.newPage({ viewport: VIEWPORT });
    const replayErrors = watchErrors(replay);
    await replay.goto(`${url}?recording=h6x-hub-rec`);
    await expect.poll(() => replay.locator('[data-testid="replay-name"]').textContent(), { timeout: 30_000 }).toBe('h6x-hub-rec');
    await expect.poll(() => replay.evaluate(() => (window as unknown as { __hoptrace: { state: { replay: { building: boolean } | null } } }).__hoptrace.state.replay?.building), { timeout: 15_000 }).toBe(false);
    await replay.locator('[data-testid="timeline"]').focus();
    await replay.keyboard.press('End');
    const replayed = replay.locator('[data-testid="packet-row"]').filter({ hasText: `${n2.pod}:${PORT + 1}` });
    await expect.poll(() => replayed.count(), { timeout: 15_000 }).toBe(3);
    expect(await replayed.locator('[data-testid="row-nodes"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-nodes')))).toEqual(['node1,node2', 'node1,node2', 'node1,node2']);
    // Its topology is the cluster's, a box per node.
    const replayNodes = replay.locator('[data-testid="cluster-node"]');
    await expect.poll(() => replayNodes.evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))), { timeout: 30_000 }).toEqual(['node1', 'node2']);
    await screenshot(replay, 'hub-recording-replayed');
    expect(replayErrors).toEqual([]);
    await replay.close();

    // node2's agent goes away: the hub finds it at its next session renewal (every 10 s) and the
    // page marks the node lost, in the status bar and on its box; node1 stays up.
    await stopCli(agents[1]);
    await expect.poll(() => status.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-state')}`)), { timeout: 40_000 })
      .toEqual(['node1:up', 'node2:lost']);
    expect(await status.nth(1).getAttribute('class')).toContain('bad');
    const lostBox = page.locator('[data-testid="cluster-node"][data-node="node2"]');
    await expect.poll(() => lostBox.getAttribute('data-state'), { timeout: 5_000 }).toBe('lost');
    expect(await lostBox.locator('.cluster-name').textContent()).toBe('node2 — lost');
    expect(await page.locator('[data-testid="cluster-node"][data-node="node1"]').getAttribute('data-state')).toBe('up');
    await screenshot(page, 'hub-cluster-lost');
    expect(errors).toEqual([]);
    await page.close();
  }, 480_000);
});
