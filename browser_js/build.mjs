#!/usr/bin/env node
/**
 * Builds the served copies of the browser client.
 *
 *   node browser_js/build.mjs          writes browser_js/eimzo-agent.js (the classic-script / UMD build, generated
 *                                      from eimzo-agent.mjs) and copies every served file into the Python package
 *                                      (eimzo_agent/server/static/), which the agent serves over HTTP
 *   node browser_js/build.mjs --check  changes nothing; exits 1 and names the files that are out of date
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const STATIC = join(ROOT, 'eimzo_agent', 'server', 'static');

/** The global a classic <script> gets. */
export const GLOBAL_NAME = 'EimzoAgent';

/**
 * Served file (path under static/) → its source in the repository. The agent serves `static/<path>` at `/<path>`
 * (and `demo/index.html` at `/demo/` too); tests/test_static_files.py checks the served bytes against the sources.
 * @type {ReadonlyArray<[string, string]>}
 */
export const SERVED_FILES = Object.freeze([
  ['eimzo-agent.mjs', 'browser_js/eimzo-agent.mjs'],
  ['eimzo-agent.js', 'browser_js/eimzo-agent.js'],
  ['eimzo-agent.d.ts', 'browser_js/eimzo-agent.d.ts'],
  ['compat/e-imzo.js', 'browser_js/compat/e-imzo.js'],
  ['compat/e-imzo-client.js', 'browser_js/compat/e-imzo-client.js'],
  ['demo/index.html', 'examples/demo-portal/index.html'],
  ['demo/app.mjs', 'examples/demo-portal/app.mjs'],
  ['demo/der.mjs', 'examples/demo-portal/der.mjs'],
  ['demo/style.css', 'examples/demo-portal/style.css'],
]);

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
  /** @type {Array<{path: string, content: Buffer}>} */
  const outputs = [{ path: join(HERE, 'eimzo-agent.js'), content: umd }];
  for (const [served, source] of SERVED_FILES) {
    const content = source === 'browser_js/eimzo-agent.js' ? umd : readFileSync(join(ROOT, source));
    outputs.push({ path: join(STATIC, served), content });
  }
  return outputs;
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
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  console.log(stale.length ? `wrote ${stale.join(', ')}` : 'browser_js build: nothing to do');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
