/**
 * `hoptrace setup`: prepares this host to run hoptrace, and nothing more — the tools hoptrace runs
 * (server/setup/requirements.ts), a bpftrace new enough for the fast probe tier, and the tracefs and
 * debugfs mounts. Idempotent: what is in place is left alone, and every line says what was found or
 * done. `--check` only looks, and exits 1 when something is missing. Installing needs root and, for
 * now, apt (Debian and Ubuntu); on other hosts it says what to install in that distribution's words.
 * The build and test tools are not here: the developers' `npm run setup` (scripts/setup.sh) calls
 * this, then adds them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { decide, FAST_MIN_VERSION, HOST_BPFTRACE_DIR, privateBpftracePath, versionAtLeast, type BpftraceChoice } from '../bpftrace-binary.js';
import { BPFTRACE, distroFamily, installCommand, packagesFor, REQUIREMENTS, type DistroFamily, type Requirement } from '../setup/requirements.js';
import { runCommand } from './common.js';

export const summary = 'prepare this host to run hoptrace: bpftrace, bpftool, iproute2, nftables, mounts (root)';

const HELP = `usage: hoptrace setup [--check]

Prepares this host to run hoptrace (run it as root, e.g. sudo hoptrace setup):
  - bpftrace ${FAST_MIN_VERSION.join('.')} or newer for the fast probe tier: the system's when new enough,
    else on Debian a private copy of Debian 13's bpftrace in ${HOST_BPFTRACE_DIR}
    (about 72 MB, fetched with apt-get download; the system's packages and apt sources
    are not changed);
  - ${REQUIREMENTS.map((r) => `${r.tool} (${r.pkg.debian})`).join(', ')};
  - tracefs and debugfs mounted.
It installs only what is missing, mounts only what is not mounted, and says what it did. Installing
needs apt-get; on other distributions it prints what to install.

      --check     only report what is missing; exit 1 if anything is
  -h, --help      this help

Exit code 0 when the host has everything, 1 when something is missing or could not be done.`;

const OPTIONS = { check: { kind: 'boolean' } } as const;

/** Where a command is on PATH, as execa would find it (hoptrace runs these tools through PATH). */
export function onPath(tool: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, tool);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** Mounted file systems of this process's mount namespace, as mount point → type. */
function mounts(): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE SOURCE SUPEROPTS
      const f = line.split(' ');
      const dash = f.indexOf('-');
      const at = f[4];
      const type = f[dash + 1];
      if (dash > 4 && at !== undefined && type !== undefined) out.set(at.replace(/\\040/g, ' '), type);
    }
  } catch {
    // no /proc: reported as not mounted
  }
  return out;
}

const MOUNTS = [
  // debugfs first: tracefs is also reachable under it, and bpftrace 0.17 looks there.
  { type: 'debugfs', at: '/sys/kernel/debug' },
  { type: 'tracefs', at: '/sys/kernel/tracing' },
] as const;

interface HostState {
  readonly family: DistroFamily;
  readonly distro: string;
  readonly missing: Requirement[];
  readonly found: Array<{ req: Requirement; at: string }>;
  readonly bpftrace: BpftraceChoice;
  readonly unmounted: Array<(typeof MOUNTS)[number]>;
}

async function look(): Promise<HostState> {
  const osRelease = (() => {
    try {
      return readFileSync('/etc/os-release', 'utf8');
    } catch {
      return '';
    }
  })();
  const { family, name } = distroFamily(osRelease);
  const missing: Requirement[] = [];
  const found: HostState['found'] = [];
  for (const req of REQUIREMENTS) {
    const at = onPath(req.tool);
    if (at) found.push({ req, at });
    else missing.push(req);
  }
  const bpftrace = await decide(process.env.HOPTRACE_BPFTRACE, privateBpftracePath(), 'bpftrace');
  const m = mounts();
  const unmounted = MOUNTS.filter((x) => m.get(x.at) !== x.type);
  return { family, distro: name, missing, found, bpftrace, unmounted };
}

const fast = (c: BpftraceChoice): boolean => c.version !== null && versionAtLeast(c.version, FAST_MIN_VERSION);

function report(s: HostState, say: (line: string) => void): boolean {
  for (const { req, at } of s.found) say(`ok       ${req.tool.padEnd(9)} ${at}`);
  for (const req of s.missing) say(`missing  ${req.tool.padEnd(9)} ${req.why}: package ${req.pkg[s.family]}`);
  const b = s.bpftrace;
  if (fast(b)) say(`ok       bpftrace  ${b.version ?? ''} (${b.command ?? ''}, ${b.source}): fast probe tier`);
  else if (b.version) say(`missing  bpftrace  ${FAST_MIN_VERSION.join('.')}+ for the fast probe tier: ${b.version} (${b.command ?? ''}) runs the classic tier`);
  else say(`missing  bpftrace  ${BPFTRACE.why}: package ${BPFTRACE.pkg[s.family]}`);
  for (const x of MOUNTS) say(s.unmounted.includes(x) ? `missing  ${x.type.padEnd(9)} not mounted on ${x.at}` : `ok       ${x.type.padEnd(9)} mounted on ${x.at}`);
  return s.missing.length === 0 && fast(b) && s.unmounted.length === 0;
}

/** One line, no stack trace: what went wrong and what to do. */
class SetupError extends Error {
  override name = 'SetupError';
}

/** The last meaningful line a failed program printed, for a one-line error. */
function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return (lines.find((l) => /^E: /.test(l)) ?? lines.at(-1) ?? '').slice(0, 300);
}

async function apt(args: string[]): Promise<void> {
  const r = await execa('apt-get', args, { reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } }).catch((err: unknown) => ({ exitCode: undefined, all: String(err), failed: true }));
  if (r.exitCode !== 0) {
    const why = lastLine(String(r.all ?? '')) || `exit ${String(r.exitCode)}`;
    throw new SetupError(`apt-get ${args.filter((a) => !a.startsWith('-')).join(' ')} failed (${why}): fix apt (e.g. run apt-get update and read its messages), then run hoptrace setup again.`);
  }
}

/** Installs the packages for the missing tools (and bpftrace when there is none), with apt. */
async function install(s: HostState, say: (line: string) => void): Promise<void> {
  const needed = [...s.missing, ...(s.bpftrace.version === null ? [BPFTRACE] : [])];
  if (needed.length === 0) return;
  const pkgs = packagesFor(needed, s.family);
  if (s.family !== 'debian' || onPath('apt-get') === null) {
    const cmd = installCommand(s.family, pkgs);
    const where = s.family === 'debian' ? 'apt-get is not on PATH' : `${s.distro} is not a Debian-family host, and hoptrace setup installs with apt only`;
    throw new SetupError(cmd
      ? `${where}: install them with \`${cmd}\` (as root), then run hoptrace setup again.`
      : `${where}: install ${pkgs.join(', ')} (${needed.map((r) => r.tool).join(', ')}) with this distribution's package manager, then run hoptrace setup again.`);
  }
  say(`installing ${pkgs.join(' ')} (apt-get)`);
  await apt(['-qq', 'update']);
  await apt(['install', '-y', '-qq', '--no-install-recommends', ...pkgs]);
  const still = needed.filter((r) => onPath(r.tool) === null);
  if (still.length > 0) {
    throw new SetupError(`installed ${pkgs.join(' ')}, but ${still.map((r) => r.tool).join(', ')} is still not on PATH (${process.env.PATH ?? ''}): add /usr/sbin and /usr/bin to PATH, then run hoptrace setup again.`);
  }
  say(`installed ${pkgs.join(' ')}`);
}

async function mountMissing(s: HostState, say: (line: string) => void): Promise<void> {
  for (const x of s.unmounted) {
    const r = await execa('mount', ['-t', x.type, 'nodev', x.at], { reject: false, all: true }).catch((err: unknown) => ({ exitCode: undefined, all: String(err) }));
    if (r.exitCode !== 0) throw new SetupError(`could not mount ${x.type} on ${x.at} (${lastLine(String(r.all ?? ''))}): hoptrace needs it to attach its probes.`);
    say(`mounted ${x.type} on ${x.at}`);
  }
}

/** The shipped script that makes the private bpftrace (beside dist/ in a package and a checkout). */
function privateScript(): string {
  for (const rel of ['../../scripts/bpftrace-private.sh', '../../../scripts/bpftrace-private.sh']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new SetupError('this installation is incomplete: scripts/bpftrace-private.sh is missing. Reinstall hoptrace (npm install -g hoptrace).');
}

/** A bpftrace for the fast tier: the system's or the override when new enough, else the private copy (Debian). */
async function fastBpftrace(s: HostState, say: (line: string) => void): Promise<void> {
  const now = await decide(process.env.HOPTRACE_BPFTRACE, privateBpftracePath(), 'bpftrace');
  if (fast(now)) {
    say(`bpftrace ${now.version ?? ''} (${now.command ?? ''}, ${now.source}) is new enough for the fast probe tier`);
    return;
  }
  if (s.family !== 'debian' || onPath('apt-get') === null || onPath('dpkg') === null) {
    throw new SetupError(`bpftrace ${now.version ?? '(none)'} is older than ${FAST_MIN_VERSION.join('.')}: hoptrace runs on the classic probe tier. For the fast tier install bpftrace ${FAST_MIN_VERSION.join('.')} or newer${s.family !== 'other' && s.family !== 'debian' ? ` (${installCommand(s.family, ['bpftrace'])})` : ''}, or point HOPTRACE_BPFTRACE at one.`);
  }
  say(`bpftrace ${now.version ?? '(none)'} is older than ${FAST_MIN_VERSION.join('.')}: making a private copy of Debian 13's in ${HOST_BPFTRACE_DIR}`);
  const r = await execa('bash', [privateScript(), HOST_BPFTRACE_DIR], { reject: false, stdout: 'inherit', stderr: 'inherit' }).catch(() => ({ exitCode: undefined }));
  if (r.exitCode !== 0) throw new SetupError(`the private bpftrace could not be made (see the lines above): hoptrace runs on the classic probe tier until it is; run hoptrace setup again once that is fixed.`);
}

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (o) => {
    const say = (line: string): void => { process.stdout.write(`hoptrace setup: ${line}\n`); };
    if (o.check) {
      const state = await look();
      const ok = report(state, (l) => { process.stdout.write(`${l}\n`); });
      process.stdout.write(ok ? 'everything hoptrace needs is in place\n' : 'something is missing: run `hoptrace setup` as root\n');
      return ok ? 0 : 1;
    }
    if (process.getuid?.() !== 0) {
      process.stderr.write('hoptrace setup: must run as root to install packages and mount tracefs: run `sudo hoptrace setup` (`hoptrace setup --check` only looks).\n');
      return 1;
    }
    try {
      const state = await look();
      say(`${state.distro}`);
      if (state.missing.length === 0 && state.bpftrace.version !== null) say(`${[...REQUIREMENTS.map((r) => r.tool), 'bpftrace'].join(', ')}: in place`);
      await install(state, say);
      await mountMissing(state, say);
      if (state.unmounted.length === 0) say('tracefs and debugfs: mounted');
      await fastBpftrace(state, say);
      say('done: this host has everything hoptrace needs');
      return 0;
    } catch (err) {
      if (!(err instanceof SetupError)) throw err;
      process.stderr.write(`hoptrace setup: ${err.message}\n`);
      return 1;
    }
  });
}
