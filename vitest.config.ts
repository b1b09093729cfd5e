import { defineConfig } from 'vitest/config';
import { webProject } from './web/vitest.project.js';

/**
 * Node-side files that run in the second lane, beside the web project (`npm test` runs two
 * vitest processes at once: scripts/test-lanes.sh). They build labs on addresses of their own
 * (the overlay and cluster labs; the lane's HOPTRACE_LAB_NET and HOPTRACE_TEST_ADDRESS_BASE
 * move the rest), so the first lane's tests never see their packets as their own, nor they the
 * first lane's. New overlay and hub tests join this lane by their names.
 */
export const SECOND_LANE = [
  'test/integration/trace-overlay*.test.ts',
  'test/integration/trace-crafted-tunnels.test.ts',
  'test/integration/hub-*.test.ts',
  'test/recording/pcapng-overlay.test.ts',
  'test/hub/**/*.test.ts',
];

// Integration tests build namespaces and run bpftrace: give them room, and run a lane's files one
// after another so two of its bpftrace sessions never measure each other's traffic.
// A file's leftover CLI processes are stopped after it (test/helpers/leftovers.ts).
const kernelTests = { testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: false, setupFiles: ['test/helpers/leftovers.ts'] };

export default defineConfig({
  test: {
    // Three projects: Node-side tests in two lanes, and the dashboard's (component tests need the
    // Vue plugin, browser tests drive chromium) with their own config. `npx vitest run` runs them
    // one after another; `npm test` runs `node` beside `node-b` + `web`.
    projects: [
      { test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['**/node_modules/**', ...SECOND_LANE], ...kernelTests } },
      { test: { name: 'node-b', include: SECOND_LANE, ...kernelTests } },
      webProject,
    ],
  },
});
