/**
 * `pod NAME` / `container NAME` → the addresses of that workload's namespace, resolved once
 * where a trace starts (the CLI, the service) against the host's model, so matching, the
 * bpftrace program and the recorded filter text only ever see plain host filters.
 */
import type { FilterAst, FilterExpr, WorkloadFilter } from './ast.js';
import { parseAddress } from './address.js';
import { FilterError } from './error.js';

/** What the host knows about its workloads: the addresses of a pod or container, and every name it knows. */
export interface WorkloadDirectory {
  /** Addresses of the namespace(s) `name` names; null when there is no such workload. */
  addresses(what: 'pod' | 'container', name: string): readonly string[] | null;
  /** Every known name of that kind, for the error message. */
  known(what: 'pod' | 'container'): readonly string[];
}

/** Whether the filter names workloads (and so needs the host's model to be resolved). */
export function hasWorkloadFilters(ast: FilterAst): boolean {
  switch (ast.kind) {
    case 'workload': return true;
    case 'and':
    case 'or': return ast.operands.some(hasWorkloadFilters);
    case 'not': return hasWorkloadFilters(ast.operand);
    default: return false;
  }
}

/** The error matching or compiling throws for a filter whose names were never resolved. */
export function unresolved(e: WorkloadFilter): FilterError {
  return new FilterError(`'${e.what} ${e.name}' cannot be matched here: workload names are resolved to addresses where the trace starts`, e.offset, e.length);
}

function resolveOne(e: WorkloadFilter, dir: WorkloadDirectory): FilterExpr {
  const addrs = dir.addresses(e.what, e.name);
  if (addrs === null) {
    const known = dir.known(e.what);
    const list = known.length === 0 ? `no ${e.what}s are running here` : `known ${e.what}s: ${known.slice(0, 20).join(', ')}${known.length > 20 ? `, … (${known.length} in all)` : ''}`;
    throw new FilterError(`no ${e.what} named '${e.name}' (${list})`, e.offset, e.length);
  }
  const hosts = [...new Set(addrs)].flatMap((a): FilterExpr[] => {
    const p = parseAddress(a);
    return p ? [{ kind: 'host', dir: e.dir, family: p.family, addr: p.text }] : [];
  });
  if (hosts.length === 0) throw new FilterError(`${e.what} '${e.name}' has no addresses of its own (host network?): filter by port instead`, e.offset, e.length);
  return hosts.length === 1 ? (hosts[0] as FilterExpr) : { kind: 'or', operands: hosts };
}

/** The filter with every `pod`/`container` replaced by its addresses. Throws FilterError for unknown names. */
export function resolveWorkloadFilters(ast: FilterAst, dir: WorkloadDirectory): FilterAst {
  switch (ast.kind) {
    case 'workload': return resolveOne(ast, dir);
    case 'and':
    case 'or': return { kind: ast.kind, operands: ast.operands.map((o) => resolveWorkloadFilters(o, dir) as FilterExpr) };
    case 'not': return { kind: 'not', operand: resolveWorkloadFilters(ast.operand, dir) as FilterExpr };
    default: return ast;
  }
}
