/**
 * What the real-lab netfilter tests share: waiting for a condition, and finding the guardian
 * process a trace started (it removes the trace's tables when the trace is killed).
 */
import { readdirSync, readFileSync } from 'node:fs';

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The guardian a trace started: a child of it running node -e with hoptrace's table pattern. */
export function guardianOf(pid: number): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('hoptrace(?:_')) return Number(e);
    } catch {
      // gone
    }
  }
  return undefined;
}
