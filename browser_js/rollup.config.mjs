/**
 * Rollup's configuration for the browser client's classic-script build: eimzo-agent.mjs (the ES module, which is
 * both the source and the package's ESM entry, as it imports nothing) → eimzo-agent.js, a UMD script that defines
 * the global `EimzoAgent`, or module.exports under require(), or an AMD module. Rollup writes UMD itself (esbuild
 * has no UMD format) and is widely used for libraries.
 *
 *   node browser_js/build.mjs [--check]           (what the project runs; --check only compares)
 *   npx rollup -c browser_js/rollup.config.mjs    (the same output, with rollup's own CLI)
 */

import { fileURLToPath } from 'node:url';

/** The global a classic <script> gets. */
export const GLOBAL_NAME = 'EimzoAgent';

/** @type {import('rollup').RollupOptions & {output: import('rollup').OutputOptions}} */
export default {
  input: fileURLToPath(new URL('./eimzo-agent.mjs', import.meta.url)),
  // Any warning (a missing export, an import that cannot be resolved, …) fails the build.
  onwarn(warning) {
    throw new Error(`rollup: ${warning.message}`);
  },
  strictDeprecations: true,
  output: {
    file: fileURLToPath(new URL('./eimzo-agent.js', import.meta.url)),
    format: 'umd',
    name: GLOBAL_NAME,
    exports: 'named',
    banner: '// Generated from eimzo-agent.mjs by rollup (browser_js/build.mjs): edit the .mjs and rebuild, never this ' +
      'file.\n// Classic script: defines the global `EimzoAgent` (or module.exports / an AMD module).',
  },
};
