#!/usr/bin/env node
/**
 * Builds the classic-script (UMD) copy of the browser client from the ES module.
 *
 *   node browser_js/build.mjs          writes browser_js/eimzo-agent.js from eimzo-agent.mjs
 *   node browser_js/build.mjs --check  changes nothing; exits 1 when eimzo-agent.js is out of date
 *
 * The agent serves browser_js/ and examples/demo-portal/ directly (eimzo_agent/server/static_files.py); built
 * wheels carry them because setup.py copies them in, so there is no served copy to keep in step here.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');

/** The global a classic <script> gets. */
export const GLOBAL_NAME = 'EimzoAgent';

/**
 * The UMD build of an ES module that only declares top-level `export class|function|const|let` (no imports, no
 * `export {…}` lists, no default export): the `export` keywords go, the names become the factory's result.
 * @param {string} source
 * @returns {string}
 */
export function umdFromModule(source) {
  /** @type {string[]} */
  const names = [];
  const body = source.split('\n').map((line, index) => {
    const declaration = /^export ((?:async )?(?:class|function\*?|const|let) ([A-Za-z_$][\w$]*))/.exec(line);
    if (declaration) {
      names.push(declaration[2]);
      return line.slice('export '.length);
    }
    if (/^\s*(export|import)\b/.test(line)) {
      throw new Error(`line ${index + 1}: module syntax the UMD build does not support: ${line.trim()}`);
    }
    return line;
  });
  if (names.length === 0) throw new Error('the module exports nothing');
  return [
    '// Generated from eimzo-agent.mjs by browser_js/build.mjs: edit the .mjs and rebuild, never this file.',
    `// Classic script: defines the global \`${GLOBAL_NAME}\` (or module.exports / an AMD module).`,
    '(function (root, factory) {',
    "  if (typeof define === 'function' && define.amd) define([], factory);",
    "  else if (typeof module === 'object' && module.exports) module.exports = factory();",
    `  else root.${GLOBAL_NAME} = factory();`,
    "})(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function () {",
    "'use strict';",
    ...body,
    'return {',
    ...names.map((name) => `  ${name},`),
    '};',
    '});',
    '',
  ].join('\n');
}

/**
 * Every generated file with the bytes it must have.
 * @returns {Array<{path: string, content: Buffer}>}
 */
export function expectedOutputs() {
  const umd = Buffer.from(umdFromModule(readFileSync(join(HERE, 'eimzo-agent.mjs'), 'utf8')));
  return [{ path: join(HERE, 'eimzo-agent.js'), content: umd }];
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

function main() {
  const outputs = expectedOutputs();
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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
