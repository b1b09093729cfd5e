/**
 * Generates the protobuf code of shared/wire.proto: shared/wire-generated.js (pbjs static code:
 * plain encode/decode functions, no reflection, so no `new Function()` — the dashboard runs it
 * under a Content-Security-Policy without 'unsafe-eval') and its types, shared/wire-generated.d.ts.
 * `npm run gen:wire` writes them; test/shared/wire.test.ts fails when they drift from the .proto.
 * pbjs writes one encoder and decoder per message, so the two files repeat themselves (`duplicates`
 * lists them): that is pbjs's output, regenerated and never edited, not code to fold together.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pbjs } from 'protobufjs-cli';

export const WIRE_PROTO = fileURLToPath(new URL('../shared/wire.proto', import.meta.url));
const HEADER = '// Generated from shared/wire.proto by scripts/gen-wire.ts — do not edit; run `npm run gen:wire`.\n';

// Field names as written in the .proto (ip_id, lost_kernel): shared/wire.ts and the recording
// codec read them so. Only encode and decode are generated: verify/convert/delimited/create are
// unused, and leaving them out keeps the dashboard's bundle small. The ESM wrapper imports
// "protobufjs/minimal.js", which Node (tsx, dist/) and Vite both resolve.
const PBJS_ARGS = [
  '--target', 'static-module', '--wrap', 'esm', '--keep-case',
  '--no-create', '--no-verify', '--no-convert', '--no-delimited', '--no-typeurl', '--no-service',
];

function runPbjs(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    pbjs.main(args, (err) => (err ? reject(err) : resolve()));
  });
}

export interface WireCode {
  /** shared/wire-generated.js */
  readonly js: string;
  /** shared/wire-generated.d.ts */
  readonly dts: string;
}

/** The static code and its types for the .proto at `protoPath`. */
export async function generateWireCode(protoPath: string = WIRE_PROTO): Promise<WireCode> {
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-gen-wire-'));
  try {
    // pbts reads the types from the JSDoc comments, so the .d.ts comes from a commented pass and
    // the .js from a lean one; both passes generate the same code otherwise.
    const typed = join(dir, 'typed.js');
    const lean = join(dir, 'lean.js');
    await runPbjs([...PBJS_ARGS, '--dts', '--out', typed, protoPath]);
    await runPbjs([...PBJS_ARGS, '--no-comments', '--no-beautify', '--out', lean, protoPath]);
    return {
      js: HEADER + readFileSync(lean, 'utf8'),
      dts: HEADER + readFileSync(join(dir, 'typed.d.ts'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const code = await generateWireCode();
  writeFileSync(new URL('../shared/wire-generated.js', import.meta.url), code.js);
  writeFileSync(new URL('../shared/wire-generated.d.ts', import.meta.url), code.dts);
  console.log('wrote shared/wire-generated.js, shared/wire-generated.d.ts');
}
