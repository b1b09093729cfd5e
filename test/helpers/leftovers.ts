// Setup file of the Node-side test projects (vitest.config.ts): after each file, stop the CLI
// processes it started and left running (test/helpers/children.ts), and say so.
import { afterAll } from 'vitest';
import { stopLeftovers } from './children.js';

afterAll(async () => {
  const stopped = await stopLeftovers();
  for (const cmd of stopped) process.stderr.write(`left running by this file, stopped: ${cmd}\n`);
}, 15_000);
