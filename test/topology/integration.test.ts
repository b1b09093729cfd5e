/**
 * Real namespaces: a node with a bridge and two pods on veths, an ext namespace behind the
 * node, MASQUERADE via iptables, a port-forward DNAT via native nft, and a FORWARD drop. Checks
 * `topology --json` against what was built, `path` against the rules, and — when bpftrace is
 * available — that the hops the kernel shows for real packets agree with `path`.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Hop } from '../../shared/packet.js';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';
import type { ExpectedPath } from '../../shared/topology/simulate.js';
import { comparePaths } from '../../shared/topology/compare.js';
import { runPathCommand } from '../../server/commands/path.js';
import { runTopologyCommand } from '../../server/commands/topology.js';
import { discoverTopology } from '../../server/topology/discover.js';
import { listNamespaces } from '../../server/topology/namespaces.js';
import { runInNamespace } from '../../server/topology/exec.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const P = `ht-${randomBytes(3).toString('hex')}`;
const NS = { node: `${P}-node`, pod1: `${P}-pod1`, pod2: `${P}-pod2`, ext: `${P}-ext` };

async function sh(...argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  await run(cmd ?? 'false', args);
}
async function ipn(ns: string, ...args: string[]): Promise<void> {
  await sh('ip', '-n', ns, ...args);
}
async function inNs(ns: string, ...argv: string[]): Promise<void> {
  await sh('ip', 'netns', 'exec', ns, ...argv);
}

async function buildLab(): Promise<void> {
  for (const ns of Object.values(NS)) {
    await sh('ip', 'netns', 'add', ns);
    await ipn(ns, 'link', 'set', 'lo', 'up');
    // A new namespace inherits IPv4 forwarding from the host's (devconf_inherit_init_net=0), and
    // a host that ran podman has it on: say what each namespace forwards, as the checks expect.
    await inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0');
  }
  await ipn(NS.node, 'link', 'add', 'br0', 'type', 'bridge');
  await ipn(NS.node, 'addr', 'add', '10.253.1.1/24', 'dev', 'br0');
  await ipn(NS.node, 'addr', 'add', 'fd00:253:1::1/64', 'dev', 'br0', 'nodad');
  await ipn(NS.node, 'link', 'set', 'br0', 'up');
  for (const [pod, port, host] of [[NS.pod1, 'veth-pod1', '11'], [NS.pod2, 'veth-pod2', '12']] as const) {
    await ipn(NS.node, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod);
    await ipn(NS.node, 'link', 'set', port, 'master', 'br0');
    await ipn(NS.node, 'link', 'set', port, 'up');
    await ipn(pod, 'addr', 'add', `10.253.1.${host}/24`, 'dev', 'eth0');
    await ipn(pod, 'addr', 'add', `fd00:253:1::${host}/64`, 'dev', 'eth0', 'nodad');
    await ipn(pod, 'link', 'set', 'eth0', 'up');
    await ipn(pod, 'route', 'add', 'default', 'via', '10.253.1.1');
  }
  await ipn(NS.node, 'link', 'add', 'eth-node', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.ext);
  await ipn(NS.node, 'addr', 'add', '10.253.9.1/24', 'dev', 'eth-node');
  await ipn(NS.node, 'link', 'set', 'eth-node', 'up');
  await ipn(NS.ext, 'addr', 'add', '10.253.9.2/24', 'dev', 'eth0');
  await ipn(NS.ext, 'link', 'set', 'eth0', 'up');
  await inNs(NS.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  await inNs(NS.node, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.253.1.0/24', '-o', 'eth-node', '-j', 'MASQUERADE');
  await inNs(NS.node, 'iptables', '-A', 'FORWARD', '-p', 'udp', '--dport', '9999', '-j', 'DROP');
  await inNs(NS.node, 'nft', 'add', 'table', 'ip', 'portfwd');
  await inNs(NS.node, 'nft', 'add', 'chain', 'ip', 'portfwd', 'pre', '{ type nat hook prerouting priority -100; }');
  await inNs(NS.node, 'nft', 'add', 'rule', 'ip', 'portfwd', 'pre', 'iifname', 'eth-node', 'tcp', 'dport', '8080', 'dnat', 'to', '10.253.1.12:80');
  await inNs(NS.node, 'nft', 'add', 'rule', 'ip', 'portfwd', 'pre', 'iifname', 'eth-node', 'udp', 'dport', '9155', 'dnat', 'to', '10.253.1.12:9156');
  // The other verdicts the model reads: REDIRECT and REJECT from iptables, SNAT and a drop from
  // native nft; a policy routing rule; IPv6 forwarding.
  await inNs(NS.node, 'iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', 'eth-node', '-p', 'tcp', '--dport', '8081', '-j', 'REDIRECT', '--to-ports', '81');
  await inNs(NS.node, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '23', '-j', 'REJECT');
  await inNs(NS.node, 'nft', 'add', 'chain', 'ip', 'portfwd', 'post', '{ type nat hook postrouting priority 90; }');
  await inNs(NS.node, 'nft', 'add', 'rule', 'ip', 'portfwd', 'post', 'oifname', 'eth-node', 'ip', 'saddr', '10.253.1.12', 'udp', 'dport', '9200', 'snat', 'to', '10.253.9.1:20000');
  await inNs(NS.node, 'nft', 'add', 'chain', 'ip', 'portfwd', 'forwardc', '{ type filter hook forward priority 0; }');
  await inNs(NS.node, 'nft', 'add', 'rule', 'ip', 'portfwd', 'forwardc', 'ip', 'daddr', '10.253.9.2', 'tcp', 'dport', '{ 2222, 3333-3340 }', 'drop');
  await ipn(NS.node, 'rule', 'add', 'from', '10.253.1.12', 'lookup', '100', 'pref', '1000');
  await inNs(NS.node, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
}

/** A namespace with no name, like a container's: only a process in it holds it. */
let unnamed: ReturnType<typeof spawn> | null = null;
async function buildUnnamed(): Promise<number> {
  unnamed = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
  const pid = unnamed.pid ?? 0;
  const nsPath = `/proc/${pid}/ns/net`;
  // Wait until unshare has switched namespaces (the link then differs from ours).
  for (let i = 0; i < 50 && statSync(nsPath).ino === statSync('/proc/self/ns/net').ino; i++) await new Promise((r) => setTimeout(r, 20));
  await ipn(NS.node, 'link', 'add', 'vu0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid));
  await ipn(NS.node, 'addr', 'add', '10.253.7.1/24', 'dev', 'vu0');
  await ipn(NS.node, 'link', 'set', 'vu0', 'up');
  for (const argv of [['addr', 'add', '10.253.7.2/24', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['route', 'add', 'default', 'via', '10.253.7.1']]) {
    await sh('nsenter', `--net=${nsPath}`, 'ip', ...argv);
  }
  return pid;
}

async function removeLab(): Promise<void> {
  if (unnamed) {
    const child = unnamed;
    unnamed = null;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
  for (const ns of Object.values(NS)) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
}

/** Runs a command handler, capturing what it writes. */
async function capture(f: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await f(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

async function path(...argv: string[]): Promise<ExpectedPath> {
  const r = await capture(runPathCommand, [...argv, '--json']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as ExpectedPath;
}

const inode = (ns: string): number => statSync(`/run/netns/${ns}`).ino;

describe.skipIf(!isRoot)('topology and path on real namespaces (root)', () => {
  let topo: Topology;
  const byName = (name: string): NamespaceModel => {
    const n = topo.namespaces.find((x) => x.name === name);
    if (!n) throw new Error(`${name} missing from topology --json`);
    return n;
  };

  let unnamedPid = 0;
  beforeAll(async () => {
    await buildLab();
    unnamedPid = await buildUnnamed();
    const r = await capture(runTopologyCommand, ['--json', ...Object.values(NS).flatMap((n) => ['--ns', n])]);
    expect(r.code).toBe(0);
    topo = JSON.parse(r.out) as Topology;
  });
  afterAll(removeLab);

  it('should list the lab namespaces by name and inode', async () => {
    const list = await listNamespaces();
    for (const ns of Object.values(NS)) {
      expect(list.find((n) => n.name === ns)).toMatchObject({ netns: inode(ns), path: `/run/netns/${ns}` });
    }
    expect(list.some((n) => n.name === 'host')).toBe(true);
    expect(topo.namespaces.map((n) => n.name).sort()).toEqual(Object.values(NS).sort());
  });

  it('should resolve veth peers across namespaces and bridge masters', () => {
    const node = byName(NS.node);
    const pod1 = byName(NS.pod1);
    const port = node.interfaces.find((i) => i.name === 'veth-pod1');
    const eth0 = pod1.interfaces.find((i) => i.name === 'eth0');
    expect(port).toMatchObject({ kind: 'veth', master: 'br0', up: true });
    expect(eth0?.peer).toEqual({ netns: inode(NS.node), ifindex: port?.ifindex, name: 'veth-pod1' });
    expect(port?.peer).toEqual({ netns: inode(NS.pod1), ifindex: eth0?.ifindex, name: 'eth0' });
    expect(node.interfaces.find((i) => i.name === 'eth-node')?.peer).toMatchObject({ netns: inode(NS.ext), name: 'eth0' });
    expect(node.interfaces.find((i) => i.name === 'br0')).toMatchObject({ kind: 'bridge', master: null, peer: null });
    expect(node.errors).toEqual([]);
  });

  it('should carry addresses, routes, forwarding switches and netfilter rules', () => {
    const node = byName(NS.node);
    expect(node.interfaces.find((i) => i.name === 'br0')?.addrs).toEqual(expect.arrayContaining(['10.253.1.1/24', 'fd00:253:1::1/64']));
    expect(byName(NS.pod2).interfaces.find((i) => i.name === 'eth0')?.addrs).toEqual(expect.arrayContaining(['10.253.1.12/24', 'fd00:253:1::12/64']));
    expect(node.forwarding.ipv4).toBe(true);
    expect(byName(NS.pod1).forwarding.ipv4).toBe(false);
    expect(byName(NS.pod1).routes).toContainEqual(expect.objectContaining({ dst: '0.0.0.0/0', gateway: '10.253.1.1', dev: 'eth0', table: 'main' }));
    expect(node.routes).toContainEqual(expect.objectContaining({ table: 'local', type: 'local', dst: '10.253.1.1/32' }));
    const masq = node.netfilter.rules.find((r) => r.action.kind === 'masquerade');
    expect(masq).toMatchObject({ origin: 'iptables', table: 'nat', chain: 'POSTROUTING', text: '-A POSTROUTING -s 10.253.1.0/24 -o eth-node -j MASQUERADE' });
    const dnat = node.netfilter.rules.find((r) => r.action.kind === 'dnat');
    expect(dnat).toMatchObject({ origin: 'nft', table: 'portfwd', action: { kind: 'dnat', addr: '10.253.1.12', port: 80 } });
    expect(node.rules.map((r) => r.priority)).toContain(32766);
  });

  it('should find a namespace no name points to through its process, by inode, with its veth peer in a named one', async () => {
    const ino = statSync(`/proc/${unnamedPid}/ns/net`).ino;
    const r = await capture(runTopologyCommand, ['--json', '--ns', String(ino), '--ns', NS.node]);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out) as Topology;
    const ns = t.namespaces.find((n) => n.netns === ino);
    expect(ns).toMatchObject({ name: `pid ${unnamedPid} (sleep)`, path: `/proc/${unnamedPid}/ns/net`, pids: [unnamedPid] });
    const eth0 = ns?.interfaces.find((i) => i.name === 'eth0');
    const vu0 = t.namespaces.find((n) => n.name === NS.node)?.interfaces.find((i) => i.name === 'vu0');
    expect(eth0).toMatchObject({ kind: 'veth', addrs: ['10.253.7.2/24', expect.stringMatching(/^fe80:/)], peer: { netns: inode(NS.node), ifindex: vu0?.ifindex, name: 'vu0' } });
    expect(vu0?.peer).toEqual({ netns: ino, ifindex: eth0?.ifindex, name: 'eth0' });
    // path takes the label or the inode.
    const p = await path('--from', `pid ${unnamedPid} (sleep)`, '--dst', '10.253.1.12', '--proto', 'udp', '--dport', '53');
    expect(p.fate).toBe('delivered');
    expect(p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([
      `pid ${unnamedPid} (sleep)/eth0/xmit`, `${NS.node}/vu0/recv`, `${NS.node}/br0/xmit`, `${NS.node}/veth-pod2/xmit`, `${NS.pod2}/eth0/recv`,
    ]);
    expect((await path('--from', String(ino), '--dst', '10.253.1.12', '--proto', 'udp', '--dport', '53')).hops).toEqual(p.hops);
  });

  it('should read every kind of verdict from iptables and native nft, policy rules, IPv6 forwarding and the bridge fdb', async () => {
    const node = byName(NS.node);
    const rule = (kind: string): unknown => node.netfilter.rules.find((r) => r.action.kind === kind);
    expect(rule('redirect')).toMatchObject({ origin: 'iptables', table: 'nat', chain: 'PREROUTING', action: { kind: 'redirect', port: 81 } });
    expect(rule('reject')).toMatchObject({ origin: 'iptables', table: 'filter', chain: 'INPUT', text: '-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable' });
    expect(rule('snat')).toMatchObject({
      origin: 'nft', table: 'portfwd', chain: 'post', action: { kind: 'snat', addr: '10.253.9.1', port: 20000 },
      matches: [
        { kind: 'iface', field: 'oifname', neg: false, names: ['eth-node'] },
        { kind: 'addr', field: 'saddr', family: 4, neg: false, values: ['10.253.1.12'] },
        { kind: 'port', field: 'dport', proto: 17, neg: false, ranges: [[9200, 9200]] },
      ],
    });
    expect(node.netfilter.rules.find((r) => r.origin === 'nft' && r.action.kind === 'drop')).toMatchObject({
      chain: 'forwardc', text: 'ip daddr 10.253.9.2 tcp dport { 2222, 3333-3340 } drop',
    });
    expect(node.netfilter.chains.find((c) => c.table === 'portfwd' && c.name === 'forwardc')).toMatchObject({ family: 'ip', hook: 'forward', type: 'filter', prio: 0 });
    expect(node.rules).toContainEqual(expect.objectContaining({ family: 4, priority: 1000, src: '10.253.1.12/32', table: '100', action: 'lookup' }));
    expect(node.forwarding).toEqual({ ipv4: true, ipv6: true });
    expect(byName(NS.ext).forwarding).toEqual({ ipv4: false, ipv6: false });
    // The bridge's own MAC on each port is a permanent entry of its forwarding database.
    expect(node.fdb?.filter((e) => e.permanent && e.bridge === 'br0').map((e) => e.port)).toEqual(expect.arrayContaining(['veth-pod1', 'veth-pod2']));
    expect(Array.isArray(node.neighbours)).toBe(true);

    const redirect = await path('--from', NS.ext, '--dst', '10.253.9.1', '--proto', 'tcp', '--dport', '8081');
    expect(redirect).toMatchObject({ fate: 'delivered' });
    expect(redirect.hops[1]).toMatchObject({ ns: NS.node, event: 'recv', hook: 'PREROUTING', table: 'nat' });
    expect(redirect.hops[1]?.rules[0]?.verdict).toBe('redirect to 10.253.9.1:81');
    const reject = await path('--from', NS.ext, '--dst', '10.253.9.1', '--proto', 'tcp', '--dport', '23');
    expect(reject).toMatchObject({ fate: 'dropped', drop: { ns: NS.node, hook: 'INPUT', table: 'filter' } });
    const snat = await path('--from', NS.pod2, '--dst', '10.253.9.2', '--proto', 'udp', '--sport', '7', '--dport', '9200');
    expect(snat.hops.find((h) => h.ifname === 'eth-node')).toMatchObject({ src: '10.253.9.1', sport: 20000, hook: 'POSTROUTING', table: 'portfwd' });
    const nftDrop = await path('--from', NS.pod1, '--dst', '10.253.9.2', '--proto', 'tcp', '--dport', '3335');
    expect(nftDrop).toMatchObject({ fate: 'dropped', drop: { hook: 'FORWARD', table: 'portfwd', chain: 'forwardc' } });
  });

  it('should print a readable tree with links', async () => {
    const r = await capture(runTopologyCommand, ['--ns', NS.node]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/port veth-pod1 \(#\d+, veth, up/);
    expect(r.out).toMatch(new RegExp(`<-> ${NS.pod1}:eth0 #\\d+`));
    expect(r.out).toContain('-j MASQUERADE');
  });

  it('should expect pod to pod over the bridge', async () => {
    const p = await path('--from', NS.pod1, '--dst', '10.253.1.12', '--proto', 'udp', '--sport', '4000', '--dport', '9100');
    expect(p.fate).toBe('delivered');
    expect(p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([
      `${NS.pod1}/eth0/xmit`, `${NS.node}/veth-pod1/recv`, `${NS.node}/veth-pod2/xmit`, `${NS.pod2}/eth0/recv`,
    ]);
    expect(p.hops[0]?.netns).toBe(inode(NS.pod1));
  });

  it('should name the POSTROUTING nat rule on pod to ext through masquerade', async () => {
    const p = await path('--from', NS.pod1, '--src', '10.253.1.11', '--dst', '10.253.9.2', '--proto', 'udp', '--sport', '4000', '--dport', '9101');
    expect(p.fate).toBe('delivered');
    const up = p.hops.find((h) => h.ifname === 'eth-node');
    expect(up).toMatchObject({ ns: NS.node, event: 'xmit', hook: 'POSTROUTING', table: 'nat', src: '10.253.9.1' });
    expect(up?.rules[0]?.rule).toBe('-A POSTROUTING -s 10.253.1.0/24 -o eth-node -j MASQUERADE');
  });

  it('should follow the nft DNAT from ext into pod2', async () => {
    const p = await path('--from', NS.ext, '--dst', '10.253.9.1', '--proto', 'tcp', '--sport', '5000', '--dport', '8080');
    expect(p.fate).toBe('delivered');
    expect(p.hops[1]).toMatchObject({ ns: NS.node, ifname: 'eth-node', event: 'recv', hook: 'PREROUTING', table: 'portfwd', dst: '10.253.9.1' });
    expect(p.hops.at(-1)).toMatchObject({ ns: NS.pod2, ifname: 'eth0', event: 'recv', dst: '10.253.1.12', dport: 80 });
  });

  it('should say dropped, with the rule, for the FORWARD DROP', async () => {
    const p = await path('--from', NS.pod1, '--dst', '10.253.9.2', '--proto', 'udp', '--dport', '9999');
    expect(p.fate).toBe('dropped');
    expect(p.drop).toMatchObject({ ns: NS.node, hook: 'FORWARD', table: 'filter', rule: '-A FORWARD -p udp -m udp --dport 9999 -j DROP' });
  });

  it('should answer unreachable for an address no route covers, and exit 2 for bad arguments', async () => {
    const p = await path('--from', NS.ext, '--dst', '10.253.77.1', '--proto', 'icmp');
    expect(p.fate).toBe('unreachable');
    expect(p.reason).toContain('no route');
    const bad = await capture(runPathCommand, ['--from', `${P}-nope`, '--dst', '10.253.1.1', '--proto', 'udp']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain(`unknown namespace '${P}-nope'`);
    const badIp = await capture(runPathCommand, ['--from', NS.pod1, '--dst', '10.253.1', '--proto', 'udp']);
    expect(badIp.code).toBe(2);
    expect(badIp.err).toContain('not an IPv4 or IPv6 address');
    const badFlag = await capture(runPathCommand, ['--from', NS.pod1, '--bogus']);
    expect(badFlag.code).toBe(2);
  });

  it('should keep going when a namespace vanishes mid-discovery', async () => {
    const list = await listNamespaces();
    const ghost = { netns: 1, name: `${P}-ghost`, path: `/run/netns/${P}-ghost`, pids: [] };
    const t = await discoverTopology({ namespaces: [...list.filter((n) => Object.values(NS).includes(n.name)), ghost] });
    expect(t.namespaces.map((n) => n.name).sort()).toEqual(Object.values(NS).sort());
    expect(t.errors.join('\n')).toContain(`${P}-ghost`);
  });

  it('should keep the rules of an nft ruleset it does not fully understand, mark them, and say the path guessed', async () => {
    const table = `ht${P.slice(3)}`;
    await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'table', 'inet', table);
    try {
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'map', 'inet', table, 'ports', '{ type inet_service : ipv4_addr; }');
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'chain', 'inet', table, 'forwardc', '{ type filter hook forward priority 10; }');
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'rule', 'inet', table, 'forwardc', 'meta', 'mark', '0x7', 'drop');
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'rule', 'inet', table, 'forwardc', 'iifname', 'vmap', '{ "nope0" : drop }');
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'chain', 'inet', table, 'prec', '{ type nat hook prerouting priority -110; }');
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'add', 'rule', 'inet', table, 'prec', 'dnat', 'ip', 'to', 'tcp', 'dport', 'map', `@ports`);
      const r = await capture(runTopologyCommand, ['--json', '--ns', NS.node]);
      expect(r.code).toBe(0);
      const node = (JSON.parse(r.out) as Topology).namespaces[0];
      const mine = node?.netfilter.rules.filter((x) => x.table === table) ?? [];
      expect(mine.map((x) => x.text)).toEqual(['meta mark 0x7 drop', 'meta iifname vmap { nope0 : drop }', 'dnat ip to tcp dport map @ports']);
      expect(mine.map((x) => x.action.kind)).toEqual(['drop', 'unknown', 'unknown']);
      // Marks are evaluated (a packet entering the namespace carries none, so this never drops).
      expect(mine[0]?.matches).toEqual([{ kind: 'mark', of: 'packet', neg: false, value: 7, mask: 0xffffffff }]);
      // The iptables rules around them are still read in full.
      expect(node?.netfilter.rules.some((x) => x.action.kind === 'masquerade')).toBe(true);
      const p = await path('--from', NS.ext, '--dst', '10.253.9.1', '--proto', 'tcp', '--sport', '5000', '--dport', '8080');
      expect(p.fate).toBe('delivered');
      expect(p.hops.at(-1)).toMatchObject({ ns: NS.pod2, dport: 80 });
      expect(p.guess).toBe(true);
      expect(p.notes.join('\n')).toContain('"dnat ip to tcp dport map @ports"');
      // The mark rule is evaluated (no guess about it): a packet entering the node carries no mark.
      expect(p.notes.join('\n')).not.toContain('meta mark');
    } finally {
      await sh('ip', 'netns', 'exec', NS.node, 'nft', 'delete', 'table', 'inet', table);
    }
  });

  it('should drop a namespace deleted while discovery runs and keep the others', async () => {
    const doomed = `${P}-gone`;
    await sh('ip', 'netns', 'add', doomed);
    const list = (await listNamespaces()).filter((n) => n.name === doomed || n.name === NS.pod1);
    expect(list).toHaveLength(2);
    let deleted = false;
    // The real commands, but the namespace goes away right before the first one meant for it.
    const t = await discoverTopology({
      namespaces: list,
      run: async (nsPath, argv, input) => {
        if (nsPath === `/run/netns/${doomed}` && !deleted) {
          deleted = true;
          await sh('ip', 'netns', 'del', doomed);
        }
        return runInNamespace(nsPath, argv, input);
      },
    });
    expect(deleted).toBe(true);
    expect(t.namespaces.map((n) => n.name)).toEqual([NS.pod1]);
    expect(t.errors.join('\n')).toContain(`namespace ${doomed}`);
    expect(t.errors.join('\n')).toContain('vanished during discovery');
  });

  describe('against the kernel', () => {
    const haveBpftrace = (() => {
      try {
        statSync('/usr/bin/bpftrace');
        return true;
      } catch {
        return false;
      }
    })();

    it.skipIf(!haveBpftrace)('should agree with the hops the kernel shows for the same packets', async () => {
      const flows = [
        { from: NS.pod1, dst: '10.253.1.12', dport: 9150, fate: 'delivered' }, // bridged pod to pod
        { from: NS.pod1, dst: '10.253.9.2', dport: 9151, fate: 'delivered' }, // routed, MASQUERADE
        { from: NS.pod1, dst: '10.253.1.1', dport: 9152, fate: 'delivered' }, // to the bridge's own address
        { from: NS.ext, dst: '10.253.9.1', dport: 9155, fate: 'delivered' }, // nft DNAT into pod2
        { from: NS.node, dst: '10.253.1.11', dport: 9153, fate: 'delivered' }, // node routes into the bridge
        { from: NS.pod1, dst: '10.253.9.2', dport: 9999, fate: 'dropped' }, // FORWARD DROP
      ] as const;
      const hops = await observe(async () => {
        for (const f of flows) await send(f.from, f.dst, f.dport);
      });
      const inodes = new Map(Object.values(NS).map((n) => [inode(n), n]));
      const mine = hops.filter((h) => inodes.has(h.netns)).map((h) => ({ ...h, ns: inodes.get(h.netns) ?? null }));
      for (const f of flows) {
        // Each send uses its own source port, which no rule here rewrites; one skb per packet.
        const sport = 40000 + (f.dport % 1000);
        const pkt = mine.filter((h) => h.sport === sport);
        expect(pkt.length, `${f.dst}:${f.dport} observed`).toBeGreaterThan(1);
        const expected = await path('--from', f.from, '--dst', f.dst, '--proto', 'udp', '--sport', String(sport), '--dport', String(f.dport));
        expect(expected.fate).toBe(f.fate);
        const div = comparePaths(pkt, expected, { dropReason: f.fate === 'dropped' ? 'NETFILTER_DROP' : 'NO_SOCKET' });
        expect(div, `${f.dst}:${f.dport}: ${div?.summary}`).toBeNull();
        // Every expected hop was seen, in order (the comparison tolerates gaps; a real run has none).
        const seen = pkt.filter((h) => h.event !== 'rx').map((h) => `${h.ns}/${h.ifname}/${h.event}`);
        const want = expected.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`);
        expect(seen.slice(0, want.length), `${f.dst}:${f.dport}`).toEqual(want);
        // After a delivery the kernel frees the packet (no socket listens): nothing else moves.
        expect(seen.slice(want.length).every((s) => s.endsWith('/drop'))).toBe(true);
      }
    }, 60_000);
  });
});

const PROBE = `
tracepoint:net:net_dev_start_xmit, tracepoint:net:netif_receive_skb, tracepoint:net:netif_rx, tracepoint:skb:kfree_skb
{
  $skb = (struct sk_buff *)args->skbaddr;
  if ($skb->protocol != 0x0008) { return; }
  $ip = (struct iphdr *)($skb->head + $skb->network_header);
  if ($ip->protocol != 17) { return; }
  $udp = (struct udphdr *)($skb->head + $skb->transport_header);
  $dp = ($udp->dest >> 8) | (($udp->dest & 0xff) << 8);
  $sp = ($udp->source >> 8) | (($udp->source & 0xff) << 8);
  if ($sp < 40150 || $sp > 40999) { return; }
  $dev = $skb->dev;
  if ($dev == 0) { return; }
  printf("HOP %s %llx %u %s %s %s %d %d\\n", probe, $skb, $dev->nd_net.net->ns.inum, $dev->name, ntop($ip->saddr), ntop($ip->daddr), $sp, $dp);
}
`;

/** Runs the probe around `traffic` and returns the hops it saw, in order. */
async function observe(traffic: () => Promise<void>): Promise<Hop[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ht-topo-'));
  const file = join(dir, 'probe.bt');
  writeFileSync(file, PROBE);
  const child = spawn('bpftrace', [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`bpftrace did not attach: ${out}`)), 30_000);
      const check = (): void => {
        if (out.includes('Attaching')) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on('data', check);
      child.on('exit', () => reject(new Error(`bpftrace exited: ${out}`)));
    });
    await traffic();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  const kinds: Record<string, Hop['event']> = {
    'tracepoint:net:net_dev_start_xmit': 'xmit', 'tracepoint:net:netif_rx': 'rx', 'tracepoint:net:netif_receive_skb': 'recv', 'tracepoint:skb:kfree_skb': 'drop',
  };
  const hops: Hop[] = [];
  let t = 0;
  for (const line of out.split('\n')) {
    const f = line.split(' ');
    if (f[0] !== 'HOP' || f.length < 9) continue;
    const event = kinds[f[1] ?? ''];
    if (!event) continue;
    hops.push({
      t: t++, event, netns: Number(f[3]), ns: null, ifname: f[4] ?? '', ifindex: 0, src: f[5] ?? '', dst: f[6] ?? '',
      sport: Number(f[7]), dport: Number(f[8]), cpu: 0, len: 0, ipId: 0, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
    });
  }
  return hops;
}

async function send(ns: string, dst: string, dport: number): Promise<void> {
  const py = `import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 40000 + ${dport % 1000}))\ns.sendto(b'x', ('${dst}', ${dport}))\n`;
  await sh('ip', 'netns', 'exec', ns, 'python3', '-c', py);
  await new Promise((r) => setTimeout(r, 200));
}

if (!isRoot) {
  describe('topology and path on real namespaces', () => {
    it.skip('needs root to create network namespaces (run as root, as CI does)', () => undefined);
  });
}
