/**
 * Runs a tool inside a network namespace: `nsenter --net=PATH argv...` (argv arrays only, never
 * a shell), or the tool directly when the namespace is our own. Failures come back as data.
 */
import { execa } from 'execa';

export interface RunResult {
  readonly ok: boolean;
  readonly stdout: string;
  /** stderr, or the spawn error, trimmed to one line for error lists. */
  readonly error: string;
}

export type Runner = (nsPath: string | null, argv: readonly string[], input?: string) => Promise<RunResult>;

export const runInNamespace: Runner = async (nsPath, argv, input) => {
  const [cmd, ...args] = nsPath === null ? argv : ['nsenter', `--net=${nsPath}`, ...argv];
  if (cmd === undefined) return { ok: false, stdout: '', error: 'empty command' };
  const r = await execa(cmd, args, {
    reject: false,
    timeout: 10_000,
    stripFinalNewline: false,
    ...(input !== undefined ? { input } : { stdin: 'ignore' as const }),
    env: { LC_ALL: 'C' },
  });
  const stdout = typeof r.stdout === 'string' ? r.stdout : '';
  const stderr = typeof r.stderr === 'string' ? r.stderr.trim() : '';
  const error = r.failed ? (stderr || r.shortMessage || 'failed').split('\n')[0] ?? 'failed' : stderr.split('\n')[0] ?? '';
  return { ok: !r.failed, stdout, error };
};
