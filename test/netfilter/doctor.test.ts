/**
 * `hoptrace doctor` and the depth tiers in capabilities: each area's tier follows from what the
 * kernel and host offer (kprobe_events, the notes tracepoints, nft), with a reason for every tier
 * that is missing; --json is what /api/capabilities serves.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { detectCapabilities } from '../../server/capabilities.js';
import { deepestTier, describeTiers, type ProbeTiers, type TierOption } from '../../shared/probe-tiers.js';

const tracefs = ['/sys/kernel/debug/tracing', '/sys/kernel/tracing'].find((d) => existsSync(`${d}/events`)) ?? null;

describe('depth tiers', () => {
  it('follow from the kernel and the host, each missing tier with a reason', async () => {
    const caps = await detectCapabilities();
    const kprobes = tracefs !== null && existsSync(`${tracefs}/kprobe_events`);
    const nft = (await execa('nft', ['--version'], { reject: false })).exitCode === 0;
    const areas = Object.fromEntries(caps.tiers.areas.map((a) => [a.area, a]));
    expect(Object.keys(areas)).toEqual(['netfilter', 'nat', 'bridge', 'veth', 'routing', 'queueing', 'neighbour', 'icmp']);
    for (const a of caps.tiers.areas) {
      expect(a.tier).toBe(deepestTier(a.options));
      for (const o of a.options) {
        if (!o.available) expect(o.reason, `${a.area}/${o.tier}`).toBeTruthy();
        if (o.tier === 'function') expect(o.available).toBe(kprobes && caps.canTrace);
        if (o.tier === 'rule-trace') expect(o.available).toBe(nft && caps.root && caps.canTrace);
        if (o.tier === 'tracepoint') {
          const present = o.needs.every((n) => tracefs !== null && existsSync(`${tracefs}/events/${n.replace('tracepoint:', '').replace(':', '/')}`));
          expect(o.available, `${a.area} ${o.needs.join(',')}`).toBe(present && caps.canTrace);
        }
      }
    }
    if (caps.canTrace && !kprobes) {
      // This project's kernel: no function tier, netfilter by rule trace, notes by tracepoints.
      expect(areas.netfilter?.tier).toBe(nft ? 'rule-trace' : 'device');
      expect(areas.veth?.tier).toBe('device');
      expect(areas.routing?.tier).toBe('tracepoint');
      expect(areas.netfilter?.options.find((o: TierOption) => o.tier === 'function')?.reason).toMatch(/kprobes/);
    }
  }, 60_000);

  it('are described one area per line, with why deeper tiers are missing', () => {
    const tiers: ProbeTiers = {
      areas: [{
        area: 'veth', tier: 'device', options: [
          { tier: 'function', shows: 'peer drops', needs: ['kprobe:veth_xmit'], available: false, reason: 'no kprobes on this kernel.' },
          { tier: 'device', shows: 'transmit and receive', needs: [], available: true, reason: null },
        ],
      }],
      deepScripts: [],
    };
    expect(describeTiers(tiers)).toEqual(['veth  device      transmit and receive\n                  (no function: no kprobes on this kernel.)']);
  });
});

describe('hoptrace doctor', () => {
  it('prints the capabilities with tiers as JSON, and exits 0 exactly when the host can trace', async () => {
    const r = await cli(['doctor', '--json']);
    const doc = JSON.parse(String(r.stdout)) as Awaited<ReturnType<typeof detectCapabilities>>;
    expect(r.exitCode).toBe(doc.canTrace ? 0 : 1);
    expect(doc.tiers.areas.map((a) => a.area)).toContain('netfilter');
    expect(doc.tiers.deepScripts.length).toBe(5);
    expect(Object.keys(doc.probes)).toEqual(['tracepoint', 'kprobe', 'kfunc']);
  }, 60_000);

  it('prints probe kinds, tiers per area and the function-level scripts for people', async () => {
    const r = await cli(['doctor']);
    const out = String(r.stdout);
    expect(out).toMatch(/^kernel {6}\S+/m);
    expect(out).toMatch(/^probe kinds\n {2}tracepoint {2}(yes|no)/m);
    expect(out).toMatch(/^ {2}kprobe {6}(yes|no)/m);
    for (const area of ['netfilter', 'nat', 'bridge', 'veth', 'routing', 'queueing', 'neighbour', 'icmp']) expect(out).toMatch(new RegExp(`^ {2}${area} +(function|rule-trace|tracepoint|device|none) `, 'm'));
    expect(out).toMatch(/^ {2}nf_hook_slow\.bt +nf_hook_slow +(attachable|not attachable)/m);
  }, 60_000);

  it('refuses unknown flags as a usage error', async () => {
    const r = await cli(['doctor', '--bogus']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/bogus/);
  });
});
