// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Frameworks that live only at the edges (api, bot, proxy, jobs). */
const edgeFrameworks = [
  'express',
  'express/*',
  'grammy',
  'grammy/*',
  '@grammyjs/*',
  '@whiskeysockets/baileys',
  '@whiskeysockets/baileys/*',
  'agenda',
  '@agendajs/*',
  'proxy-chain',
  'net',
  'node:net',
  'http',
  'node:http',
  'https',
  'node:https',
];

/** Relative imports that would cross into an edge from inside core or models. */
const edgeDirs = ['api', 'bot', 'proxy', 'jobs'].flatMap((dir) => [
  `../${dir}`,
  `../${dir}/*`,
  `../../${dir}`,
  `../../${dir}/*`,
  `../../../${dir}/*`,
]);

const restrict = (/** @type {string[]} */ groups, /** @type {string} */ message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: groups, message }] }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'data/**', 'coverage/**', 'node_modules/**', '.tools/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  // Dependency direction: api/bot/proxy/jobs -> core -> models; lib and config for all.
  {
    files: ['core/**/*.ts'],
    rules: restrict(
      [...edgeFrameworks, ...edgeDirs],
      'core/ is the business: it never imports an edge (api, bot, proxy, jobs) or an edge framework; take what you need through an interface given at start-up.',
    ),
  },
  {
    files: ['models/**/*.ts'],
    rules: restrict(
      [...edgeFrameworks, ...edgeDirs, '../core', '../core/*', '../../core/*'],
      'models/ holds schemas and indexes only: no edge frameworks, no core workflows.',
    ),
  },
  {
    files: ['lib/**/*.ts', 'config/**/*.ts'],
    rules: restrict(
      [...edgeDirs, ...['core', 'models'].flatMap((d) => [`../${d}`, `../${d}/*`, `../../${d}/*`])],
      'lib/ and config/ are used by everyone and import no business code.',
    ),
  },
  ...['api', 'bot', 'proxy', 'jobs'].map((edge) => ({
    files: [`${edge}/**/*.ts`],
    rules: restrict(
      ['api', 'bot', 'proxy', 'jobs']
        .filter((d) => d !== edge)
        .flatMap((d) => [`../${d}`, `../${d}/*`, `../../${d}/*`, `../../../${d}/*`]),
      'Edges never import each other; share through core/.',
    ),
  })),
  {
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  // REST API tests read JSON answers as `any` (tests/support/api.ts): the
  // response schemas already type them in the app, and a test asserts on them.
  {
    files: ['tests/integration/api/**/*.ts', 'tests/support/api.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
