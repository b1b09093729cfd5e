/**
 * Browser-side ingest benchmark for the dashboard (bounded in time; not a test). Measures:
 *  1. events/s the reconstruction engine sustains in one thread (IngestCore in Node: protobuf
 *     decode + reconstruction + filter, the worker's exact code);
 *  2. the same in the dashboard's Web Worker in headless Chromium, fed as fast as the page can
 *     (a synthetic recording replayed at full speed), and how long until 100,000 packets list;
 *  3. UI frame time (requestAnimationFrame intervals) with 100,000 packets listed: idle,
 *     scrolling the list every frame, and scrolling while events keep arriving at a steady rate.
 *
 *   npx tsx bench/web-ingest.ts [--packets 100000] [--rate 70000] [--seconds 5]
 *
 * --rate is the steady event rate (events/s) for the "scrolling under ingest" phase. No root
 * needed: the traffic is synthetic, shaped like the demo lab's (pod → node → ext with
 * MASQUERADE, replies, FORWARD drops), on the demo lab's recorded topology.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import type { HopEvent, HopKind } from '../shared/hop-event.js';
import { RecordingEncoder } from '../shared/recording/index.js';
import { encodeBatch } from '../shared/wire.js';
import { IngestCore } from '../web/src/worker/ingest-core.js';
import { readRecording } from '../web/src/api/replay-source.js';
import { browserMissing, buildDashboard, launchBrowser, serveStatic } from '../web/e2e/browser.js';
import { readFileSync } from 'node:fs';

const { values } = parseArgs({
  options: {
    packets: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '70000' },
    seconds: { type: 'string', default: '5' },
  },
});
const PACKETS = Number(values.packets);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);

// ---- synthetic traffic on the demo lab's topology ----
const demo = readRecording(new Uint8Array(readFileSync(new URL('../web/fixtures/demo-lab.hoptrace', import.meta.url))));
const topo = demo.topology;
if (!topo) throw new Error('the demo fixture has no topology');
const nsOf = (role: string): { netns: number; ifs: Map<string, number> } => {
  const ns = topo.namespaces.find((n) => n.name === `demo-${role}`);
  if (!ns) throw new Error(`no demo-${role}`);
  return { netns: ns.netns, ifs: new Map(ns.interfaces.map((i) => [i.name, i.ifindex])) };
};
const POD1 = nsOf('pod1');
const NODE = nsOf('node');
const EXT = nsOf('ext');
let netfilterDrop = 0;
for (const [code, name] of demo.header.dropReasons) if (name === 'NETFILTER_DROP') netfilterDrop = code;

type Step = [HopKind, { netns: number; ifs: Map<string, number> }, string, Partial<HopEvent>?];

/** Events of one packet starting at time t (ns); `i` varies ports, ids and skb addresses. */
function packet(i: number, t: number): HopEvent[] {
  const sport = 20000 + (i % 40000);
  const base = { family: 4 as const, proto: 17, len: 60, ipId: i & 0xffff, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0 };
  const skb = `ffff8881${(0x10000000 + (i % 8192) * 0x100).toString(16)}`;
  let steps: Step[];
  let tuple: Pick<HopEvent, 'src' | 'dst' | 'sport' | 'dport'>;
  const kind = i % 20;
  if (kind === 0) {
    tuple = { src: '10.244.1.11', dst: '10.99.0.2', sport, dport: 9999 };
    steps = [['xmit', POD1, 'eth0'], ['rx', NODE, 'veth-pod1'], ['recv', NODE, 'veth-pod1'], ['recv', NODE, 'br0'], ['drop', NODE, 'br0', { reason: netfilterDrop }]];
  } else if (kind < 4) {
    tuple = { src: '10.99.0.2', dst: '10.99.0.1', sport: 7000, dport: sport };
    const back = { dst: '10.244.1.11' };
    steps = [['xmit', EXT, 'eth0'], ['rx', NODE, 'eth-node'], ['recv', NODE, 'eth-node'], ['xmit', NODE, 'br0', back],
      ['xmit', NODE, 'veth-pod1', back], ['rx', POD1, 'eth0', back], ['recv', POD1, 'eth0', back], ['consume', POD1, '', back]];
  } else {
    tuple = { src: '10.244.1.11', dst: '10.99.0.2', sport, dport: 7000 };
    const out = { src: '10.99.0.1' };
    steps = [['xmit', POD1, 'eth0'], ['rx', NODE, 'veth-pod1'], ['recv', NODE, 'veth-pod1'], ['recv', NODE, 'br0'],
      ['xmit', NODE, 'eth-node', out], ['rx', EXT, 'eth0', out], ['recv', EXT, 'eth0', out], ['consume', EXT, '', out]];
  }
  return steps.map(([k, ns, ifname, over], j) => ({
    ...base, ...tuple, ...over, kind: k, t: t + j * 12_000 + (j % 3) * 3_000, cpu: j % 2, skb,
    netns: ns.netns, ifindex: ifname ? ns.ifs.get(ifname) ?? 0 : 0, ifname,
  }));
}

/** `count` packets at `pps` packets/s, starting at kernel time t0. */
function traffic(count: number, pps: number, t0: number): HopEvent[] {
  const out: HopEvent[] = [];
  const gap = 1e9 / pps;
  for (let i = 0; i < count; i++) out.push(...packet(i, Math.round(t0 + i * gap)));
  return out.sort((a, b) => a.t - b.t);
}

function recording(events: HopEvent[]): Uint8Array {
  const enc = new RecordingEncoder({
    ...demo.header, recorder: 'bench/web-ingest.ts (synthetic)', filter: '',
  });
  enc.topology({ t: events[0]?.t ?? 0, snapshot: true, namespaces: [...demo.names].map(([netns, name]) => ({ netns, name })), model: topo, removed: [] });
  for (const ev of events) enc.event(ev);
  enc.end({ t: events[events.length - 1]?.t ?? 0, wallNs: demo.header.startWallNs, packets: 0, reason: 'count' });
  return enc.take();
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

function frameSummary(deltas: number[]): string {
  const d = deltas.slice(1);
  const long = d.filter((x) => x > 50).length;
  return `${d.length} frames, p50 ${pct(d, 50).toFixed(1)} ms, p95 ${pct(d, 95).toFixed(1)} ms, p99 ${pct(d, 99).toFixed(1)} ms, max ${Math.max(...d).toFixed(1)} ms, >50 ms: ${long}`;
}

// ---- 1. one thread, Node ----
const perPacket = traffic(1, 1, 0).length;
console.log(`synthetic traffic: ${PACKETS} packets, ~${(PACKETS * 7.6).toFixed(0)} events (${perPacket}-8 hops each), demo-lab topology`);
{
  const events = traffic(PACKETS, 20_000, 1e12);
  const batches: Uint8Array[] = [];
  for (let i = 0; i < events.length; i += 2048) batches.push(encodeBatch({ events: events.slice(i, i + 2048), seq: batches.length, lostKernel: 0 }));
  // Without and with the model: the worker puts every packet next to it (shared/expectation.ts), as the service does.
  for (const withModel of [false, true]) {
    const core = new IngestCore({ historyMax: PACKETS, now: () => performance.now() });
    core.setTopology([...demo.names], []);
    core.setDropReasons([...demo.header.dropReasons]);
    if (withModel) core.setModel(topo);
    const t0 = performance.now();
    for (const b of batches) core.ingestBatch(b);
    core.flush();
    const rows = core.takeRows();
    const ms = performance.now() - t0;
    const diverged = rows?.rows.filter((r) => core.get(r.id)?.packet.divergence).length ?? 0;
    console.log(`${withModel ? '' : '\n'}[node] IngestCore, one thread, ${withModel ? 'with the model (expected paths, divergences)' : 'without a model'}: ${events.length} events → ${rows?.rows.length} packets in ${ms.toFixed(0)} ms = ${(events.length / ms * 1000 / 1000).toFixed(0)}k events/s${withModel ? `, ${diverged} diverged` : ''}`);
    if (!withModel) continue;
    core.setFilter('udp and port 7000', null);
    const tf = performance.now();
    const filtered = core.takeRows();
    console.log(`[node] re-filtering ${PACKETS} packets of history ('udp and port 7000'): ${(performance.now() - tf).toFixed(0)} ms, ${filtered?.rows.length} match`);
  }
}

// ---- 2 & 3. the dashboard in Chromium ----
const missing = browserMissing();
if (missing) {
  console.log(`\nbrowser phases skipped: ${missing}`);
  process.exit(0);
}
const built = await buildDashboard();
const fastEvents = traffic(PACKETS, 20_000, 1e12);
await writeFile(join(built.dir, 'bench-fast.hoptrace'), recording(fastEvents));
// Steady phase: the same shape at RATE events/s, replayed in a loop (no pause between rounds)
// until the list holds PACKETS rows and beyond.
const steadyPps = RATE / 7.6;
await writeFile(join(built.dir, 'bench-steady.hoptrace'), recording(traffic(Math.min(Math.ceil(steadyPps * 3), PACKETS), steadyPps, 1e12)));
const server = await serveStatic(built.dir);
const browser = await launchBrowser();

interface PageState { events: number; packets: number; rows: number; busyMsTotal: number; eventsPerSec: number; done: boolean }
const readState = (page: Page): Promise<PageState> => page.evaluate(() => {
  const d = (window as unknown as { __hoptrace: { state: { workerStats: { events: number; packets: number; busyMsTotal: number; eventsPerSec: number } | null; replayDone: boolean }; rows: { value: unknown[] } } }).__hoptrace;
  const w = d.state.workerStats;
  return { events: w?.events ?? 0, packets: w?.packets ?? 0, busyMsTotal: w?.busyMsTotal ?? 0, eventsPerSec: w?.eventsPerSec ?? 0, rows: d.rows.value.length, done: d.state.replayDone };
});

// Passed as source text: tsx would otherwise wrap the named closures in a helper the page lacks.
const FRAMES_SRC = `(async ([dur, scroll]) => {
  const el = document.querySelector('[role="grid"]');
  const deltas = [];
  let last = performance.now();
  const end = last + dur;
  return await new Promise((resolve) => {
    const step = (t) => {
      deltas.push(t - last);
      last = t;
      if (scroll) el.scrollTop = (el.scrollTop + 480) % Math.max(1, el.scrollHeight - el.clientHeight);
      if (t < end) requestAnimationFrame(step);
      else resolve(deltas);
    };
    requestAnimationFrame(step);
  });
})`;

async function frames(page: Page, ms: number, scroll: boolean): Promise<number[]> {
  return page.evaluate(`${FRAMES_SRC}([${ms}, ${scroll}])`) as Promise<number[]>;
}

try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const t0 = Date.now();
  await page.goto(`${server.url}/?replay=bench-fast.hoptrace&speed=max&loop=0&max=${PACKETS}`);
  let s = await readState(page);
  while (!(s.done && s.events >= fastEvents.length && s.rows >= Math.min(PACKETS, s.packets) && s.packets > 0)) {
    await new Promise((r) => setTimeout(r, 250));
    s = await readState(page);
    if (Date.now() - t0 > 180_000) throw new Error(`timed out: ${JSON.stringify(s)}`);
  }
  const wall = (Date.now() - t0) / 1000;
  console.log(`\n[chromium] full-speed replay of ${fastEvents.length} events: ${s.packets} packets, ${s.rows} listed after ${wall.toFixed(1)} s from page load`);
  console.log(`[chromium] worker busy ${(s.busyMsTotal / 1000).toFixed(2)} s → the worker reconstructs and filters ${(s.events / s.busyMsTotal).toFixed(0)}k events/s (replayed events skip the protobuf batch decode; see [node] for it)`);
  console.log(`[chromium] end to end (fetch, recording decode in the worker, reconstruction, rows to the page, list merge): ${(s.events / wall / 1000).toFixed(0)}k events/s`);

  await page.evaluate(() => { (window as unknown as { __hoptrace: { state: { follow: boolean } } }).__hoptrace.state.follow = false; });
  console.log(`[chromium] ${s.rows} rows listed, idle:      ${frameSummary(await frames(page, 3000, false))}`);
  console.log(`[chromium] ${s.rows} rows listed, scrolling: ${frameSummary(await frames(page, SECONDS * 1000, true))}`);
  await page.locator('[data-testid="packet-row"]').nth(5).click();
  console.log(`[chromium] packet selected (timeline + expected path), scrolling: ${frameSummary(await frames(page, 2000, true))}`);
  await page.close();

  const steady = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await steady.goto(`${server.url}/?replay=bench-steady.hoptrace&speed=1&loop=1&gap=0&max=${PACKETS}`);
  const t1 = Date.now();
  let st = await readState(steady);
  while (st.rows < PACKETS && Date.now() - t1 < 180_000) {
    await new Promise((r) => setTimeout(r, 500));
    st = await readState(steady);
  }
  await steady.evaluate(() => { (window as unknown as { __hoptrace: { state: { follow: boolean } } }).__hoptrace.state.follow = false; });
  const before = await readState(steady);
  const fr = await frames(steady, SECONDS * 1000, true);
  const after = await readState(steady);
  const eps = (after.events - before.events) / SECONDS;
  console.log(`\n[chromium] steady ingest at ~${(RATE / 1000).toFixed(0)}k events/s offered, ${after.rows} rows listed (list full after ${((Date.now() - t1) / 1000 - SECONDS).toFixed(1)} s):`);
  console.log(`[chromium]   worker took ${(eps / 1000).toFixed(0)}k events/s while the list scrolled: ${frameSummary(fr)}`);
  await steady.evaluate(() => { (window as unknown as { __hoptrace: { state: { follow: boolean } } }).__hoptrace.state.follow = true; });
  const fr2 = await frames(steady, 3000, false);
  console.log(`[chromium]   same, following the tail (no scrolling): ${frameSummary(fr2)}`);
  await steady.close();
} finally {
  await browser.close();
  await server.close();
  await built.remove();
}
