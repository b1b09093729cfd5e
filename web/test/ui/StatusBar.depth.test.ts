// @vitest-environment happy-dom
/** The status bar's depth item: what the session traces beyond hops, and the host's tiers (/api/capabilities). */
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import StatusBar from '../../src/ui/StatusBar.vue';
import type { SessionInfo } from '../../src/api/contract.js';
import type { ProbeTiers, TierOption } from '../../../shared/probe-tiers.js';

const opt = (tier: TierOption['tier'], available: boolean, reason: string | null = null): TierOption => ({ tier, shows: `${tier} view`, needs: [], available, reason });
const TIERS: ProbeTiers = {
  areas: [
    { area: 'netfilter', tier: 'rule-trace', options: [opt('function', false, 'no kprobes on this kernel.'), opt('rule-trace', true), opt('device', true)] },
    { area: 'routing', tier: 'tracepoint', options: [opt('tracepoint', true), opt('device', true)] },
    { area: 'veth', tier: 'device', options: [opt('function', false, 'no kprobes on this kernel.'), opt('device', true)] },
  ],
  deepScripts: [],
};

const session = (depth: SessionInfo['depth']): SessionInfo => ({
  id: 's1', filter: 'udp', state: 'running', createdAt: '', watchers: 1, recording: false,
  bpftrace: { pid: 1, restarts: 0, lastExit: null, sharedBy: 1 }, events: 0, lostKernel: 0, packets: 0, ...(depth ? { depth } : {}),
});

function bar(s: SessionInfo | null, tiers: ProbeTiers | null) {
  return mount(StatusBar, {
    props: { connection: 'connected', detail: '', session: s, server: null, worker: null, rates: [], replayProgress: 0, replayDone: false, paused: false, tiers },
  });
}

describe('StatusBar depth', () => {
  it('should show the session\'s depth and the host\'s deepest tier per area, with the reasons in the tooltip', () => {
    const w = bar(session({ netfilter: true, notes: true }), TIERS);
    expect(w.find('[data-testid="status-depth-session"]').text()).toBe('netfilter rules + notes');
    expect(w.find('[data-testid="status-tiers"]').text()).toBe('· host 1 rule-trace · 1 tracepoint · 1 device');
    const title = w.find('[data-testid="status-depth"]').attributes('title') ?? '';
    expect(title).toContain('netfilter');
    expect(title).toContain('no function: no kprobes on this kernel.');
  });

  it('should say "hops only" for a session without depth, and leave the tiers out when the service does not send them', () => {
    const w = bar(session({ netfilter: false, notes: false }), null);
    expect(w.find('[data-testid="status-depth-session"]').text()).toBe('hops only');
    expect(w.find('[data-testid="status-tiers"]').exists()).toBe(false);
  });
});
