/**
 * `agent --namespaces`: the namespace limit is part of the probe program (namespace inode
 * comparisons, in the kernel), and the program with it still compiles on this kernel.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { buildHopProgram } from '../../probes/assemble.js';
import { dryRun } from '../../server/commands/doctor.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const base = { filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2 } as const;

describe('namespace limit in the hop program', () => {
  it('prints only the listed namespaces\' hops, in every hop probe', () => {
    const p = buildHopProgram({ ...base, netnsAllow: [4026532001, 4026532002] });
    expect(p.match(/else if \(\$netns == 4026532001 \|\| \$netns == 4026532002\)/g)).toHaveLength(5);
  });

  it('without a limit prints every namespace; an empty list prints none', () => {
    expect(buildHopProgram(base).match(/else if \(1\)/g)).toHaveLength(5);
    expect(buildHopProgram({ ...base, netnsAllow: [] }).match(/else if \(0\)/g)).toHaveLength(5);
  });

  it('refuses anything but inode numbers', () => {
    expect(() => buildHopProgram({ ...base, netnsAllow: [-1] })).toThrow(/netnsAllow/);
    expect(() => buildHopProgram({ ...base, netnsAllow: [1.5] })).toThrow(/netnsAllow/);
  });

  // The classic tier by bpftrace's dry run; the fast tier's program cannot be dry-run (bpftrace
  // aborts on -d with raw tracepoints, with or without the limit), and runs for real with it in
  // test/integration/hub-cluster.test.ts.
  it.skipIf(!isRoot || !existsSync('/sys/kernel/btf/vmlinux'))(`compiles with the limit (${NEEDS_ROOT})`, async () => {
    expect(await dryRun(buildHopProgram({ ...base, netnsAllow: [4026532001, 4026532002] }))).toEqual({ ok: true, error: null });
  }, 300_000);
});
