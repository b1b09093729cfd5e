/**
 * The function-level tier cannot attach on this kernel (no kprobes), so it must not rot unseen:
 * every deep script and every notes script is compiled against the running kernel's BTF with
 * bpftrace's dry run (-d type-checks, attaches nothing), inside the hop program it runs in; the
 * functions it probes exist in BTF; and the dry run does catch a broken script.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { checkScripts, dryRun } from '../../server/commands/doctor.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { buildNoteBlocks, DEEP_PROBES } from '../../probes/notes/assemble.js';
import { compileToBpftrace, parseFilter } from '../../shared/filter/index.js';
import { detectCapabilities } from '../../server/capabilities.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const canCompile = isRoot && existsSync('/sys/kernel/btf/vmlinux');

describe.skipIf(!canCompile)(`function-level and notes scripts against this kernel's BTF (${NEEDS_ROOT}, with BTF)`, () => {
  it('compiles every notes and deep script with bpftrace -d', async () => {
    const results = await checkScripts();
    expect(results.map((r) => r.file)).toEqual([
      'probes/notes/current.bt', 'probes/notes/fib.bt', 'probes/notes/fib6.bt', 'probes/notes/fdb.bt', 'probes/notes/neigh.bt',
      'probes/notes/icmp.bt', 'probes/notes/qdisc.bt',
      'probes/deep/nf_hook_slow.bt', 'probes/deep/bridge.bt', 'probes/deep/veth.bt', 'probes/deep/ip_forward.bt', 'probes/deep/nat.bt',
    ]);
    expect(results.filter((r) => !r.ok)).toEqual([]);
  }, 300_000);

  it('compiles the whole program with a filter (flow memory on) and both tiers', async () => {
    const filterExpr = compileToBpftrace(parseFilter('host 10.244.1.11 and udp port 53 or icmp6'));
    const program = buildHopProgram({ filterExpr, selfNetns: 1, reasonNotSpecified: 2, extraBlocks: buildNoteBlocks({ filterExpr, deep: true }) });
    expect(program).toContain('kprobe:nf_hook_slow');
    expect(program).toContain('tracepoint:qdisc:qdisc_enqueue');
    expect(await dryRun(program)).toEqual({ ok: true, error: null });
  }, 120_000);

  it('fails the dry run of a script that reads a field the kernel does not have', async () => {
    const broken = 'kprobe:nf_hook_slow { $s = (struct nf_hook_state *)arg1; printf("%d\\n", $s->no_such_field); }';
    const r = await dryRun(buildHopProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, extraBlocks: [broken] }));
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/no_such_field/);
  }, 120_000);

  it('finds every probed function in BTF, and reports the tier unattachable exactly when kprobes are missing', async () => {
    const caps = await detectCapabilities();
    expect(caps.tiers.deepScripts.map((d) => d.file)).toEqual(DEEP_PROBES.map((p) => p.file));
    for (const d of caps.tiers.deepScripts) {
      expect(d.inBtf, d.file).toBe(true);
      expect(d.attachable, d.file).toBe(caps.probes.kprobe.available);
    }
  }, 60_000);
});
