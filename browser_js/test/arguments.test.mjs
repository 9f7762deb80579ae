// A missing or malformed key object is a programming slip: it gets a TypeError that says what is wrong, before
// anything is sent (it used to be "Cannot read properties of undefined (reading 'type')", or a frame the agent
// refused with a reason that named nothing).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EimzoClient } from '../eimzo-agent.mjs';
import { fakeAgent } from '../testing/fakes.mjs';

function setup() {
  const agent = fakeAgent({
    handle(request) {
      if (request.name === 'load_key') return { success: true, status: 1, keyId: 'a'.repeat(32), type: 'PFX_KEY_STORE' };
      return { success: true, status: 1, pkcs7_64: 'MIIB', signer_serial_number: '01', signature_hex: 'ab' };
    },
  });
  const client = new EimzoClient({ url: 'ws://127.0.0.1:64646/service/cryptapi', WebSocket: agent.WebSocket,
    location: null });
  return { agent, client };
}

/** @param {RegExp} pattern */
const typeError = (pattern) => (/** @type {any} */ error) => {
  assert.ok(error instanceof TypeError, `a TypeError, got ${error}`);
  assert.match(error.message, pattern);
  return true;
};

test('loadKey() without a key says so, and hints at an empty key list', async () => {
  const { agent, client } = setup();
  const keys = /** @type {any[]} */ ([]);
  await assert.rejects(client.loadKey(keys[0]), typeError(/^loadKey\(\): no key given \(undefined\);.*listKeys\(\).*empty/));
  await assert.rejects(client.loadKey(/** @type {any} */ (null)), typeError(/no key given \(null\)/));
  await assert.rejects(client.loadKey(/** @type {any} */ ('DS3123')), typeError(/must be an object, not a string/));
  assert.deepEqual(agent.requests, [], 'nothing was sent');
});

test('loadKey() with a malformed .pfx entry names every field that is wrong', async () => {
  const { agent, client } = setup();
  await assert.rejects(client.loadKey(/** @type {any} */ ({ alias: 'cn=x' })),
    typeError(/^loadKey\(\): the \.pfx key has no valid disk, name \(a non-empty string is needed\)/));
  await assert.rejects(client.loadKey(/** @type {any} */ ({ disk: '/media/flash/', fileName: 'DS1', alias: 7 })),
    typeError(/no valid alias /));
  await assert.rejects(client.loadKey(/** @type {any} */ ({ disk: 'C:\\', path: 3, name: 'DS1', alias: 'cn=x' })),
    typeError(/no valid path /));
  await assert.rejects(client.loadKey(/** @type {any} */ ({ type: 'token', alias: 'cn=x' })),
    typeError(/^loadKey\(\): the token key has no valid tokenId /));
  assert.deepEqual(agent.requests, [], 'nothing was sent');
});

test('loadKey() still takes listKeys() entries and E-IMZO\'s raw entries', async () => {
  const { agent, client } = setup();
  await client.loadKey({ disk: '/media/flash/', path: 'DSKEYS', name: 'DS1', alias: 'cn=x' });
  await client.loadKey(/** @type {any} */ ({ type: 'pfx', disk: 'C:\\', fileName: 'DS2', alias: 'cn=y' }));
  await client.loadKey(/** @type {any} */ ({ type: 'token', tokenId: 't1', alias: 'cn=z' }));
  assert.deepEqual(agent.requests.map((r) => [r.plugin, ...r.arguments]), [
    ['pfx', '/media/flash/', 'DSKEYS', 'DS1', 'cn=x'],
    ['pfx', 'C:\\', '', 'DS2', 'cn=y'],
    ['token', 't1', 'cn=z'],
  ]);
});

test('sign() and appendSignature() without a loaded key say what they got', async () => {
  const { agent, client } = setup();
  await assert.rejects(client.sign(/** @type {any} */ (undefined), 'doc'),
    typeError(/^sign\(\): the key must be a loadKey\(\) result or its keyId \(got undefined\)$/));
  await assert.rejects(client.sign(/** @type {any} */ ({ disk: 'C:\\' }), 'doc'), typeError(/got an object without keyId/));
  await assert.rejects(client.appendSignature(/** @type {any} */ (''), 'MIIB'), typeError(/^appendSignature\(\).*got ""/));
  assert.deepEqual(agent.requests, [], 'nothing was sent');
  assert.equal((await client.sign({ keyId: 'k'.repeat(32), type: 'PFX_KEY_STORE' }, 'doc')).pkcs7, 'MIIB');
});
