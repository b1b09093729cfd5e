/**
 * Parsers against output captured from a real namespace (fixtures/, iproute2 6.1, nftables
 * 1.0.6, iptables 1.8.9 nf_tables) built with known rules, plus hand-written edge cases.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFdb, parseInterfaces, parseNeighbours, parseNetconf, parsePolicyRules, parseRouteLocalnet, parseRoutes, parseSysctl, splitJsonDocuments } from '../../shared/topology/parse-iproute.js';
import { parseNftRuleset } from '../../shared/topology/parse-nft.js';
import { mergeIptables, parseIptablesSave, parseNatTo, tokenize } from '../../shared/topology/parse-iptables.js';
import { resolvePeers } from '../../shared/topology/peers.js';
import type { NamespaceModel, NetInterface } from '../../shared/topology/model.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('iproute2 JSON', () => {
  it('should read interfaces with kind, master, addresses and same-namespace veth peers', () => {
    const errors: string[] = [];
    const ifs = parseInterfaces(JSON.parse(fixture('fx-addr.json')), errors);
    expect(errors).toEqual([]);
    const by = new Map(ifs.map((i) => [i.name, i]));
    expect(by.get('lo')).toMatchObject({ kind: 'loopback', up: true, addrs: ['127.0.0.1/8', '::1/128'] });
    expect(by.get('br0')).toMatchObject({ kind: 'bridge', up: true, master: null });
    expect(by.get('br0')?.addrs).toEqual(expect.arrayContaining(['10.250.20.1/24', 'fd00:20::1/64']));
    expect(by.get('br0')?.bridgeNfCall).toEqual({ ipv4: false, ipv6: false });
    expect(by.get('vx')).toMatchObject({ kind: 'veth', master: 'br0', link: { ifindex: 0, nsid: null, name: 'vy' } });
    expect(by.get('vy')?.up).toBe(false);
    expect(by.get('dummy0')?.addrs).toContain('10.250.21.1/24');
  });

  it('should read routes of all tables with types, gateways and multipath next hops', () => {
    const errors: string[] = [];
    const routes = parseRoutes(JSON.parse(fixture('fx-route4.json')), 4, errors);
    expect(errors).toEqual([]);
    expect(routes.find((r) => r.dst === '0.0.0.0/0')).toMatchObject({ table: 'main', type: 'unicast', gateway: '10.250.21.254', dev: 'dummy0' });
    expect(routes.find((r) => r.dst === '10.250.30.0/24')).toMatchObject({ type: 'blackhole', dev: null });
    const mp = routes.find((r) => r.dst === '10.250.31.0/24');
    expect(mp?.nexthops).toEqual([{ gateway: '10.250.21.2', dev: 'dummy0' }, { gateway: '10.250.21.3', dev: 'dummy0' }]);
    expect(mp?.gateway).toBe('10.250.21.2');
    expect(routes.find((r) => r.table === 'local' && r.dst === '10.250.20.1/32')).toMatchObject({ type: 'local', dev: 'br0' });
    const v6 = parseRoutes(JSON.parse(fixture('fx-route6.json')), 6, errors);
    expect(v6.find((r) => r.dst === '::/0')).toMatchObject({ gateway: 'fd00:20::fe', family: 6 });
  });

  it('should read policy rules, keeping selectors it does not model as text', () => {
    const errors: string[] = [];
    const rules = parsePolicyRules(JSON.parse(fixture('fx-rule4.json')), 4, errors);
    expect(rules.map((r) => r.priority)).toEqual([0, 100, 101, 32766, 32767]);
    expect(rules[1]).toMatchObject({ src: '10.250.20.0/24', iif: 'br0', table: '100', invert: false, unsupported: [] });
    expect(rules[2]).toMatchObject({ dst: '10.250.5.0/24', invert: true, table: '101' });
    expect(rules[2]?.unsupported).toEqual(['fwmark 0x10', 'fwmask 0xff']);
  });

  it('should split ip -batch output into its documents and mark a broken one', () => {
    const docs = splitJsonDocuments(fixture('fx-batch.txt'));
    expect(docs).toHaveLength(5);
    expect(docs.every((d) => Array.isArray(d))).toBe(true);
    const broken = splitJsonDocuments('[{"a":"]"}]\n[{"b":1,}]\n[]');
    expect(broken[0]).toEqual([{ a: ']' }]);
    expect(broken[1]).toBeInstanceOf(Error);
    expect(broken[2]).toEqual([]);
  });

  it('should tell route families apart in a dump of both, and read forwarding from netconf', () => {
    const docs = splitJsonDocuments(fixture('fx-batch.txt'));
    const errors: string[] = [];
    const routes = parseRoutes(docs[2], 'both', errors);
    expect(errors).toEqual([]);
    expect(routes.filter((r) => r.dst === '0.0.0.0/0').map((r) => [r.family, r.gateway])).toEqual([[4, '10.250.21.254']]);
    expect(routes.filter((r) => r.dst === '::/0').map((r) => [r.family, r.gateway])).toEqual([[6, 'fd00:20::fe']]);
    expect(routes.filter((r) => r.family === 6).every((r) => r.dst.includes(':'))).toBe(true);
    expect(routes.filter((r) => r.family === 4).every((r) => !r.dst.includes(':'))).toBe(true);
    expect(parsePolicyRules(docs[3], 4, errors).map((r) => r.priority)).toEqual([0, 100, 101, 32766, 32767]);
    expect(parseNetconf(docs[4])).toEqual({ ipv4: true, ipv6: false });
    expect(parseNetconf('junk')).toEqual({ ipv4: null, ipv6: null });
  });

  it('should read the neighbour table and the bridge forwarding database, leaving out the ports\' own filters', () => {
    // Captured on the lab's node (iproute2 6.1) with a vxlan port and a static entry behind it.
    const errors: string[] = [];
    const neigh = parseNeighbours(JSON.parse(fixture('fx-neigh.json')), errors);
    expect(neigh).toContainEqual({ addr: '10.244.1.50', dev: 'br0', mac: '02:00:00:00:00:50', state: ['PERMANENT'] });
    const fdb = parseFdb(JSON.parse(fixture('fx-fdb.json')), errors);
    expect(fdb).toContainEqual({ mac: '02:00:00:00:00:50', port: 'vx0', bridge: 'br0', permanent: false });
    expect(fdb.every((e) => e.bridge === 'br0')).toBe(true);
    expect(fdb.filter((e) => e.permanent).map((e) => e.port)).toEqual(expect.arrayContaining(['veth-pod1', 'veth-pod2']));
    expect(errors).toEqual([]);
    expect(parseFdb({}, errors)).toEqual([]);
    expect(errors).toEqual(['bridge fdb: output is not a JSON array']);
  });

  it('should read sysctl -e output', () => {
    const m = parseSysctl('net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 0\n');
    expect(m.get('net.ipv4.ip_forward')).toBe('1');
    expect(m.get('net.ipv6.conf.all.forwarding')).toBe('0');
  });

  it('should keep interfaces of kinds it does not model, with the kernel\'s kind', () => {
    const errors: string[] = [];
    const ifs = parseInterfaces([
      { ifindex: 9, ifname: 'wg0', flags: ['UP', 'LOWER_UP'], mtu: 1420, link_type: 'none', linkinfo: { info_kind: 'wireguard' }, addr_info: [{ family: 'inet', local: '10.250.40.1', prefixlen: 32 }] },
      { ifindex: 10, ifname: 'ib0', flags: [], mtu: 2044, link_type: 'infiniband' },
      { ifname: 'noindex' },
      'junk',
    ], errors);
    expect(ifs.map((i) => [i.name, i.kind, i.up, i.addrs])).toEqual([['wg0', 'wireguard', true, ['10.250.40.1/32']], ['ib0', 'infiniband', false, []]]);
    expect(errors).toEqual(['ip addr: skipped an entry without ifindex/ifname']);
  });

  it('should report, not throw, on output that is not an array', () => {
    const errors: string[] = [];
    expect(parseInterfaces({ nope: 1 }, errors)).toEqual([]);
    expect(parseRoutes('x', 4, errors)).toEqual([]);
    expect(errors).toHaveLength(2);
  });
});

describe('nft -j and iptables-save', () => {
  function fx() {
    const errors: string[] = [];
    const parsed = parseNftRuleset(JSON.parse(fixture('fx-nft.json')), errors);
    let nf = mergeIptables(parsed.netfilter, 4, parseIptablesSave(fixture('fx-iptables-save.txt'), 4, errors), errors);
    nf = mergeIptables(nf, 6, parseIptablesSave(fixture('fx-ip6tables-save.txt'), 6, errors), errors);
    return { parsed, nf, errors };
  }

  it('should find the iptables-nft rules whose xt expressions hide their arguments', () => {
    const { parsed } = fx();
    const xt = parsed.xtRules.map((i) => parsed.netfilter.rules[i]);
    expect(xt.every((r) => r?.family === 'ip' || r?.family === 'ip6')).toBe(true);
    // MASQUERADE, both DNATs, the addrtype jump, conntrack, REJECT x2 are xt in nft's view.
    expect(xt.length).toBeGreaterThanOrEqual(6);
    const masq = parsed.netfilter.rules.find((r) => r.table === 'nat' && r.chain === 'POSTROUTING' && r.family === 'ip');
    expect(masq?.action).toEqual({ kind: 'unknown', text: 'xt target MASQUERADE' });
  });

  it('should fill iptables rules from iptables-save: DNAT targets, conntrack states, multiport, addrtype', () => {
    const { nf, errors } = fx();
    expect(errors).toEqual([]);
    const ipt = nf.rules.filter((r) => r.origin === 'iptables');
    const dnat = ipt.find((r) => r.chain === 'PREROUTING' && r.action.kind === 'dnat');
    expect(dnat?.action).toEqual({ kind: 'dnat', addr: '10.250.20.11', port: 5353 });
    expect(dnat?.text).toBe('-A PREROUTING -d 10.250.21.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.250.20.11:5353');
    expect(ipt.find((r) => r.chain === 'DOCKER')?.action).toEqual({ kind: 'dnat', addr: '10.250.20.12', port: 80 });
    expect(ipt.find((r) => r.matches.some((m) => m.kind === 'addrtype'))?.action).toEqual({ kind: 'jump', target: 'DOCKER' });
    expect(ipt.find((r) => r.action.kind === 'accept' && r.chain === 'FORWARD')?.matches).toEqual([{ kind: 'ctstate', neg: false, states: ['related', 'established'] }]);
    const input = ipt.find((r) => r.chain === 'INPUT');
    expect(input?.action.kind).toBe('reject');
    expect(input?.matches).toContainEqual({ kind: 'port', field: 'dport', proto: 6, neg: false, ranges: [[22, 22], [80, 80]] });
    const my = ipt.find((r) => r.chain === 'MYCHAIN');
    expect(my?.matches).toEqual([
      { kind: 'addr', field: 'daddr', family: 4, neg: true, values: ['10.250.0.0/16'] },
      { kind: 'iface', field: 'oifname', neg: false, names: ['dummy*'] },
    ]);
    const v6 = nf.rules.find((r) => r.family === 'ip6');
    expect(v6?.action.kind).toBe('drop');
    expect(v6?.matches[0]).toEqual({ kind: 'addr', field: 'daddr', family: 6, neg: false, values: ['fd00:20::99/128'] });
  });

  it('should read native nft rules: anonymous and named sets, port ranges, ct state, NAT statements', () => {
    const { nf } = fx();
    const t2 = nf.rules.filter((r) => r.table === 't2');
    const rej = t2.find((r) => r.action.kind === 'reject');
    expect(rej?.matches).toEqual([
      { kind: 'ctstate', neg: false, states: ['new'] },
      { kind: 'addr', field: 'saddr', family: 4, neg: false, values: ['10.250.1.3', '10.250.1.4'] },
      { kind: 'port', field: 'dport', proto: 6, neg: false, ranges: [[80, 90], [443, 443]] },
    ]);
    const blocked = t2.find((r) => r.chain === 'sub' && r.matches.some((m) => m.kind === 'addr' && m.values.includes('10.250.8.8')));
    expect(blocked?.matches[0]).toMatchObject({ values: ['10.250.7.0/24', '10.250.8.8'] });
    expect(t2.find((r) => r.action.kind === 'redirect')?.action).toEqual({ kind: 'redirect', port: 8081 });
    expect(t2.filter((r) => r.action.kind === 'snat').map((r) => r.action)).toEqual([
      { kind: 'snat', addr: '10.250.9.1', port: 4000 },
      { kind: 'snat', addr: '10.250.9.1', port: null },
      { kind: 'snat', addr: 'fd00::2', port: null },
    ]);
    // Marks are evaluated now: `meta mark 1` is a mark match, not an unknown one.
    const mark = t2.find((r) => r.matches.some((m) => m.kind === 'mark'));
    expect(mark?.text).toBe('oifname != "lo" meta mark 0x1 return');
    expect(mark?.matches[1]).toEqual({ kind: 'mark', of: 'packet', neg: false, value: 1, mask: 0xffffffff });
    expect(nf.chains.find((c) => c.name === 'out')).toMatchObject({ hook: 'output', policy: 'drop', prio: 0 });
  });

  it('should keep the nft view and say so when iptables-save disagrees on a chain', () => {
    const errors: string[] = [];
    const parsed = parseNftRuleset(JSON.parse(fixture('fx-nft.json')), errors);
    const merged = mergeIptables(parsed.netfilter, 4, parseIptablesSave('*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n', 4, errors), errors);
    expect(errors.some((e) => e.includes('nat POSTROUTING has 0 rules, nft shows 1'))).toBe(true);
    expect(merged.rules.find((r) => r.chain === 'POSTROUTING' && r.family === 'ip')?.origin).toBe('nft');
  });

  it('should survive rulesets it does not understand', () => {
    const errors: string[] = [];
    expect(parseNftRuleset({ foo: [] }, errors).netfilter.rules).toEqual([]);
    expect(parseNftRuleset(null, errors).netfilter.chains).toEqual([]);
    const odd = parseNftRuleset({ nftables: [{ rule: { family: 'ip', table: 't', chain: 'c', expr: [{ queue: { num: 1 } }] } }, { rule: { family: 'weird' } }, 7] }, errors);
    expect(odd.netfilter.rules[0]?.action).toMatchObject({ kind: 'unknown' });
    expect(errors.some((e) => e.startsWith('nft: skipped rule'))).toBe(true);
  });

  it('should not take a NAT target computed by a map for a fixed one, and print what it cannot evaluate as nft text', () => {
    // `nft -j list table inet fw3` from a real namespace (nft 1.0.6): maps, vmaps, concatenations, limit.
    const errors: string[] = [];
    const { netfilter } = parseNftRuleset(JSON.parse(fixture('fx-nft-maps.json')), errors);
    expect(errors).toEqual([]);
    const texts = netfilter.rules.map((r) => r.text);
    const mapped = netfilter.rules.find((r) => r.text.includes('map @portmap'));
    expect(mapped?.action).toEqual({ kind: 'unknown', text: 'dnat ip to tcp dport map @portmap' });
    expect(texts).toContain('ip daddr . tcp dport { 10.99.0.2 . 7779 } drop');
    expect(texts).toContain('meta iifname vmap { veth-pod9 : drop }');
    expect(texts).toContain('udp dport 7780 limit rate 10/second drop');
    expect(texts).toContain('ip saddr 10.99.0.0/28 udp dport 7777 drop');
    expect(netfilter.rules.find((r) => r.text.startsWith('tcp dport 7001'))?.action).toEqual({ kind: 'redirect', port: 7002 });
    // No raw JSON leaks into what a user reads.
    expect(texts.filter((t) => t.includes('{"'))).toEqual([]);
  });

  it('should tokenize quoted comments and read NAT targets', () => {
    expect(tokenize('-A X -m comment --comment "a \\"b\\" c" -j ACCEPT')).toEqual(['-A', 'X', '-m', 'comment', '--comment', 'a "b" c', '-j', 'ACCEPT']);
    expect(parseNatTo('10.0.0.1:80', 4)).toEqual({ addr: '10.0.0.1', port: 80 });
    expect(parseNatTo('10.0.0.1-10.0.0.3:80-90', 4)).toEqual({ addr: '10.0.0.1', port: 80 });
    expect(parseNatTo('[fd00::1]:443', 6)).toEqual({ addr: 'fd00::1', port: 443 });
    expect(parseNatTo('fd00::1', 6)).toEqual({ addr: 'fd00::1', port: null });
    expect(parseNatTo(':8080', 4)).toEqual({ addr: null, port: 8080 });
  });
});

describe('resolvePeers', () => {
  function ns(netns: number, name: string, ifs: Array<Partial<NetInterface> & { ifindex: number; name: string }>): NamespaceModel {
    return {
      netns, name, path: '', pids: [], routes: [], rules: [], forwarding: { ipv4: null, ipv6: null }, bridgeNfCall: { ipv4: false, ipv6: false },
      netfilter: { chains: [], rules: [] }, errors: [],
      interfaces: ifs.map((i) => ({ kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs: [], master: null, peer: null, link: null, ...i })),
    };
  }

  it('should pair veth ends across namespaces, using nsid maps to break ties between identical labs', () => {
    // Two identical labs: node(ifindex 2) <-> pod(ifindex 2) twice; same ifindexes, different namespaces.
    const list = [
      ns(10, 'a-node', [{ ifindex: 2, name: 'vp', link: { ifindex: 2, nsid: 0 } }]),
      ns(11, 'a-pod', [{ ifindex: 2, name: 'eth0', link: { ifindex: 2, nsid: 0 } }]),
      ns(20, 'b-node', [{ ifindex: 2, name: 'vp', link: { ifindex: 2, nsid: 0 } }]),
      ns(21, 'b-pod', [{ ifindex: 2, name: 'eth0', link: { ifindex: 2, nsid: 0 } }]),
    ];
    const errors: string[] = [];
    const unresolved = resolvePeers(list, new Map(), errors);
    // Without nsid knowledge the pairing is ambiguous: reported, not guessed.
    expect(unresolved.every((n) => n.interfaces[0]?.peer === null)).toBe(true);
    expect(errors).toHaveLength(4);
    const maps = new Map([[10, new Map([[0, 11]])], [20, new Map([[0, 21]])]]);
    const errors2: string[] = [];
    const resolved = resolvePeers(list, maps, errors2);
    expect(errors2).toEqual([]);
    expect(resolved.map((n) => n.interfaces[0]?.peer?.netns)).toEqual([11, 10, 21, 20]);
  });

  it('should pair same-namespace veths by name and report a peer in an unlisted namespace', () => {
    const errors: string[] = [];
    const out = resolvePeers([
      ns(1, 'x', [
        { ifindex: 3, name: 'vy', link: { ifindex: 0, nsid: null, name: 'vx' } },
        { ifindex: 4, name: 'vx', link: { ifindex: 0, nsid: null, name: 'vy' } },
        { ifindex: 5, name: 'lost', link: { ifindex: 9, nsid: 3 } },
      ]),
    ], new Map(), errors);
    expect(out[0]?.interfaces.map((i) => i.peer?.name ?? null)).toEqual(['vx', 'vy', null]);
    expect(errors).toEqual(['veth lost in x: peer (ifindex 9, nsid 3) not found in the listed namespaces']);
  });
});

describe('parseRouteLocalnet', () => {
  it('should list the devices with route_localnet=1 (dots in names as sysctl writes them), all apart, null when absent', () => {
    const sc = parseSysctl([
      'net.bridge.bridge-nf-call-iptables = 1',
      'net.ipv4.conf.all.route_localnet = 0',
      'net.ipv4.conf.default.route_localnet = 1',
      'net.ipv4.conf.cni0.route_localnet = 1',
      'net.ipv4.conf.eth0/100.route_localnet = 1',
      'net.ipv4.conf.lo.route_localnet = 0',
    ].join('\n'));
    expect(parseRouteLocalnet(sc)).toEqual({ all: false, devices: ['cni0', 'eth0.100'] });
    expect(parseRouteLocalnet(parseSysctl('net.ipv4.conf.all.route_localnet = 1\n'))).toEqual({ all: true, devices: [] });
    expect(parseRouteLocalnet(parseSysctl('net.bridge.bridge-nf-call-iptables = 1\n'))).toBeNull();
  });
});
