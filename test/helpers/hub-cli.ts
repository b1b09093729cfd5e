/**
 * The many-node tests' processes (issue 17): agents and hubs run as the CLI, started until they
 * print a line, stopped by signal; and `until`, polling an answer with a deadline.
 */
import { cli, type CliProcess } from './cli.js';

export type Proc = { child: CliProcess; out: () => string };

/** Polls `get` every 250 ms until it gives a value; throws naming `what` after `ms`. */
export async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts a CLI command and resolves once its output matches `ready`. */
export function startCli(args: string[], ready: RegExp): Promise<Proc> {
  const child = cli(args);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve({ child, out: () => out }); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited: ${out}`)); });
  });
}

export async function kill(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  await p.child;
}
