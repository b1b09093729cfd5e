/**
 * Bridge family rules under `trace --netfilter` on a real lab of its own: two pod namespaces on
 * one bridge in a node namespace (pure layer 2: the bridge has no address, nothing is routed),
 * and a `table bridge` forward chain in the node dropping udp to one port — the way people filter
 * between containers on one bridge without br_netfilter. The dropped frame's steps name the
 * bridge family rule, chain and verdict; hoptrace's bridge table goes wherever its inet table
 * goes (normal exit, SIGKILL with the guardian, SIGKILL without it and the next run).
 *
 * br_netfilter (built in or loaded, /proc/sys/net/bridge present) hands bridged IP frames to the
 * inet hooks too when `bridge-nf-call-iptables` is 1 — then the inet table alone would have
 * started the trace before the bridge forward hook. The namespace's setting is forced both ways
 * here, so the test says the same whether or not the host has br_netfilter: with it off (or
 * absent) only hoptrace's bridge table can have traced the frame.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { sendUdp, startEcho, type Server } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import type { NetfilterEvent, NetfilterVerdict } from '../../shared/netfilter/types.js';
import { NetfilterTracer, ownTables } from '../../server/netfilter/index.js';
import { processStartTime, type NftNamespace } from '../../server/netfilter/nft.js';
import { listNamespaces } from '../../server/topology/namespaces.js';
import { parseFilter } from '../../shared/filter/index.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { until, guardianOf } from './helpers.js';
import { cli, startTrace, type CliProcess } from '../helpers/cli.js';

const PREFIX = `ht-${randomBytes(3).toString('hex')}`;
const NS = { node: `${PREFIX}-brnode`, a: `${PREFIX}-bra`, b: `${PREFIX}-brb` } as const;
const ADDR = { a: '10.253.41.11', b: '10.253.41.12', a6: 'fd00:253:41::11', b6: 'fd00:253:41::12' } as const;
const DROP_PORT = 7431;
const PASS_PORT = 7432;
const BRIDGE_RULE = `udp dport ${DROP_PORT} counter drop comment "between pods"`;
/** A rule in a bridge prerouting chain at dstnat priority (-300): before br_netfilter hands frames to inet (0). */
const EARLY_RULE = `udp dport ${PASS_PORT} counter`;

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

const nsPath = (name: string): string => `/run/netns/${name}`;
const nsOf = (name: string): NftNamespace => ({ netns: statSync(nsPath(name)).ino, name, path: nsPath(name) });

/** `family name` of every table owned by run `pid`, per lab namespace that has one. */
async function labTablesOf(pid: number): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const name of Object.values(NS)) {
    const mine = (await ownTables(nsPath(name))).filter((t) => t.name.startsWith(`hoptrace_${pid}_`)).map((t) => `${t.family} ${t.name}`).sort();
    if (mine.length > 0) out[name] = mine;
  }
  return out;
}

/** Every table of run `pid` in any namespace of the host, any family. */
async function allTablesOf(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const ns of await listNamespaces()) {
    for (const t of await ownTables(ns.path)) if (t.name.startsWith(`hoptrace_${pid}_`)) out.push(`${ns.name}: ${t.family} ${t.name}`);
  }
  return out;
}

/** Whether the node namespace has br_netfilter's switches (then both settings are tested). */
function hasBrNetfilter(): boolean {
  return existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
}

async function setBrNetfilter(on: boolean): Promise<void> {
  for (const key of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables']) {
    await execa('ip', ['netns', 'exec', NS.node, 'sysctl', '-qw', `net.bridge.${key}=${on ? 1 : 0}`]);
  }
}

const stepIn = (p: Packet | undefined, match: Partial<NetfilterVerdict>): NetfilterVerdict | undefined =>
  p?.netfilter?.find((s) => Object.entries(match).every(([k, v]) => (s as unknown as Record<string, unknown>)[k] === v));

describe.skipIf(!isRoot)(`bridge family rules under trace --netfilter (${NEEDS_ROOT})`, () => {
  let echo: Server | undefined;
  let inodes: Set<number>;

  beforeAll(async () => {
    try {
      for (const ns of Object.values(NS)) {
        await ip('netns', 'add', ns);
        await ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
      await ip('link', 'add', 'port-a', 'netns', NS.node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.a);
      await ip('link', 'add', 'port-b', 'netns', NS.node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.b);
      await ip('-n', NS.node, 'link', 'add', 'br0', 'type', 'bridge');
      for (const port of ['port-a', 'port-b']) await ip('-n', NS.node, 'link', 'set', port, 'master', 'br0');
      for (const dev of ['br0', 'port-a', 'port-b']) await ip('-n', NS.node, 'link', 'set', dev, 'up');
      for (const [ns, addr, addr6] of [[NS.a, ADDR.a, ADDR.a6], [NS.b, ADDR.b, ADDR.b6]] as const) {
        await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
        await ip('-n', ns, '-6', 'addr', 'add', `${addr6}/64`, 'dev', 'eth0', 'nodad');
        await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      }
      await execa('ip', ['netns', 'exec', NS.node, 'nft', '-f', '-'], {
        input: `table bridge podfilter {\n  chain early {\n    type filter hook prerouting priority -300; policy accept;\n    ${EARLY_RULE}\n  }\n`
          + `  chain forward {\n    type filter hook forward priority 0; policy accept;\n    ${BRIDGE_RULE}\n  }\n}\n`,
      });
      echo = await startEcho(NS.b, 'udp', ADDR.b, PASS_PORT);
      inodes = new Set(Object.values(NS).map((n) => statSync(nsPath(n)).ino));
      // Neighbours first, so the traced datagrams are not the ones waiting on ARP / ND.
      expect((await sendUdp(NS.a, ADDR.b, PASS_PORT, 1)).replies).toBe(1);
      await sendUdp(NS.a, ADDR.b6, PASS_PORT, 1);
    } catch (err) {
      for (const ns of Object.values(NS)) await execa('ip', ['netns', 'del', ns], { reject: false });
      throw err;
    }
  }, 60_000);

  afterAll(async () => {
    await echo?.stop();
    for (const ns of Object.values(NS)) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  async function stopTrace(child: CliProcess): Promise<{ packets: Packet[]; exitCode: number | undefined; stderr: string }> {
    child.kill('SIGINT');
    const r = await child;
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => inodes.has(h.netns)));
    return { packets, exitCode: r.exitCode, stderr: String(r.stderr) };
  }

  const modes = hasBrNetfilter() ? [false, true] : [false];

  it.each(modes)('names the bridge family rule, chain and verdict of a dropped frame (br_netfilter call-iptables %s)', async (brnf) => {
    if (hasBrNetfilter()) await setBrNetfilter(brnf);
    const { child } = await startTrace(['--json', '--netfilter', '--no-model', '--filter', `udp and (dst port ${DROP_PORT} or dst port ${PASS_PORT})`]);
    const pid = child.pid as number;
    try {
      // Only the node has a bridge: only it gets a bridge table beside its inet one.
      const tables = await labTablesOf(pid);
      const name = tables[NS.node]?.[0]?.split(' ')[1] ?? 'none';
      expect(tables).toEqual({
        [NS.node]: [`bridge ${name}`, `inet ${name}`],
        [NS.a]: [expect.stringMatching(/^inet /)],
        [NS.b]: [expect.stringMatching(/^inet /)],
      });
      expect((await sendUdp(NS.a, ADDR.b, DROP_PORT, 1)).replies).toBe(0);
      expect((await sendUdp(NS.a, ADDR.b6, DROP_PORT, 1)).replies).toBe(0);
      expect((await sendUdp(NS.a, ADDR.b, PASS_PORT, 1)).replies).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    const out = await stopTrace(child);
    expect(out.exitCode).toBe(0);

    const node = statSync(nsPath(NS.node)).ino;
    const dropped = out.packets.find((p) => p.dport === DROP_PORT);
    expect(dropped?.fate).toBe('dropped');
    const drop = stepIn(dropped, { verdict: 'drop' });
    expect(drop).toMatchObject({ ns: NS.node, netns: node, hook: 'forward', family: 'bridge', table: 'podfilter', chain: 'forward', type: 'rule', rule: BRIDGE_RULE });
    expect(typeof drop?.handle).toBe('number');
    // After the node hop the frame was last seen at: its arrival on the bridge port.
    expect(dropped?.hops[drop?.afterHop ?? -1]).toMatchObject({ ns: NS.node, ifname: 'port-a' });
    // hoptrace's own tables never show up as steps.
    expect(dropped?.netfilter?.some((s) => s.table.startsWith('hoptrace'))).toBe(false);

    // The same over IPv6 (no IP id: matched by tuple and payload length).
    const dropped6 = out.packets.find((p) => p.dport === DROP_PORT && p.family === 6);
    expect(dropped6?.fate).toBe('dropped');
    expect(stepIn(dropped6, { verdict: 'drop' })).toMatchObject({ ns: NS.node, hook: 'forward', family: 'bridge', table: 'podfilter', chain: 'forward', rule: BRIDGE_RULE });

    // The frame let through meets the early prerouting chain (before br_netfilter's hand-over
    // to inet, so only the bridge table can have started its trace), then the forward chain,
    // which it leaves by its policy.
    const passed = out.packets.find((p) => p.src === ADDR.a && p.dport === PASS_PORT);
    const early = stepIn(passed, { family: 'bridge', table: 'podfilter', chain: 'early' });
    expect(early).toMatchObject({ type: 'rule', rule: EARLY_RULE, verdict: 'continue', hook: 'prerouting', ns: NS.node });
    const fwd = stepIn(passed, { family: 'bridge', table: 'podfilter', chain: 'forward' });
    expect(fwd).toMatchObject({ type: 'policy', verdict: 'accept', hook: 'forward', ns: NS.node });
    expect(passed?.netfilter?.indexOf(early as NetfilterVerdict)).toBeLessThan(passed?.netfilter?.indexOf(fwd as NetfilterVerdict) ?? -1);
    expect(stepIn(passed, { verdict: 'drop' })).toBeUndefined();

    // Normal exit: no table of this run is left, in any family, anywhere.
    expect(await allTablesOf(pid)).toEqual([]);
  }, 90_000);

  it('serves the bridge steps through NetfilterTracer, adds a table to a bridge created later, and removes both on stop()', async () => {
    if (hasBrNetfilter()) await setBrNetfilter(false);
    const tracer = new NetfilterTracer({ refreshMs: 200 });
    const events: NetfilterEvent[] = [];
    tracer.on('event', (e) => events.push(e));
    try {
      await tracer.start(parseFilter(`udp and dst port ${DROP_PORT}`), [nsOf(NS.node), nsOf(NS.a)]);
      const byName = new Map(tracer.namespaces.map((n) => [n.ns.name, n]));
      expect(byName.get(NS.node)).toMatchObject({ state: 'tracing', bridge: true });
      expect(byName.get(NS.a)).toMatchObject({ state: 'tracing', bridge: false });
      const table = byName.get(NS.node)?.table ?? '';
      expect(await ownTables(nsPath(NS.node))).toEqual(expect.arrayContaining([{ family: 'inet', name: table }, { family: 'bridge', name: table }]));

      await sendUdp(NS.a, ADDR.b, DROP_PORT, 1);
      const drop = await until('the bridge drop event', () => events.find((e) => e.verdict === 'drop'));
      expect(drop).toMatchObject({
        ns: NS.node, family: 'bridge', table: 'podfilter', chain: 'forward', hook: 'forward', type: 'rule', rule: BRIDGE_RULE,
        packet: { iif: 'port-a', oif: 'port-b', family: 4, proto: 17, src: ADDR.a, dst: ADDR.b, dport: DROP_PORT },
      });

      // A bridge appears in a traced namespace that had none: the next refresh gives it a bridge table.
      await ip('-n', NS.a, 'link', 'add', 'brlate', 'type', 'bridge');
      const aTable = byName.get(NS.a)?.table ?? '';
      await until('a bridge table for the late bridge', async () => (await ownTables(nsPath(NS.a))).some((t) => t.family === 'bridge' && t.name === aTable));
      expect(tracer.namespaces.find((n) => n.ns.name === NS.a)?.bridge).toBe(true);
    } finally {
      await tracer.stop();
      await execa('ip', ['-n', NS.a, 'link', 'del', 'brlate'], { reject: false });
    }
    expect(await allTablesOf(process.pid)).toEqual([]);
  }, 60_000);

  it('leaves no bridge table behind after SIGKILL: the guardian removes it', async () => {
    const { child } = await startTrace(['--json', '--netfilter', '--filter', `udp port ${DROP_PORT}`]);
    const pid = child.pid as number;
    expect((await labTablesOf(pid))[NS.node]).toEqual([expect.stringMatching(/^bridge /), expect.stringMatching(/^inet /)]);
    expect(guardianOf(pid)).toBeDefined();
    child.kill('SIGKILL');
    await child;
    await until('tables removed by the guardian', async () => (await allTablesOf(pid)).length === 0);
  }, 60_000);

  it('cleans a killed run\'s bridge tables at the next start (guardian killed too), and leaves a live owner\'s alone', async () => {
    const { child } = await startTrace(['--json', '--netfilter', '--filter', `udp port ${DROP_PORT}`]);
    const pid = child.pid as number;
    const guardian = await until('guardian', () => guardianOf(pid));
    process.kill(guardian, 'SIGKILL');
    child.kill('SIGKILL');
    await child;
    await new Promise((r) => setTimeout(r, 500));
    expect((await labTablesOf(pid))[NS.node]).toEqual([expect.stringMatching(/^bridge /), expect.stringMatching(/^inet /)]);
    // A bridge table owned by a live process (this test) must survive the clean-up.
    const live = `hoptrace_${process.pid}_998`;
    await execa('ip', ['netns', 'exec', NS.node, 'nft', '-f', '-'], {
      input: `table bridge ${live} {\n  comment "hoptrace pid ${process.pid} start ${processStartTime(process.pid)}"\n}\n`,
    });
    try {
      const next = cli(['trace', '--netfilter', '--duration', '1', '--filter', `udp port ${DROP_PORT}`]);
      const r = await next;
      expect(r.exitCode).toBe(0);
      expect(await allTablesOf(pid)).toEqual([]);
      expect(await allTablesOf(next.pid as number)).toEqual([]);
      expect(await ownTables(nsPath(NS.node))).toContainEqual({ family: 'bridge', name: live });
    } finally {
      await execa('ip', ['netns', 'exec', NS.node, 'nft', 'delete', 'table', 'bridge', live], { reject: false });
    }
  }, 90_000);

  it('lets go of a namespace with a bridge deleted mid-trace, leaving no table anywhere', async () => {
    const extra = `${PREFIX}-brgone`;
    await ip('netns', 'add', extra);
    try {
      await ip('-n', extra, 'link', 'add', 'br9', 'type', 'bridge');
      const ino = statSync(nsPath(extra)).ino;
      const { child } = await startTrace(['--json', '--netfilter', '--filter', `udp port ${DROP_PORT}`]);
      const pid = child.pid as number;
      try {
        expect((await ownTables(nsPath(extra))).filter((t) => t.name.startsWith(`hoptrace_${pid}_`)).map((t) => t.family).sort()).toEqual(['bridge', 'inet']);
        await ip('netns', 'del', extra);
        // Nothing of ours keeps it alive: its tables went with it.
        await until('deleted namespace released', () => !readdirSync('/proc').some((e) => {
          try {
            return /^\d+$/.test(e) && readlinkSync(`/proc/${e}/ns/net`) === `net:[${ino}]`;
          } catch {
            return false;
          }
        }));
        expect(child.exitCode).toBeNull();
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
      const out = await stopTrace(child);
      expect(out.exitCode).toBe(0);
      expect(out.stderr).not.toMatch(/cannot trace bridge/);
      expect(await allTablesOf(pid)).toEqual([]);
    } finally {
      await execa('ip', ['netns', 'del', extra], { reject: false });
    }
  }, 60_000);
});
