/**
 * What every command shares: one declarative option table per command, parsed by node:util's
 * parseArgs into typed values (numbers checked against their bounds, `--hops` into hop kinds),
 * where every bad flag is a usage error (exit 2) rather than a stack trace; the options several
 * commands take, defined once (so `--sample` has the same bounds everywhere); and one place that
 * turns unexpected errors into a single line.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FilterError, formatFilterError } from '../../shared/filter/index.js';
import { MAX_SAMPLE } from '../../shared/api-types.js';
import { CannotTraceError } from '../trace-session.js';
import { HOP_KINDS, type HopKind } from '../../shared/hop-event.js';
import { RecordingError } from '../../shared/recording/index.js';
import { RecordingFile } from '../recording/reader.js';
import type { BpftraceExit } from '../bpftrace.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** One option of a command: how it is written (`short`) and what its value must be. */
export type OptionSpec =
  | { readonly kind: 'boolean'; readonly short?: string }
  | { readonly kind: 'string'; readonly short?: string; readonly multiple?: false }
  | { readonly kind: 'strings'; readonly short?: string }
  | { readonly kind: 'number'; readonly short?: string; readonly integer?: boolean; readonly min?: number; readonly max?: number }
  | { readonly kind: 'hops' };

export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> =
  S extends { kind: 'boolean' } ? boolean
    : S extends { kind: 'strings' } ? string[]
      : S extends { kind: 'number' } ? number | undefined
        : S extends { kind: 'hops' } ? ReadonlySet<HopKind> | undefined
          : string | undefined;

/** The parsed values of a table: booleans are false when absent, lists empty, the rest undefined. */
export type OptionValues<T extends OptionTable> = { -readonly [K in keyof T]: ValueOf<T[K]> };

// The options several commands share, so each means (and is bounded) the same everywhere.
export const FILTER = { kind: 'string', short: 'f' } as const;
export const DURATION = { kind: 'number', short: 'd', min: 0.001 } as const;
export const COUNT = { kind: 'number', short: 'c', integer: true, min: 1 } as const;
/** Follow 1 in N flows: the bound of trace, record, stats and the service's sessions alike. */
export const SAMPLE = { kind: 'number', integer: true, min: 1, max: MAX_SAMPLE } as const;
export const HOPS = { kind: 'hops' } as const;
export const JSON_OUTPUT = { kind: 'boolean' } as const;
export const NETFILTER = { kind: 'boolean' } as const;
export const NOTES = { kind: 'boolean' } as const;
/** Seconds from the start of a recording. */
export const SECONDS_IN = { kind: 'number' } as const;

/**
 * Parses `argv` against a command's table (parseArgs in strict mode, plus -h/--help). Unknown or
 * malformed flags and values out of bounds become a UsageError naming the flag.
 */
export function parseOptions<T extends OptionTable>(argv: string[], table: T, allowPositionals = false): { values: OptionValues<T>; positionals: string[]; help: boolean } {
  const config: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(table)) {
    const short = 'short' in spec && spec.short !== undefined ? { short: spec.short } : {};
    config[name] = spec.kind === 'boolean' ? { type: 'boolean', ...short } : { type: 'string', ...short, ...(spec.kind === 'strings' ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: config, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const v = raw[name];
    switch (spec.kind) {
      case 'boolean': values[name] = v === true; break;
      case 'strings': values[name] = Array.isArray(v) ? v : []; break;
      case 'number': values[name] = numberFlag(v as string | undefined, name, spec); break;
      case 'hops': values[name] = hopsFlag(v as string | undefined); break;
      default: values[name] = v;
    }
  }
  return { values: values as OptionValues<T>, positionals: parsed.positionals, help: raw.help === true };
}

/**
 * A command's whole run: parse its table, print `help` for -h/--help, else run `body`; whatever
 * is thrown is reported by reportFatal (with the filter text, when the command takes --filter,
 * so a bad filter is shown with its span).
 */
export async function runCommand<T extends OptionTable>(
  argv: string[],
  spec: { readonly options: T; readonly help: string; readonly positionals?: boolean },
  body: (values: OptionValues<T>, positionals: string[]) => Promise<number>,
): Promise<number> {
  let filterText: string | undefined;
  try {
    const { values, positionals, help } = parseOptions(argv, spec.options, spec.positionals === true);
    if (help) {
      process.stdout.write(`${spec.help}\n`);
      return 0;
    }
    if ('filter' in spec.options) filterText = (values as Record<string, unknown>).filter as string | undefined ?? '';
    return await body(values, positionals);
  } catch (err) {
    return reportFatal(err, filterText);
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

/** The program a failed spawn could not find (execa's error, or node's), else null. */
export function missingProgram(err: unknown): string | null {
  const e = err as { code?: unknown; syscall?: unknown; path?: unknown; cause?: { code?: unknown; syscall?: unknown; path?: unknown } } | null;
  for (const x of [e, e?.cause]) {
    if (x?.code === 'ENOENT' && typeof x.syscall === 'string' && x.syscall.startsWith('spawn') && typeof x.path === 'string') return x.path;
  }
  return null;
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
  const tool = missingProgram(err);
  if (tool !== null) {
    process.stderr.write(`hoptrace: ${tool} is not installed (or not on PATH: ${process.env.PATH ?? ''}): run \`hoptrace setup\` as root.\n`);
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`hoptrace: ${message}\n`);
  if (process.env.HOPTRACE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 1;
}

/**
 * Opens a recording a command was given, or says why it cannot (`hoptrace: cannot <verb> PATH: ...`)
 * and returns the exit code: 2 for a file of a newer format (upgrade), 1 for one that is not a
 * readable recording.
 */
export async function openRecordingFile(path: string, verb: string): Promise<RecordingFile | number> {
  try {
    return await RecordingFile.open(path);
  } catch (err) {
    if (err instanceof RecordingError) {
      process.stderr.write(`hoptrace: cannot ${verb} ${path}: ${err.message}\n`);
      return err.code === 'newer-version' ? 2 : 1;
    }
    throw err;
  }
}

/**
 * Watches a command's bpftrace for dying on its own (not asked to stop): `onDeath` is called then,
 * and `report()` at the end says so with bpftrace's stderr and returns exit code 1 (else 0).
 */
export function watchBpftrace(session: { on(event: 'exit', fn: (exit: BpftraceExit) => void): unknown }, onDeath: () => void): { report(): number } {
  let died: BpftraceExit | undefined;
  session.on('exit', (exit) => {
    if (!exit.requested) {
      died = exit;
      onDeath();
    }
  });
  return {
    report: () => {
      if (!died) return 0;
      process.stderr.write(`hoptrace: bpftrace exited unexpectedly (${died.signal ?? `code ${died.code}`})${died.stderr ? `:\n${died.stderr}` : ''}\n`);
      return 1;
    },
  };
}
