// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import StatusBar from '../../src/ui/StatusBar.vue';
import type { WorkerStats } from '../../src/worker/protocol.js';
import type { StreamStats } from '../../src/api/contract.js';

const worker: WorkerStats = {
  events: 100, eventsPerSec: 50, packets: 20, packetsPerSec: 5, shown: 18, history: 20, live: 2, late: 0,
  decodeErrors: 0, lastDecodeError: null, seqGaps: 3, lostKernel: 0, busy: 0.1, busyMsTotal: 10, clockOffsetMs: null, pending: 0, ifaceRates: [], drops: [],
};
const server: StreamStats = {
  session: 's1', at: 0, eventsPerSec: 1234, events: 5000, lostKernel: 17, seq: 40, droppedBatches: 3, queuedBatches: 0,
  bpftrace: { state: 'running', pid: 4242, restarts: 1 },
} as StreamStats;

describe('StatusBar', () => {
  it('should always show connection, bpftrace, events/s, kernel losses and batches dropped for this client', () => {
    const w = mount(StatusBar, {
      props: { connection: 'connected', detail: '', session: null, server, worker, rates: [], replayProgress: 0, replayDone: false, paused: false },
    });
    const t = w.text();
    expect(w.find('[data-testid="status-connection"]').text()).toContain('connected');
    expect(t).toContain('running pid 4242');
    expect(t).toContain('1 restart');
    expect(t).toContain('1.23k');
    expect(w.find('[data-testid="status-lost"]').text()).toBe('17');
    expect(w.find('[data-testid="status-dropped"]').text()).toBe('3');
    expect(w.find('[data-testid="status-lost"]').element.parentElement?.className).toContain('bad');
  });

  it('should say which probe tier and bpftrace the service uses, and why, in the warning colour when it fell back', () => {
    const base = { connection: 'connected' as const, detail: '', session: null, server, worker, rates: [], replayProgress: 0, replayDone: false, paused: false };
    const fast = mount(StatusBar, {
      props: { ...base, bpftrace: { version: '0.23.2', path: '/opt/h/.bpftrace/bin/bpftrace', source: 'private' as const, tier: 'fast' as const, why: 'the system\'s bpftrace is 0.17.0, so the private copy is used', warnings: [] } },
    });
    const item = fast.find('[data-testid="status-tier"]');
    expect(item.text()).toBe('probesfast · bpftrace 0.23.2');
    expect(item.attributes('title')).toContain('/opt/h/.bpftrace/bin/bpftrace');
    expect(item.attributes('title')).toContain('the private copy is used');
    expect(item.find('.ok').exists()).toBe(true);
    const fellBack = mount(StatusBar, {
      props: { ...base, bpftrace: { version: '0.17.0', path: 'bpftrace', source: 'system' as const, tier: 'classic' as const, why: 'classic tracepoints', warnings: ['the private bpftrace cannot be used: run `npm run setup`'] } },
    });
    const fb = fellBack.find('[data-testid="status-tier"]');
    expect(fb.text()).toBe('probesclassic · bpftrace 0.17.0');
    expect(fb.attributes('title')).toContain('run `npm run setup`');
    expect(fb.find('.warn').exists()).toBe(true);
    expect(mount(StatusBar, { props: { ...base, bpftrace: null } }).find('[data-testid="status-tier"]').exists()).toBe(false);
  });

  it('should say when the service is gone', () => {
    const w = mount(StatusBar, {
      props: { connection: 'offline', detail: 'no answer', session: null, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: true },
    });
    expect(w.find('[data-testid="status-connection"]').text()).toContain('service unreachable');
    expect(w.text()).toContain('paused');
  });

  it('should not show the last figures as current once the connection is lost', () => {
    const w = mount(StatusBar, {
      props: { connection: 'disconnected', detail: 'connection lost; retrying…', session: null, server, worker, rates: [], replayProgress: 0, replayDone: false, paused: false },
    });
    expect(w.find('[data-testid="status-connection"]').text()).toContain('disconnected · retrying');
    expect(w.text()).not.toContain('running pid 4242');
    expect(w.text()).toContain('unknown (no connection)');
    expect(w.find('[data-testid="status-eps"]').text()).toBe('—');
    // What was lost stays counted.
    expect(w.find('[data-testid="status-lost"]').text()).toBe('17');
  });

  it('should tell a service that answers but cannot trace from one that is gone', () => {
    const w = mount(StatusBar, {
      props: { connection: 'no-session', detail: 'hoptrace must run as root', session: null, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false },
    });
    expect(w.find('[data-testid="status-connection"]').text()).toContain('service up · not tracing');
    expect(w.find('[data-testid="status-connection"]').attributes('title')).toBe('hoptrace must run as root');
    expect(w.text()).toContain('not running');
  });

  it('should say a sampled session\'s rate beside events/s and the packet counts, and nothing when every flow is followed', () => {
    const props = { connection: 'connected' as const, detail: '', session: null, server, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false };
    const sampled = mount(StatusBar, { props: { ...props, sampleRate: 16 } });
    expect(sampled.find('[data-testid="status-sampling"]').text()).toBe('sampled 1 in 16 flows — counts not scaled');
    expect(sampled.find('[data-testid="status-packets-sampling"]').text()).toBe('· 1 in 16 flows');
    const all = mount(StatusBar, { props: { ...props, sampleRate: 1 } });
    expect(all.find('[data-testid="status-sampling"]').exists()).toBe(false);
    expect(all.find('[data-testid="status-packets-sampling"]').exists()).toBe(false);
  });
});
