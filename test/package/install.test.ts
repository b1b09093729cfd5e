/**
 * The package as a user gets it: a copy of this checkout is packed with `npm pack` (its prepack
 * builds), the tarball is installed into an empty prefix with `npm install -g --prefix`, and the
 * installed `hoptrace` runs from a folder outside the checkout: --help, --version, doctor --json,
 * a short trace --json on namespaces of this file, serve answering /api/health and serving the
 * dashboard. Then the bad input: a package with files missing, and `hoptrace setup` without root,
 * without apt-get, with an apt-get that fails, on a non-Debian host. The systemd unit is checked
 * with systemd-analyze verify.
 *
 * The private bpftrace is not downloaded again: HOPTRACE_BPFTRACE points at the copy setup made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from '../helpers/cli.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { privateBpftracePath } from '../../server/bpftrace-binary.js';

const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at |Error:|node:internal/);
const lines = (s: unknown): string[] => String(s).split('\n').filter((l) => l.trim() !== '');

let tmp = '';
let prefix = '';
let pkgDir = '';
let bin = '';
let elsewhere = '';
let packed: { size: number; unpackedSize: number; files: Array<{ path: string }> } | undefined;
let packSeconds = 0;
const bpftraceEnv: Record<string, string> = existsSync(privateBpftracePath()) ? { HOPTRACE_BPFTRACE: privateBpftracePath() } : {};

/** Runs the installed hoptrace from a folder outside the checkout. */
const hoptrace = (args: string[], opts: { env?: Record<string, string>; timeout?: number } = {}) =>
  execa(bin, args, { cwd: elsewhere, reject: false, timeout: opts.timeout ?? 60_000, env: { ...bpftraceEnv, ...opts.env } });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hoptrace-pkg-'));
  chmodSync(tmp, 0o755); // the not-root test runs the installed copy as uid 65534
  // A copy of the checkout (tracked and new files, as a fresh clone has them), so that packing
  // builds there and never touches the dist/ the other tests use; node_modules is shared.
  const src = join(tmp, 'src');
  const listed = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO });
  for (const f of String(listed.stdout).split('\0').filter(Boolean)) {
    const from = join(REPO, f);
    if (!existsSync(from) || statSync(from).isDirectory()) continue;
    mkdirSync(dirname(join(src, f)), { recursive: true });
    copyFileSync(from, join(src, f));
    chmodSync(join(src, f), statSync(from).mode & 0o777);
  }
  symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'));
  const t0 = Date.now();
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: src, reject: false });
  packSeconds = (Date.now() - t0) / 1000;
  if (pack.exitCode !== 0) throw new Error(`npm pack failed: ${String(pack.stderr).slice(-2000)}`);
  // npm prints the build's output before the JSON.
  const out = String(pack.stdout);
  packed = (JSON.parse(out.slice(out.lastIndexOf('\n[') + 1)) as Array<typeof packed>)[0];
  const tarball = join(tmp, `hoptrace-${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string}.tgz`);
  prefix = join(tmp, 'prefix');
  const inst = await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: tmp, reject: false });
  if (inst.exitCode !== 0) throw new Error(`npm install failed: ${String(inst.stderr).slice(-2000)}`);
  pkgDir = join(prefix, 'lib', 'node_modules', 'hoptrace');
  bin = join(prefix, 'bin', 'hoptrace');
  elsewhere = join(tmp, 'elsewhere');
  mkdirSync(elsewhere);
}, 600_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('should be packed (prepack builds) in well under minutes', () => {
    expect(packSeconds).toBeLessThan(180);
  });

  it('should carry exactly what running needs: the manifest of the build, the docs, the setup script and the unit', () => {
    const files = new Set(packed?.files.map((f) => f.path));
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'dist/install-manifest.json'), 'utf8')) as { parts: Record<string, string[]> };
    const expected = new Set([
      ...Object.values(manifest.parts).flat(),
      'dist/install-manifest.json', 'package.json', 'README.md', 'LICENSE', 'bin/hoptrace.js',
      'scripts/bpftrace-private.sh', 'packaging/systemd/hoptrace.service', 'packaging/systemd/hoptrace.env',
    ]);
    expect([...files].sort()).toEqual([...expected].sort());
    for (const part of ['program', 'probes', 'dashboard', 'schema']) expect(manifest.parts[part]?.length ?? 0).toBeGreaterThan(0);
    expect(manifest.parts.probes).toContain('probes/decode.bt');
    expect(manifest.parts.dashboard).toContain('web/dist/index.html');
    expect([...files].filter((f) => /\.test\.|\.map$|^test\/|^bench\/|fixtures|\.ts$/.test(f))).toEqual([]);
  });

  it('should state its packed and installed size in the README, as measured', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const m = /packed\s+(\d+(?:\.\d+)?) MB,\s+(\d+(?:\.\d+)?) MB\s+installed/.exec(readme);
    expect(m, 'README names "packed X MB, Y MB installed"').not.toBeNull();
    // Within 25 % of this build's (sizes move a little with every change).
    expect(Math.abs(Number(m?.[1]) - (packed?.size ?? 0) / 1e6) / ((packed?.size ?? 1) / 1e6)).toBeLessThan(0.25);
    expect(Math.abs(Number(m?.[2]) - (packed?.unpackedSize ?? 0) / 1e6) / ((packed?.unpackedSize ?? 1) / 1e6)).toBeLessThan(0.25);
  });
});

describe('the installed command, from a folder outside the checkout', () => {
  it('should print its help, naming every command', async () => {
    const r = await hoptrace(['--help']);
    expect(r.exitCode).toBe(0);
    for (const c of ['trace', 'serve', 'record', 'replay', 'export', 'stats', 'doctor', 'lab', 'setup']) expect(String(r.stdout)).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('should print its version, the bpftrace it uses and the kernel', async () => {
    const r = await hoptrace(['--version']);
    expect(r.exitCode).toBe(0);
    const [v, b, k] = lines(r.stdout);
    expect(v).toBe(`hoptrace ${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string}`);
    expect(b).toMatch(/^bpftrace \d+\.\d+(\.\d+)? \(.+; (fast|classic) probe tier\)$/);
    expect(k).toBe(`kernel   ${String((await execa('uname', ['-r'])).stdout).trim()}`);
  });

  it('should answer the other commands\' --help (lab, record, replay, export, stats, setup)', async () => {
    for (const c of ['lab', 'record', 'replay', 'export', 'stats', 'setup', 'topology', 'path', 'compare']) {
      const r = await hoptrace([c, '--help']);
      expect(r.exitCode, c).toBe(0);
      expect(String(r.stdout), c).toMatch(new RegExp(`usage: hoptrace ${c}`));
    }
  });

  it.skipIf(!isRoot)(`should report the host with doctor --json (${NEEDS_ROOT})`, async () => {
    const r = await hoptrace(['doctor', '--json']);
    expect(r.exitCode).toBe(0);
    const caps = JSON.parse(String(r.stdout)) as { canTrace: boolean; bpftrace: { version: string | null } };
    expect(caps.canTrace).toBe(true);
    expect(caps.bpftrace.version).toMatch(/^\d+\.\d+/);
  });

  describe.skipIf(!isRoot)(`on namespaces of its own (${NEEDS_ROOT})`, () => {
    const A = 'h6p-pkga';
    const B = 'h6p-pkgb';
    beforeAll(async () => {
      for (const ns of [A, B]) await execa('ip', ['netns', 'del', ns], { reject: false });
      await execa('ip', ['netns', 'add', A]);
      await execa('ip', ['netns', 'add', B]);
      await execa('ip', ['link', 'add', 'h6pk0', 'netns', A, 'type', 'veth', 'peer', 'name', 'h6pk1', 'netns', B]);
      await execa('ip', ['-n', A, 'addr', 'add', '10.167.7.1/24', 'dev', 'h6pk0']);
      await execa('ip', ['-n', B, 'addr', 'add', '10.167.7.2/24', 'dev', 'h6pk1']);
      for (const [ns, dev] of [[A, 'h6pk0'], [B, 'h6pk1']] as const) {
        await execa('ip', ['-n', ns, 'link', 'set', dev, 'up']);
        await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
    });
    afterAll(async () => {
      for (const ns of [A, B]) await execa('ip', ['netns', 'del', ns], { reject: false });
    });

    /** Runs the installed hoptrace while pinging across the namespaces, until it ends. */
    async function whilePinging(args: string[]) {
      // Generous: --duration counts from `ready`, and bpftrace can take a minute to start on a loaded machine.
      const run = hoptrace(args, { timeout: 200_000 });
      let stop = false;
      const pinging = (async () => {
        while (!stop) {
          await execa('ip', ['netns', 'exec', A, 'ping', '-c', '1', '-W', '1', '10.167.7.2'], { reject: false });
          await new Promise((r) => setTimeout(r, 300));
        }
      })();
      const r = await run;
      stop = true;
      await pinging;
      return r;
    }

    it('should trace a ping with trace --json', async () => {
      const r = await whilePinging(['trace', '--json', '--count', '2', '--duration', '30', '--filter', 'net 10.167.7.0/24']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const packets = lines(r.stdout).map((l) => JSON.parse(l) as { proto?: string; hops?: Array<{ ns: string }>; type?: string }).filter((p) => p.hops);
      expect(packets.length).toBe(2);
      expect(packets[0]?.proto).toBe('icmp');
      expect(new Set(packets.flatMap((p) => p.hops?.map((h) => h.ns)))).toEqual(new Set([A, B]));
    }, 240_000);

    it('should record, replay, export and measure stats', async () => {
      const file = join(elsewhere, 'ping.hoptrace');
      const rec = await whilePinging(['record', '-o', 'ping.hoptrace', '--count', '2', '--duration', '30', '--filter', 'net 10.167.7.0/24']);
      expect(rec.exitCode, String(rec.stderr)).toBe(0);
      expect(existsSync(file)).toBe(true);
      const replay = await hoptrace(['replay', 'ping.hoptrace', '--json']);
      expect(replay.exitCode, String(replay.stderr)).toBe(0);
      expect(lines(replay.stdout).map((l) => JSON.parse(l) as { proto?: string }).filter((p) => p.proto === 'icmp').length).toBeGreaterThanOrEqual(2);
      const exp = await hoptrace(['export', 'ping.hoptrace', '--pcapng', 'ping.pcapng']);
      expect(exp.exitCode, String(exp.stderr)).toBe(0);
      expect(readFileSync(join(elsewhere, 'ping.pcapng')).readUInt32LE(0)).toBe(0x0a0d0d0a); // pcapng's section header block
      const stats = await whilePinging(['stats', '--json', '--duration', '8', '--interval', '2', '--filter', 'net 10.167.7.0/24']);
      expect(stats.exitCode, String(stats.stderr)).toBe(0);
      const intervals = lines(stats.stdout).map((l) => JSON.parse(l) as { type: string; final: boolean; filter: string });
      expect(intervals.length).toBeGreaterThan(1);
      expect(intervals.every((i) => i.type === 'stats' && i.filter === 'net 10.167.7.0/24')).toBe(true);
      expect(intervals.at(-1)?.final).toBe(true);
    }, 400_000);

    it('should serve /api/health and the dashboard', async () => {
      const data = join(tmp, 'data');
      const serve = execa(bin, ['serve', '--port', '0', '--data-dir', data], { cwd: elsewhere, reject: false, env: bpftraceEnv });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          serve.stdout?.on('data', (d: Buffer) => {
            out += String(d);
            const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
            if (m?.[1]) resolve(m[1]);
          });
          void serve.then((r) => reject(new Error(`serve exited ${String(r.exitCode)}: ${String(r.stderr)}`)));
        });
        const health = await fetch(new URL('api/health', url));
        expect(health.status).toBe(200);
        const page = await fetch(url);
        expect(page.status).toBe(200);
        const html = await page.text();
        expect(html).toMatch(/<div id="app">/);
        const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1] ?? '');
        expect(assets.length).toBeGreaterThan(0);
        for (const a of assets) expect((await fetch(new URL(a, url))).status, a).toBe(200);
      } finally {
        serve.kill('SIGINT');
        await serve;
      }
    }, 120_000);
  });
});

describe('a half-installed package', () => {
  /** A copy of the installed package with `remove` deleted from it. */
  function brokenCopy(name: string, remove: string[]): string {
    const dir = join(tmp, name);
    cpSync(pkgDir, dir, { recursive: true, verbatimSymlinks: true });
    for (const f of remove) rmSync(join(dir, f), { recursive: true, force: true });
    return join(dir, 'bin', 'hoptrace.js');
  }
  const run = (entry: string, args: string[]) => execa(process.execPath, [entry, ...args], { cwd: elsewhere, reject: false, env: bpftraceEnv });

  it('should name the missing dashboard files when serving', async () => {
    const entry = brokenCopy('no-dashboard', ['web/dist/index.html']);
    const r = await run(entry, ['serve', '--port', '0']);
    expect(r.exitCode).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^hoptrace: this installation is incomplete: dashboard files are missing \(web\/dist\/index\.html\) in .*no-dashboard\/\. Reinstall hoptrace \(npm install -g hoptrace\)\.$/)]);
    noStack(String(r.stderr));
    // Commands that do not need the dashboard still run.
    expect((await run(entry, ['--help'])).exitCode).toBe(0);
  });

  it('should name the missing probes when tracing, and not when only asked for help', async () => {
    const entry = brokenCopy('no-probes', ['probes/decode.bt', 'probes/stats']);
    const r = await run(entry, ['trace', '--duration', '1']);
    expect(r.exitCode).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^hoptrace: this installation is incomplete: probe files are missing \(probes\/decode\.bt, probes\/stats\/consume\.bt, .* and \d+ more\) in .*no-probes\/\. Reinstall hoptrace/)]);
    noStack(String(r.stderr));
    expect((await run(entry, ['trace', '--help'])).exitCode).toBe(0);
  });

  it('should name missing program files, and a missing manifest', async () => {
    const entry = brokenCopy('no-program', ['dist/server/commands/trace.js']);
    const r = await run(entry, ['--help']);
    expect(r.exitCode).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^hoptrace: this installation is incomplete: program files are missing \(dist\/server\/commands\/trace\.js\)/)]);
    const r2 = await run(brokenCopy('no-manifest', ['dist/install-manifest.json']), ['--help']);
    expect(r2.exitCode).toBe(2);
    expect(lines(r2.stderr)).toEqual(['hoptrace: this installation is incomplete: dist/install-manifest.json is missing. Reinstall hoptrace (npm install -g hoptrace).']);
  });
});

describe('hoptrace setup', () => {
  /**
   * A PATH folder with the host's own tools hoptrace needs except `without`, and node, so that a
   * missing tool and a missing or failing apt-get are real to the installed command.
   */
  async function pathWithout(name: string, without: string[], extra: Record<string, string> = {}): Promise<string> {
    const dir = join(tmp, name);
    mkdirSync(dir);
    for (const tool of ['node', 'bpftool', 'ip', 'nft', 'nsenter', 'ping', 'bpftrace', 'dirname', 'mount', 'dpkg', 'sh']) {
      if (without.includes(tool)) continue;
      const at = String((await execa('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false })).stdout).trim();
      if (at) symlinkSync(at, join(dir, tool));
    }
    for (const [file, text] of Object.entries(extra)) {
      writeFileSync(join(dir, file), text);
      chmodSync(join(dir, file), 0o755);
    }
    return dir;
  }

  it.skipIf(!isRoot)(`should say it needs root in one line when run as another user (${NEEDS_ROOT}: it switches to uid 65534)`, async () => {
    const r = await execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, join(pkgDir, 'bin', 'hoptrace.js'), 'setup'], { cwd: '/', reject: false });
    expect(r.exitCode).toBe(1);
    expect(lines(r.stderr)).toEqual(['hoptrace setup: must run as root to install packages and mount tracefs: run `sudo hoptrace setup` (`hoptrace setup --check` only looks).']);
  });

  it.skipIf(!isRoot)(`should say everything is in place, twice, changing nothing, on a host that has it all (${NEEDS_ROOT})`, async () => {
    for (let i = 0; i < 2; i++) {
      const r = await hoptrace(['setup']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(String(r.stdout)).toMatch(/bpftool, ip, nft, nsenter, ping, bpftrace: in place/);
      expect(String(r.stdout)).toMatch(/tracefs and debugfs: mounted/);
      expect(String(r.stdout)).toMatch(/is new enough for the fast probe tier|making a private copy/);
      expect(String(r.stdout)).not.toMatch(/installing/);
      expect(String(r.stdout)).toMatch(/done: this host has everything hoptrace needs/);
    }
    const check = await hoptrace(['setup', '--check']);
    expect(check.exitCode).toBe(0);
    expect(String(check.stdout)).toMatch(/^ok {7}nft {7}\//m);
  });

  it.skipIf(!isRoot)(`should report a missing tool with --check and exit 1 (${NEEDS_ROOT})`, async () => {
    const path = await pathWithout('no-nft-check', ['nft']);
    const r = await hoptrace(['setup', '--check'], { env: { PATH: path } });
    expect(r.exitCode).toBe(1);
    expect(String(r.stdout)).toMatch(/^missing {2}nft {7}reads NAT and filter rules; --netfilter: package nftables$/m);
    expect(String(r.stdout)).toMatch(/something is missing: run `hoptrace setup` as root/);
  });

  it.skipIf(!isRoot)(`should say what to install in one line when apt-get is not there (${NEEDS_ROOT})`, async () => {
    const path = await pathWithout('no-apt', ['nft']);
    const r = await hoptrace(['setup'], { env: { PATH: path } });
    expect(r.exitCode).toBe(1);
    expect(lines(r.stderr)).toEqual(['hoptrace setup: apt-get is not on PATH: install them with `apt-get install nftables` (as root), then run hoptrace setup again.']);
  });

  it.skipIf(!isRoot)(`should say apt-get failed and what to do, in one line (${NEEDS_ROOT})`, async () => {
    const path = await pathWithout('apt-fails', ['nft'], {
      'apt-get': '#!/bin/sh\necho "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2\nexit 100\n',
    });
    const r = await hoptrace(['setup'], { env: { PATH: path } });
    expect(r.exitCode).toBe(1);
    expect(lines(r.stderr)).toEqual(['hoptrace setup: apt-get update failed (E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)): fix apt (e.g. run apt-get update and read its messages), then run hoptrace setup again.']);
    expect(String(r.stdout)).toMatch(/installing nftables \(apt-get\)/);
  });

  it.skipIf(!isRoot)(`should name hoptrace setup when a command lacks a tool it runs (${NEEDS_ROOT})`, async () => {
    const path = await pathWithout('no-ip', ['ip']);
    const r = await hoptrace(['lab', 'up', '--prefix', 'h6pz'], { env: { PATH: path } });
    expect(r.exitCode).toBe(2);
    expect(lines(r.stderr)).toEqual([`hoptrace: ip is not installed (or not on PATH: ${path}): run \`hoptrace setup\` as root.`]);
    noStack(String(r.stderr));
    expect(String((await execa('ip', ['netns', 'list'])).stdout)).not.toMatch(/h6pz/);
  });

  it.skipIf(!isRoot)(`should say what to install in Fedora's words on a Fedora host (${NEEDS_ROOT}: its os-release is bind-mounted in a private mount namespace)`, async () => {
    const osRelease = join(tmp, 'os-release-fedora');
    writeFileSync(osRelease, 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=41\nPRETTY_NAME="Fedora Linux 41"\n');
    const path = await pathWithout('fedora', ['nft', 'ping']);
    const r = await execa('/usr/bin/unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /etc/os-release && shift && exec "$@"', 'sh', osRelease, bin, 'setup'], { cwd: elsewhere, reject: false, env: { ...bpftraceEnv, PATH: path } });
    expect(r.exitCode).toBe(1);
    expect(lines(r.stderr)).toEqual(['hoptrace setup: Fedora Linux 41 is not a Debian-family host, and hoptrace setup installs with apt only: install them with `dnf install nftables iputils` (as root), then run hoptrace setup again.']);
  });

  it.skipIf(!isRoot)(`should mount tracefs and debugfs when they are not (${NEEDS_ROOT}: unmounted in a private mount namespace)`, async () => {
    const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'umount -l /sys/kernel/debug 2>/dev/null; umount -l /sys/kernel/tracing 2>/dev/null; "$@" && grep -E " /sys/kernel/(debug|tracing) " /proc/self/mountinfo', 'sh', bin, 'setup'], { cwd: elsewhere, reject: false, env: bpftraceEnv });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/mounted debugfs on \/sys\/kernel\/debug/);
    expect(String(r.stdout)).toMatch(/mounted tracefs on \/sys\/kernel\/tracing/);
    expect(String(r.stdout)).toMatch(/ \/sys\/kernel\/tracing .* - tracefs /);
  });
});

describe('the systemd unit', () => {
  it('should pass systemd-analyze verify without a warning', async () => {
    const unit = join(pkgDir, 'packaging/systemd/hoptrace.service');
    const r = await execa('systemd-analyze', ['verify', unit], { reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr).trim()).toBe('');
  });

  it('should run hoptrace serve on loopback, token from a file, with capabilities and one writable folder', () => {
    const unit = readFileSync(join(pkgDir, 'packaging/systemd/hoptrace.service'), 'utf8');
    const set = (k: string): string[] => [...unit.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
    expect(set('ExecStart')[0]).toMatch(/hoptrace serve --host \$\{HOPTRACE_HOST\} .*--data-dir \/var\/lib\/hoptrace\/recordings$/);
    expect(set('Environment')[0]).toMatch(/HOPTRACE_HOST=127\.0\.0\.1/);
    expect(set('EnvironmentFile')).toEqual(['-/etc/hoptrace/hoptrace.env']);
    expect(set('CapabilityBoundingSet')[0]?.split(' ').sort()).toEqual(['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_RESOURCE']);
    expect(set('ProtectSystem')).toEqual(['strict']);
    expect(set('ProtectHome')).toEqual(['yes']);
    expect(set('PrivateTmp')).toEqual(['yes']);
    expect(set('StateDirectory')).toEqual(['hoptrace/recordings']);
    expect(set('ReadWritePaths')).toEqual([]);
    expect(readFileSync(join(pkgDir, 'packaging/systemd/hoptrace.env'), 'utf8')).toMatch(/^#HOPTRACE_TOKEN=$/m);
  });
});
