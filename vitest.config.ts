import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'web/**/*.test.ts'],
    // Integration tests build namespaces and run bpftrace: give them room, and run files
    // one after another so two bpftrace sessions never measure each other's traffic.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
