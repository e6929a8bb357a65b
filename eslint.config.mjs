// Lint: ESLint's and typescript-eslint's recommended rules, plus the type-aware rules that catch real bugs in a
// server: a promise nobody awaits or catches (an unhandled rejection ends the process), a promise where a
// callback's boolean or void is expected, a switch over a union that misses a member, unused values.
// typescript-eslint over Biome: its rules see the TypeScript program, so a floating promise from node:fs/promises
// or any other library's types is found (Biome 2.6 infers types itself and misses those). Formatting is Prettier's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist.new/**',
      'node_modules/**',
      'native/build/**',
      'test/artifacts/**',
      'tftpboot/**',
      'templates/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test collects the promise test() and its kin return; awaiting them is optional.
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/no-unused-expressions': 'error',
      // A let read by a closure before its one assignment (a late-bound hook) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Tests match aligned columns; counting spaces is no bug.
      'no-regex-spaces': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
);
