/**
 * `hoptrace record --sample N` on a real lab (root: namespaces and bpftrace): the file holds
 * exactly the flows the kernel's flow hash picks (mirrored by shared/stats/sampling.ts), every
 * packet of each with its whole path and no event of another flow; its header says N; replay and
 * the library read the rate back.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { decodeRecording } from '../../shared/recording/index.js';
import { readRecordingMeta } from '../../server/recording/index.js';
import type { Packet } from '../../shared/packet.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { sampledFlows, sendFlows } from '../helpers/traffic.js';
import { cli, startReady, labInodes, randomPrefix } from '../helpers/cli.js';
import { tempDir } from './fixtures.js';

describe.skipIf(!isRoot)(`record --sample on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  const tmp = tempDir();
  // A port of our own, so other labs' traffic does not match the filter.
  const port = 20000 + Math.floor(Math.random() * 20000);

  beforeAll(async () => {
    lab = labFor(randomPrefix('rs'));
    await labUp(lab);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    if (lab) await labDown(lab);
    tmp.cleanup();
  });

  it('should record only whole sampled flows, and the header should say the rate', async () => {
    const rate = 4;
    const perFlow = 3;
    // Which flows the kernel hash follows (sampledFlows checks it picks some, not all).
    const { sports, expected } = sampledFlows(lab, port, rate);

    const file = tmp.file('sampled.hoptrace');
    const { child } = await startReady(['record', '-o', file, '--sample', String(rate), '--filter', `udp and dst port ${port}`]);
    await sendFlows(lab, port, perFlow, sports);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const rec = await child;
    expect(rec.exitCode, String(rec.stderr)).toBe(0);
    expect(String(rec.stderr)).toContain(`following 1 in ${rate} flows`);
    expect(String(rec.stderr)).toMatch(new RegExp(`recorded \\d+ events .* \\(sampled: 1 in ${rate} flows\\)`));

    const { header, records } = decodeRecording(new Uint8Array(readFileSync(file)));
    expect(header.sampleRate).toBe(rate);
    expect((await readRecordingMeta(file)).sampleRate).toBe(rate);
    // Events, not only packets: no hop of an unsampled flow of ours reached the file.
    const ours = records.flatMap((r) => (r.kind === 'event' && r.event.dport === port && roles.has(r.event.netns) ? [r.event] : []));
    expect(ours.length).toBeGreaterThan(0);
    expect([...new Set(ours.map((e) => e.sport))].sort((a, b) => a - b)).toEqual(expected);

    const replay = await cli(['replay', file, '--json']);
    expect(replay.exitCode, String(replay.stderr)).toBe(0);
    expect(String(replay.stderr)).toMatch(new RegExp(`\\(sampled: 1 in ${rate} flows\\)`));
    const packets = String(replay.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));
    expect([...new Set(packets.map((p) => p.sport))].sort((a, b) => a - b)).toEqual(expected);
    expect(packets).toHaveLength(expected.length * perFlow);
    // A sampled packet keeps every hop from pod1's transmit to pod2's receive.
    for (const p of packets) {
      expect(p.hops.map((h) => `${roles.get(h.netns)}/${h.ifname}/${h.event}`)).toEqual(expect.arrayContaining(['pod1/eth0/xmit', 'node/veth-pod1/rx', 'pod2/eth0/recv']));
    }
  }, 120_000);
});
