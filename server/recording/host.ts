/**
 * What a recording's header says about the host it was made on: name, kernel, bpftrace version,
 * the probes attached. Read once per process.
 */
import { hostname, release } from 'node:os';
import { execa } from 'execa';
import { HOP_PROBES } from '../../probes/assemble.js';
import { bpftraceCommand } from '../bpftrace-binary.js';

export interface HostInfo {
  readonly host: string;
  readonly kernel: string;
  readonly bpftraceVersion: string;
  readonly probes: readonly string[];
}

let cached: Promise<HostInfo> | undefined;

export function hostInfo(): Promise<HostInfo> {
  cached ??= bpftraceCommand().then((cmd) => execa(cmd, ['--version'], { reject: false, timeout: 5000 })).then((r) => ({
    host: hostname(),
    kernel: release(),
    bpftraceVersion: r.exitCode === 0 ? String(r.stdout).trim() : 'unknown',
    probes: HOP_PROBES.map((p) => p.tracepoint),
  }));
  return cached;
}
