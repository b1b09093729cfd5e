/** Traffic the real-lab tests send beyond what server/lab/traffic.ts offers. */
import { execa } from 'execa';
import type { Lab } from '../../server/lab/lab.js';
import { portToRaw, v4ToRaw } from '../../shared/filter/index.js';
import { isSampled, type RawFlow } from '../../shared/stats/sampling.js';

/** Sends `count` datagrams from each of the given source ports (fixed ports, so flows are known). */
export const MULTI_SENDER = String.raw`
const dgram = require('node:dgram');
const [src, dst, port, count, ...sports] = process.argv.slice(1);
let pending = sports.length;
for (const sp of sports) {
  const s = dgram.createSocket('udp4');
  let sent = 0;
  const next = () => {
    if (sent >= Number(count)) { s.close(); if (--pending === 0) console.log('done'); return; }
    sent++;
    s.send(Buffer.alloc(32, 120), Number(port), dst, () => setTimeout(next, 2));
  };
  s.bind(Number(sp), src, next);
}
`;

/**
 * `flows` UDP flows from the lab's pod1 to pod2:`port`, one per source port, and those the
 * kernel's 1-in-`rate` flow hash follows (shared/stats/sampling.ts mirrors probes/sample.ts).
 * Throws when the hash picks none or all of them: a test of sampling needs both kinds.
 */
export function sampledFlows(lab: Lab, port: number, rate: number, flows = 40): { sports: number[]; expected: number[] } {
  const sports = Array.from({ length: flows }, (_, i) => port + 100 + i);
  const flow = (sp: number): RawFlow => ({ s0: BigInt(v4ToRaw(lab.addr.pod1)), s1: 0n, d0: BigInt(v4ToRaw(lab.addr.pod2)), d1: 0n, sp: portToRaw(sp), dp: portToRaw(port), proto: 17 });
  const expected = sports.filter((sp) => isSampled(flow(sp), rate));
  if (expected.length === 0 || expected.length === sports.length) throw new Error(`1 in ${rate} of ${flows} flows to port ${port} picks ${expected.length}: choose another port`);
  return { sports, expected };
}

/** Sends `perFlow` datagrams on each flow of sampledFlows() (pod1 → pod2:`port`), from inside pod1. */
export async function sendFlows(lab: Lab, port: number, perFlow: number, sports: readonly number[]): Promise<void> {
  await execa('ip', ['netns', 'exec', lab.ns.pod1, process.execPath, '-e', MULTI_SENDER, '--', lab.addr.pod1, lab.addr.pod2, String(port), String(perFlow), ...sports.map(String)]);
}
