/** Runs the hoptrace CLI from source, the way a user runs it, and collects what it prints. */
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';
import type { Lab } from '../../server/lab/lab.js';
import { WITHOUT_CAPABILITIES } from './privileges.js';
import { tracked } from './children.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** `withoutCapabilities`: run as uid 0 with every capability dropped (test/helpers/privileges.ts). */
export function cli(args: string[], opts: { env?: Record<string, string>; withoutCapabilities?: boolean; wrap?: readonly string[] } = {}): ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }> {
  const node = [process.execPath, '--import', 'tsx', 'server/cli.ts', ...args];
  // `wrap`: an argv prefix the CLI runs behind (unshare for a node in its own time namespace).
  const [cmd, ...rest] = [...(opts.withoutCapabilities ? WITHOUT_CAPABILITIES : []), ...(opts.wrap ?? []), ...node];
  return tracked(execa(cmd as string, rest, { reject: false, cwd: REPO, env: opts.env ?? {} }));
}

export type CliProcess = ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }>;

/**
 * Starts a command that prints `ready` on stderr once its probes are attached (trace, record) and
 * resolves then. The process is returned inside an object: a bare execa process is a thenable,
 * and returning it from an async function would wait for it to exit.
 */
export async function startReady(args: string[], env: Record<string, string> = {}, readyMs = 60_000): Promise<{ child: CliProcess }> {
  const child = cli(args, { env });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`trace did not get ready: ${err}`)), readyMs);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('ready\n')) { clearTimeout(timer); resolve(); }
    });
    void child.then(() => { clearTimeout(timer); reject(new Error(`${args[0]} exited before ready: ${err}`)); });
  });
  return { child };
}

export async function startTrace(args: string[], env: Record<string, string> = {}, readyMs?: number): Promise<{ child: CliProcess }> {
  return startReady(['trace', ...args], env, readyMs);
}

export function labInodes(lab: Lab): Map<number, string> {
  const m = new Map<number, string>();
  for (const [role, name] of Object.entries(lab.ns)) m.set(statSync(`/run/netns/${name}`).ino, role);
  return m;
}

export function randomPrefix(tag: string): string {
  // HOPTRACE_TEST_PREFIX: engineers sharing a machine keep their test namespaces apart (9 characters at most).
  return `${process.env.HOPTRACE_TEST_PREFIX ?? ''}${tag}${Math.random().toString(16).slice(2, 7)}`.slice(0, 9);
}
