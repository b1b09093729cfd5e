/** Bad input gets one clear sentence and exit 2, never a stack trace. */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { WITHOUT_CAPABILITIES } from '../helpers/privileges.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { MAX_SAMPLE, SampleRate } from '../../shared/api-types.js';
import { CreateStatsRequest } from '../../shared/stats/api.js';

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

  it('bounds --sample the same in every command that takes it, and in the service', async () => {
    for (const command of [['trace'], ['record', '-o', '/nonexistent/x.hoptrace'], ['stats']]) {
      const r = await cli([...command, '--sample', String(MAX_SAMPLE + 1)]);
      expect({ command: command[0], code: r.exitCode, stderr: String(r.stderr).trim() })
        .toEqual({ command: command[0], code: 2, stderr: `hoptrace: --sample takes a whole number from 1 to ${MAX_SAMPLE}, got '${MAX_SAMPLE + 1}'` });
    }
    expect(SampleRate.safeParse(MAX_SAMPLE + 1).success).toBe(false);
    expect(CreateStatsRequest.safeParse({ filter: '', sample: MAX_SAMPLE + 1 }).success).toBe(false);
    expect(CreateStatsRequest.safeParse({ filter: '', sample: MAX_SAMPLE }).success).toBe(true);
  });

  it('prints help', async () => {
    const r = await cli(['trace', '--help']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/--filter EXPR/);
  });

  // uid 0 with every capability dropped: not root enough to trace, yet able to read any checkout.
  it.skipIf(!isRoot)(`says to run as root when it is not root enough to trace (${NEEDS_ROOT} to drop its capabilities)`, async () => {
    // The premise: bpftrace itself cannot load a program this way.
    const bpf = await execa(WITHOUT_CAPABILITIES[0], [...WITHOUT_CAPABILITIES.slice(1), 'bpftrace', '-e', 'tracepoint:net:net_dev_xmit { exit(); }'], { reject: false, timeout: 30_000 });
    expect(String(bpf.stderr)).toMatch(/Operation not permitted/);
    const r = await cli(['trace', '--duration', '1'], { withoutCapabilities: true, env: { HOME: '/tmp' } });
    expect(String(r.stderr).trim()).toBe('hoptrace: hoptrace must run as root with its capabilities to attach kernel probes, and this process is root without CAP_SYS_ADMIN (or CAP_BPF and CAP_PERFMON), dropped by a container or setpriv: run it with sudo from a shell that keeps them.');
    expect(r.exitCode).toBe(2);
    noStack(String(r.stderr));
  });

  it('says how to get bpftrace when it is missing', async () => {
    // A PATH without bpftrace: the preflight names the fix before anything else happens.
    const r = await cli(['trace', '--duration', '1'], { env: { PATH: '/nonexistent' } });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/bpftrace is not installed: run `hoptrace setup` as root/);
    noStack(String(r.stderr));
  });
});
