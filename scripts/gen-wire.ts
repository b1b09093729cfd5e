/**
 * Generates shared/wire-schema.ts (the protobuf descriptor as JSON) from shared/wire.proto, so the
 * browser and Node load the same schema without parsing .proto text at run time.
 * `npm run gen:wire` writes it; test/shared/wire.test.ts fails when it drifts from the .proto.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import protobuf from 'protobufjs';

export function generateWireSchema(protoText: string): string {
  const root = protobuf.parse(protoText, { keepCase: true }).root;
  const json = JSON.stringify(root.toJSON(), null, 2);
  return `// Generated from shared/wire.proto by scripts/gen-wire.ts — do not edit; run \`npm run gen:wire\`.\nexport const WIRE_SCHEMA = ${json} as const;\n`;
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const proto = readFileSync(new URL('../shared/wire.proto', import.meta.url), 'utf8');
  writeFileSync(new URL('../shared/wire-schema.ts', import.meta.url), generateWireSchema(proto));
  console.log('wrote shared/wire-schema.ts');
}
