/**
 * `hoptrace doctor`: what this host lets hoptrace see, and why not more — probe kinds, depth
 * tiers per part of the packet path, and the function-level scripts (optionally compiled against
 * this kernel's BTF with bpftrace's dry run).
 */
import { execa } from 'execa';
import { detectCapabilities } from '../capabilities.js';
import { bpftraceCommand, chooseBpftrace, decide, versionAtLeast, FAST_MIN_VERSION } from '../bpftrace-binary.js';
import type { ProbeTier } from '../../shared/api-types.js';
import { describeTiers } from '../../shared/probe-tiers.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { DEEP_PROBES, NOTE_PROBES, noteBlock, type NoteProbe } from '../../probes/notes/assemble.js';
import { runCommand, JSON_OUTPUT } from './common.js';

export const summary = 'report what this host lets hoptrace trace, tier by tier, and why not deeper';

const HELP = `usage: hoptrace doctor [--json] [--check-scripts]

Reports the kernel, bpftrace, which probe kinds work (tracepoint, kprobe, kfunc) and why not,
and for each part of the packet path (netfilter, nat, bridge, veth, routing, queueing,
neighbour, icmp) the deepest tier available here:

  function    kprobes on kernel functions (probes/deep/)
  rule-trace  nft's rule trace (trace --netfilter)
  tracepoint  extra tracepoints (trace --notes)
  device      the hop probes alone

      --json            the same as one JSON object (as GET /api/capabilities serves it)
      --check-scripts   also compile every notes and function-level script against this
                        kernel's BTF with bpftrace's dry run (-d; nothing is attached)
  -h, --help            this help

Exit code 0 when the host can trace, 1 when it cannot.`;

export interface ScriptCheck {
  readonly file: string;
  readonly tier: 'notes' | 'function';
  readonly ok: boolean;
  /** First error bpftrace printed, null when it compiled. */
  readonly error: string | null;
}

/** The hop program with one extra block: how each script is compiled, in the context it runs in. */
function programWith(blocks: readonly string[], tier: ProbeTier): string {
  return buildHopProgram({ tier, filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, extraBlocks: blocks });
}

/**
 * Which bpftrace type-checks scripts without attaching: 0.17's `-d` only compiles, while 0.21+'s
 * `--dry-run` (it took `-d` for debug output) still attaches kprobes, which fails on kernels
 * without them. So the system's older bpftrace does the dry run when there is one (on classic
 * programs), else the chosen one.
 */
async function dryRunner(): Promise<{ command: string; flag: string; tier: ProbeTier }> {
  const choice = await chooseBpftrace();
  const system = choice.source === 'system' ? choice : await decide('bpftrace', '/nonexistent', 'bpftrace').catch(() => null);
  if (system?.command && system.version && !versionAtLeast(system.version, FAST_MIN_VERSION)) return { command: system.command, flag: '-d', tier: 'classic' };
  return { command: await bpftraceCommand(), flag: versionAtLeast(choice.version ?? '0.0', FAST_MIN_VERSION) ? '--dry-run' : '-d', tier: choice.tier };
}

/** Compiles one program with `bpftrace -d` (type-checks against the kernel's BTF, attaches nothing). */
export async function dryRun(program: string): Promise<{ ok: boolean; error: string | null }> {
  const runner = await dryRunner();
  const r = await execa(runner.command, [runner.flag, '-e', program], { reject: false, all: true, timeout: 180_000, maxBuffer: 256 * 1024 * 1024 });
  const errors = String(r.all ?? '').split('\n').filter((l) => /ERROR:/.test(l) && !/RLIMIT_MEMLOCK/.test(l));
  const ok = r.exitCode === 0 && errors.length === 0;
  return { ok, error: ok ? null : (errors[0]?.trim() ?? `bpftrace exited ${r.exitCode ?? r.signal}`) };
}

/** Dry-runs every notes script and every function-level script, each inside the hop program. */
export async function checkScripts(): Promise<ScriptCheck[]> {
  const current = NOTE_PROBES.find((p) => p.file === 'current.bt') as NoteProbe;
  const jobs: Array<{ probe: NoteProbe; tier: ScriptCheck['tier'] }> = [
    ...NOTE_PROBES.map((probe) => ({ probe, tier: 'notes' as const })),
    ...DEEP_PROBES.map((probe) => ({ probe, tier: 'function' as const })),
  ];
  const out: ScriptCheck[] = [];
  const { tier: probeTier } = await dryRunner();
  for (const { probe, tier } of jobs) {
    // Notes scripts read current.bt's @cur map: compile them with it, as they run.
    const blocks = probe === current ? [noteBlock(probe, '1')] : [noteBlock(current, '1'), noteBlock(probe, '1')];
    const r = await dryRun(programWith(blocks, probeTier));
    out.push({ file: `${tier === 'notes' ? 'probes/notes' : 'probes/deep'}/${probe.file}`, tier, ...r });
  }
  return out;
}

const OPTIONS = { json: JSON_OUTPUT, 'check-scripts': { kind: 'boolean' } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (o) => {
    const caps = await detectCapabilities();
    const scripts = o['check-scripts'] ? await checkScripts() : undefined;
    if (o.json) {
      process.stdout.write(`${JSON.stringify(scripts ? { ...caps, scripts } : caps, null, 2)}\n`);
      return caps.canTrace ? 0 : 1;
    }
    const yes = (b: boolean): string => (b ? 'yes' : 'no');
    const lines = [
      `kernel      ${caps.kernel}`,
      `bpftrace    ${caps.bpftrace.version ?? 'not installed'}${caps.bpftrace.path ? `  (${caps.bpftrace.path}, ${caps.bpftrace.source ?? ''})` : ''}`,
      `probe tier  ${caps.bpftrace.tier ?? 'classic'}${caps.bpftrace.why ? `: ${caps.bpftrace.why}` : ''}`,
      ...(caps.bpftrace.warnings ?? []).map((w) => `  ! ${w}`),
      `root        ${yes(caps.root)}`,
      `BTF         ${yes(caps.btf)}`,
      `tracefs     ${caps.tracefs ?? 'not mounted'}`,
      `can trace   ${caps.canTrace ? 'yes' : 'no'}`,
      ...caps.problems.map((p) => `  ✗ ${p}`),
      '',
      'probe kinds',
      ...(['tracepoint', 'kprobe', 'kfunc'] as const).map((k) => {
        const s = caps.probes[k];
        return `  ${k.padEnd(10)}  ${s.available ? 'yes' : 'no '}${s.reason ? `  ${s.reason}` : ''}`;
      }),
      '',
      'depth by part of the path (deepest tier available here)',
      ...describeTiers(caps.tiers).map((l) => `  ${l.replace(/\n/g, '\n  ')}`),
      '',
      'function-level scripts (probes/deep/)',
      ...caps.tiers.deepScripts.map((d) => `  ${d.file.padEnd(16)} ${d.functions.join(', ').padEnd(22)} ${d.attachable ? 'attachable' : `not attachable: ${d.reason ?? ''}`}${d.inBtf ? '' : ' (functions missing from BTF)'}`),
    ];
    if (scripts) {
      lines.push('', 'dry-run compile against this kernel (bpftrace -d)');
      for (const s of scripts) lines.push(`  ${s.file.padEnd(30)} ${s.ok ? 'ok' : `FAILED: ${s.error ?? ''}`}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return caps.canTrace && (scripts?.every((s) => s.ok) ?? true) ? 0 : 1;
  });
}
