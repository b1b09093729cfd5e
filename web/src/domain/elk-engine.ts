/**
 * The browser's layout engine: elkjs running in its own worker, so laying out a large host
 * (hundreds of interfaces) never blocks the UI thread. The worker script ships as a plain asset.
 */
import ELK from 'elkjs/lib/elk-api.js';
import elkWorkerUrl from 'elkjs/lib/elk-worker.min.js?url';
import type { LayoutEngine } from './layout.js';

export function browserLayoutEngine(): LayoutEngine {
  const elk = new ELK({ workerFactory: () => new Worker(elkWorkerUrl) });
  return { layout: (graph) => elk.layout(graph) };
}
