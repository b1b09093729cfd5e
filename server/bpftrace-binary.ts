/**
 * Which bpftrace hoptrace runs, and at which probe tier. Chosen once per process:
 *
 *   1. HOPTRACE_BPFTRACE=/path, when set (an override; if it does not start, the system's is used);
 *   2. the system's bpftrace when it is 0.21 or newer (raw tracepoints: the fast tier);
 *   3. the private copy `hoptrace setup` makes from Debian 13's packages (/var/lib/hoptrace/bpftrace,
 *      or a checkout's .bpftrace/ made by an older `npm run setup`);
 *   4. the system's older bpftrace (classic tracepoints: the classic tier).
 *
 * A candidate that is missing, corrupt, of another architecture or does not start is reported in
 * one sentence naming the fix, and the next one is used: choosing never throws.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { ProbeTier } from '../shared/api-types.js';
import { checkRawTracepoints } from './raw-tracepoints.js';

/** The first bpftrace version with raw tracepoints (and ring-buffer output). */
export const FAST_MIN_VERSION: readonly [number, number] = [0, 21];

export interface BpftraceChoice {
  /** What to run: a path, or 'bpftrace' (the system's, through PATH). null: none starts. */
  readonly command: string | null;
  /** e.g. '0.23.2'; null when none starts. */
  readonly version: string | null;
  readonly source: 'override' | 'private' | 'system' | 'none';
  readonly tier: ProbeTier;
  /** One sentence: why this bpftrace and this tier. */
  readonly why: string;
  /** Faults met on the way (a broken override or private copy), each naming the fix. */
  readonly warnings: readonly string[];
}

/** Parses `bpftrace --version` output ('bpftrace v0.23.2') into '0.23.2'. */
export function parseBpftraceVersion(out: string): string | null {
  return /bpftrace v?(\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1] ?? null;
}

/** Whether a version string is at least `min`. */
export function versionAtLeast(version: string, min: readonly [number, number]): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > min[0] || (a === min[0] && b >= min[1]);
}

/** The project's root: where package.json is, from server/ in the source tree or dist/server/. */
export function projectRoot(): string {
  for (const rel of ['../', '../../']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}package.json`)) return dir;
  }
  return fileURLToPath(new URL('../', import.meta.url));
}

/**
 * Where `hoptrace setup` makes the private copy: a folder the host owns rather than the package's,
 * since npm replaces the package's folder on every upgrade and `npx` keeps it in a cache; here it
 * is kept, and shared by every copy of the package on the host.
 */
export const HOST_BPFTRACE_DIR = '/var/lib/hoptrace/bpftrace';

/** The private copy's wrapper: the host's folder, else a checkout's .bpftrace/ (made by earlier set-ups). */
export function privateBpftracePath(): string {
  const candidates = [`${HOST_BPFTRACE_DIR}/bin/bpftrace`, `${projectRoot()}.bpftrace/bin/bpftrace`];
  return candidates.find((c) => existsSync(c)) ?? `${HOST_BPFTRACE_DIR}/bin/bpftrace`;
}

interface Probe {
  readonly version: string | null;
  /** Why it does not start, when it does not. */
  readonly error: string | null;
}

const ELF_MACHINE: Readonly<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40, ppc64: 21, s390x: 22, riscv64: 243 };

/**
 * Why a file cannot run here, from its first bytes, or null when it may: an ELF for another
 * machine, or neither ELF nor a script. (Executed, such a file would be handed to /bin/sh by
 * the exec fallback and fail with a confusing syntax error.)
 */
function notRunnable(path: string): string | null {
  const head = Buffer.alloc(20);
  let n: number;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null; // unreadable: exec reports it
  }
  if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) return null; // #! script
  if (n < 20 || head.readUInt32BE(0) !== 0x7f454c46) return 'it is not a program (corrupt: neither an ELF binary nor a script)';
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  const want = ELF_MACHINE[process.arch];
  if (want !== undefined && machine !== want) return `it is built for another architecture (ELF machine ${machine}, this is ${process.arch})`;
  return null;
}

/** Runs `<command> --version`: the version, or why it does not start (one short phrase). */
export async function probeBinary(command: string): Promise<Probe> {
  if (command.includes('/') && !existsSync(command)) return { version: null, error: 'it does not exist' };
  const bad = command.includes('/') ? notRunnable(command) : null;
  if (bad) return { version: null, error: bad };
  const r = await execa(command, ['--version'], { reject: false, all: true, timeout: 15_000 }).catch((err: unknown) => ({ failed: true, all: String(err), exitCode: undefined, code: undefined }));
  const out = String(r.all ?? '');
  const code = (r as { code?: string }).code;
  if (code === 'ENOEXEC' || /exec format error|cannot execute binary file/i.test(out)) return { version: null, error: 'it is not a program for this machine (corrupt, or built for another architecture)' };
  if (code === 'EACCES') return { version: null, error: 'it is not executable' };
  if (code === 'ENOENT') return { version: null, error: command.includes('/') ? 'it does not exist' : 'it is not installed' };
  const version = parseBpftraceVersion(out);
  if (r.exitCode !== 0 || version === null) {
    const first = out.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? `exit ${String(r.exitCode)}`;
    return { version: null, error: `it does not start (${first.slice(0, 200)})` };
  }
  return { version, error: null };
}

let chosen: Promise<BpftraceChoice> | undefined;

/** The bpftrace this process uses (chosen on first call, then remembered). */
export function chooseBpftrace(): Promise<BpftraceChoice> {
  chosen ??= decide(process.env.HOPTRACE_BPFTRACE, privateBpftracePath(), 'bpftrace');
  return chosen;
}

/** For tests: forget the choice (after changing HOPTRACE_BPFTRACE). */
export function forgetBpftraceChoice(): void {
  chosen = undefined;
}

/** The command to run bpftrace with: the chosen one, or the system's name when none starts (its error then names the fix). */
export async function bpftraceCommand(): Promise<string> {
  return (await chooseBpftrace()).command ?? 'bpftrace';
}

const SETUP = 'run `hoptrace setup` (as root) to make it again';

/** The choice, from an override path (or undefined), the private copy's path and the system's command. */
export async function decide(override: string | undefined, privatePath: string, system: string): Promise<BpftraceChoice> {
  const warnings: string[] = [];
  const min = FAST_MIN_VERSION.join('.');
  const sys = await probeBinary(system);
  const fallback = (): string => (sys.version ? `; using the system's bpftrace ${sys.version} instead` : '');
  const withTier = async (command: string, version: string, source: BpftraceChoice['source'], why: string): Promise<BpftraceChoice> => {
    if (!versionAtLeast(version, FAST_MIN_VERSION)) {
      return { command, version, source, tier: 'classic', why: `${why}; bpftrace ${version} has no raw tracepoints (${min} or newer has), so the probes use classic tracepoints`, warnings };
    }
    const raw = await checkRawTracepoints();
    if (!raw.ok) return { command, version, source, tier: 'classic', why: `${why}; raw tracepoints not used: ${raw.reason}`, warnings };
    return { command, version, source, tier: 'fast', why: `${why}; raw tracepoints, arguments checked against the kernel's BTF`, warnings };
  };

  if (override !== undefined && override !== '') {
    const o = await probeBinary(override);
    if (o.version) return withTier(override, o.version, 'override', `HOPTRACE_BPFTRACE names ${override}`);
    warnings.push(`HOPTRACE_BPFTRACE=${override} cannot be used: ${o.error ?? 'unknown'}. Point it at a working bpftrace, or unset it${fallback()}.`);
  }
  if (sys.version && versionAtLeast(sys.version, FAST_MIN_VERSION) && warnings.length === 0) {
    return withTier(system, sys.version, 'system', `the system's bpftrace is ${min} or newer`);
  }
  if (warnings.length === 0) {
    const p = await probeBinary(privatePath);
    if (p.version) return withTier(privatePath, p.version, 'private', `the system's bpftrace is ${sys.version ?? 'not installed'}, so the private copy hoptrace setup made (${privatePath}) is used`);
    if (existsSync(privatePath)) warnings.push(`the private bpftrace (${privatePath}) cannot be used: ${p.error ?? 'unknown'}. To fix it, ${SETUP}${fallback()}.`);
    else if (sys.version) warnings.push(`no private bpftrace ${min}+ (${privatePath}): run \`hoptrace setup\` (as root) for the fast tier; using the system's bpftrace ${sys.version} instead.`);
  }
  if (sys.version) {
    const why = warnings.length > 0 && override ? 'HOPTRACE_BPFTRACE cannot be used, so the system\'s bpftrace is' : warnings.length > 0 ? 'the private copy cannot be used, so the system\'s bpftrace is' : 'the system\'s bpftrace is used';
    return withTier(system, sys.version, 'system', why.endsWith('is') ? `${why} used` : why);
  }
  return { command: null, version: null, source: 'none', tier: 'classic', why: `no bpftrace starts here (the system's: ${sys.error ?? 'unknown'})`, warnings };
}
