/**
 * The processes of a many-node test (issue 17): `hoptrace agent` and `serve --hub` run from
 * source (as test/helpers/cli.ts runs the CLI), started until they print that they are ready,
 * optionally behind a wrapper (`unshare --time --fork --monotonic 2` for a node whose clock is
 * off), and stopped with SIGTERM; and a poll with a deadline.
 */
import { execa, type ResultPromise } from 'execa';
import { REPO } from './cli.js';

export type HubProc = ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }>;

export interface Started {
  readonly child: HubProc;
  /** Everything it printed so far (stdout and stderr). */
  out(): string;
  /** Behind a wrapper (unshare --fork) whose child is the CLI. */
  readonly wrapped: boolean;
}

/** Starts the CLI with `args` behind `wrap` (argv prefix); resolves once its output matches `ready`. */
export function startUntil(args: string[], ready: RegExp, opts: { wrap?: readonly string[]; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Started> {
  const wrap = opts.wrap ?? [];
  const argv = [...wrap, process.execPath, '--import', 'tsx', 'server/cli.ts', ...args];
  const child = execa(argv[0]!, argv.slice(1), { reject: false, cwd: REPO, env: opts.env ?? {} }) as HubProc;
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), opts.timeoutMs ?? 90_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve({ child, out: () => out, wrapped: wrap.length > 0 }); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited: ${out}`)); });
  });
}

/** SIGTERM and wait; behind `unshare --fork` (which waits for its child and does not pass SIGTERM on) the CLI is told itself. */
export async function stopStarted(p: Started | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  if (p.wrapped) {
    const kids = await execa('pgrep', ['-P', String(p.child.pid)], { reject: false });
    for (const pid of String(kids.stdout).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGTERM');
  }
  p.child.kill('SIGTERM');
  await p.child;
}

/** Polls `get` every 300 ms until it gives a value; throws naming `what` after `ms`. */
export async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
