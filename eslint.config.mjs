import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', 'src/generated/', 'data/', '.tmp/', '.build/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A dropped promise in a worker or a subscription is a lost job or a silent hang.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // The domain is pure: no I/O, no clock, no framework. Effects arrive as data.
    files: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/domain is pure: pass effects in as data' },
            { group: ['*/generated/*', '@prisma/*', 'pg', '@electric-sql/*'], message: 'src/domain must not touch the database' },
            { group: ['execa', 'graphql', 'graphql-*', 'jose', '@pothos/*'], message: 'src/domain must not import effects or frameworks' },
            { group: ['../../*', '!../shared/*'], message: 'src/domain may only import from src/domain' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'Date', message: 'time arrives in command metadata' }, { name: 'crypto', message: 'ids arrive in commands' }],
    },
  },
  {
    // Only the process runner starts external commands: src/ostree's typed commands, hooks and
    // the workers go through it (one place for timeouts, cancellation, output and spawn errors).
    files: ['src/**/*.ts', 'workers/**/*.ts'],
    ignores: ['src/process/run.ts', 'src/process/spawner.ts', 'src/domain/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['execa', 'node:child_process', 'child_process'].map((name) => ({ name, message: 'run commands through src/process/run.ts' })),
        },
      ],
    },
  },
)
