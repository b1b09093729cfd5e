/**
 * Which bpftrace runs (server/bpftrace-binary.ts), with real faults: a private copy or an
 * override that is missing, corrupt, built for another architecture or failing to start gets one
 * sentence naming the fix, and the system's bpftrace is used instead; nothing throws. Real files
 * in a temp folder, real exec.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, rmSync, mkdirSync, symlinkSync, existsSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { decide, parseBpftraceVersion, versionAtLeast, privateBpftracePath } from '../../server/bpftrace-binary.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const systemVersion = await execa('bpftrace', ['--version'], { reject: false }).then((r) => parseBpftraceVersion(String(r.stdout)), () => null);
const privateOk = existsSync(privateBpftracePath());

describe('bpftrace versions', () => {
  it('should read the version bpftrace prints and compare it with the fast tier\'s minimum', () => {
    expect(parseBpftraceVersion('bpftrace v0.23.2')).toBe('0.23.2');
    expect(parseBpftraceVersion('bpftrace v0.17.0\n')).toBe('0.17.0');
    expect(parseBpftraceVersion('bpftrace 0.21.0-rc1')).toBe('0.21.0');
    expect(parseBpftraceVersion('garbage')).toBeNull();
    expect(versionAtLeast('0.23.2', [0, 21])).toBe(true);
    expect(versionAtLeast('0.21.0', [0, 21])).toBe(true);
    expect(versionAtLeast('0.20.9', [0, 21])).toBe(false);
    expect(versionAtLeast('1.0.0', [0, 21])).toBe(true);
  });
});

describe.skipIf(systemVersion === null)('choosing a bpftrace with broken candidates (real files, real exec)', () => {
  let dir: string;
  const file = (name: string, content: string | Buffer, mode = 0o755): string => {
    const p = join(dir, name);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };
  const fellBack = (c: Awaited<ReturnType<typeof decide>>): void => {
    expect(c.source).toBe('system');
    expect(c.command).toBe('bpftrace');
    expect(c.version).toBe(systemVersion);
    expect(c.warnings.join(' ')).toMatch(new RegExp(`using the system's bpftrace ${systemVersion?.replace(/\./g, '\\.') ?? ''} instead`));
  };
  const nowhere = (): string => join(dir, 'no-private', 'bin', 'bpftrace');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hoptrace-bpfbin-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should say an override that does not exist cannot be used, name the fix and use the system\'s', async () => {
    const c = await decide(join(dir, 'missing'), nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/HOPTRACE_BPFTRACE=.*missing cannot be used: it does not exist\. Point it at a working bpftrace, or unset it/);
  });

  it('should refuse a corrupt binary (random bytes, executable) as not a program', async () => {
    const corrupt = file('corrupt', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)));
    const c = await decide(corrupt, nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/cannot be used: it is not a program \(corrupt: neither an ELF binary nor a script\)/);
  });

  it('should refuse a binary built for another architecture', async () => {
    // /bin/true with its ELF machine changed to AArch64 (183): exec fails with ENOEXEC.
    const elf = readFileSync('/bin/true');
    elf.writeUInt16LE(183, 18);
    const foreign = file('aarch64-bpftrace', elf);
    const c = await decide(foreign, nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/it is built for another architecture \(ELF machine 183, this is x64\)/);
  });

  it('should refuse a bpftrace that fails to start, quoting its first line', async () => {
    const failing = file('failing', '#!/bin/sh\necho "bpftrace: error while loading shared libraries: libLLVM.so.19.1: cannot open shared object file" >&2\nexit 127\n');
    const c = await decide(failing, nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/it does not start \(bpftrace: error while loading shared libraries: libLLVM\.so\.19\.1/);
  });

  it('should refuse a file that is not executable', async () => {
    const plain = file('not-exec', '#!/bin/sh\necho bpftrace v0.23.2\n', 0o644);
    const c = await decide(plain, nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/it is not executable/);
  });

  it.skipIf(versionAtLeast(systemVersion ?? '0.0', [0, 21]))('should tell how to get the fast tier when there is no private copy, and use the system\'s', async () => {
    const c = await decide(undefined, nowhere(), 'bpftrace');
    fellBack(c);
    expect(c.tier).toBe('classic');
    expect(c.warnings[0]).toMatch(/no private bpftrace 0\.21\+ .*run `hoptrace setup` \(as root\) for the fast tier/);
    expect(c.why).toMatch(/has no raw tracepoints \(0\.21 or newer has\), so the probes use classic tracepoints/);
  });

  // The private copy itself broken in each way the issue names: the warning names it and `hoptrace
  // setup`, and the system's bpftrace is used. (Only where the private copy is consulted: a system
  // bpftrace older than 0.21.)
  it.skipIf(versionAtLeast(systemVersion ?? '0.0', [0, 21])).each([
    { fault: 'corrupt', make: () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)), says: /it is not a program \(corrupt: neither an ELF binary nor a script\)/ },
    { fault: 'of another architecture', make: () => { const elf = readFileSync('/bin/true'); elf.writeUInt16LE(183, 18); return elf; }, says: /it is built for another architecture \(ELF machine 183, this is x64\)/ },
    { fault: 'failing to start', make: () => '#!/bin/sh\necho "bpftrace: error while loading shared libraries: libz3.so.4" >&2\nexit 127\n', says: /it does not start \(bpftrace: error while loading shared libraries: libz3\.so\.4/ },
  ])('should fall back to the system\'s bpftrace from a private copy $fault, naming hoptrace setup', async ({ fault, make, says }) => {
    const folder = join(dir, `private ${fault}`, 'bin');
    mkdirSync(folder, { recursive: true });
    const path = join(folder, 'bpftrace');
    writeFileSync(path, make());
    chmodSync(path, 0o755);
    const c = await decide(undefined, path, 'bpftrace');
    fellBack(c);
    expect(c.tier).toBe('classic');
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(new RegExp(`the private bpftrace \\(${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) cannot be used: `));
    expect(c.warnings[0]).toMatch(says);
    expect(c.warnings[0]).toMatch(/To fix it, run `hoptrace setup` \(as root\) to make it again; using the system's bpftrace/);
    expect(c.why).toMatch(/the private copy cannot be used, so the system's bpftrace is used/);
  });

  it.skipIf(!privateOk || versionAtLeast(systemVersion ?? '0.0', [0, 21]))('should say a private copy whose libraries are gone cannot be used and name hoptrace setup', async () => {
    // A copy of the wrapper and its loader link, without the unpacked packages behind them.
    const broken = join(dir, 'broken-copy');
    mkdirSync(join(broken, 'bin'), { recursive: true });
    mkdirSync(join(broken, 'ld'), { recursive: true });
    copyFileSync(privateBpftracePath(), join(broken, 'bin', 'bpftrace'));
    symlinkSync('../root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(broken, 'ld', 'bpftrace'));
    const c = await decide(undefined, join(broken, 'bin', 'bpftrace'), 'bpftrace');
    fellBack(c);
    expect(c.warnings[0]).toMatch(/the private bpftrace \(.*broken-copy\/bin\/bpftrace\) cannot be used: it does not start .*To fix it, run `hoptrace setup` \(as root\) to make it again/);
    expect(c.why).toMatch(/the private copy cannot be used, so the system's bpftrace is used/);
  });

  it.skipIf(!privateOk || !isRoot)(`should use a working private copy on the fast tier (${NEEDS_ROOT})`, async () => {
    const c = await decide(undefined, privateBpftracePath(), 'bpftrace');
    expect(c.warnings).toEqual([]);
    expect(versionAtLeast(c.version ?? '0.0', [0, 21])).toBe(true);
    expect(c.tier).toBe('fast');
    expect(c.why).toMatch(/raw tracepoints, arguments checked against the kernel's BTF/);
  });

  it.skipIf(!isRoot)(`should report a broken override in doctor and still trace with the system's bpftrace (${NEEDS_ROOT})`, async () => {
    const corrupt = file('corrupt-cli', Buffer.alloc(2048, 0xcc));
    const r = await execa('npx', ['tsx', 'server/cli.ts', 'doctor', '--json'], { reject: false, env: { HOPTRACE_BPFTRACE: corrupt }, timeout: 120_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const caps = JSON.parse(String(r.stdout)) as { bpftrace: { source: string; version: string; warnings: string[]; tier: string } };
    expect(caps.bpftrace.source).toBe('system');
    expect(caps.bpftrace.version).toBe(systemVersion);
    expect(caps.bpftrace.warnings[0]).toMatch(/HOPTRACE_BPFTRACE=.*corrupt-cli cannot be used/);
    const human = await execa('npx', ['tsx', 'server/cli.ts', 'doctor'], { reject: false, env: { HOPTRACE_BPFTRACE: corrupt }, timeout: 120_000 });
    expect(String(human.stdout)).toMatch(/! HOPTRACE_BPFTRACE=.*corrupt-cli cannot be used: .*using the system's bpftrace/);
    expect(String(human.stderr)).not.toMatch(/\n\s+at /);
    const t = await execa('npx', ['tsx', 'server/cli.ts', 'trace', '--json', '--duration', '1', '--filter', 'udp port 1'], { reject: false, env: { HOPTRACE_BPFTRACE: corrupt }, timeout: 120_000 });
    expect(t.exitCode, String(t.stderr)).toBe(0);
    expect(String(t.stderr)).toMatch(/hoptrace: HOPTRACE_BPFTRACE=.*corrupt-cli cannot be used/);
  }, 300_000);
});
