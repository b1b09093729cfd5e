/** The ingest worker: hosts createIngestHost (ingest-host.ts) off the UI thread. */
import { createIngestHost } from './ingest-host.js';
import type { FromWorker, ToWorker } from './protocol.js';

const ctx = self as unknown as DedicatedWorkerGlobalScope;
const host = createIngestHost((msg: FromWorker) => ctx.postMessage(msg));
ctx.onmessage = (e: MessageEvent<ToWorker>) => host.onMessage(e.data);
