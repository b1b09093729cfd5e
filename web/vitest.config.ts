// The dashboard's tests: component tests need the Vue plugin, which the root vitest.config.ts
// does not load. `npx vitest run --config web/vitest.config.ts` runs every web test (unit,
// component, browser e2e). Paths are relative to the repository root, as in the root config.
import { defineConfig } from 'vitest/config';
import vue from '@vitejs/plugin-vue';

export default defineConfig({
  root: decodeURIComponent(new URL('..', import.meta.url).pathname),
  plugins: [vue()],
  test: {
    include: ['web/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'web/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Browser tests build the dashboard and e2e tests trace the host: one file at a time.
    fileParallelism: false,
  },
});
