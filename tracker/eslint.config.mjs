// `npm run lint` (and `make lint`): ESLint's recommended rules for tracker.js's sources, its
// build script and its browser bench. tracker.js runs in visitors' browsers; the build and
// bench scripts run in Node.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  {
    files: ['src/**/*.js', 'bench/**/*.js', 'demo/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.browser },
    // Nothing tracker.js does may throw into the host page: an empty catch is deliberate.
    rules: { 'no-empty': ['error', { allowEmptyCatch: true }] },
  },
  {
    files: ['*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node },
  },
];
