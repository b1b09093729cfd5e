#!/usr/bin/env node
// Entry point for `npx hoptrace`: runs the compiled CLI (npm run build / npm run setup).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/server/cli.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('hoptrace: not built yet. Run `npm run setup` (or `npm run build`) in the repository first.\n');
  process.exit(2);
}
await import(compiled);
