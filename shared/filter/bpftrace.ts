/**
 * Compiles a filter to a bpftrace boolean expression, so packets are filtered in the kernel.
 *
 * The probe defines these unsigned variables before evaluating the expression (raw forms as
 * read from the packet without byte-swapping, see raw.ts):
 *   $fam  family 0/4/6           $l4  IP protocol number
 *   $sa, $da                     IPv4 source/destination, raw u32
 *   $sa0, $sa1, $da0, $da1       IPv6 source/destination, raw u64 halves (bytes 0-7, 8-15)
 *   $sp, $dp                     ports, raw u16
 *   $enc                         0 outside a tunnel, else the probe's encapsulation code
 *   $ofam $ol4 $os0 $os1 $od0 $od1 $osp $odp $ovni   the tunnel's outer headers (probes/decode.bt;
 *                                an IPv4 outer address is in $os0/$od0), VNI raw
 *
 * On a hop inside a tunnel the filter is tried on the inner headers and, failing that, on the
 * outer ones: `host` finds a pod's packet on the underlay, `udp port 4789` the vxlan datagrams.
 *
 * compileSocketToBpftrace gives the same filter over the tuple of the socket that sent the packet
 * (probes/emit.bt reads it on a packet's first hop into $os0 $os1 $od0 $od1 and the raw ports
 * $osp $odp; family and protocol are the header's): a packet its own namespace's OUTPUT NAT
 * rewrote before any device saw it (`curl 127.0.0.1:18080` to a published port) is found by what
 * the user asked for, not only by what the NAT made of it.
 *
 * Constants are encoded into the raw forms here, so the kernel never byte-swaps. The output is
 * built only from those variable names, numeric literals this file generates, operators and
 * parentheses: no text of the user's ever reaches the bpftrace program.
 *
 * bpftrace 0.17 reads literals as int64: 0xffffffffffffffff parses (as -1) and compares
 * bit-for-bit, but `==` between an unsigned variable and a literal of 2^63 or more prints
 * "comparison of integers of different signs" on every start. Such constants are therefore
 * compared through XOR, `($v ^ K) == 0`, which bpftrace types as unsigned and does not warn
 * about. Verified against real bpftrace in test/shared/filter-bpftrace.test.ts.
 */
import { parseAddress } from './address.js';
import type { FilterAst, FilterExpr, HostFilter, NetFilter } from './ast.js';
import { PORT_PROTOCOLS, PROTO_INFO } from './ast.js';
import { portToRaw, v4BytesToRaw, v4MaskRaw, v6BytesToRaw, v6MaskRaw } from './raw.js';
import { unresolved } from './workloads.js';

/** The variables a compiled filter reads; the probe must define all of them (unsigned). */
export const BPFTRACE_FILTER_VARIABLES = [
  '$fam', '$l4', '$sa', '$da', '$sa0', '$sa1', '$da0', '$da1', '$sp', '$dp',
  '$enc', '$ofam', '$ol4', '$os0', '$os1', '$od0', '$od1', '$osp', '$odp', '$ovni',
] as const;

/** The variables one set of headers is read from: the packet's (inner), or its tunnel's (outer). */
interface Headers {
  readonly fam: string; readonly l4: string; readonly sa: string; readonly da: string;
  readonly sa0: string; readonly sa1: string; readonly da0: string; readonly da1: string;
  readonly sp: string; readonly dp: string;
}
const INNER: Headers = { fam: '$fam', l4: '$l4', sa: '$sa', da: '$da', sa0: '$sa0', sa1: '$sa1', da0: '$da0', da1: '$da1', sp: '$sp', dp: '$dp' };
const OUTER: Headers = { fam: '$ofam', l4: '$ol4', sa: '$os0', da: '$od0', sa0: '$os0', sa1: '$os1', da0: '$od0', da1: '$od1', sp: '$osp', dp: '$odp' };
/**
 * The sending socket's tuple (outside tunnels only, so it shares the outer headers' variables):
 * the packet's own family and protocol, the socket's addresses and raw ports.
 */
const SOCKET: Headers = { fam: '$fam', l4: '$l4', sa: '$os0', da: '$od0', sa0: '$os0', sa1: '$os1', da0: '$od0', da1: '$od1', sp: '$osp', dp: '$odp' };

/** The 24-bit VNI as decode.bt reads it: bytes 4-6 of the tunnel header, little-endian. */
export function vniToRaw(vni: number): number {
  return ((vni & 0xff) << 16) | (vni & 0xff00) | ((vni >>> 16) & 0xff);
}

type Expr =
  | { readonly op: 'cmp'; readonly text: string }
  | { readonly op: '&&' | '||'; readonly members: readonly Expr[] }
  | { readonly op: '!'; readonly operand: Expr };

const SIGNED_LIMIT = 1n << 63n;

function hex(value: bigint, bits: 16 | 32 | 64): string {
  return `0x${value.toString(16).padStart(bits / 4, '0')}`;
}

function cmp(text: string): Expr {
  return { op: 'cmp', text };
}

/** The hop is inside a tunnel (`!(…)` rather than `!=`: the output stays within ==, &&, ||, !, &, ^). */
const IN_TUNNEL: Expr = { op: '!', operand: cmp('$enc == 0') };

/** `&&`/`||` of the parts, flattening nested nodes of the same operator to keep nesting shallow. */
function join(op: '&&' | '||', parts: readonly Expr[]): Expr {
  const members = parts.flatMap((p) => (p.op === op ? p.members : [p]));
  return members.length === 1 && members[0] ? members[0] : { op, members };
}

/** `v == value`, without a signed/unsigned warning for values of 2^63 and above. */
function eq(v: string, value: bigint, bits: 16 | 32 | 64): Expr {
  return cmp(value < SIGNED_LIMIT ? `${v} == ${hex(value, bits)}` : `(${v} ^ ${hex(value, bits)}) == 0`);
}

/** `(v & mask) == value`, or null when the mask is empty (always true). `value` is already masked. */
function masked(v: string, mask: bigint, value: bigint, bits: 32 | 64): Expr | null {
  if (mask === 0n) return null;
  if (mask === (1n << BigInt(bits)) - 1n) return eq(v, value, bits);
  return cmp(value < SIGNED_LIMIT
    ? `(${v} & ${hex(mask, bits)}) == ${hex(value, bits)}`
    : `((${v} ^ ${hex(value, bits)}) & ${hex(mask, bits)}) == 0`);
}

/** Comparison of one side's address with a network (a host is a full-length network). */
function addressSide(e: HostFilter | NetFilter, side: 's' | 'd', bytes: readonly number[], h: Headers): Expr | null {
  const prefix = e.kind === 'host' ? bytes.length * 8 : e.prefix;
  if (e.family === 4) {
    const mask = BigInt(v4MaskRaw(prefix));
    return masked(side === 's' ? h.sa : h.da, mask, BigInt(v4BytesToRaw(bytes)) & mask, 32);
  }
  const mask = v6MaskRaw(prefix);
  const addr = v6BytesToRaw(bytes);
  const halves = [
    masked(side === 's' ? h.sa0 : h.da0, mask.hi, addr.hi & mask.hi, 64),
    masked(side === 's' ? h.sa1 : h.da1, mask.lo, addr.lo & mask.lo, 64),
  ].filter((x): x is Expr => x !== null);
  return halves.length === 0 ? null : join('&&', halves);
}

function address(e: HostFilter | NetFilter, h: Headers): Expr {
  const a = parseAddress(e.addr);
  if (a?.family !== e.family) throw new RangeError(`filter address ${e.addr} is not IPv${e.family}`);
  const family = cmp(`${h.fam} == ${e.family}`);
  const sides = e.dir === 'either' ? (['s', 'd'] as const) : e.dir === 'src' ? (['s'] as const) : (['d'] as const);
  const tests = sides.map((s) => addressSide(e, s, a.bytes, h));
  // A /0 network matches every address of its family.
  if (tests.some((t) => t === null)) return family;
  return join('&&', [family, join('||', tests as Expr[])]);
}

function compile(e: FilterExpr, h: Headers): Expr {
  switch (e.kind) {
    case 'and':
      return join('&&', e.operands.map((o) => compile(o, h)));
    case 'or':
      return join('||', e.operands.map((o) => compile(o, h)));
    case 'not':
      return { op: '!', operand: compile(e.operand, h) };
    case 'host':
    case 'net':
      return address(e, h);
    case 'port': {
      const raw = BigInt(portToRaw(e.port));
      const protos = join('||', PORT_PROTOCOLS.map((p) => cmp(`${h.l4} == ${p}`)));
      const sides = e.dir === 'either' ? [h.sp, h.dp] : [e.dir === 'src' ? h.sp : h.dp];
      return join('&&', [protos, join('||', sides.map((v) => eq(v, raw, 16)))]);
    }
    case 'proto': {
      const info = PROTO_INFO[e.proto];
      const l4 = cmp(`${h.l4} == ${info.number}`);
      return info.family === null ? l4 : join('&&', [cmp(`${h.fam} == ${info.family}`), l4]);
    }
    case 'family':
      return cmp(`${h.fam} == ${e.family}`);
    case 'tunnel':
      return IN_TUNNEL;
    case 'vni':
      // A VNI only UDP tunnels carry (vxlan, geneve).
      return join('&&', [IN_TUNNEL, cmp('$ol4 == 17'), cmp(`$ovni == ${hex(BigInt(vniToRaw(e.vni)), 32)}`)]);
    case 'workload':
      throw unresolved(e);
  }
}

/** Every && / || group is parenthesized, so precedence never depends on bpftrace's table. */
function render(e: Expr): string {
  switch (e.op) {
    case 'cmp':
      return e.text;
    case '&&':
    case '||':
      return `(${e.members.map(render).join(` ${e.op} `)})`;
    case '!':
      return e.operand.op === 'cmp' ? `!(${e.operand.text})` : `!${render(e.operand)}`;
  }
}

/**
 * A bpftrace boolean expression equivalent to `matchesHop` over the variables above. The result
 * is `1` for the empty filter and otherwise always parenthesized, so it can be embedded as
 * `if ($fam != 0 && EXPR)` or any other context as is.
 */
export function compileToBpftrace(ast: FilterAst): string {
  if (ast.kind === 'all') return '1';
  // The inner headers, or (inside a tunnel) the outer ones.
  return parenthesized(join('||', [compile(ast, INNER), join('&&', [IN_TUNNEL, compile(ast, OUTER)])]));
}

/**
 * The filter over the sending socket's tuple (see the top of this file): `matchesHop` of a hop
 * whose addresses and ports are the socket's. Evaluated only outside tunnels ($enc 0), where
 * `tunnel` and `vni` are false, as they are for the header. `1` for the empty filter.
 */
export function compileSocketToBpftrace(ast: FilterAst): string {
  if (ast.kind === 'all') return '1';
  return parenthesized(compile(ast, SOCKET));
}

function parenthesized(e: Expr): string {
  return e.op === '&&' || e.op === '||' ? render(e) : `(${render(e)})`;
}
