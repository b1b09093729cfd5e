/**
 * What every command shares: flag parsing that fails as usage errors (exit 2) rather than stack
 * traces, and one place that turns unexpected errors into a single line.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FilterError, formatFilterError } from '../../shared/filter/index.js';
import { CannotTraceError } from '../trace-session.js';
import { HOP_KINDS, type HopKind } from '../../shared/hop-event.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode; unknown or malformed flags become a UsageError naming the flag. */
export function parseFlags<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/**
 * `--hops LIST`: which hop kinds to attach (comma-separated, from HOP_KINDS), or undefined for all.
 * Transmit or receive must be among them: without either no packet has a first hop.
 */
export function hopsFlag(value: string | boolean | undefined): ReadonlySet<HopKind> | undefined {
  if (value === undefined) return undefined;
  const names = String(value).split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(HOP_KINDS as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) {
    throw new UsageError(`--hops takes hop kinds separated by commas, from ${HOP_KINDS.join(', ')}; got '${String(value)}'`);
  }
  const kinds = new Set(names as HopKind[]);
  if (!kinds.has('xmit') && !kinds.has('recv')) throw new UsageError('--hops needs xmit or recv: packets start at one of them');
  return kinds;
}

/** Help text of --hops, the same for trace, record and stats. */
export const HOPS_HELP = `      --hops LIST     hop kinds to attach (default all: ${HOP_KINDS.join(',')}); e.g.
                      xmit,recv,drop leaves out the backlog (rx) and normal-free (consume)
                      probes: about a third less cost on a busy host; the veth backlog wait
                      is then inside the xmit → recv step, and delivery is judged by the model`;

/** A non-negative number flag, or undefined when absent. */
export function numberFlag(value: string | boolean | undefined, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  if (!Number.isFinite(n) || n < min || n > max || (opts.integer && !Number.isInteger(n))) {
    const range = Number.isFinite(max) ? `from ${min} to ${max}` : `≥ ${min}`;
    throw new UsageError(`--${name} takes ${opts.integer ? 'a whole number' : 'a number'} ${range}, got '${String(value)}'`);
  }
  return n;
}

/**
 * Prints an error as one clear message and returns the exit code: 2 for usage, filter and
 * host problems, 1 for anything else. Stack traces only with HOPTRACE_DEBUG=1.
 */
export function reportFatal(err: unknown, filterText?: string): number {
  if (err instanceof FilterError && filterText !== undefined) {
    process.stderr.write(`hoptrace: bad filter: ${err.message}\n${formatFilterError(filterText, err)}\n`);
    return 2;
  }
  if (err instanceof FilterError) {
    process.stderr.write(`hoptrace: bad filter: ${err.message}\n`);
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`hoptrace: ${err.message}\n`);
    return 2;
  }
  if (err instanceof CannotTraceError) {
    for (const p of err.problems) process.stderr.write(`hoptrace: ${p}\n`);
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`hoptrace: ${message}\n`);
  if (process.env.HOPTRACE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 1;
}
