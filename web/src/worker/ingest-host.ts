/**
 * The ingest worker's logic, free of the Worker global so it can also run in the page's own thread
 * (component tests drive the real engine and replay player this way): IngestCore for live batches,
 * the ReplayPlayer for recordings; rows go out at most every `flushMs` (one structured clone per
 * interval, however high the event rate), statistics once a second, and the engine's clock is
 * nudged while traffic is idle.
 */
import { IngestCore } from './ingest-core.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { readRecording } from '../api/replay-source.js';
import { ReplayPlayer, type PlayerHost } from './replay-player.js';
import { isTopology } from '../api/contract.js';
import { localAddresses } from '../domain/topology-graph.js';
import { PathExpectations } from '../../../shared/expectation.js';

export interface IngestHost {
  onMessage(msg: ToWorker): void;
  /** Stops its timers (the worker itself never needs it; an in-page host does). */
  dispose(): void;
}

export function createIngestHost(post: (msg: FromWorker) => void): IngestHost {
  const modelError = (message: string): void => post({ type: 'error', context: 'model', message });
  const core = new IngestCore({ now: () => performance.now(), onModelError: modelError });
  let flushMs = 100;
  let dirty = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let player: ReplayPlayer | null = null;
  let lastPosition = 0;

  const playerHost: PlayerHost = {
    now: () => performance.now(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    rows(now) {
      if (!now) {
        schedule();
        return;
      }
      clearTimeout(timer);
      sendRows();
    },
    position(pos, now) {
      // While playing, ten positions a second move the playhead smoothly enough.
      const t = performance.now();
      if (!now && t - lastPosition < 100) return;
      lastPosition = t;
      post({ type: 'replay-position', pos });
      if (pos.ended) post({ type: 'stats', stats: core.stats() });
    },
    histogram(hist) {
      post({ type: 'replay-histogram', hist });
    },
  };

  function startReplay(msg: Extract<ToWorker, { type: 'replay' }>): void {
    player?.stop();
    player = null;
    let rec;
    try {
      rec = readRecording(new Uint8Array(msg.bytes));
    } catch (err) {
      post({ type: 'error', context: 'replay', message: err instanceof Error ? err.message : String(err) });
      return;
    }
    core.setDropReasons([...rec.header.dropReasons]);
    // Before the first packet: fates that rest on "received where the destination lives" need the model's addresses.
    const model = isTopology(rec.topology) ? rec.topology : null;
    const local = localAddresses(model);
    core.setTopology([...rec.names], local);
    const localSet = new Set(local.map(([netns, addr]) => `${netns}|${addr}`));
    post({
      type: 'recording',
      info: {
        names: [...rec.names], topology: rec.topology,
        // Sub-millisecond kept: packets of one exchange are microseconds apart.
        startWallMs: Number(rec.header.startWallNs / 1000n) / 1000,
        startMonoNs: rec.header.startMonoNs, events: rec.events.length, lost: rec.lost, damaged: rec.damaged,
        host: rec.header.host, kernel: rec.header.kernel, filter: rec.header.filter, sampleRate: rec.header.sampleRate ?? 1,
        complete: rec.endT !== null, truncatedAt: rec.truncatedAt,
      },
    });
    // The recording's own model, as `replay` uses it: not whatever the page knew before.
    const expectations = model ? new PathExpectations(model, undefined, modelError) : null;
    player = new ReplayPlayer(rec, core, {
      speed: msg.speed, loop: msg.loop, loopGapMs: msg.loopGapMs, paused: msg.paused ?? false,
      isLocal: (netns, addr) => localSet.has(`${netns}|${addr}`),
      ...(expectations ? { annotate: (p: Parameters<PathExpectations['annotate']>[0]) => expectations.annotate(p) } : {}),
    }, playerHost);
    player.start();
  }


  function sendRows(): void {
    timer = undefined;
    dirty = false;
    const out = core.takeRows();
    if (out) post({ type: 'rows', reset: out.reset, rows: out.rows, ...(out.removed.length ? { removed: out.removed } : {}) });
  }

  /** Rows leave on a timer, so a burst of batches costs one message to the UI, not one per batch. */
  function schedule(): void {
    dirty = true;
    timer ??= setTimeout(sendRows, flushMs);
  }

  function onMessage(msg: ToWorker): void {
  try {
    switch (msg.type) {
      case 'batch':
        core.ingestBatch(new Uint8Array(msg.buf));
        schedule();
        break;
      case 'depth':
        core.ingestDepth(new Uint8Array(msg.buf));
        schedule();
        break;
      case 'depth-config':
        core.setDepth({ netfilter: msg.netfilter });
        break;
      case 'session-filter':
        core.setSessionFilter(msg.text);
        break;
      case 'events':
        core.ingestEvents(msg.events);
        schedule();
        break;
      case 'packets':
        // Not put next to the page's model: the hub's stitched packets come with their path across
        // the nodes' models (`expected`, shared/cluster/expect.ts), computed once there.
        core.ingestPackets(msg.packets, msg.packets.reduce((s, p) => s + p.hops.length, 0));
        schedule();
        break;
      case 'topology':
        core.setTopology(msg.names, msg.local);
        if (msg.model !== undefined) core.setModel(msg.model);
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
      case 'replay-control':
        player?.control(msg.control);
        break;
      case 'stop-replay':
        player?.stop();
        player = null;
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
  }

  const ticker = setInterval(() => {
    core.tick();
    if (!dirty) schedule();
  }, 200);
  const statsTimer = setInterval(() => post({ type: 'stats', stats: core.stats() }), 1000);

  return {
    onMessage,
    dispose(): void {
      clearInterval(ticker);
      clearInterval(statsTimer);
      clearTimeout(timer);
      player?.stop();
    },
  };
}

