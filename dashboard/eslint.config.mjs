// `npm run lint` (and `make lint`): ESLint's recommended rules for the dashboard's own browser
// scripts (classic scripts, not modules) and its build script (Node).
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['static/dist/**', 'node_modules/**'] },
  js.configs.recommended,
  {
    files: ['static/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'script', globals: globals.browser },
  },
  {
    files: ['*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node },
  },
];
