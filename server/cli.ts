/**
 * `hoptrace` — the command line. Wires subcommands together and nothing else: each lives in
 * server/commands/<name>.ts and exports `run(argv): Promise<number>` (the exit code) and
 * `summary`. Exit codes: 0 ok, 1 failure at run time, 2 bad usage or a host that cannot trace.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { chooseBpftrace, projectRoot } from './bpftrace-binary.js';
import { reportFatal } from './commands/common.js';

const COMMANDS = ['trace', 'path', 'topology', 'lab', 'serve', 'agent', 'record', 'replay', 'export', 'stats', 'compare', 'doctor', 'setup'] as const;
type CommandName = (typeof COMMANDS)[number];

interface CommandModule {
  run(argv: string[]): Promise<number>;
  summary: string;
}

async function load(name: CommandName): Promise<CommandModule | null> {
  try {
    return (await import(`./commands/${name}.js`)) as CommandModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(`commands/${name}.`)) return null;
    throw err;
  }
}

async function usage(): Promise<string> {
  const lines = ['usage: hoptrace <command> [options]', '', 'commands:'];
  for (const name of COMMANDS) {
    const mod = await load(name);
    if (mod) lines.push(`  ${name.padEnd(10)} ${mod.summary}`);
  }
  lines.push('', 'Run `hoptrace <command> --help` for its options.');
  return lines.join('\n');
}

/** `hoptrace --version`: the package's version, and the bpftrace and kernel it would trace with. */
async function versionText(): Promise<string> {
  const { version } = JSON.parse(readFileSync(`${projectRoot()}package.json`, 'utf8')) as { version: string };
  const b = await chooseBpftrace();
  const bpftrace = b.version
    ? `bpftrace ${b.version} (${b.command ?? ''}, ${b.source}; ${b.tier} probe tier)`
    : 'bpftrace: none starts here (run `hoptrace setup` as root)';
  return [`hoptrace ${version}`, bpftrace, `kernel   ${release()}`].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${await usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${await versionText()}\n`);
    return 0;
  }
  const mod = (COMMANDS as readonly string[]).includes(name) ? await load(name as CommandName) : null;
  if (!mod) {
    process.stderr.write(`hoptrace: unknown command '${name}'\n\n${await usage()}\n`);
    return 2;
  }
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = reportFatal(err); },
);
