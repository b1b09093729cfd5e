/**
 * Test helpers for the filter language: fast-check arbitraries for filters and hops, the raw
 * variable values a probe would hold for a hop, and a small evaluator of compiled bpftrace
 * expressions (u64 semantics) so compile output can be checked without a kernel.
 */
import fc from 'fast-check';
import { bytesToAddress, maskBytes, parseAddress } from '../../shared/filter/address.js';
import type { FilterAst, FilterExpr, IpFamily } from '../../shared/filter/index.js';
import type { FilterHop } from '../../shared/filter/index.js';
import { portToRaw, v4ToRaw, v6ToRaw } from '../../shared/filter/index.js';
import { vniToRaw } from '../../shared/filter/bpftrace.js';

// Addresses chosen to sit on and near network boundaries, and to give raw u64 halves with the
// top bit set (fd00:0:0:80::, ...::ff) which bpftrace reads as negative literals.
export const V4_POOL = ['10.0.0.1', '10.0.0.2', '10.0.1.1', '10.250.3.4', '10.128.0.1', '192.168.1.1', '0.0.0.0', '255.255.255.255', '128.0.0.1'];
export const V6_POOL = [
  'fd00::1', 'fd00::2', 'fd00:0:0:1::1', 'fd00:0:0:80::ff', 'fd00::8000:0:0:1', 'fe80::1',
  '2001:db8::ff00:42:8329', '::', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
];
export const PORT_POOL = [0, 1, 53, 80, 255, 256, 443, 5000, 65280, 65535];
export const PROTO_POOL = [0, 1, 6, 17, 58, 132, 47];

const canon = (s: string): string => parseAddress(s)?.text ?? s;

// Mostly pool addresses, so filters and hops share addresses often enough to match.
const arbV4 = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...V4_POOL) }, { weight: 1, arbitrary: fc.ipV4() }).map(canon);
// fc.ipV6 may write an embedded IPv4 tail; canon() turns it into ipaddr.js toString() form.
const arbV6 = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...V6_POOL) }, { weight: 1, arbitrary: fc.ipV6() }).map(canon);
const arbPort = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PORT_POOL) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }) });
const arbDir = fc.constantFrom('src' as const, 'dst' as const, 'either' as const);

function network(addr: string, prefix: number): string {
  const a = parseAddress(addr);
  if (!a) throw new Error(`bad pool address ${addr}`);
  return bytesToAddress(maskBytes(a.bytes, prefix));
}

const arbAddrFamily: fc.Arbitrary<{ family: IpFamily; addr: string }> = fc.oneof(
  arbV4.map((addr) => ({ family: 4 as const, addr })),
  arbV6.map((addr) => ({ family: 6 as const, addr })),
);

export const arbPrimitive: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({ dir: arbDir, a: arbAddrFamily }).map(({ dir, a }) => ({ kind: 'host' as const, dir, family: a.family, addr: a.addr })),
  fc.record({ dir: arbDir, a: arbAddrFamily, p: fc.integer({ min: 0, max: 128 }) }).map(({ dir, a, p }) => {
    const prefix = a.family === 4 ? p % 33 : p;
    return { kind: 'net' as const, dir, family: a.family, addr: network(a.addr, prefix), prefix };
  }),
  fc.record({ dir: arbDir, port: arbPort }).map(({ dir, port }) => ({ kind: 'port' as const, dir, port })),
  fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'icmp6' as const).map((proto) => ({ kind: 'proto' as const, proto })),
  fc.constantFrom(4 as const, 6 as const).map((family) => ({ kind: 'family' as const, family })),
);

export const arbFilterExpr: fc.Arbitrary<FilterExpr> = fc.letrec<{ expr: FilterExpr }>((tie) => ({
  expr: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'filter' },
    arbPrimitive,
    fc.array(tie('expr'), { minLength: 2, maxLength: 4, depthIdentifier: 'filter' }).map((operands) => ({ kind: 'and' as const, operands })),
    fc.array(tie('expr'), { minLength: 2, maxLength: 4, depthIdentifier: 'filter' }).map((operands) => ({ kind: 'or' as const, operands })),
    tie('expr').map((operand) => ({ kind: 'not' as const, operand })),
  ),
})).expr;

export const arbFilterAst: fc.Arbitrary<FilterAst> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'all' as const }) },
  { weight: 20, arbitrary: arbFilterExpr },
);

export const arbHop: fc.Arbitrary<FilterHop> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ family: fc.constant(4 as const), proto: fc.constantFrom(...PROTO_POOL), src: arbV4, dst: arbV4, sport: arbPort, dport: arbPort }) },
  { weight: 4, arbitrary: fc.record({ family: fc.constant(6 as const), proto: fc.constantFrom(...PROTO_POOL), src: arbV6, dst: arbV6, sport: arbPort, dport: arbPort }) },
  // Non-IP hops: the probes report proto 0 and no addresses or ports.
  { weight: 1, arbitrary: fc.constant({ family: 0 as const, proto: 0, src: '', dst: '', sport: 0, dport: 0 }) },
);

export type RawVarName = '$fam' | '$l4' | '$sa' | '$da' | '$sa0' | '$sa1' | '$da0' | '$da1' | '$sp' | '$dp'
  | '$enc' | '$ofam' | '$ol4' | '$os0' | '$os1' | '$od0' | '$od1' | '$osp' | '$odp' | '$ovni';

/** What a probe's variables hold for this hop (address variables of the other family are 0). */
export function rawVars(hop: FilterHop): Record<RawVarName, bigint> {
  const v4 = (s: string): bigint => (hop.family === 4 ? BigInt(v4ToRaw(s)) : 0n);
  const v6 = (s: string): { hi: bigint; lo: bigint } => (hop.family === 6 ? v6ToRaw(s) : { hi: 0n, lo: 0n });
  const s6 = v6(hop.src);
  const d6 = v6(hop.dst);
  return {
    $fam: BigInt(hop.family), $l4: BigInt(hop.proto),
    $sa: v4(hop.src), $da: v4(hop.dst),
    $sa0: s6.hi, $sa1: s6.lo, $da0: d6.hi, $da1: d6.lo,
    $sp: BigInt(portToRaw(hop.sport)), $dp: BigInt(portToRaw(hop.dport)),
    ...outerVars(hop),
  };
}

/** The tuple a sending socket holds (probes/socket.bt): the header's family and protocol. */
export interface SocketTuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/**
 * What the probe's variables hold on a first hop outside tunnels where the sending socket's
 * tuple was read (probes/socket.bt): the header's as rawVars, the socket's addresses in
 * $os0 $os1 $od0 $od1 (IPv4 in $os0/$od0) and its raw ports in $osp $odp, $enc still 0.
 */
export function socketVars(header: FilterHop, socket: SocketTuple): Record<RawVarName, bigint> {
  if (header.outer) throw new Error('the socket tuple is read outside tunnels only');
  const addr = (s: string): { hi: bigint; lo: bigint } => (header.family === 4 ? { hi: BigInt(v4ToRaw(s)), lo: 0n } : header.family === 6 ? v6ToRaw(s) : { hi: 0n, lo: 0n });
  const s = addr(socket.src);
  const d = addr(socket.dst);
  return { ...rawVars(header), $os0: s.hi, $os1: s.lo, $od0: d.hi, $od1: d.lo, $osp: BigInt(portToRaw(socket.sport)), $odp: BigInt(portToRaw(socket.dport)) };
}

/** A tunnel's outer headers as probes/decode.bt holds them (an IPv4 outer address in $os0/$od0). */
function outerVars(hop: FilterHop): Record<'$enc' | '$ofam' | '$ol4' | '$os0' | '$os1' | '$od0' | '$od1' | '$osp' | '$odp' | '$ovni', bigint> {
  const o = hop.outer;
  if (!o) return { $enc: 0n, $ofam: 0n, $ol4: 0n, $os0: 0n, $os1: 0n, $od0: 0n, $od1: 0n, $osp: 0n, $odp: 0n, $ovni: 0n };
  const addr = (s: string): { hi: bigint; lo: bigint } => (o.family === 4 ? { hi: BigInt(v4ToRaw(s)), lo: 0n } : v6ToRaw(s));
  const s = addr(o.src);
  const d = addr(o.dst);
  return {
    $enc: 1n, $ofam: BigInt(o.family), $ol4: BigInt(o.proto), $os0: s.hi, $os1: s.lo, $od0: d.hi, $od1: d.lo,
    $osp: BigInt(portToRaw(o.sport)), $odp: BigInt(portToRaw(o.dport)), $ovni: BigInt(vniToRaw(o.vni ?? 0)),
  };
}

/**
 * Evaluates the subset of bpftrace expression syntax compileToBpftrace emits, with C
 * precedence (! > & > ^ > == != > && > ||) and u64 wrap-around of literals.
 */
export function evalBpftraceExpr(text: string, vars: Readonly<Record<string, bigint>>): boolean {
  const tokens = text.match(/\$\w+|0x[0-9a-f]+|\d+|==|!=|&&|\|\||[!&^()]/gi) ?? [];
  if (tokens.join('') !== text.replace(/\s+/g, '')) throw new Error(`unexpected characters in ${text}`);
  let pos = 0;
  const peek = (): string | undefined => tokens[pos];
  const take = (want?: string): string => {
    const t = tokens[pos++];
    if (t === undefined || (want !== undefined && t !== want)) throw new Error(`expected ${want ?? 'a token'} at ${pos - 1} in ${text}`);
    return t;
  };
  const bool = (b: boolean): bigint => (b ? 1n : 0n);
  const levels: readonly (readonly string[])[] = [['||'], ['&&'], ['==', '!='], ['^'], ['&']];
  const binary = (level: number): bigint => {
    const ops = levels[level];
    if (!ops) return unary();
    let left = binary(level + 1);
    for (let op = peek(); op !== undefined && ops.includes(op); op = peek()) {
      take();
      const right = binary(level + 1);
      if (op === '||') left = bool(left !== 0n || right !== 0n);
      else if (op === '&&') left = bool(left !== 0n && right !== 0n);
      else if (op === '==') left = bool(left === right);
      else if (op === '!=') left = bool(left !== right);
      else if (op === '^') left = left ^ right;
      else left = left & right;
    }
    return left;
  };
  const unary = (): bigint => {
    const t = take();
    if (t === '!') return bool(unary() === 0n);
    if (t === '(') {
      const v = binary(0);
      take(')');
      return v;
    }
    if (t.startsWith('$')) {
      const v = vars[t];
      if (v === undefined) throw new Error(`unknown variable ${t}`);
      return v;
    }
    return BigInt.asUintN(64, BigInt(t));
  };
  const result = binary(0);
  if (pos !== tokens.length) throw new Error(`trailing tokens in ${text}`);
  return result !== 0n;
}
