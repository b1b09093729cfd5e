/**
 * Facts read from the running kernel's BTF (the hop tracepoints' argument check, the drop-reason
 * table), kept between runs: each `trace`, `record` or `stats` used to run `bpftool btf dump`
 * over all of vmlinux (5 MB of BTF, 12 MB of text) at start, which on a busy host took longer
 * than the tracing it prepared. The facts cannot change while the kernel runs, so they are
 * stored under /run/hoptrace (tmpfs: gone at reboot), keyed by the kernel's release and its BTF
 * file's size and time. Only root writes there; a folder that anyone else could write to is not
 * trusted, and without it every run reads the kernel again, as before.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const BTF = '/sys/kernel/btf/vmlinux';

/** This boot's kernel, as a file-name-safe key; null when there is no BTF to key it by. */
function kernelKey(): string | null {
  try {
    const st = statSync(BTF);
    return createHash('sha256').update(`${release()}|${st.size}|${st.mtimeMs}`).digest('hex').slice(0, 16);
  } catch {
    return null;
  }
}

/** The cache folder, made if need be, or null when it cannot be trusted (not root's, or writable by others). */
function cacheDir(): string | null {
  if (process.getuid?.() !== 0) return null;
  // HOPTRACE_KERNEL_CACHE_DIR: another folder (tests), held to the same rules.
  const DIR = process.env.HOPTRACE_KERNEL_CACHE_DIR ?? '/run/hoptrace';
  try {
    mkdirSync(DIR, { recursive: true, mode: 0o700 });
    const st = statSync(DIR);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) return null;
    return DIR;
  } catch {
    return null;
  }
}

/**
 * `compute()`'s answer for this kernel, from the cache when an earlier run stored it. Answers that
 * `keep` rejects (e.g. "bpftool timed out") are returned but not stored, so a later run tries again.
 */
export async function perKernel<T>(name: string, compute: () => Promise<T>, keep: (v: T) => boolean): Promise<T> {
  const key = kernelKey();
  const dir = key ? cacheDir() : null;
  const file = dir && key ? join(dir, `${name}-${key}.json`) : null;
  if (file) {
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { value: T }).value;
    } catch {
      // Not there yet, or unreadable: read the kernel.
    }
  }
  const value = await compute();
  if (file && keep(value)) {
    try {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ value }), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // A full or read-only /run: the next run reads the kernel again.
    }
  }
  return value;
}
