// Lint keeps code in its place: shared/ is isomorphic (no Node built-ins, no DOM), web/ never
// imports Node built-ins or server code, only server/service/ speaks HTTP, and type-only imports
// are written as such.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import pluginVue from 'eslint-plugin-vue';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const noNodeImports = {
  'no-restricted-imports': ['error', {
    paths: nodeBuiltins.map((name) => ({ name, message: 'shared/ and web/ run in the browser too: no Node built-ins.' })),
    patterns: [{ group: ['**/server/**', 'execa', 'express', 'socket.io'], message: 'Server code stays out of shared/ and web/.' }],
  }],
};
const browserOnlyGlobals = ['window', 'document', 'navigator', 'localStorage', 'location', 'HTMLElement', 'process', 'Buffer', 'require', '__dirname'];

export default tseslint.config(
  { ignores: ['.scratch*/**', 'dist/**', 'node_modules/**', 'web/dist/**', 'test-artifacts/**', 'shared/wire-generated.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'it', property: 'only' }, { object: 'describe', property: 'only' }, { object: 'test', property: 'only' }],
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
    },
  },
  {
    files: ['shared/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      ...noNodeImports,
      'no-restricted-globals': ['error', ...browserOnlyGlobals.map((name) => ({ name, message: 'shared/ is isomorphic: no DOM or Node globals.' }))],
    },
  },
  {
    files: ['web/**/*.ts', 'web/**/*.vue'],
    ignores: ['web/**/*.test.ts', 'web/test/**', 'web/e2e/**', 'web/vite.config.ts', 'web/vitest.*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { ...noNodeImports },
  },
  {
    // domain/ is the page's pure logic: it knows shapes, not the worker or the stores that move them.
    files: ['web/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: noNodeImports['no-restricted-imports'][1].paths,
        patterns: [
          ...noNodeImports['no-restricted-imports'][1].patterns,
          { group: ['**/worker/**', '**/store/**', '**/ui/**', '**/api/**', '*.vue'], message: 'web/src/domain/ stays pure: no worker/, store/, ui/ or api/ imports (shapes it needs live in domain/).' },
        ],
      }],
    },
  },
  {
    // The rest of server/ is the host side the service wraps: CLI commands, bpftrace, recordings, stats.
    files: ['server/**/*.ts'],
    ignores: ['server/service/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['express', 'helmet', 'socket.io', 'http', 'https', 'node:http', 'node:https'].map((name) => ({ name, message: 'Only server/service/ speaks HTTP.' })),
      }],
    },
  },
);
