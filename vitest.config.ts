import { defineConfig } from 'vitest/config';
import { webProject } from './web/vitest.project.js';

export default defineConfig({
  test: {
    // Two projects: Node-side tests here, and the dashboard's (component tests need the Vue
    // plugin, browser tests drive chromium) with their own config.
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          // Integration tests build namespaces and run bpftrace: give them room, and run files
          // one after another so two bpftrace sessions never measure each other's traffic.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      webProject,
    ],
  },
});
