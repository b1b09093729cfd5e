// The dashboard's test project, shared by the root vitest.config.ts (where `npm test` runs it as
// project "web") and web/vitest.config.ts (to run only the web tests). Component tests need the
// Vue plugin; browser tests build the dashboard and trace the host, so files run one at a time.
import vue from '@vitejs/plugin-vue';

export const webProject = {
  plugins: [vue()],
  test: {
    name: 'web',
    include: ['web/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'web/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
};
