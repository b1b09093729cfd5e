/** Runs the hoptrace CLI from source, the way a user runs it, and collects what it prints. */
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Lab } from '../../server/lab/lab.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function cli(args: string[], opts: { env?: Record<string, string>; uid?: number } = {}): ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }> {
  const node = [process.execPath, '--import', 'tsx', 'server/cli.ts', ...args];
  const [cmd, ...rest] = opts.uid === undefined ? node : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', ...node];
  return execa(cmd as string, rest, { reject: false, cwd: REPO, env: opts.env ?? {} });
}

/**
 * Why an unprivileged user cannot run the CLI from this checkout, or null when it can: every
 * directory above it must let others through (a checkout under `mktemp -d`, mode 0700, does not).
 */
export function unreadableByOthers(): string | null {
  for (let dir = REPO; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return `${dir} is not searchable by other users (mode ${(statSync(dir).mode & 0o777).toString(8)})`;
    if (dirname(dir) === dir) return null;
  }
}

export type CliProcess = ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }>;

/**
 * Starts a command that prints `ready` on stderr once its probes are attached (trace, record) and
 * resolves then. The process is returned inside an object: a bare execa process is a thenable,
 * and returning it from an async function would wait for it to exit.
 */
export async function startReady(args: string[], env: Record<string, string> = {}): Promise<{ child: CliProcess }> {
  const child = cli(args, { env });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`trace did not get ready: ${err}`)), 60_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('ready\n')) { clearTimeout(timer); resolve(); }
    });
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited before ready: ${err}`)); });
  });
  return { child };
}

export async function startTrace(args: string[], env: Record<string, string> = {}): Promise<{ child: CliProcess }> {
  return startReady(['trace', ...args], env);
}

export function labInodes(lab: Lab): Map<number, string> {
  const m = new Map<number, string>();
  for (const [role, name] of Object.entries(lab.ns)) m.set(statSync(`/run/netns/${name}`).ino, role);
  return m;
}

export function randomPrefix(tag: string): string {
  return `${tag}${Math.random().toString(16).slice(2, 7)}`;
}
