// The classic-script build is generated from the module and up to date.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

import { GLOBAL_NAME, expectedOutputs, staleOutputs, umdFromModule } from '../build.mjs';
import * as esm from '../eimzo-agent.mjs';

test('eimzo-agent.js is current (run `node browser_js/build.mjs` after editing eimzo-agent.mjs)', () => {
  assert.deepEqual(staleOutputs(expectedOutputs()), []);
});

test('the classic script defines the same API as the module, as a global', () => {
  const source = readFileSync(new URL('../eimzo-agent.js', import.meta.url), 'utf8');
  const window = /** @type {any} */ ({ btoa, atob, TextEncoder, URL });
  window.self = window;
  vm.createContext(window);
  vm.runInContext(source, window, { filename: 'eimzo-agent.js' });
  const api = window[GLOBAL_NAME];
  assert.deepEqual(Object.keys(api).sort(), Object.keys(esm).sort());
  assert.equal(api.parseAlias('cn=a,o=b\\, c').organisation, 'b, c');
  assert.equal(typeof new api.EimzoClient({ location: null }).listKeys, 'function');
});

test('the UMD build refuses module syntax it cannot translate', () => {
  assert.throws(() => umdFromModule("import x from './x.mjs';\nexport const a = 1;"), /line 1/);
  assert.throws(() => umdFromModule('export { a };'), /not support/);
  assert.throws(() => umdFromModule('const a = 1;'), /exports nothing/);
  assert.match(umdFromModule('export const a = 1;\nexport class B {}'), /return \{\n {2}a,\n {2}B,\n\};/);
});

test('the TypeScript declarations name every export of the module', () => {
  const declarations = readFileSync(new URL('../eimzo-agent.d.ts', import.meta.url), 'utf8');
  for (const name of Object.keys(esm)) {
    assert.match(declarations, new RegExp(`export declare (const|class|function) ${name}\\b`), name);
  }
});
