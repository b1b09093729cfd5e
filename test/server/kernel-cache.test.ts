import { describe, it, expect, afterEach } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { perKernel } from '../../server/kernel-cache.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

describe.skipIf(!isRoot)(`facts about the running kernel kept between runs (${NEEDS_ROOT})`, () => {
  const dirs: string[] = [];
  const folder = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'kcache-'));
    dirs.push(d);
    process.env.HOPTRACE_KERNEL_CACHE_DIR = join(d, 'cache');
    return join(d, 'cache');
  };
  afterEach(() => {
    delete process.env.HOPTRACE_KERNEL_CACHE_DIR;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('should read the kernel once, then answer from the stored fact', async () => {
    const dir = folder();
    let reads = 0;
    const read = async (): Promise<string[]> => { reads++; return ['a', 'b']; };
    expect(await perKernel('t', read, () => true)).toEqual(['a', 'b']);
    expect(await perKernel('t', read, () => true)).toEqual(['a', 'b']);
    expect(reads).toBe(1);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('should not keep an answer that is not settled (a failed or timed-out bpftool)', async () => {
    const dir = folder();
    let reads = 0;
    const read = async (): Promise<string[]> => { reads++; return []; };
    await perKernel('t', read, (v) => v.length > 0);
    await perKernel('t', read, (v) => v.length > 0);
    expect(reads).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('should not trust a folder others can write to', async () => {
    const dir = folder();
    await perKernel('t', async () => 1, () => true);
    chmodSync(dir, 0o777);
    let reads = 0;
    expect(await perKernel('t', async () => { reads++; return 2; }, () => true)).toBe(2);
    expect(reads).toBe(1);
  });
});
