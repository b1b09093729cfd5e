/** Canonical text of a filter, for status lines and recording headers. Parses back to the same filter. */
import type { Direction, FilterAst, FilterExpr } from './ast.js';

function dirPrefix(dir: Direction): string {
  return dir === 'either' ? '' : `${dir} `;
}

function describeExpr(e: FilterExpr): string {
  switch (e.kind) {
    case 'host':
      return `${dirPrefix(e.dir)}host ${e.addr}`;
    case 'net':
      return `${dirPrefix(e.dir)}net ${e.addr}/${e.prefix}`;
    case 'port':
      return `${dirPrefix(e.dir)}port ${e.port}`;
    case 'proto':
      return e.proto;
    case 'family':
      return e.family === 4 ? 'ip' : 'ip6';
    case 'tunnel':
      return 'tunnel';
    case 'vni':
      return `vni ${e.vni}`;
    case 'workload':
      return `${dirPrefix(e.dir)}${e.what} ${e.name}`;
    case 'and':
      // 'and' binds tighter than 'or', so only an 'or' operand needs parentheses.
      return e.operands.map((o) => (o.kind === 'or' ? `(${describeExpr(o)})` : describeExpr(o))).join(' and ');
    case 'or':
      return e.operands.map(describeExpr).join(' or ');
    case 'not':
      return e.operand.kind === 'and' || e.operand.kind === 'or'
        ? `not (${describeExpr(e.operand)})`
        : `not ${describeExpr(e.operand)}`;
  }
}

/**
 * Canonical text form: lowercase keywords, `and`/`or`/`not` words, `src host` rather than
 * `src`, every net with its prefix, addresses in ipaddr.js `toString()` form, and only the
 * parentheses precedence needs. The empty filter describes as ''.
 */
export function describeFilter(ast: FilterAst): string {
  return ast.kind === 'all' ? '' : describeExpr(ast);
}
