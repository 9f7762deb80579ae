// The classic-script build: made by rollup from the module, committed up to date, usable as a global, under
// require() and under AMD.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

import { GLOBAL_NAME, expectedOutputs, staleOutputs } from '../build.mjs';
import * as esm from '../eimzo-agent.mjs';

const BUILD = fileURLToPath(new URL('../build.mjs', import.meta.url));
const UMD = readFileSync(new URL('../eimzo-agent.js', import.meta.url), 'utf8');

/** A fresh context with what a browser page has, and the UMD script run in it. */
function runUmd(/** @type {Record<string, any>} */ extra = {}) {
  const window = /** @type {any} */ ({ btoa, atob, TextEncoder, URL, ...extra });
  window.self = window;
  vm.createContext(window);
  vm.runInContext(UMD, window, { filename: 'eimzo-agent.js' });
  return window;
}

test('eimzo-agent.js is current (run `node browser_js/build.mjs` after editing eimzo-agent.mjs)', async () => {
  assert.deepEqual(staleOutputs(await expectedOutputs()), []);
  const check = execFileSync(process.execPath, [BUILD, '--check'], { encoding: 'utf8' });
  assert.match(check, /up to date/);
});

test('the classic script defines the same API as the module, as a global', () => {
  const api = runUmd()[GLOBAL_NAME];
  assert.equal(GLOBAL_NAME, 'EimzoAgent');
  assert.deepEqual(Object.keys(api).sort(), Object.keys(esm).sort());
  assert.equal(api.parseAlias('cn=a,o=b\\, c').organisation, 'b, c');
  assert.equal(typeof new api.EimzoClient({ location: null }).login, 'function');
});

test('the classic script is a CommonJS module under require() and an AMD module under define()', () => {
  const module = { exports: {} };
  const cjs = runUmd({ module, exports: module.exports });
  assert.equal(cjs[GLOBAL_NAME], undefined, 'no global under CommonJS');
  assert.deepEqual(Object.keys(module.exports).sort(), Object.keys(esm).sort());

  /** @type {any} */
  let defined = null;
  const define = (/** @type {string[]} */ deps, /** @type {Function} */ factory) => {
    defined = {};
    assert.deepEqual([...deps], ['exports']);
    factory(defined);
  };
  define.amd = {};
  const amd = runUmd({ define });
  assert.equal(amd[GLOBAL_NAME], undefined, 'no global under AMD');
  assert.equal(defined.CLIENT_VERSION, esm.CLIENT_VERSION);
});

test('a changed module makes the committed build stale; what rollup cannot resolve fails the build', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eimzo-build-'));
  try {
    const changed = join(dir, 'changed.mjs');
    writeFileSync(changed, readFileSync(new URL('../eimzo-agent.mjs', import.meta.url), 'utf8') +
      '\nexport const EXTRA = 42;\n');
    const outputs = await expectedOutputs(changed);
    assert.deepEqual(staleOutputs(outputs), ['browser_js/eimzo-agent.js']);
    assert.match(outputs[0].content.toString(), /exports\.EXTRA = EXTRA;/);

    const broken = join(dir, 'broken.mjs');
    writeFileSync(broken, "import { x } from './missing.mjs';\nexport const a = x;\n");
    await assert.rejects(expectedOutputs(broken), /missing\.mjs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TypeScript declarations name every export of the module', () => {
  const declarations = readFileSync(new URL('../eimzo-agent.d.ts', import.meta.url), 'utf8');
  for (const name of Object.keys(esm)) {
    assert.match(declarations, new RegExp(`export declare (const|class|function) ${name}\\b`), name);
  }
});
