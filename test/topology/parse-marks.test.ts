/**
 * Marks and statistic matches as iptables-save and `nft -j` print them: parsed into mark and
 * statistic matches and mark actions (shared/topology/model.ts), then evaluated: a mark set by
 * one rule is tested by a later one, in the same hook and across hooks of a namespace.
 */
import { describe, expect, it } from 'vitest';
import { netfilterFromIptablesSave } from '../../shared/topology/parse-iptables.js';
import { parseNftRuleset } from '../../shared/topology/parse-nft.js';
import { simulatePath } from '../../shared/topology/simulate.js';
import { podLab } from './builder.js';

function ipt(lines: string[]): ReturnType<typeof netfilterFromIptablesSave> {
  const errors: string[] = [];
  const nf = netfilterFromIptablesSave(`*mangle\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n${lines.join('\n')}\nCOMMIT\n`, 4, errors);
  expect(errors).toEqual([]);
  return nf;
}

describe('marks and statistic in iptables-save', () => {
  it('should read MARK and CONNMARK in every form iptables-save prints', () => {
    const nf = ipt([
      '-A PREROUTING -j MARK --set-xmark 0x2000/0x2000',
      '-A PREROUTING -j MARK --set-xmark 0x4000/0x0',
      '-A PREROUTING -j MARK --set-mark 0x10/0xff',
      '-A PREROUTING -j CONNMARK --set-xmark 0x1/0xffffffff',
      '-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xffff',
      '-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
    ]);
    expect(nf.rules.map((r) => r.action)).toEqual([
      { kind: 'mark', of: 'packet', value: 0x2000, mask: 0x2000 },
      { kind: 'mark', of: 'packet', value: 0x4000, mask: 0 },
      { kind: 'mark', of: 'packet', value: 0x10, mask: 0xff },
      { kind: 'mark', of: 'conn', value: 1, mask: 0xffffffff },
      { kind: 'mark', of: 'conn', value: 0, mask: 0xffff, from: { of: 'packet', mask: 0xff } },
      { kind: 'mark', of: 'packet', value: 0, mask: 0xffffffff, from: { of: 'conn', mask: 0xffffffff } },
    ]);
  });

  it('should read mark, connmark and statistic matches, negated or not', () => {
    const nf = ipt([
      '-A X -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A X -m connmark --mark 0x1 -j RETURN',
      '-A X -m statistic --mode random --probability 0.25000000000 -j RETURN',
      '-A X -m statistic --mode nth --every 4 --packet 0 -j RETURN',
      '-A X -m mark --mark nonsense -j RETURN',
    ]);
    expect(nf.rules.map((r) => r.matches[0])).toEqual([
      { kind: 'mark', of: 'packet', neg: true, value: 0x4000, mask: 0x4000 },
      { kind: 'mark', of: 'conn', neg: false, value: 1, mask: 0xffffffff },
      { kind: 'statistic', mode: 'random', neg: false, probability: 0.25 },
      { kind: 'statistic', mode: 'nth', neg: false, probability: 0.25 },
      { kind: 'unknown', text: '-m mark --mark nonsense' },
    ]);
  });
});

describe('marks in nft -j', () => {
  it('should read meta/ct mark matches and sets, masked or computed from the other mark', () => {
    const rule = (expr: unknown[]): unknown => ({ rule: { family: 'inet', table: 't', chain: 'c', handle: 1, expr } });
    const errors: string[] = [];
    const { netfilter } = parseNftRuleset({ nftables: [
      { chain: { family: 'inet', table: 't', name: 'c', handle: 1 } },
      rule([{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 0x2000] }, right: 0x2000 } }, { accept: null }]),
      rule([{ match: { op: '!=', left: { ct: { key: 'mark' } }, right: 5 } }, { accept: null }]),
      rule([{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ meta: { key: 'mark' } }, 0x4000] } } }]),
      rule([{ mangle: { key: { ct: { key: 'mark' } }, value: { meta: { key: 'mark' } } } }]),
      rule([{ mangle: { key: { meta: { key: 'mark' } }, value: 7 } }]),
    ] }, errors);
    expect(errors).toEqual([]);
    expect(netfilter.rules[0]?.matches[0]).toEqual({ kind: 'mark', of: 'packet', neg: false, value: 0x2000, mask: 0x2000 });
    expect(netfilter.rules[1]?.matches[0]).toEqual({ kind: 'mark', of: 'conn', neg: true, value: 5, mask: 0xffffffff });
    expect(netfilter.rules.slice(2).map((r) => r.action)).toEqual([
      { kind: 'mark', of: 'packet', value: 0x4000, mask: 0x4000 },
      { kind: 'mark', of: 'conn', value: 0, mask: 0xffffffff, from: { of: 'packet', mask: 0xffffffff } },
      { kind: 'mark', of: 'packet', value: 7, mask: 0xffffffff },
    ]);
    expect(netfilter.rules[0]?.text).toBe('meta mark & 0x2000 == 0x2000 accept');
  });
});

describe('marks evaluated', () => {
  const MANGLE_THEN_FILTER = `*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -i eth-node -p udp --dport 7000 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -m mark --mark 0x1 -j DROP
COMMIT
`;
  it('should drop in FORWARD by a mark mangle PREROUTING set, and only the marked packets', () => {
    const t = podLab().iptables('node', MANGLE_THEN_FILTER).route('ext', '10.244.1.0/24', { via: '10.99.0.1', dev: 'eth0' }).build();
    const marked = simulatePath(t, { from: 'ext', dst: '10.244.1.11', proto: 'udp', sport: 1, dport: 7000 });
    expect(marked).toMatchObject({ fate: 'dropped', drop: { hook: 'FORWARD', rule: '-A FORWARD -m mark --mark 0x1 -j DROP' } });
    expect(simulatePath(t, { from: 'ext', dst: '10.244.1.11', proto: 'udp', sport: 1, dport: 7001 }).fate).toBe('delivered');
  });

  it('should not carry a packet mark into the next namespace', () => {
    // pod1 marks its own packets in OUTPUT; the node's FORWARD drop on that mark never sees it.
    const t = podLab()
      .iptables('pod1', '*mangle\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n')
      .iptables('node', '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m mark --mark 0x1 -j DROP\nCOMMIT\n')
      .build();
    expect(simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 1, dport: 7000 }).fate).toBe('delivered');
  });
});
