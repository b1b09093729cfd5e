/**
 * The ingest worker: hosts IngestCore off the UI thread. Batches are processed as they arrive;
 * rows go back at most every `flushMs` (one structured clone per interval, however high the
 * event rate), statistics once a second, and the engine's clock is nudged while traffic is idle.
 */
import { IngestCore } from './ingest-core.js';
import type { FromWorker, ToWorker } from './protocol.js';

const ctx = self as unknown as DedicatedWorkerGlobalScope;
const core = new IngestCore({ now: () => performance.now() });
let flushMs = 100;
let dirty = false;
let timer: ReturnType<typeof setTimeout> | undefined;

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
