/**
 * `nft monitor trace` parsing, on a capture from a real lab (fixtures/monitor-lab.txt): the drop,
 * NAT and jump steps come out with their chains, hooks, handles, verdicts and packet headers.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseTraceLine, parsePacketFields, stripCounters, natKindOfRule, TraceAssembler } from '../../shared/netfilter/monitor-parse.js';
import type { NetfilterEvent, NfHook } from '../../shared/netfilter/types.js';

const FIXTURE = new URL('./fixtures/monitor-lab.txt', import.meta.url);

/** The base chains of the lab's node namespace, as `nft -j list chains` reports them. */
const NODE_HOOKS: Record<string, NfHook> = {
  'ip nat PREROUTING': 'prerouting', 'ip nat POSTROUTING': 'postrouting', 'ip filter FORWARD': 'forward', 'inet fx fx_forward': 'forward',
};

function eventsOf(role: string, opts: { hooks?: Record<string, NfHook>; own?: boolean } = {}): NetfilterEvent[] {
  const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => !l.startsWith('#') && l.startsWith(`${role}\t`)).map((l) => l.slice(role.length + 1));
  expect(lines.length).toBeGreaterThan(10);
  let t = 0;
  const a = new TraceAssembler({
    ns: `lab-${role}`, netns: 1000, now: () => ++t, includeOwnTables: opts.own ?? false,
    hookOf: (f, tb, c) => opts.hooks?.[`${f} ${tb} ${c}`] ?? null,
  });
  const out = lines.map((l) => a.push(l)).filter((e): e is NetfilterEvent => e !== null);
  expect(a.skipped).toBe(0);
  return out;
}

describe('nft monitor trace lines', () => {
  it('parses the header, rule text, handle and verdict of a rule line', () => {
    const l = parseTraceLine('trace id 2407bc6b ip filter FORWARD rule udp dport 9999 counter packets 6 bytes 267 drop # handle 2 (verdict drop)');
    expect(l).toEqual({ kind: 'rule', id: '2407bc6b', family: 'ip', table: 'filter', chain: 'FORWARD', rule: 'udp dport 9999 counter drop', handle: 2, verdict: 'drop' });
  });

  it('keeps parentheses inside rules and reads verdicts with targets', () => {
    const l = parseTraceLine('trace id 2499c73a inet fx icmp_check rule icmp type echo-request counter packets 0 bytes 0 return comment "echo (in)" # handle 5 (verdict return)');
    expect(l).toMatchObject({ rule: 'icmp type echo-request counter return comment "echo (in)"', handle: 5, verdict: 'return' });
    expect(parseTraceLine('trace id e39dd5e0 inet fx fx_forward rule meta l4proto { icmp, ipv6-icmp } jump icmp_check # handle 4 (verdict jump icmp_check)')).toMatchObject({ verdict: 'jump icmp_check' });
  });

  it('reads policies, returns and rules nft did not know yet', () => {
    expect(parseTraceLine('trace id 6a859456 ip nat PREROUTING policy accept ')).toMatchObject({ kind: 'policy', verdict: 'accept' });
    expect(parseTraceLine('trace id 6a859456 ip nat PREROUTING policy drop meta mark 0x00000001')).toMatchObject({ kind: 'policy', verdict: 'drop' });
    expect(parseTraceLine('trace id 6a859456 inet t c verdict continue meta mark 0x00000001')).toMatchObject({ kind: 'return', verdict: 'continue' });
    expect(parseTraceLine('trace id 807c6933 inet hoptrace_1_1 settrace unknown rule handle 2 (verdict continue)')).toMatchObject({ kind: 'rule', rule: null, handle: 2, verdict: 'continue' });
    expect(parseTraceLine('not a trace line')).toBeNull();
  });

  it('reads IPv4, IPv6, TCP and ICMP headers from packet lines', () => {
    expect(parsePacketFields('iif "br0" oif "eth-node" ether saddr 66:9e:d4:8b:a6:db ether daddr 72:2d:21:b4:17:b5 ip saddr 10.244.1.11 ip daddr 10.99.0.2 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 58282 ip length 29 udp sport 41743 udp dport 9999 udp length 9 @th,64,8 0x78 '))
      .toEqual({ iif: 'br0', oif: 'eth-node', family: 4, proto: 17, src: '10.244.1.11', dst: '10.99.0.2', sport: 41743, dport: 9999, ipId: 58282, len: 29, tcpSeq: 0, icmpId: 0 });
    expect(parsePacketFields('oif "eth0" ip saddr 10.99.0.2 ip daddr 10.99.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 29078 ip protocol tcp ip length 60 tcp sport 47612 tcp dport 8080 tcp flags == syn tcp window 64240 '))
      .toMatchObject({ iif: null, oif: 'eth0', proto: 6, sport: 47612, dport: 8080, ipId: 29078, len: 60 });
    expect(parsePacketFields('iif "eth0" ip saddr 10.99.0.1 ip daddr 10.99.0.2 ip id 54675 ip protocol icmp ip length 84 icmp type echo-request icmp code net-unreachable icmp id 31831 icmp sequence 1 '))
      .toMatchObject({ proto: 1, icmpId: 31831, sport: 0, dport: 0 });
    expect(parsePacketFields('oif "eth0" ip6 saddr fe80::fc94:1ff:fef0:d74e ip6 daddr fe80::649e:d4ff:fe8b:a6db ip6 nexthdr ipv6-icmp ip6 length 32 icmpv6 type nd-neighbor-solicit '))
      .toMatchObject({ family: 6, proto: 58, src: 'fe80::fc94:1ff:fef0:d74e', len: 72, ipId: 0 });
  });

  it('names the NAT a rule applies, not words inside its comment', () => {
    expect(natKindOfRule('oifname "eth-node" ip saddr 10.244.1.0/24 counter masquerade')).toBe('masquerade');
    expect(natKindOfRule('iifname "eth-node" tcp dport 8080 counter dnat to 10.244.1.12:80')).toBe('dnat');
    expect(natKindOfRule('ip saddr 10.0.0.0/8 snat to 1.2.3.4')).toBe('snat');
    expect(natKindOfRule('counter xt target "MASQUERADE"')).toBe('masquerade');
    expect(natKindOfRule('udp dport 53 accept comment "dnat later"')).toBeNull();
    expect(stripCounters('counter packets 13 bytes 740 masquerade')).toBe('counter masquerade');
  });
});

describe('TraceAssembler on a lab capture', () => {
  const node = eventsOf('node', { hooks: NODE_HOOKS });

  it('names the FORWARD rule that dropped udp/9999, with the packet as FORWARD saw it', () => {
    const drops = node.filter((e) => e.verdict === 'drop');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({
      ns: 'lab-node', netns: 1000, family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward', type: 'rule',
      rule: 'udp dport 9999 counter drop', handle: 2, nat: null,
      packet: { family: 4, proto: 17, src: '10.244.1.11', dst: '10.99.0.2', dport: 9999, iif: 'br0', oif: 'eth-node' },
    });
  });

  it('names the DNAT rule in nat PREROUTING and the MASQUERADE rule in nat POSTROUTING', () => {
    const dnat = node.filter((e) => e.nat === 'dnat');
    expect(dnat).toHaveLength(1);
    expect(dnat[0]).toMatchObject({ table: 'nat', chain: 'PREROUTING', hook: 'prerouting', handle: 4, verdict: 'accept', packet: { proto: 6, dst: '10.99.0.1', dport: 8080 } });
    const masq = node.filter((e) => e.nat === 'masquerade');
    expect(masq.length).toBeGreaterThanOrEqual(1);
    for (const m of masq) expect(m).toMatchObject({ table: 'nat', chain: 'POSTROUTING', hook: 'postrouting', rule: 'oifname "eth-node" ip saddr 10.244.1.0/24 counter masquerade' });
  });

  it('gives a chain reached by jump the hook of the base chain that jumped', () => {
    const inChecked = node.filter((e) => e.chain === 'icmp_check');
    expect(inChecked.length).toBeGreaterThan(0);
    for (const e of inChecked) expect(e.hook).toBe('forward');
    expect(inChecked[0]?.packet.proto).toBe(1);
  });

  it('falls back on iptables chain names when the ruleset is unknown, and skips hoptrace tables', () => {
    const bare = eventsOf('node');
    expect(bare.find((e) => e.chain === 'FORWARD')?.hook).toBe('forward');
    expect(bare.find((e) => e.chain === 'fx_forward')?.hook).toBe('unknown');
    expect(bare.some((e) => e.table.startsWith('hoptrace'))).toBe(false);
    expect(eventsOf('ext', { own: true }).some((e) => e.table === 'hoptrace_1_1')).toBe(true);
  });
});

/** The base chains of the bridge lab's node namespace (fixtures/monitor-bridge.txt). */
const BRIDGE_HOOKS: Record<string, NfHook> = {
  'bridge filter forward': 'forward', 'bridge hoptrace_1_1 pre': 'prerouting', 'inet hoptrace_1_1 pre': 'prerouting', 'inet native natfwd': 'forward',
};

function bridgeEvents(section: 'pure' | 'brnf', own = false): NetfilterEvent[] {
  const lines = readFileSync(new URL('./fixtures/monitor-bridge.txt', import.meta.url), 'utf8').split('\n')
    .filter((l) => l.startsWith(`${section}\t`)).map((l) => l.slice(section.length + 1));
  expect(lines.length).toBeGreaterThan(10);
  let t = 0;
  const a = new TraceAssembler({ ns: 'lab-node', netns: 2000, now: () => ++t, includeOwnTables: own, hookOf: (f, tb, c) => BRIDGE_HOOKS[`${f} ${tb} ${c}`] ?? null });
  const out = lines.map((l) => a.push(l)).filter((e): e is NetfilterEvent => e !== null);
  expect(a.skipped).toBe(0);
  return out;
}

describe('TraceAssembler on bridge family traces', () => {
  it('names the bridge family rule that dropped a bridged frame, with the frame\'s ports and IP header', () => {
    const drops = bridgeEvents('pure').filter((e) => e.verdict === 'drop');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({
      family: 'bridge', table: 'filter', chain: 'forward', hook: 'forward', type: 'rule', rule: 'udp dport 7001 counter drop', handle: 2,
      packet: { iif: 'va', oif: 'vb', family: 4, proto: 17, src: '10.251.7.1', dst: '10.251.7.2', dport: 7001, len: 29 },
    });
    expect(drops[0]?.packet.ipId).toBeGreaterThan(0);
  });

  it('reports the bridge chain policy for frames it let through, and no inet step when nothing hands frames to inet', () => {
    const pure = bridgeEvents('pure');
    expect(pure.filter((e) => e.type === 'policy' && e.family === 'bridge' && e.chain === 'forward').map((e) => e.packet.dport).sort()).toEqual([7002, 7003]);
    expect(pure.some((e) => e.family === 'inet')).toBe(false);
  });

  it('skips hoptrace\'s own bridge table like its inet one (and reports it when asked)', () => {
    expect(bridgeEvents('pure').some((e) => e.table.startsWith('hoptrace'))).toBe(false);
    expect(bridgeEvents('brnf').some((e) => e.table.startsWith('hoptrace'))).toBe(false);
    const own = bridgeEvents('pure', true).filter((e) => e.family === 'bridge' && e.table === 'hoptrace_1_1');
    expect(own.find((e) => e.chain === 'pre')).toMatchObject({ type: 'policy', hook: 'prerouting' });
  });

  it('with br_netfilter, keeps the frame\'s headers across the bridge and inet steps of one trace id', () => {
    const brnf = bridgeEvents('brnf');
    const dropped = brnf.find((e) => e.verdict === 'drop');
    expect(dropped).toMatchObject({ family: 'inet', table: 'native', chain: 'natfwd', hook: 'forward', packet: { iif: 'br0', oif: 'br0', dport: 7003 } });
    const sameFrame = brnf.filter((e) => e.traceId === dropped?.traceId);
    expect(sameFrame.map((e) => `${e.family} ${e.chain} ${e.verdict}`)).toEqual(['bridge forward accept', 'inet natfwd drop']);
    expect(new Set(sameFrame.map((e) => e.packet.ipId)).size).toBe(1);
  });
});
