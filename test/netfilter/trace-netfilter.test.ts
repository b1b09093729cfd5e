/**
 * `hoptrace trace --netfilter` end to end on a real lab: drops, DNAT and MASQUERADE name their
 * iptables-nft rules and chains, native nft rules show as themselves, and hoptrace's tables never
 * outlive it — normal exit, SIGKILL (the guardian cleans up; with the guardian killed too, the
 * next run does), and namespaces deleted while tracing.
 *
 * One file on purpose: every --netfilter run traces every namespace of the host, so tables are
 * identified by the owning trace's pid (`hoptrace_<pid>_<n>`), never by "any hoptrace table".
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startLabServers, ECHO } from '../../server/lab/rounds.js';
import { sendUdp, sendTcp, type Server } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import type { NetfilterVerdict } from '../../shared/netfilter/types.js';
import { hoptraceTables, ownTables } from '../../server/netfilter/nft.js';
import { processStartTime } from '../../server/netfilter/nft.js';
import { listNamespaces } from '../../server/topology/namespaces.js';
import { NetfilterTracer } from '../../server/netfilter/index.js';
import { parseFilter } from '../../shared/filter/index.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { until, guardianOf } from './helpers.js';
import { cli, startTrace, labInodes, randomPrefix, type CliProcess } from '../helpers/cli.js';

const NATIVE_PORT = 7777;

async function inNs(ns: string, ...args: string[]): Promise<void> {
  await execa('ip', ['netns', 'exec', ns, ...args]);
}

/** Tables named for trace `pid` (any family: inet, and bridge where there is a bridge), in every namespace of the host. */
async function tablesOf(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const ns of await listNamespaces()) {
    for (const t of await ownTables(ns.path)) if (t.name.startsWith(`hoptrace_${pid}_`)) out.push(`${ns.name}:${t.family} ${t.name}`);
  }
  return out.sort();
}

/** Pids of processes whose network namespace is `ino`. */
function holdersOf(ino: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/net`) === `net:[${ino}]`) out.push(Number(e));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

describe.skipIf(!isRoot)(`trace --netfilter on a real lab (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];
  let roles: Map<number, string>;
  const extra: string[] = [];

  beforeAll(async () => {
    lab = labFor(randomPrefix('nf'));
    await labUp(lab);
    servers = await startLabServers(lab);
    // A native nft rule beside the iptables-nft ones.
    await execa('ip', ['netns', 'exec', lab.ns.node, 'nft', '-f', '-'], {
      input: `table inet native_t {\n  chain native_forward {\n    type filter hook forward priority 10; policy accept;\n    udp dport ${NATIVE_PORT} counter drop comment "native drop"\n  }\n}\n`,
    });
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const ns of extra) await execa('ip', ['netns', 'del', ns], { reject: false });
    if (lab) await labDown(lab);
  });

  async function stopTrace(child: CliProcess): Promise<{ packets: Packet[]; stdout: string; stderr: string; exitCode: number | undefined }> {
    child.kill('SIGINT');
    const r = await child;
    const stdout = String(r.stdout);
    const packets = stdout.split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => roles.has(h.netns)));
    return { packets, stdout, stderr: String(r.stderr), exitCode: r.exitCode };
  }

  const stepIn = (p: Packet | undefined, match: Partial<NetfilterVerdict>): NetfilterVerdict | undefined =>
    p?.netfilter?.find((s) => Object.entries(match).every(([k, v]) => (s as unknown as Record<string, unknown>)[k] === v));

  it('names the rule and chain of a FORWARD drop, a DNAT, a MASQUERADE and a native nft drop', async () => {
    const filter = `(udp and (dst port ${lab.blockedPort} or dst port ${ECHO.extUdp} or dst port ${NATIVE_PORT})) or (tcp and port ${lab.dnatPort})`;
    const { child } = await startTrace(['--json', '--netfilter', '--no-model', '--filter', filter]);
    const pid = child.pid as number;
    // inet in each of the lab's four namespaces, bridge in the node (it has br0).
    expect((await tablesOf(pid)).filter((t) => t.startsWith(`${lab.prefix}-`))).toHaveLength(5);
    await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
    await sendUdp(lab.ns.pod1, lab.addr.ext, ECHO.extUdp, 1);
    await sendUdp(lab.ns.pod1, lab.addr.ext, NATIVE_PORT, 1);
    const tcp = await sendTcp(lab.ns.ext, lab.addr.nodeExt, lab.dnatPort, 64);
    expect(tcp.replies).toBe(64);
    await new Promise((r) => setTimeout(r, 300));
    const out = await stopTrace(child);
    expect(out.exitCode).toBe(0);

    const node = lab.ns.node;
    const blocked = out.packets.find((p) => p.dport === lab.blockedPort);
    expect(blocked?.fate).toBe('dropped');
    const drop = stepIn(blocked, { verdict: 'drop' });
    expect(drop).toMatchObject({ ns: node, hook: 'forward', family: 'ip', table: 'filter', chain: 'FORWARD', type: 'rule', rule: `udp dport ${lab.blockedPort} counter drop` });
    expect(typeof drop?.handle).toBe('number');
    // Placed after the node hop the packet was last seen at before the drop.
    expect(blocked?.hops[drop?.afterHop ?? -1]?.ns).toBe(node);

    const masqed = out.packets.find((p) => p.src === lab.addr.pod1 && p.dport === ECHO.extUdp);
    expect(stepIn(masqed, { nat: 'masquerade' })).toMatchObject({ ns: node, hook: 'postrouting', family: 'ip', table: 'nat', chain: 'POSTROUTING', type: 'rule', verdict: 'accept' });
    expect(stepIn(masqed, { nat: 'masquerade' })?.rule).toMatch(/oifname "eth-node" ip saddr 10\.244\.1\.0\/24 .*masquerade/);

    const native = out.packets.find((p) => p.dport === NATIVE_PORT);
    expect(native?.fate).toBe('dropped');
    expect(stepIn(native, { verdict: 'drop' })).toMatchObject({ ns: node, hook: 'forward', family: 'inet', table: 'native_t', chain: 'native_forward', rule: `udp dport ${NATIVE_PORT} counter drop comment "native drop"` });

    const conn = out.packets.filter((p) => p.proto === 'tcp' && p.src === lab.addr.ext && p.dport === lab.dnatPort);
    const syn = conn.find((p) => (p.hops[0]?.tcpFlags ?? 0) === 2);
    expect(stepIn(syn, { nat: 'dnat', type: 'rule' })).toMatchObject({ ns: node, hook: 'prerouting', family: 'ip', table: 'nat', chain: 'PREROUTING', verdict: 'accept' });
    expect(stepIn(syn, { nat: 'dnat' })?.rule).toMatch(/tcp dport 8080 .*dnat to 10\.244\.1\.12:80/);
    // Later packets of the connection never meet the nat chain: conntrack rewrites them, and the rule is named for them.
    const later = conn.filter((p) => p !== syn && p.hops.some((h) => h.nat?.kind === 'dnat'));
    expect(later.length).toBeGreaterThan(0);
    for (const p of later) expect(stepIn(p, { type: 'conntrack', nat: 'dnat' })).toMatchObject({ chain: 'PREROUTING', table: 'nat' });

    // Normal exit: none of this trace's tables is left anywhere.
    expect(await tablesOf(pid)).toEqual([]);
  }, 90_000);

  it('prints the steps inline and names the dropping rule in human output', async () => {
    const { child } = await startTrace(['--netfilter', '--no-model', '--filter', `udp and dst port ${lab.blockedPort}`]);
    await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
    await new Promise((r) => setTimeout(r, 300));
    const out = await stopTrace(child);
    const block = out.stdout.split('\n\n').find((b) => b.includes(`${lab.ns.pod1}`) && b.includes(`:${lab.blockedPort}`)) ?? '';
    expect(block).toMatch(/⛨ forward\s+ip filter FORWARD: rule 'udp dport 9999 counter drop' \(handle \d+\) → drop/);
    expect(block).toMatch(/dropped in \S+-node at br0: NETFILTER_DROP, by ip filter FORWARD rule 'udp dport 9999 counter drop'/);
    expect(await tablesOf(child.pid as number)).toEqual([]);
  }, 60_000);

  it('leaves no table behind when the tracer is SIGKILLed (its guardian removes them)', async () => {
    const { child } = await startTrace(['--json', '--netfilter', '--filter', 'udp port 9']);
    const pid = child.pid as number;
    expect((await tablesOf(pid)).length).toBeGreaterThanOrEqual(5);
    expect(guardianOf(pid)).toBeDefined();
    child.kill('SIGKILL');
    await child;
    await until('tables removed by the guardian', async () => (await tablesOf(pid)).length === 0);
  }, 60_000);

  it('cleans leftovers of a killed run (guardian killed too) at the next start, and leaves live runs alone', async () => {
    const { child } = await startTrace(['--json', '--netfilter', '--filter', 'udp port 9']);
    const pid = child.pid as number;
    const guardian = await until('guardian', () => guardianOf(pid));
    process.kill(guardian, 'SIGKILL');
    child.kill('SIGKILL');
    await child;
    await new Promise((r) => setTimeout(r, 500));
    const left = await tablesOf(pid);
    expect(left.filter((t) => t.startsWith(`${lab.prefix}-`))).toHaveLength(5);
    // A bare `hoptrace` table (no owner) and one owned by a live process (this test).
    await inNs(lab.ns.ext, 'nft', 'add', 'table', 'inet', 'hoptrace');
    const live = `hoptrace_${process.pid}_999`;
    await execa('ip', ['netns', 'exec', lab.ns.pod1, 'nft', '-f', '-'], { input: `table inet ${live} {\n  comment "hoptrace pid ${process.pid} start ${processStartTime(process.pid)}"\n}\n` });

    const next = cli(['trace', '--netfilter', '--duration', '1', '--filter', 'udp port 9']);
    const r = await next;
    expect(r.exitCode).toBe(0);
    expect(await tablesOf(pid)).toEqual([]);
    expect(await tablesOf(next.pid as number)).toEqual([]);
    expect(await hoptraceTables(`/run/netns/${lab.ns.ext}`)).not.toContain('hoptrace');
    expect(await hoptraceTables(`/run/netns/${lab.ns.pod1}`)).toContain(live);
    await inNs(lab.ns.pod1, 'nft', 'delete', 'table', 'inet', live);
  }, 90_000);

  it('serves sessions through NetfilterTracer: events of the namespaces it was given, tables gone after stop()', async () => {
    const tracer = new NetfilterTracer();
    const events: NetfilterEvent[] = [];
    tracer.on('event', (e) => events.push(e));
    const node = { netns: statSync(`/run/netns/${lab.ns.node}`).ino, name: lab.ns.node, path: `/run/netns/${lab.ns.node}` };
    const late = NATIVE_PORT + 1;
    await tracer.start(parseFilter(`udp and (dst port ${lab.blockedPort} or dst port ${late})`), [node]);
    expect(tracer.namespaces.map((n) => [n.ns.name, n.state])).toEqual([[lab.ns.node, 'tracing']]);
    const table = tracer.namespaces[0]?.table ?? '';
    expect(await hoptraceTables(node.path)).toContain(table);
    expect(await hoptraceTables(`/run/netns/${lab.ns.ext}`)).not.toContain(table);
    await sendUdp(lab.ns.pod1, lab.addr.ext, lab.blockedPort, 1);
    await until('the drop event', () => events.some((e) => e.verdict === 'drop'));
    expect(events.find((e) => e.verdict === 'drop')).toMatchObject({
      ns: lab.ns.node, netns: node.netns, hook: 'forward', table: 'filter', chain: 'FORWARD', type: 'rule',
      packet: { src: lab.addr.pod1, dst: lab.addr.ext, dport: lab.blockedPort, proto: 17 },
    });
    // A rule added after the monitor started: nft only prints its handle; the tracer looks the text up.
    await inNs(lab.ns.node, 'nft', 'add', 'rule', 'inet', 'native_t', 'native_forward', 'udp', 'dport', String(late), 'counter', 'drop');
    await sendUdp(lab.ns.pod1, lab.addr.ext, late, 1);
    await until('the late rule', () => events.some((e) => e.packet.dport === late && e.verdict === 'drop'));
    expect(events.find((e) => e.packet.dport === late && e.verdict === 'drop')).toMatchObject({ table: 'native_t', chain: 'native_forward', rule: `udp dport ${late} counter drop` });
    await tracer.stop();
    expect(await hoptraceTables(node.path)).not.toContain(table);
    await tracer.stop();
  }, 60_000);

  it('refuses to start without nft, naming the fix, and exits (it used to hang with its probes attached)', async () => {
    // A PATH with everything tracing needs except nft.
    const dir = mkdtempSync(`${tmpdir()}/hoptrace-nonft-`);
    try {
      for (const tool of ['bpftrace', 'bpftool', 'setpriv', 'ip', 'nsenter']) {
        const found = String((await execa('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false })).stdout).trim();
        if (found) symlinkSync(found, `${dir}/${tool}`);
      }
      const r = await cli(['trace', '--netfilter', '--no-model', '--filter', 'udp port 9'], { env: { PATH: dir } });
      expect(r.exitCode).toBe(2);
      expect(String(r.stderr)).toMatch(/--netfilter needs nft \(nftables\): run `hoptrace setup` as root \(it installs nftables\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('lets go of namespaces deleted while tracing and leaves no table in any', async () => {
    const before = `${lab.prefix}-gone1`;
    const after = `${lab.prefix}-gone2`;
    extra.push(before, after);
    await execa('ip', ['netns', 'add', before]);
    const { child } = await startTrace(['--json', '--netfilter', '--filter', 'udp port 9']);
    const pid = child.pid as number;
    await execa('ip', ['netns', 'add', after]);
    const inoBefore = statSync(`/run/netns/${before}`).ino;
    const inoAfter = statSync(`/run/netns/${after}`).ino;
    // The new namespace is picked up when it appears in /run/netns — or, on a host with more
    // namespaces than the tracer starts in at once (CI runs other labs beside this one), when a
    // packet the filter matches is seen in it.
    await execa('ip', ['-n', after, 'link', 'set', 'lo', 'up']);
    await until('table in the namespace created after start', async () => {
      await sendUdp(after, '127.0.0.1', 9, 1);
      return (await hoptraceTables(`/run/netns/${after}`)).some((t) => t.startsWith(`hoptrace_${pid}_`));
    }, 20_000);
    expect((await hoptraceTables(`/run/netns/${before}`)).some((t) => t.startsWith(`hoptrace_${pid}_`))).toBe(true);
    await execa('ip', ['netns', 'del', before]);
    await execa('ip', ['netns', 'del', after]);
    // Nothing of ours keeps the deleted namespaces alive (their tables go with them).
    await until('deleted namespaces released', () => holdersOf(inoBefore).length === 0 && holdersOf(inoAfter).length === 0);
    expect(child.exitCode).toBeNull();
    const out = await stopTrace(child);
    expect(out.exitCode).toBe(0);
    expect(await tablesOf(pid)).toEqual([]);
  }, 60_000);
});
