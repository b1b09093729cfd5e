/**
 * The CLI processes a test file started (test/helpers/cli.ts, test/service/helpers.ts), so that
 * a test that fails or times out before it stops its `trace` or `serve` does not leave it
 * running: a leftover tracer keeps its probes attached and its lab's filter live while the next
 * files run (test/helpers/leftovers.ts stops them after each file).
 */
import type { ChildProcess } from 'node:child_process';

/** What is needed of a child: node's ChildProcess, or an execa subprocess. */
type Child = Pick<ChildProcess, 'exitCode' | 'signalCode' | 'kill' | 'spawnargs'> & { once(event: 'exit', listener: () => void): unknown };

const live = new Set<Child>();

/** Remembers `child` until it exits. */
export function tracked<T extends Child>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * Stops what is still running: SIGTERM (a tracer stops its bpftrace and flushes), SIGKILL after
 * `graceMs`. Returns the command lines it stopped.
 */
export async function stopLeftovers(graceMs = 5000): Promise<string[]> {
  const left = [...live].filter((c) => c.exitCode === null && c.signalCode === null);
  if (left.length === 0) return [];
  const exited = left.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
  for (const c of left) c.kill('SIGTERM');
  const timer = setTimeout(() => { for (const c of left) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); }, graceMs);
  await Promise.all(exited);
  clearTimeout(timer);
  return left.map((c) => c.spawnargs.slice(1).join(' '));
}
