// browser_js/ as the npm package eimzo-agent-client: its metadata, exactly the intended files in `npm pack`, and
// the packed tarball installed into a throw-away project, imported by its name as ESM and CommonJS. npm works in a
// temporary folder (its cache and logs too): nothing is written into the checkout or the home folder.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CLIENT_VERSION } from '../eimzo-agent.mjs';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8'));
/** What a portal developer gets: the client, its classic-script build, its types, and the manifest and README. */
const INTENDED = ['README.md', 'eimzo-agent.d.ts', 'eimzo-agent.js', 'eimzo-agent.mjs', 'package.json'];

let scratch = '';
/** @type {NodeJS.ProcessEnv} */
let env = {};

/** @param {string[]} args @param {string} cwd */
const npm = (args, cwd) => execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'eimzo-npm-'));
  env = {
    ...process.env,
    npm_config_cache: join(scratch, 'cache'),
    npm_config_userconfig: join(scratch, 'npmrc'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
});

after(() => rmSync(scratch, { recursive: true, force: true }));

test('package.json: named, versioned as CLIENT_VERSION, ESM + UMD + types entry points, no runtime dependencies',
  () => {
    assert.equal(manifest.name, 'eimzo-agent-client');
    assert.equal(manifest.version, CLIENT_VERSION);
    assert.equal(manifest.private, undefined, 'publishable');
    assert.equal(manifest.license, 'Apache-2.0');
    assert.deepEqual(manifest.exports['.'], { types: './eimzo-agent.d.ts', import: './eimzo-agent.mjs',
      require: './eimzo-agent.js', default: './eimzo-agent.js' });
    assert.deepEqual([manifest.main, manifest.module, manifest.types],
      ['./eimzo-agent.js', './eimzo-agent.mjs', './eimzo-agent.d.ts']);
    assert.equal(manifest.dependencies, undefined);
    assert.equal(manifest.peerDependencies, undefined);
    for (const field of ['description', 'homepage', 'repository', 'keywords', 'engines']) {
      assert.ok(manifest[field], `${field} is set`);
    }
  });

test('npm pack lists exactly the client, its build, its types, README and package.json', () => {
  const [packed] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], PACKAGE_DIR));
  assert.equal(packed.name, 'eimzo-agent-client');
  assert.equal(packed.version, CLIENT_VERSION);
  assert.deepEqual(packed.files.map((/** @type {{path: string}} */ f) => f.path).sort(), INTENDED);
});

test('the packed tarball installs offline and imports by its name, as ESM and with require()', () => {
  const [packed] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', scratch],
    PACKAGE_DIR));
  const tarball = join(scratch, packed.filename);
  const project = join(scratch, 'portal');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'portal', private: true }));
  npm(['install', '--offline', '--no-audit', '--no-fund', tarball], project);
  const installed = join(project, 'node_modules', 'eimzo-agent-client');
  assert.deepEqual(INTENDED.filter((name) => !existsSync(join(installed, name))), []);

  const script = `
    const esm = await import('eimzo-agent-client');
    const cjs = require('eimzo-agent-client');
    const client = new esm.EimzoClient({ location: null });
    console.log(JSON.stringify({
      esm: typeof esm.EimzoClient, esmLogin: typeof client.login, esmError: typeof esm.PortalError,
      cjs: typeof cjs.EimzoClient, cjsLogin: typeof new cjs.EimzoClient({ location: null }).login,
      version: [esm.CLIENT_VERSION, cjs.CLIENT_VERSION, require('eimzo-agent-client/package.json').version],
      resolved: [import.meta.resolve('eimzo-agent-client'), require.resolve('eimzo-agent-client')]
        .map((path) => path.split('/').pop()),
    }));`;
  // An ES module that also has require(), so that both resolve from the same project.
  const file = join(project, 'check.mjs');
  writeFileSync(file, `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n` +
    script);
  const result = JSON.parse(execFileSync(process.execPath, [file], { cwd: project, encoding: 'utf8' }));
  assert.deepEqual(result, {
    esm: 'function', esmLogin: 'function', esmError: 'function', cjs: 'function', cjsLogin: 'function',
    version: [CLIENT_VERSION, CLIENT_VERSION, CLIENT_VERSION],
    resolved: ['eimzo-agent.mjs', 'eimzo-agent.js'],
  });
});
