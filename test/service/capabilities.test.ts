/**
 * detectCapabilities judges each probe kind from what this kernel exposes, not from
 * `bpftrace --info` (which says kprobe: yes even where kprobe_events does not exist).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { versionAtLeast } from '../../server/bpftrace-binary.js';
import { detectCapabilities } from '../../server/capabilities.js';

describe('detectCapabilities', () => {
  it('agrees with the kernel about tracefs, tracepoints, kprobes and BTF', async () => {
    const caps = await detectCapabilities();
    expect(caps.btf).toBe(existsSync('/sys/kernel/btf/vmlinux'));
    expect(caps.root).toBe(process.getuid?.() === 0);
    const tracefs = ['/sys/kernel/debug/tracing', '/sys/kernel/tracing'].find((d) => existsSync(`${d}/events`)) ?? null;
    expect(caps.tracefs).toBe(tracefs);
    if (tracefs) {
      expect(caps.probes.tracepoint.available).toBe(true);
      for (const [tp, present] of Object.entries(caps.tracepoints)) {
        const [group, name] = tp.split(':');
        expect(present, tp).toBe(existsSync(`${tracefs}/events/${group}/${name}`));
      }
      const kprobes = existsSync(`${tracefs}/kprobe_events`);
      expect(caps.probes.kprobe.available).toBe(kprobes);
      if (!kprobes) expect(caps.probes.kprobe.reason).toMatch(/kprobe_events/);
    } else {
      expect(caps.probes.tracepoint.available).toBe(false);
      expect(caps.probes.tracepoint.reason).toMatch(/tracefs/);
    }
    if (!caps.probes.kfunc.available) expect(caps.probes.kfunc.reason).toBeTruthy();
  });

  it('reports which bpftrace runs, its version, the probe tier and why, and whether the host can trace', async () => {
    const caps = await detectCapabilities();
    const path = caps.bpftrace.path;
    if (path) {
      // The version is what that very bpftrace prints.
      const v = await execa(path, ['--version'], { reject: false });
      expect(`bpftrace v${caps.bpftrace.version ?? ''}`).toBe(String(v.stdout).trim());
      expect(caps.bpftrace.tier).toBe(versionAtLeast(caps.bpftrace.version ?? '0.0', [0, 21]) && caps.bpftrace.why?.includes('raw tracepoints, arguments checked') ? 'fast' : 'classic');
      expect(caps.bpftrace.why).toBeTruthy();
      expect(['override', 'private', 'system']).toContain(caps.bpftrace.source);
    } else {
      expect(caps.bpftrace.version).toBeNull();
    }
    expect(caps.canTrace).toBe(caps.problems.length === 0);
    if (process.getuid?.() !== 0) expect(caps.problems.join(' ')).toMatch(/root/);
  });
});
