/**
 * Replay speed of a 1,000,000-event recording: `npx tsx bench/replay.ts [events]`.
 * Builds the recording from synthetic lab-shaped events (test/recording/synthetic.ts), then runs
 * each phase in its own process so peak RSS is that phase's alone:
 *   decode  — read and decode every record (RecordingFile.stream)
 *   replay  — decode + reconstruct packets (replayRecording, what `replay` does)
 *   cli     — `hoptrace replay FILE --json > /dev/null`, end to end
 *   seek    — seek to the middle (bytes read) and replay --from there
 *   export  — `exportPcapng` to a temporary file
 */
import { mkdtempSync, rmSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RecordingEncoder } from '../shared/recording/index.js';
import { RecordingFile, replayRecording, exportPcapng } from '../server/recording/index.js';
import { syntheticEvents, syntheticHeader, NS_NAMES, START_MONO, START_WALL } from '../test/recording/synthetic.js';

const self = fileURLToPath(import.meta.url);

interface PhaseResult {
  phase: string;
  seconds: number;
  events: number;
  packets?: number;
  bytesRead?: number;
  peakRssMiB: number;
}

function peakRssMiB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Writes a recording of about `target` events, generating them in slices to keep memory flat. */
function build(path: string, target: number): number {
  const enc = new RecordingEncoder(syntheticHeader());
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: null, removed: [] });
  const fd = openSync(path, 'w');
  let events = 0;
  let t = START_MONO + 1_000_000;
  for (let slice = 0; events < target; slice++) {
    // 200 µs between packets: ~40,000 events/s, a busy trace; 1M events span ~25 s.
    const evs = syntheticEvents(2000, 1000 + slice, 200_000, t);
    for (const ev of evs) {
      if (events >= target) break;
      enc.event(ev);
      events++;
      if (ev.t > t) t = ev.t;
    }
    t += 1_000_000;
    const bytes = enc.take();
    writeSync(fd, bytes);
  }
  enc.end({ t, wallNs: START_WALL + BigInt(t - START_MONO), packets: 0, reason: 'bench' });
  writeSync(fd, enc.take());
  closeSync(fd);
  return events;
}

async function phase(name: string, path: string): Promise<PhaseResult> {
  const file = await RecordingFile.open(path);
  const t0 = performance.now();
  try {
    if (name === 'decode') {
      let events = 0;
      for await (const batch of file.stream()) for (const r of batch) if (r.kind === 'event') events++;
      return { phase: name, seconds: (performance.now() - t0) / 1000, events, peakRssMiB: peakRssMiB() };
    }
    if (name === 'replay') {
      let packets = 0;
      const r = await replayRecording(file, { onPacket: () => { packets++; } });
      return { phase: name, seconds: (performance.now() - t0) / 1000, events: r.events, packets, peakRssMiB: peakRssMiB() };
    }
    if (name === 'seek') {
      let bytesRead = 0;
      const orig = file.readInto.bind(file);
      file.readInto = async (buf, pos) => { const n = await orig(buf, pos); bytesRead += n; return n; };
      const tail = await file.tail();
      const mid = START_MONO + (tail.maxT - START_MONO) / 2;
      const before = bytesRead;
      const s0 = performance.now();
      await file.seek(mid);
      const seekMs = performance.now() - s0;
      const seekBytes = bytesRead - before;
      let packets = 0;
      const r = await replayRecording(file, { fromNs: mid, toNs: mid + 1e9, onPacket: () => { packets++; } });
      process.stderr.write(`seek to the middle: ${seekMs.toFixed(1)} ms, ${(seekBytes / 1024).toFixed(0)} KiB read of ${(file.size / 1048576).toFixed(0)} MiB\n`);
      return { phase: name, seconds: (performance.now() - t0) / 1000, events: r.events, packets, bytesRead: seekBytes, peakRssMiB: peakRssMiB() };
    }
    if (name === 'export') {
      const out = `${path}.pcapng`;
      const r = await exportPcapng(file, out, { overwrite: true });
      const size = statSync(out).size;
      rmSync(out);
      process.stderr.write(`export: ${r.hops} hop blocks, ${(size / 1048576).toFixed(0)} MiB pcapng\n`);
      return { phase: name, seconds: (performance.now() - t0) / 1000, events: r.replay.events, packets: r.packets, peakRssMiB: peakRssMiB() };
    }
    throw new Error(`unknown phase ${name}`);
  } finally {
    await file.close();
  }
}

async function main(): Promise<void> {
  const [flag, name, path] = process.argv.slice(2);
  if (flag === '--phase' && name && path) {
    process.stdout.write(`${JSON.stringify(await phase(name, path))}\n`);
    return;
  }
  const target = Number(flag ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-bench-'));
  try {
    const path = join(dir, 'bench.hoptrace');
    const t0 = performance.now();
    const events = build(path, target);
    const size = statSync(path).size;
    console.log(`built ${events} events, ${(size / 1048576).toFixed(1)} MiB (${(size / events).toFixed(1)} bytes/event) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const p of ['decode', 'replay', 'seek', 'export']) {
      const r = await execa(process.execPath, ['--import', 'tsx', self, '--phase', p, path], { stderr: 'inherit' });
      const res = JSON.parse(String(r.stdout)) as PhaseResult;
      const rate = res.phase === 'seek' ? '' : `, ${Math.round(res.events / res.seconds).toLocaleString('en')} events/s`;
      console.log(`${res.phase.padEnd(7)} ${res.seconds.toFixed(2)} s${rate}${res.packets !== undefined ? `, ${res.packets} packets` : ''}, peak RSS ${res.peakRssMiB} MiB`);
    }
    const c0 = performance.now();
    const cli = await execa(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../server/cli.ts', import.meta.url)), 'replay', path, '--json'], { stdout: 'ignore', reject: false });
    const secs = (performance.now() - c0) / 1000;
    console.log(`cli     ${secs.toFixed(2)} s (hoptrace replay --json > /dev/null, exit ${cli.exitCode}), ${Math.round(events / secs).toLocaleString('en')} events/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
