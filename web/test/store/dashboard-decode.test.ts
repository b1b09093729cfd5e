// @vitest-environment happy-dom
/**
 * Undecodable batches: the worker's real ingest core counts a batch written against another
 * wire format, and the dashboard says what that means (a page and service of different builds)
 * and what to do, instead of blaming a page policy the static codecs never meet.
 */
import { describe, expect, it } from 'vitest';
import { createDashboard, type WorkerLike } from '../../src/store/dashboard.js';
import { IngestCore } from '../../src/worker/ingest-core.js';
import type { FromWorker, ToWorker } from '../../src/worker/protocol.js';

function fakeWorker(): WorkerLike & { sent: ToWorker[] } {
  return { sent: [], onmessage: null, postMessage(m: ToWorker) { this.sent.push(m); }, terminate() { /* nothing runs */ } };
}

describe('dashboard, batches that do not decode', () => {
  it('should name a wire-format mismatch between page and service and how to fix it', () => {
    const core = new IngestCore();
    // A varint that never ends: what a batch of another schema or a damaged one looks like here.
    core.ingestBatch(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    const stats = core.stats();
    expect(stats.decodeErrors).toBe(1);

    const worker = fakeWorker();
    const d = createDashboard({ createWorker: () => worker, demoRecordingUrl: '/demo.hoptrace' });
    worker.onmessage?.({ data: { type: 'stats', stats } as FromWorker } as MessageEvent<FromWorker>);
    const notice = d.state.notices.find((n) => n.title === 'Batches from the service cannot be decoded');
    expect(notice?.kind).toBe('error');
    expect(notice?.body).toBe(`1 hop or depth batch(es) did not match this page's wire format: ${stats.lastDecodeError}`);
    expect(notice?.hints?.[0]).toMatch(/different versions of shared\/wire\.proto: reload the page; .*npm run build/);
    expect(notice?.hints?.join(' ')).not.toMatch(/Content-Security-Policy|code generation/);
    d.stop();
  });
});
