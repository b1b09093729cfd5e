#!/usr/bin/env node
// Entry point of the `hoptrace` command (npm's bin), in a checkout and in an installed package alike.
// Before running the compiled CLI it checks that the files the command will read are there, from
// the list the build wrote (dist/install-manifest.json, scripts/install-manifest.mjs): a package
// with files missing (a broken install, a copy made by hand) names them in one line instead of
// failing later in a stack trace. Plain JavaScript with no imports but node's, so that it runs
// even when the rest of the package does not.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const checkout = existsSync(`${root}server/cli.ts`);
const fix = checkout
  ? 'Run `npm run setup` (or `npm run build`) in the repository first.'
  : 'Reinstall hoptrace (npm install -g hoptrace).';

function fail(line) {
  process.stderr.write(`hoptrace: ${line}\n`);
  process.exit(2);
}

let manifest;
try {
  manifest = JSON.parse(readFileSync(`${root}dist/install-manifest.json`, 'utf8'));
} catch {
  fail(checkout ? `not built yet. ${fix}` : `this installation is incomplete: dist/install-manifest.json is missing. ${fix}`);
}

// What each command reads besides the program: the probe fragments for anything that builds a
// bpftrace program, the dashboard for the service.
const NEEDS = { trace: ['probes'], record: ['probes'], stats: ['probes'], doctor: ['probes'], serve: ['probes', 'dashboard'] };
const args = process.argv.slice(2);
const wantsHelp = args.includes('--help') || args.includes('-h');
const parts = ['program', ...(wantsHelp ? [] : (NEEDS[args[0]] ?? []))];
const missing = parts.flatMap((part) => (manifest.parts?.[part] ?? []).filter((f) => !existsSync(`${root}${f}`)));
if (missing.length > 0) {
  const what = parts.filter((p) => (manifest.parts?.[p] ?? []).some((f) => missing.includes(f)));
  const shown = missing.slice(0, 4).join(', ') + (missing.length > 4 ? ` and ${missing.length - 4} more` : '');
  const names = { program: 'program', probes: 'probe', dashboard: 'dashboard' };
  fail(`this installation is incomplete: ${what.map((p) => names[p] ?? p).join(' and ')} files are missing (${shown}) in ${root}. ${fix}`);
}

await import(new URL('../dist/server/cli.js', import.meta.url).href);
