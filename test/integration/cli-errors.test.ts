/** Bad input gets one clear sentence and exit 2, never a stack trace. */
import { describe, it, expect } from 'vitest';
import { cli, unreadableByOthers } from '../helpers/cli.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at |Error:/);

describe('CLI bad input', () => {
  it('rejects an unknown flag with exit 2', async () => {
    const r = await cli(['trace', '--bogus']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/Unknown option '--bogus'/);
    noStack(String(r.stderr));
  });

  it('points at the problem in a bad filter', async () => {
    const r = await cli(['trace', '--filter', 'host 10.0.0.1 and port banana']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/bad filter/);
    expect(String(r.stderr)).toMatch(/\^/);
    noStack(String(r.stderr));
  });

  it('rejects a non-numeric --count and --duration', async () => {
    for (const args of [['--count', 'abc'], ['--duration=-1'], ['--count', '1.5']]) {
      const r = await cli(['trace', ...args]);
      expect(r.exitCode).toBe(2);
      expect(String(r.stderr)).toMatch(/--(count|duration) takes/);
    }
  });

  it('rejects an unknown command and prints the command list', async () => {
    const r = await cli(['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/unknown command 'frobnicate'/);
    expect(String(r.stderr)).toMatch(/trace/);
  });

  it('refuses a lab prefix that cannot name namespaces, as a usage error', async () => {
    const r = await cli(['lab', 'up', '--prefix', 'X;rm -rf']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/--prefix: a lab prefix is 1 to 9 lowercase letters/);
    noStack(String(r.stderr));
  });

  it('prints help', async () => {
    const r = await cli(['trace', '--help']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/--filter EXPR/);
  });

  // The unprivileged user must be able to read the checkout to run it at all.
  const unreadable = isRoot ? unreadableByOthers() : null;
  it.skipIf(!isRoot || unreadable !== null)(`says to run as root when it is not (${unreadable ?? `${NEEDS_ROOT} to switch to an unprivileged user`})`, async () => {
    const r = await cli(['trace', '--duration', '1'], { uid: 65534, env: { HOME: '/tmp' } });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/must run as root/);
    noStack(String(r.stderr));
  });

  it('says how to get bpftrace when it is missing', async () => {
    // A PATH without bpftrace: the preflight names the fix before anything else happens.
    const r = await cli(['trace', '--duration', '1'], { env: { PATH: '/nonexistent' } });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/bpftrace is not installed: run `npm run setup`/);
    noStack(String(r.stderr));
  });
});
