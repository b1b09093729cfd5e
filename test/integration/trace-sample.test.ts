/**
 * `hoptrace trace --sample N`: the CLI refuses rates outside 1..65536 before touching the kernel;
 * on a real lab (root) the trace shows exactly the flows the kernel's flow hash picks (mirrored
 * by shared/stats/sampling.ts), every packet of those flows with all its hops, and says it sampled.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import type { Packet } from '../../shared/packet.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { sampledFlows, sendFlows } from '../helpers/traffic.js';
import { cli, startTrace, labInodes, randomPrefix } from '../helpers/cli.js';

describe('trace --sample validation', () => {
  it.each(['0', '65537', '1.5', 'x', '-4'])('should refuse --sample %s with exit 2 and the accepted range', async (v) => {
    const r = await cli(['trace', `--sample=${v}`, '--duration', '1']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toBe(`hoptrace: --sample takes a whole number from 1 to 65536, got '${v}'`);
    expect(String(r.stdout)).toBe('');
  });

  it('should document --sample in --help', async () => {
    const r = await cli(['trace', '--help']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/--sample N\s+follow 1 in N flows \(1 to 65536\)/);
  });
});

describe.skipIf(!isRoot)(`trace --sample on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  // A port of our own, so other labs' traffic does not match the filter.
  const port = 20000 + Math.floor(Math.random() * 20000);

  beforeAll(async () => {
    lab = labFor(randomPrefix('sm'));
    await labUp(lab);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    if (lab) await labDown(lab);
  });

  it('should show exactly the flows the kernel hash picks, each packet with its whole path', async () => {
    const rate = 4;
    const perFlow = 3;
    // Which flows the kernel hash follows (sampledFlows checks it picks some, not all).
    const { sports, expected } = sampledFlows(lab, port, rate);

    const { child } = await startTrace(['--json', '--no-model', '--sample', String(rate), '--filter', `udp and dst port ${port}`]);
    await sendFlows(lab, port, perFlow, sports);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));

    const seen = [...new Set(packets.map((p) => p.sport))].sort((a, b) => a - b);
    expect(seen).toEqual(expected);
    expect(packets).toHaveLength(expected.length * perFlow);
    // A sampled packet keeps every hop from pod1's transmit to pod2's receive.
    for (const p of packets) {
      expect(p.hops.map((h) => `${roles.get(h.netns)}/${h.ifname}/${h.event}`)).toEqual(expect.arrayContaining(['pod1/eth0/xmit', 'node/veth-pod1/rx', 'pod2/eth0/recv']));
    }
    expect(String(r.stderr)).toContain('following 1 in 4 flows');
    expect(String(r.stderr)).toMatch(/\d+ packets, .* \(sampled: 1 in 4 flows\)/);
  }, 120_000);
});
