/**
 * probes/tracepoints.ts: one probe source for both tiers. The raw form of a program keeps every
 * probe that is not a hop tracepoint as it is, and the argument positions are checked against
 * this kernel's own declarations (BTF's btf_trace_<name>, read with bpftool).
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { RAW_TRACEPOINTS, attachedProbes, checkRawArgs, parseBtfTraceTypedefs, rawTracepointProgram } from '../../probes/tracepoints.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { buildStatsProgram } from '../../probes/stats/assemble.js';
import { buildNoteBlocks } from '../../probes/notes/assemble.js';

const names = Object.keys(RAW_TRACEPOINTS).map((tp) => tp.split(':')[1] ?? '');

describe('raw tracepoint programs', () => {
  it('should turn hop tracepoints into raw ones with their TP_PROTO arguments and leave other probes alone', () => {
    const classic = [
      'tracepoint:skb:kfree_skb',
      '{',
      '  $skb = (struct sk_buff *)args->skbaddr; $r = (uint64)args.reason;',
      '}',
      'tracepoint:fib:fib_table_lookup',
      '{',
      '  $t = args->tb_id;',
      '}',
    ].join('\n');
    expect(rawTracepointProgram(classic)).toBe([
      'rawtracepoint:kfree_skb',
      '{',
      '  $skb = (struct sk_buff *)arg0; $r = (uint64)arg2;',
      '}',
      'tracepoint:fib:fib_table_lookup',
      '{',
      '  $t = args->tb_id;',
      '}',
    ].join('\n'));
  });

  it('should refuse a hop probe reading a field that has no TP_PROTO argument', () => {
    expect(() => rawTracepointProgram('tracepoint:net:netif_rx\n{ $l = args->len; }')).toThrow(/no TP_PROTO argument for args\.len/);
  });

  it('should leave no classic hop tracepoint in the fast tier\'s trace, notes and stats programs', () => {
    const notes = buildNoteBlocks({ filterExpr: '1', deep: false });
    const trace = buildHopProgram({ tier: 'fast', filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, reasonNoSocket: 3, extraBlocks: notes });
    const stats = buildStatsProgram({ tier: 'fast', filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, intervalMs: 1000 });
    for (const program of [trace, stats]) {
      for (const tp of Object.keys(RAW_TRACEPOINTS)) expect(program).not.toMatch(new RegExp(`^tracepoint:${tp}\\s*$`, 'm'));
      expect(program).toMatch(/^rawtracepoint:net_dev_start_xmit$/m);
      const rawBlocks = [...program.matchAll(/^rawtracepoint:\w+\n\{\n([\s\S]*?)^\}/gm)].map((m) => m[1] ?? '');
      expect(rawBlocks.length).toBeGreaterThanOrEqual(5);
      for (const b of rawBlocks) expect(b).not.toMatch(/\bargs(->|\.)/);
    }
    // Notes on other tracepoints stay classic.
    expect(trace).toMatch(/^tracepoint:fib:fib_table_lookup$/m);
    expect(buildHopProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 })).toMatch(/^tracepoint:net:net_dev_start_xmit$/m);
  });

  it('should list the probe points a program attaches, in the tier\'s own names (a recording\'s header)', () => {
    const hops = ['net_dev_start_xmit', 'netif_rx', 'netif_receive_skb', 'kfree_skb', 'consume_skb'];
    const fast = attachedProbes(buildHopProgram({ tier: 'fast', filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, reasonNoSocket: 3 }));
    const classic = attachedProbes(buildHopProgram({ tier: 'classic', filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, reasonNoSocket: 3 }));
    expect([...fast].sort()).toEqual(hops.map((h) => `rawtracepoint:${h}`).sort());
    expect([...classic].sort()).toEqual(Object.keys(RAW_TRACEPOINTS).map((t) => `tracepoint:${t}`).sort());
    // --hops leaves probes out; the notes tier adds its own (classic tracepoints even on the fast tier).
    const lean = attachedProbes(buildHopProgram({ tier: 'fast', filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, skip: new Set(['rx', 'consume']),
      extraBlocks: buildNoteBlocks({ filterExpr: '1', deep: false }) }));
    expect(lean).toContain('rawtracepoint:net_dev_start_xmit');
    expect(lean).not.toContain('rawtracepoint:netif_rx');
    expect(lean).toContain('tracepoint:fib:fib_table_lookup');
    expect(lean.some((p) => /BEGIN|END|interval/.test(p))).toBe(false);
    expect(attachedProbes('BEGIN\n{ }\nkprobe:a, kprobe:b\n{ }\ninterval:s:1\n{ }')).toEqual(['kprobe:a', 'kprobe:b']);
  });
});

describe('TP_PROTO positions against BTF', () => {
  it('should parse btf_trace typedefs and say which argument disagrees', () => {
    const header = [
      'typedef void (*btf_trace_kfree_skb)(void *, struct sk_buff *, void *, enum skb_drop_reason, struct sock *);',
      'typedef void (*btf_trace_consume_skb)(void *, struct sk_buff *, void *);',
      'typedef void (*btf_trace_net_dev_start_xmit)(void *, const struct sk_buff *, const struct net_device *);',
      'typedef void (*btf_trace_netif_receive_skb)(void *, struct sk_buff *);',
      'typedef void (*btf_trace_netif_rx)(void *, struct sk_buff *);',
    ].join('\n');
    const declared = parseBtfTraceTypedefs(header, names);
    expect(declared.get('kfree_skb')).toEqual(['struct sk_buff *', 'void *', 'enum skb_drop_reason', 'struct sock *']);
    expect(checkRawArgs(declared)).toBeNull();
    // An older kernel's kfree_skb(skb, location) has no reason argument.
    const old = parseBtfTraceTypedefs(header.replace('void *, enum skb_drop_reason, struct sock *', 'void *'), names);
    expect(checkRawArgs(old)).toMatch(/skb:kfree_skb's reason is argument 2 of type enum skb_drop_reason by its TP_PROTO, BTF says nothing/);
    expect(checkRawArgs(parseBtfTraceTypedefs('', names))).toMatch(/BTF has no btf_trace_net_dev_start_xmit/);
  });

  it('should agree with this kernel\'s BTF', async () => {
    const r = await execa('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { reject: false, maxBuffer: 512 * 1024 * 1024 });
    if (r.exitCode !== 0) return expect.fail(`bpftool cannot dump BTF: ${String(r.stderr)}`);
    expect(checkRawArgs(parseBtfTraceTypedefs(String(r.stdout), names))).toBeNull();
  });
});
