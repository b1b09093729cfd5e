/**
 * The filter over a sending socket's own tuple (issue 13 §3): compileSocketToBpftrace, the probe
 * code that tries it (probes/emit.bt, probes/stats), and the packet rule beside it
 * (sentMatches, FlowFilter). `curl 127.0.0.1:18080` to a published port is DNATed in OUTPUT
 * before any device: its hops carry port 80, its socket 18080, and `tcp port 18080` must find it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BPFTRACE_FILTER_VARIABLES, FlowFilter, compileSocketToBpftrace, compileToBpftrace, hopsMatch, matchesHop, packetMatches, parseFilter, sentMatches,
} from '../../shared/filter/index.js';
import type { FilterHop, TimedFilterPacket } from '../../shared/filter/index.js';
import { buildHopProgram, SOCKET_FIRST_HOPS } from '../../probes/assemble.js';
import { buildStatsProgram } from '../../probes/stats/assemble.js';
import { arbFilterAst, arbHop, evalBpftraceExpr, socketVars } from './filter-helpers.js';

const arbHeaderAndSocket = arbHop.chain((h) => arbHop.filter((s) => s.family === h.family).map((s) => ({ h, s: { src: s.src, dst: s.dst, sport: s.sport, dport: s.dport } })));

describe('compileSocketToBpftrace', () => {
  it('should compile the empty filter to 1', () => {
    expect(compileSocketToBpftrace(parseFilter(''))).toBe('1');
  });

  it("should read the socket's addresses and raw ports, and the header's family and protocol", () => {
    expect(compileSocketToBpftrace(parseFilter('tcp port 18080'))).toBe('($l4 == 6 && ($l4 == 6 || $l4 == 17 || $l4 == 132) && ($osp == 0xa046 || $odp == 0xa046))');
    expect(compileSocketToBpftrace(parseFilter('dst host 127.0.0.1'))).toBe('($fam == 4 && $od0 == 0x0100007f)');
    expect(compileSocketToBpftrace(parseFilter('src fd00::ff'))).toBe('($fam == 6 && $os0 == 0x00000000000000fd && ($os1 ^ 0xff00000000000000) == 0)');
    // The socket's tuple is read outside tunnels only ($enc 0): `tunnel` is false there.
    expect(compileSocketToBpftrace(parseFilter('tunnel'))).toBe('(!($enc == 0))');
  });

  it('should use only the probe variables, generated numbers and operators', () => {
    fc.assert(fc.property(arbFilterAst, (ast) => {
      const out = compileSocketToBpftrace(ast);
      for (const v of out.match(/\$\w+/g) ?? []) expect(BPFTRACE_FILTER_VARIABLES).toContain(v);
      expect(out.replace(/\$\w+|0x[0-9a-f]+|\b\d+\b|==|&&|\|\||[!&^()\s]/g, '')).toBe('');
    }), { numRuns: 300 });
  });

  it("should evaluate like matchesHop of the socket's tuple (u64 model of bpftrace)", () => {
    fc.assert(fc.property(arbFilterAst, fc.array(arbHeaderAndSocket, { minLength: 1, maxLength: 6 }), (ast, pairs) => {
      const expr = compileSocketToBpftrace(ast);
      for (const { h, s } of pairs) {
        expect(evalBpftraceExpr(expr, socketVars(h, s))).toBe(matchesHop(ast, { family: h.family, proto: h.proto, ...s }));
      }
    }), { numRuns: 1000 });
  });

  it('should, with the header filter beside it, decide a first hop as packetMatches does its packet', () => {
    fc.assert(fc.property(arbFilterAst, arbHeaderAndSocket, (ast, { h, s }) => {
      if (h.family === 0) return;
      const vars = socketVars(h, s);
      const kernel = evalBpftraceExpr(compileToBpftrace(ast), vars) || evalBpftraceExpr(compileSocketToBpftrace(ast), vars);
      const packet = { family: h.family, proto: h.proto === 6 ? 'tcp' : h.proto === 17 ? 'udp' : String(h.proto), hops: [{ ...h, nat: { from: s } }] };
      // protoNumber reads names; a number it does not know stays as the hop's, tested above.
      if (h.proto === 6 || h.proto === 17) expect(kernel).toBe(packetMatches(ast, packet));
    }), { numRuns: 1000 });
  });
});

describe("the probes' socket match", () => {
  const ast = parseFilter('tcp port 18080');
  const filterExpr = compileToBpftrace(ast);
  const socketFilterExpr = compileSocketToBpftrace(ast);
  const probeOf = (program: string, tp: string): string => {
    const start = program.indexOf(`tracepoint:${tp}`);
    const next = program.indexOf('\ntracepoint:', start + 1);
    return program.slice(start, next < 0 ? undefined : next);
  };

  it('should try the socket form only on the hops a locally sent packet starts at, and only when filtered', () => {
    const program = buildHopProgram({ filterExpr, socketFilterExpr, selfNetns: 1, reasonNotSpecified: 2 });
    for (const [tp, kind] of [['net:net_dev_start_xmit', 'xmit'], ['net:netif_rx', 'rx'], ['net:netif_receive_skb', 'recv'], ['skb:kfree_skb', 'drop'], ['skb:consume_skb', 'consume']] as const) {
      const probe = probeOf(program, tp);
      const tries = SOCKET_FIRST_HOPS.has(kind);
      expect(probe, tp).toContain(`($m || ${tries ? 1 : 0})`);
      expect(probe, tp).toContain(`if ($sr != 0 && !$m) { $m = ${socketFilterExpr}; }`);
    }
    expect(program).not.toMatch(/\{\{\w+\}\}/);
    // Unfiltered: every packet matches already, the socket is read only for printed first hops.
    const all = buildHopProgram({ filterExpr: '1', socketFilterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 });
    expect(all).not.toContain('($m || 1)');
    expect(all).toContain('$m = 0;');
    // Sampled: the socket's match is sampled as the header's is.
    expect(buildHopProgram({ filterExpr, socketFilterExpr, selfNetns: 1, reasonNotSpecified: 2, sampleRate: 4 })).toContain(`$m = (${socketFilterExpr}) && ((`);
    expect(() => buildHopProgram({ filterExpr, socketFilterExpr: '1; system("x")', selfNetns: 1, reasonNotSpecified: 2 })).toThrow(/unexpected characters/);
  });

  it('should try it in the stats program on the first transmit and drop hops', () => {
    const program = buildStatsProgram({ filterExpr, socketFilterExpr, selfNetns: 1, reasonNotSpecified: 2 });
    expect(probeOf(program, 'net:net_dev_start_xmit')).toContain(`if ($sr != 0) { $m = ${socketFilterExpr}; }`);
    expect(probeOf(program, 'skb:kfree_skb')).toContain(`if ($sr != 0) { $m = ${socketFilterExpr}; }`);
    expect(probeOf(program, 'net:netif_rx')).not.toContain('skc_family');
    expect(buildStatsProgram({ filterExpr: '1', socketFilterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 })).not.toContain('skc_family');
  });
});

describe('sentMatches and FlowFilter', () => {
  const ast = parseFilter('tcp port 18080');
  const hop = (t: number, src: string, sport: number, dst: string, dport: number): TimedFilterPacket['hops'][number] & FilterHop => ({ t, family: 4, proto: 6, src, sport, dst, dport });
  // `curl 127.0.0.1:18080`: masqueraded and DNATed in OUTPUT; the reply de-NATed where no hop shows it.
  const request = (t: number): TimedFilterPacket => ({ family: 4, proto: 'tcp', hops: [
    { ...hop(t, '10.169.1.1', 40000, '10.169.1.2', 80), nat: { from: { src: '127.0.0.1', sport: 40000, dst: '127.0.0.1', dport: 18080 } } },
    hop(t + 1000, '10.169.1.1', 40000, '10.169.1.2', 80),
  ] });
  const reply = (t: number): TimedFilterPacket => ({ family: 4, proto: 'tcp', hops: [hop(t, '10.169.1.2', 80, '10.169.1.1', 40000), hop(t + 1000, '10.169.1.2', 80, '10.169.1.1', 40000)] });

  it("should match a packet by its socket's tuple on the first hop only", () => {
    expect(sentMatches(ast, request(0))).toBe(true);
    expect(hopsMatch(ast, request(0))).toBe(false);
    expect(packetMatches(ast, request(0))).toBe(true);
    // A later hop's rewrite starts from the hop before it: not what a socket sent.
    const later: TimedFilterPacket = { family: 4, proto: 'tcp', hops: [hop(0, '10.169.1.1', 40000, '10.169.1.2', 80), { ...hop(1, '10.169.1.1', 40000, '10.169.1.2', 80), nat: { from: { src: '127.0.0.1', sport: 40000, dst: '127.0.0.1', dport: 18080 } } }] };
    expect(packetMatches(ast, later)).toBe(false);
  });

  it('should accept the replies of a flow found by its socket, for as long as the probes remember it', () => {
    const f = new FlowFilter(ast, 10_000);
    expect(f.accepts(reply(0))).toBe(false);
    expect(f.accepts(request(100))).toBe(true);
    expect(f.accepts(reply(2000))).toBe(true);
    // Each packet of the flow refreshes it.
    expect(f.accepts(reply(11_000))).toBe(true);
    expect(f.accepts(reply(30_000))).toBe(false);
    // Another connection is not part of it.
    const other: TimedFilterPacket = { family: 4, proto: 'tcp', hops: [hop(100, '10.169.1.2', 80, '10.169.1.1', 40001)] };
    expect(new FlowFilter(ast).accepts(other)).toBe(false);
  });

  it('should leave the rule "any hop matches" alone for packets that match by their hops', () => {
    const f = new FlowFilter(parseFilter('host 10.169.1.2'), 10_000);
    const direct: TimedFilterPacket = { family: 4, proto: 'tcp', hops: [hop(0, '10.169.1.2', 80, '10.169.1.3', 5000)] };
    expect(f.accepts(direct)).toBe(true);
    // Nothing remembered from it: its reverse after a NAT that hid the address is not taken.
    expect(f.accepts({ family: 4, proto: 'tcp', hops: [hop(10, '10.169.1.3', 5000, '10.169.9.9', 80)] })).toBe(false);
  });
});
