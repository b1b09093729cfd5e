// Runs only the dashboard's tests: `npx vitest run --config web/vitest.config.ts` (the root
// config runs them too, as project "web"). Paths are relative to the repository root.
import { defineConfig } from 'vitest/config';
import { webProject } from './vitest.project.js';

export default defineConfig({
  root: decodeURIComponent(new URL('..', import.meta.url).pathname),
  ...webProject,
});
