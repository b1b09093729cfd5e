/**
 * What the host lacks, said in one sentence naming the fix (exit 2, no stack trace): no BTF and
 * tracefs not mounted, made real for the CLI alone inside a private mount namespace (the host's
 * mounts are untouched: `unshare -m` with private propagation).
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, cli } from '../helpers/cli.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

/**
 * Runs `hoptrace trace --duration 1` in a mount namespace of its own after the shell commands in
 * `prepare` (fixed strings of this file; the CLI's argv is passed as arguments, never spliced).
 */
function traceWithout(prepare: string) {
  const argv = [process.execPath, '--import', 'tsx', 'server/cli.ts', 'trace', '--duration', '1'];
  return execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${prepare}; exec "$@"`, 'sh', ...argv], { reject: false, cwd: REPO });
}

const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at |Error:/);

describe.skipIf(!isRoot)(`trace says what the host lacks (${NEEDS_ROOT}: it mounts in a private mount namespace)`, () => {
  it('should say tracefs is not mounted and how to mount it', async () => {
    const r = await traceWithout('umount -l /sys/kernel/debug 2>/dev/null; umount -l /sys/kernel/tracing 2>/dev/null; true');
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toBe('hoptrace: tracefs is not mounted: run `hoptrace setup` as root (it mounts tracefs and debugfs).');
    expect(String(r.stdout)).toBe('');
    noStack(String(r.stderr));
  });

  it('should say the kernel has no BTF and what it needs', async () => {
    // An empty tmpfs over /sys/kernel/btf hides vmlinux from this process alone.
    const r = await traceWithout('mount -t tmpfs hoptrace-no-btf /sys/kernel/btf');
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toBe('hoptrace: this kernel has no BTF (/sys/kernel/btf/vmlinux): hoptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y.');
    noStack(String(r.stderr));
  });

  it('should leave the host able to trace (its own mounts untouched)', async () => {
    const r = await execa('findmnt', ['-n', '-o', 'FSTYPE', '/sys/kernel/btf'], { reject: false });
    expect(String(r.stdout)).not.toMatch(/tmpfs/);
  });

  it('should warn, not fail, when bpftool cannot read the drop-reason names', async () => {
    // A PATH with every tool of this host except bpftool.
    const bin = mkdtempSync(join(tmpdir(), 'hoptrace-no-bpftool-'));
    try {
      for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
        let names: string[] = [];
        try {
          names = readdirSync(dir);
        } catch {
          continue;
        }
        for (const n of names) if (n !== 'bpftool' && !existsSync(join(bin, n))) symlinkSync(join(dir, n), join(bin, n));
      }
      // A first run on this kernel: what an earlier run read from BTF (server/kernel-cache.ts) would
      // answer without bpftool, rightly, since the kernel has not changed.
      const r = await cli(['trace', '--no-model', '--duration', '1', '--filter', 'udp port 1'], { env: { PATH: bin, HOPTRACE_KERNEL_CACHE_DIR: join(bin, 'first-run') } });
      expect(r.exitCode).toBe(0);
      expect(String(r.stderr)).toMatch(/^hoptrace: could not read the kernel's drop reasons from BTF \(is bpftool installed\? `hoptrace setup` installs it\): drops show their reason as reason-N$/m);
      expect(String(r.stderr)).toMatch(/^ready$/m);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
