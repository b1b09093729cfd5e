/**
 * Processes of the many-node tests (issue 17): `hoptrace agent` and `hoptrace serve --hub` run
 * from source as users run them (test/helpers/cli.ts), optionally behind a wrapper (`unshare
 * --time --fork --monotonic 2` for a node whose clock is off), started once they print their
 * ready line and stopped by signal; and a poll with a deadline for what the hub makes
 * asynchronously. The one copy for hub-*, test/hub/* and the hub dashboard e2e.
 */
import { execa } from 'execa';
import { cli, type CliProcess } from './cli.js';

export interface HubProcess {
  readonly child: CliProcess;
  /** Everything it printed so far (stdout and stderr). */
  out(): string;
  /** Behind a wrapper (unshare --fork) whose child is the CLI. */
  readonly wrapped: boolean;
}

export interface StartOptions {
  /** Argv prefix the CLI runs behind. */
  readonly wrap?: readonly string[];
  readonly env?: Record<string, string>;
  /** How long it may take to print `ready` (default 120 s: bpftrace and tsx are slow on a loaded machine). */
  readonly timeoutMs?: number;
}

/** Starts the CLI with `args`; resolves once its output (stdout or stderr) matches `ready`. */
export function startHubCli(args: string[], ready: RegExp, opts: StartOptions = {}): Promise<HubProcess> {
  const wrap = opts.wrap ?? [];
  const child = cli(args, { ...(opts.env ? { env: opts.env } : {}), wrap });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), opts.timeoutMs ?? 120_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve({ child, out: () => out, wrapped: wrap.length > 0 }); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited: ${out}`)); });
  });
}

/**
 * Sends `signal` (default SIGTERM) and waits for the exit. Behind `unshare --fork` (which waits
 * for its child and does not pass signals on) the CLI is told itself.
 */
export async function stopHubCli(p: HubProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  if (p.wrapped) {
    const kids = await execa('pgrep', ['-P', String(p.child.pid)], { reject: false });
    for (const pid of String(kids.stdout).split('\n').filter(Boolean)) process.kill(Number(pid), signal);
  }
  p.child.kill(signal);
  await p.child;
}

/**
 * Polls `get` every 250 ms until it gives a value; a `get` that throws (a server not answering
 * yet) counts as no value. Throws naming `what` (and the last error) after `ms`.
 */
export async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await get().catch((err: unknown) => { last = err; return undefined; });
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last: ${last instanceof Error ? last.message : String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
