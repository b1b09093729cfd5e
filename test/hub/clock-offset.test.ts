/**
 * An agent's clock inside a time namespace (issue 17): the probes' hop times are the kernel's
 * monotonic clock, the agent's own is shifted by the namespace's offset, read from
 * /proc/self/timens_offsets. The end-to-end check is test/integration/hub-path.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { monotonicNamespaceOffsetNs } from '../../server/clock.js';
import { REPO } from '../helpers/cli.js';

const hasTimeNs = spawnSync('unshare', ['--time', '--fork', '--monotonic', '1', 'true'], { stdio: 'ignore' }).status === 0;

describe('monotonicNamespaceOffsetNs', () => {
  it('should read the monotonic line of timens_offsets, seconds and nanoseconds, negative too', () => {
    expect(monotonicNamespaceOffsetNs('monotonic           2         0\nboottime            0         0\n')).toBe(2e9);
    expect(monotonicNamespaceOffsetNs('monotonic          -1  500000000\nboottime 0 0\n')).toBe(-1e9 + 5e8);
    expect(monotonicNamespaceOffsetNs('boottime 5 0\n')).toBe(0);
    expect(monotonicNamespaceOffsetNs('')).toBe(0);
  });

  it.runIf(hasTimeNs)('should be what a process in a real time namespace sees (unshare --time --monotonic 2)', () => {
    const code = "import('./server/clock.ts').then((m) => console.log(m.monotonicNamespaceOffsetNs()))";
    const inside = spawnSync('unshare', ['--time', '--fork', '--monotonic', '2', process.execPath, '--import', 'tsx', '-e', code], { cwd: REPO, encoding: 'utf8' });
    expect(inside.stdout.trim(), inside.stderr).toBe('2000000000');
    const outside = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: REPO, encoding: 'utf8' });
    expect(outside.stdout.trim(), outside.stderr).toBe('0');
  });
});
