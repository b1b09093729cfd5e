/**
 * The ingest worker: hosts IngestCore off the UI thread. Batches are processed as they arrive;
 * rows go back at most every `flushMs` (one structured clone per interval, however high the
 * event rate), statistics once a second, and the engine's clock is nudged while traffic is idle.
 */
import { IngestCore } from './ingest-core.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { playRecording, readRecording, type Replay } from '../api/replay-source.js';
import { isTopology } from '../api/contract.js';
import { localAddresses } from '../domain/topology-graph.js';

const ctx = self as unknown as DedicatedWorkerGlobalScope;
const core = new IngestCore({ now: () => performance.now() });
let flushMs = 100;
let dirty = false;
let timer: ReturnType<typeof setTimeout> | undefined;
let replay: Replay | null = null;
let lastProgress = 0;

function startReplay(msg: Extract<ToWorker, { type: 'replay' }>): void {
  replay?.stop();
  let rec;
  try {
    rec = readRecording(new Uint8Array(msg.bytes));
  } catch (err) {
    post({ type: 'error', context: 'replay', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  core.setDropReasons([...rec.header.dropReasons]);
  // Before the first event: fates that rest on "received where the destination lives" need the model's addresses.
  core.setTopology([...rec.names], localAddresses(isTopology(rec.topology) ? rec.topology : null));
  post({
    type: 'recording',
    info: {
      names: [...rec.names], topology: rec.topology, startWallMs: Number(rec.header.startWallNs / 1_000_000n),
      startMonoNs: rec.header.startMonoNs, events: rec.events.length, lost: rec.lost, damaged: rec.damaged,
      host: rec.header.host, filter: rec.header.filter,
    },
  });
  replay = playRecording(rec, { speed: msg.speed, loop: msg.loop, loopGapMs: msg.loopGapMs }, {
    events(events) {
      core.ingestEvents(events);
      schedule();
    },
    progress(done, total) {
      const now = performance.now();
      if (now - lastProgress < 250 && done < total) return;
      lastProgress = now;
      post({ type: 'replay-progress', done, total, ended: false });
    },
    end() {
      core.flush();
      schedule();
      post({ type: 'replay-progress', done: rec.events.length, total: rec.events.length, ended: true });
      post({ type: 'stats', stats: core.stats() });
    },
  });
}

function post(msg: FromWorker): void {
  ctx.postMessage(msg);
}

function sendRows(): void {
  timer = undefined;
  dirty = false;
  const out = core.takeRows();
  if (out) post({ type: 'rows', reset: out.reset, rows: out.rows });
}

/** Rows leave on a timer, so a burst of batches costs one message to the UI, not one per batch. */
function schedule(): void {
  dirty = true;
  timer ??= setTimeout(sendRows, flushMs);
}

ctx.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  try {
    switch (msg.type) {
      case 'batch':
        core.ingestBatch(new Uint8Array(msg.buf));
        schedule();
        break;
      case 'events':
        core.ingestEvents(msg.events);
        schedule();
        break;
      case 'topology':
        core.setTopology(msg.names, msg.local);
        break;
      case 'drop-reasons':
        core.setDropReasons(msg.entries);
        break;
      case 'filter': {
        const problem = core.setFilter(msg.text, msg.facet);
        post(problem ? { type: 'filter', ok: false, text: msg.text, problem } : { type: 'filter', ok: true, text: msg.text });
        schedule();
        break;
      }
      case 'pause':
        core.setPaused(msg.paused);
        if (!msg.paused) schedule();
        break;
      case 'get':
        post({ type: 'packet', req: msg.req, detail: core.get(msg.id) });
        break;
      case 'replay':
        startReplay(msg);
        break;
      case 'stop-replay':
        replay?.stop();
        replay = null;
        break;
      case 'flush':
        core.flush();
        schedule();
        post({ type: 'stats', stats: core.stats() });
        break;
      case 'reset':
        core.reset();
        schedule();
        break;
      case 'config':
        if (msg.historyMax !== undefined) core.setHistoryMax(msg.historyMax);
        if (msg.flushMs !== undefined) flushMs = Math.max(16, msg.flushMs);
        break;
    }
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};

setInterval(() => {
  core.tick();
  if (!dirty) schedule();
}, 200);

setInterval(() => post({ type: 'stats', stats: core.stats() }), 1000);
