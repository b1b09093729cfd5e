/**
 * Processes of the many-node tests (issue 17): `hoptrace agent` and `hoptrace serve --hub` run
 * from source as users run them, started once they print their ready line, stopped with SIGTERM;
 * and a poll for what the hub makes asynchronously. (hub-faults keeps its own copy, with a
 * signal to kill by, from before this file.)
 */
import { cli, type CliProcess } from './cli.js';

export interface HubProcess {
  readonly child: CliProcess;
  /** Everything it printed so far (stdout and stderr). */
  out(): string;
}

export function startHubCli(args: string[], ready: RegExp, env: Record<string, string> = {}, readyMs = 120_000): Promise<HubProcess> {
  const child = cli(args, { env });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), readyMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve({ child, out: () => out }); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited: ${out}`)); });
  });
}

export async function stopHubCli(p: HubProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await p.child;
}

/** Polls `get` every 250 ms until it gives a value. */
export async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
