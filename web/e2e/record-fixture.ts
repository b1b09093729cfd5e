/**
 * Records web/fixtures/demo-lab.hoptrace: the dashboard's replay fixture (`/?replay=demo`) and
 * the input of the browser tests that need no root. Builds a demo lab under its own prefix,
 * traces it with the real probes while the lab's traffic rounds run (bridge, MASQUERADE with
 * reply, DNAT, a FORWARD drop, IPv6), keeps only events from the lab's own namespaces (other
 * labs on the host are traced too), and writes them with the lab's topology model.
 *
 *   sudo npx tsx web/e2e/record-fixture.ts [rounds=6] [out=web/fixtures/demo-lab.hoptrace]
 */
import { writeFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { execa } from 'execa';
import { labDown, labExists, labFor, labUp } from '../../server/lab/lab.js';
import { startLabServers, trafficRound } from '../../server/lab/rounds.js';
import { TraceSession } from '../../server/trace-session.js';
import { discoverTopology } from '../../server/topology/discover.js';
import { RecordingEncoder } from '../../shared/recording/index.js';
import type { HopEvent } from '../../shared/hop-event.js';
import { reconstructAll } from '../../shared/reconstruct.js';

const rounds = Number(process.argv[2] ?? 6);
const out = process.argv[3] ?? new URL('../fixtures/demo-lab.hoptrace', import.meta.url).pathname;

if (process.getuid?.() !== 0) {
  console.error('record-fixture needs root (namespaces and bpftrace)');
  process.exit(2);
}

// 'demo' makes the names read well in the dashboard; refuse to touch a lab someone else runs.
const lab = labFor('demo');
if (await labExists(lab)) {
  console.error(`a lab with prefix 'demo' exists already (${lab.ns.node}); remove it or wait`);
  process.exit(2);
}

await labUp(lab);
const session = new TraceSession({ filter: '' });
const events: HopEvent[] = [];
let lost = 0;
try {
  const nsInodes = new Set(Object.values(lab.ns).map((n) => statSync(`/run/netns/${n}`).ino));
  const entries = Object.values(lab.ns).map((name) => ({ netns: statSync(`/run/netns/${name}`).ino, name, path: `/run/netns/${name}`, pids: [] }));
  const topology = await discoverTopology({ namespaces: entries });
  const servers = await startLabServers(lab);
  session.on('hop', (ev) => {
    // A hop without a device (netns 0) belongs to whichever packet it continues: keep those too.
    if (nsInodes.has(ev.netns) || ev.netns === 0) events.push(ev);
  });
  session.on('lost', (n) => { lost += n; });
  const monoStart = Number(process.hrtime.bigint());
  const wallStart = BigInt(Date.now()) * 1_000_000n;
  await session.start();
  for (let i = 0; i < rounds; i++) {
    await trafficRound(lab);
    await new Promise((r) => setTimeout(r, 300));
  }
  await new Promise((r) => setTimeout(r, 1500));
  await session.stop();
  await Promise.all(servers.map((s) => s.stop()));

  // Device-less (netns 0) events are kept only when they belong to a packet that was seen in
  // the lab: reconstruct, and keep the events of packets with a lab hop.
  const sorted = [...events].sort((a, b) => a.t - b.t);
  const labHops = new Set<string>();
  for (const p of reconstructAll(sorted)) {
    if (!p.hops.some((h) => nsInodes.has(h.netns))) continue;
    for (const h of p.hops) labHops.add(`${h.t}/${h.cpu}/${h.netns}/${h.event}`);
  }
  const kept = sorted.filter((e) => labHops.has(`${e.t}/${e.cpu}/${e.netns}/${e.kind}`));

  const bpftraceVersion = (await execa('bpftrace', ['--version'], { reject: false })).stdout.trim();
  const enc = new RecordingEncoder({
    host: hostname(),
    kernel: release(),
    bpftraceVersion,
    probes: ['net:net_dev_start_xmit', 'net:netif_rx', 'net:netif_receive_skb', 'skb:kfree_skb', 'skb:consume_skb'],
    filter: '',
    startWallNs: wallStart,
    startMonoNs: monoStart,
    dropReasons: session.dropReasons.names,
    recorder: 'hoptrace web/e2e/record-fixture.ts',
  });
  enc.topology({
    t: kept[0]?.t ?? monoStart,
    snapshot: true,
    namespaces: entries.map((e) => ({ netns: e.netns, name: e.name })),
    model: topology,
    removed: [],
  });
  for (const ev of kept) enc.event(ev);
  if (lost) enc.lostEvents(kept[kept.length - 1]?.t ?? monoStart, lost);
  enc.end({ t: kept[kept.length - 1]?.t ?? monoStart, wallNs: BigInt(Date.now()) * 1_000_000n, packets: 0, reason: 'count' });
  const bytes = enc.take();
  writeFileSync(out, bytes);
  console.log(`wrote ${out}: ${kept.length} events (${events.length - kept.length} unrelated dropped), ${lost} lost, ${bytes.length} bytes`);
} finally {
  await session.stop().catch(() => undefined);
  await labDown(lab);
}
