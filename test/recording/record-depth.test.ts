/**
 * `hoptrace record --netfilter --notes` on a real lab: the recording's header says which depth
 * it has, and `replay --json` names the FORWARD rule that dropped the lab's udp/9999 packet and
 * carries the node's route-lookup note, as `trace --netfilter --notes` would; no table of the
 * recorder is left in any namespace. Root only (namespaces, bpftrace, nft).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import { hoptraceTables } from '../../server/netfilter/nft.js';
import { listNamespaces } from '../../server/topology/namespaces.js';
import { decodeRecording } from '../../shared/recording/index.js';
import type { Packet } from '../../shared/packet.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, startReady, labInodes, randomPrefix } from '../helpers/cli.js';
import { tempDir } from './fixtures.js';

/** Tables named for process `pid`, in every namespace of the host. */
async function tablesOf(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const ns of await listNamespaces()) {
    for (const t of await hoptraceTables(ns.path)) if (t.startsWith(`hoptrace_${pid}_`)) out.push(`${ns.name}:${t}`);
  }
  return out;
}

describe.skipIf(!isRoot)(`record --netfilter --notes on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let roles: Map<number, string>;
  const tmp = tempDir();

  beforeAll(async () => {
    lab = labFor(randomPrefix('rd'));
    await labUp(lab);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    if (lab) await labDown(lab);
    tmp.cleanup();
  });

  it('should record the FORWARD drop rule and the route lookup, and replay --json should show them', async () => {
    const file = tmp.file('depth.hoptrace');
    const { child } = await startReady(['record', '-o', file, '--netfilter', '--notes', '--filter', `udp and dst port ${lab.blockedPort}`]);
    const pid = child.pid as number;
    // Tracing: the recorder's tables are in the lab's namespaces.
    expect((await tablesOf(pid)).filter((t) => t.startsWith(`${lab.prefix}-`)).length).toBeGreaterThan(0);
    await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const rec = await child;
    expect(rec.exitCode, String(rec.stderr)).toBe(0);
    expect(String(rec.stderr)).toMatch(/recorded \d+ events/);
    expect(await tablesOf(pid)).toEqual([]);

    const { header, records } = decodeRecording(new Uint8Array(readFileSync(file)));
    expect([header.netfilter, header.notes]).toEqual([true, true]);
    expect(records.some((r) => r.kind === 'netfilter')).toBe(true);

    const replay = await cli(['replay', file, '--json']);
    expect(replay.exitCode, String(replay.stderr)).toBe(0);
    const packets = String(replay.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));
    const blocked = packets.find((p) => p.src === lab.addr.pod1 && p.dport === lab.blockedPort);
    expect(blocked?.fate).toBe('dropped');
    const drop = blocked?.netfilter?.find((s) => s.verdict === 'drop');
    expect(drop).toMatchObject({ ns: lab.ns.node, hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD', type: 'rule', rule: `udp dport ${lab.blockedPort} counter drop` });
    // Placed after a hop in the node, where the drop happened.
    expect(blocked?.hops[drop?.afterHop ?? -1]?.ns).toBe(lab.ns.node);
    const route = blocked?.notes?.find((n) => n.kind === 'fib' && n.netns === blocked.hops.find((h) => h.ns === lab.ns.node)?.netns && n.data.dst === lab.addr.ext);
    expect(route?.data).toMatchObject({ err: 0, dev: 'eth-node' });
  }, 120_000);

  it('should record no depth without the switches', async () => {
    const file = tmp.file('plain.hoptrace');
    const { child } = await startReady(['record', '-o', file, '--filter', `udp and dst port ${lab.blockedPort}`]);
    await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    const { header, records } = decodeRecording(new Uint8Array(readFileSync(file)));
    // Absent (as in files older than depth) or false: either reads as no depth.
    expect(header.netfilter === true || header.notes === true).toBe(false);
    expect(records.filter((r) => r.kind === 'netfilter' || r.kind === 'note')).toEqual([]);
    const replay = await cli(['replay', file, '--json']);
    const blocked = String(replay.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .find((p) => p.src === lab.addr.pod1 && p.dport === lab.blockedPort);
    expect(blocked?.fate).toBe('dropped');
    expect(blocked?.netfilter).toBeUndefined();
    expect(blocked?.notes).toBeUndefined();
  }, 90_000);
});
