#!/usr/bin/env node
// Run at the end of `npm run build`: lists, part by part, every file a running hoptrace reads
// (dist/install-manifest.json). bin/hoptrace.js checks the parts a command needs before running
// it, so a half-installed package says which files are missing instead of failing in a stack
// trace; the package test checks that `npm pack` carries exactly these (plus the docs, the
// systemd unit and the setup script).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function walk(dir, keep) {
  const out = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(root, rel)).isDirectory()) out.push(...walk(rel, keep));
    else if (keep(rel)) out.push(rel);
  }
  return out.sort();
}

const parts = {
  // The compiled CLI, service and shared code (source maps are left out of the package).
  program: walk('dist', (f) => f.endsWith('.js')),
  // The bpftrace fragments the programs are assembled from (fixtures and notes are not read).
  probes: walk('probes', (f) => f.endsWith('.bt') && !f.split('/').includes('fixtures')),
  // The dashboard's production build, served by `hoptrace serve`.
  dashboard: walk('web/dist', (f) => !f.endsWith('.map')),
  // The recording and stream format, for readers of .hoptrace files in other languages.
  schema: ['shared/wire.proto'],
};
for (const [name, files] of Object.entries(parts)) {
  if (files.length === 0) {
    process.stderr.write(`install-manifest: no ${name} files: the build did not produce them\n`);
    process.exit(1);
  }
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(root, 'dist/install-manifest.json'), `${JSON.stringify({ version, parts }, null, 1)}\n`);
