#!/usr/bin/env node
/**
 * Builds the classic-script (UMD) copy of the browser client from the ES module, with rollup (rollup.config.mjs).
 *
 *   node browser_js/build.mjs          writes browser_js/eimzo-agent.js from eimzo-agent.mjs
 *   node browser_js/build.mjs --check  changes nothing; exits 1 when eimzo-agent.js is out of date
 *
 * The built file is committed: the agent serves browser_js/ and examples/demo-portal/ directly
 * (eimzo_agent/server/static_files.py), built wheels and packages carry them, and the npm package ships it, none
 * of which should need node to build. rollup is a devDependency of the repository (`npm ci` at its root).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import config, { GLOBAL_NAME } from './rollup.config.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export { GLOBAL_NAME };

/**
 * Every generated file with the bytes it must have.
 * @param {string} [input] the module to build from (default: eimzo-agent.mjs)
 * @returns {Promise<Array<{path: string, content: Buffer}>>}
 */
export async function expectedOutputs(input = /** @type {string} */ (config.input)) {
  /** @type {typeof import('rollup')} */
  let rollup;
  try {
    rollup = await import('rollup');
  } catch (error) {
    throw new Error('rollup is not installed: run `npm ci` at the repository root', { cause: error });
  }
  const bundle = await rollup.rollup({ ...config, input });
  try {
    const { output } = await bundle.generate(config.output);
    return [{ path: /** @type {string} */ (config.output.file), content: Buffer.from(output[0].code) }];
  } finally {
    await bundle.close();
  }
}

/**
 * @param {Array<{path: string, content: Buffer}>} outputs
 * @returns {string[]} paths whose bytes differ (or that are missing)
 */
export function staleOutputs(outputs) {
  return outputs
    .filter(({ path, content }) => {
      try {
        return !readFileSync(path).equals(content);
      } catch {
        return true;
      }
    })
    .map(({ path }) => relative(ROOT, path));
}

async function main() {
  const outputs = await expectedOutputs();
  const stale = staleOutputs(outputs);
  if (process.argv.includes('--check')) {
    if (stale.length) {
      console.error(`out of date (run: node browser_js/build.mjs): ${stale.join(', ')}`);
      process.exit(1);
    }
    console.log('browser_js build: up to date');
    return;
  }
  for (const { path, content } of outputs) {
    writeFileSync(path, content);
  }
  console.log(stale.length ? `wrote ${stale.join(', ')}` : 'browser_js build: nothing to do');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
