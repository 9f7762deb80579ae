// compat/e-imzo.js + compat/e-imzo-client.js loaded as classic scripts (as a portal loads them) in a VM context,
// with a fake WebSocket playing the agent.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

import { INDIVIDUAL_ALIAS, LEGAL_ALIAS, NO_IDS_ALIAS, fakeAgent, settle } from '../testing/fakes.mjs';

const E_IMZO = readFileSync(new URL('../compat/e-imzo.js', import.meta.url), 'utf8');
const E_IMZO_CLIENT = readFileSync(new URL('../compat/e-imzo-client.js', import.meta.url), 'utf8');

const CERTIFICATES = [
  { disk: '/media/flash/', path: 'DSKEYS', name: 'DS3012', alias: NO_IDS_ALIAS },
  { disk: '/media/flash/', path: 'DSKEYS', name: 'DS4123', alias: LEGAL_ALIAS },
  { disk: '/media/flash/', path: '', name: 'DS3123', alias: INDIVIDUAL_ALIAS },
];

/** @param {(request: any) => any} handle @param {Record<string, any>} [extra] */
function page(handle, extra = {}) {
  const agent = fakeAgent({ handle });
  const window = /** @type {any} */ ({
    WebSocket: agent.WebSocket,
    location: { protocol: 'http:', hostname: 'portal.example.uz' },
    btoa,
    atob,
    TextEncoder,
    TextDecoder,
    ...extra,
  });
  window.window = window;
  vm.createContext(window);
  vm.runInContext(E_IMZO, window, { filename: 'e-imzo.js' });
  vm.runInContext(E_IMZO_CLIENT, window, { filename: 'e-imzo-client.js' });
  return { window, agent };
}

function standardAgent(/** @type {any} */ request) {
  switch (`${request.plugin || ''}.${request.name}`) {
    case '.version':
      return { success: true, status: 1, major: '6', minor: '4', patch: '7' };
    case '.apikey':
      return { success: true, status: 1, message: 'http://portal.example.uz' };
    case 'pfx.list_all_certificates':
      return { success: true, status: 1, certificates: CERTIFICATES };
    case 'pfx.load_key':
      return { success: true, status: 1, keyId: 'k'.repeat(32), type: 'PFX_KEY_STORE' };
    case 'pfx.verify_password':
    case 'pfx.change_password':
      return { success: true, status: 1 };
    case 'pkcs7.create_pkcs7':
      return { success: true, status: 1, pkcs7_64: 'MIIS', signer_serial_number: '7283d8ca', signature_hex: 'beef' };
    case 'pkcs7.attach_timestamp_token_pkcs7':
      return { success: true, status: 1, pkcs7_64: 'MIIT' };
    case 'idcard.list_readers':
      return { success: true, status: 1, readers: ['ACS ACR39U'] };
    case 'baikey.list_tokens':
      return { success: true, status: 1, tokens: [] };
    default:
      return { success: false, status: 0, reason: 'Функция не найдена' };
  }
}

/**
 * Call a callback-style API and resolve with {ok: args} or {fail: args}.
 * @param {(ok: Function, fail: Function) => void} start
 * @returns {Promise<{ok?: any[], fail?: any[]}>}
 */
function outcome(start) {
  return new Promise((resolve) => start((...ok) => resolve({ ok }), (...fail) => resolve({ fail })));
}

test('CAPIWS: ws URL on http pages, wss on https pages; EIMZOEXT replaces it', () => {
  assert.equal(page(standardAgent).window.CAPIWS.URL, 'ws://127.0.0.1:64646/service/cryptapi');
  const secure = page(standardAgent, { location: { protocol: 'https:', hostname: 'x' } });
  assert.equal(secure.window.CAPIWS.URL, 'wss://127.0.0.1:64443/service/cryptapi');
  const extension = { callFunction() {} };
  assert.equal(page(standardAgent, { EIMZOEXT: extension }).window.CAPIWS, extension);
});

test('CAPIWS.callFunction: one socket per call, the frame as given, callback(event, data), socket closed', async () => {
  const { window, agent } = page(standardAgent);
  const result = await outcome((ok, fail) =>
    window.CAPIWS.callFunction({ plugin: 'pfx', name: 'list_all_certificates' }, ok, fail));
  assert.ok(result.ok);
  const [event, data] = result.ok;
  assert.equal(typeof event.data, 'string');
  assert.equal(data.certificates.length, 3);
  assert.deepEqual(agent.requests, [{ plugin: 'pfx', name: 'list_all_certificates' }]);
  assert.equal(agent.sockets[0].url, 'ws://127.0.0.1:64646/service/cryptapi');
  await settle();
  assert.equal(agent.sockets[0].readyState, 3);
});

test('CAPIWS: a refused connection calls error(1006) exactly once', async () => {
  const agent = fakeAgent({ handle: standardAgent, refuse: true });
  const { window } = page(standardAgent, { WebSocket: agent.WebSocket });
  /** @type {any[]} */
  const errors = [];
  window.CAPIWS.version(() => assert.fail('no reply expected'), (/** @type {any} */ e) => errors.push(e));
  await settle(20);
  assert.deepEqual(errors, [1006]);
});

test('CAPIWS: no error after a reply even when the close is not 1000', async () => {
  const { window, agent } = page(standardAgent);
  /** @type {any[]} */
  const errors = [];
  await new Promise((resolve) => window.CAPIWS.version(resolve, (/** @type {any} */ e) => errors.push(e)));
  agent.sockets[0]._closeFromServer(1005);
  await settle();
  assert.deepEqual(errors, []);
});

test('classic flow: checkVersion → installApiKeys → listAllUserKeys → loadKey → createPkcs7', async () => {
  const { window, agent } = page(standardAgent);
  const client = window.EIMZOClient;

  const version = await outcome((ok, fail) => client.checkVersion(ok, fail));
  assert.deepEqual(version.ok, ['6', '4']);
  assert.equal(client.NEW_API, true);
  assert.equal(client.NEW_API2, true);
  assert.equal(client.NEW_API3, true);

  const installed = await outcome((ok, fail) => client.installApiKeys(ok, fail));
  assert.deepEqual(installed.ok, []);
  assert.deepEqual(agent.requests.at(-1), { name: 'apikey', arguments: [...client.API_KEYS] });

  /** @type {any[]} */
  const ids = [];
  const listed = await outcome((ok, fail) => client.listAllUserKeys(
    (/** @type {any} */ vo, /** @type {number} */ index) => `itm-${vo.serialNumber}-${index}`,
    (/** @type {string} */ id, /** @type {any} */ vo) => {
      ids.push(id);
      return { id, vo };
    },
    ok, fail));
  const [items, firstId] = /** @type {any[]} */ (listed.ok);
  // The first entry has neither TIN nor PINFL: skipped, but its index is used up.
  assert.deepEqual(ids, ['itm-7283D8CA-1', 'itm-1A2B-2']);
  assert.equal(firstId, null, 'firstId only when exactly one key');
  const legal = items[0].vo;
  assert.equal(legal.type, 'pfx');
  assert.equal(legal.CN, 'KARIMOVA NODIRA');
  assert.equal(legal.O, 'YANGI TEXNOLOGIYALAR, MCHJ', 'the escaped comma stays inside the value');
  assert.equal(legal.TIN, '301234567', 'TIN = the organisation\'s TIN when there is one');
  assert.equal(legal.UID, '498765432');
  assert.equal(legal.PINFL, '41234567890124');
  assert.equal(legal.T, 'DIREKTOR');
  assert.equal(legal.serialNumber, '7283D8CA');
  assert.equal(legal.alias, LEGAL_ALIAS, 'the alias itself is kept as the agent sent it');
  assert.equal(legal.name, 'DS4123');
  assert.equal(legal.validFrom.getTime(), new Date(2024, 3, 25, 17, 42, 58).getTime(), 'local time');
  assert.equal(legal.validTo.getTime(), new Date(2099, 3, 25, 23, 59, 59).getTime());
  assert.equal(items[1].vo.TIN, '512345678', 'TIN = UID for an individual');

  const loaded = await outcome((ok, fail) => client.loadKey(legal, ok, fail));
  assert.deepEqual(loaded.ok, ['k'.repeat(32)]);
  assert.deepEqual(agent.requests.at(-1).arguments, ['/media/flash/', 'DSKEYS', 'DS4123', LEGAL_ALIAS]);

  const signed = await outcome((ok, fail) => client.createPkcs7('k'.repeat(32), 'Договор № 17 ✓ 😀', null, ok, fail));
  assert.deepEqual(signed.ok, ['MIIS']);
  const [data64, id, detached] = agent.requests.at(-1).arguments;
  assert.equal(Buffer.from(data64, 'base64').toString('utf8'), 'Договор № 17 ✓ 😀');
  assert.equal(id, 'k'.repeat(32));
  assert.equal(detached, 'no');
});

test('listAllUserKeys: firstId when there is exactly one key; fail(null, reason) and fail(1006, null)', async () => {
  const one = page((request) => request.name === 'list_all_certificates'
    ? { success: true, status: 1, certificates: [CERTIFICATES[2]] }
    : standardAgent(request));
  one.window.EIMZOClient.NEW_API = true;
  const listed = await outcome((ok, fail) => one.window.EIMZOClient.listAllUserKeys(
    () => 'only', (/** @type {string} */ id) => id, ok, fail));
  const [items, firstId] = /** @type {any[]} */ (listed.ok);
  assert.deepEqual([...items], ['only']); // (an array of the page's realm)
  assert.equal(firstId, 'only');

  const refusing = page((request) => ({ success: false, status: -1022, reason: `denied ${request.name}` }));
  refusing.window.EIMZOClient.NEW_API = true;
  const denied = await outcome((ok, fail) => refusing.window.EIMZOClient.listAllUserKeys(
    () => 'x', () => 'x', ok, fail));
  assert.deepEqual(denied.fail, [null, 'denied list_all_certificates']);

  const agent = fakeAgent({ handle: standardAgent, refuse: true });
  const down = page(standardAgent, { WebSocket: agent.WebSocket });
  down.window.EIMZOClient.NEW_API = true;
  const unreachable = await outcome((ok, fail) => down.window.EIMZOClient.listAllUserKeys(
    () => 'x', () => 'x', ok, fail));
  assert.deepEqual(unreachable.fail, [1006, null]);
});

test('listAllUserKeys refuses before checkVersion found a new enough agent', async () => {
  const { window } = page(standardAgent);
  const result = await outcome((ok, fail) => window.EIMZOClient.listAllUserKeys(() => 'x', () => 'x', ok, fail));
  assert.deepEqual(result.fail, [null, 'Please install new version of E-IMZO']);
});

test('checkVersion: old agent flags, missing version and refusal', async () => {
  const old = page(() => ({ success: true, status: 1, major: '4', minor: '12' }));
  await outcome((ok, fail) => old.window.EIMZOClient.checkVersion(ok, fail));
  assert.equal(old.window.EIMZOClient.NEW_API2, true);
  assert.equal(old.window.EIMZOClient.NEW_API3, false);
  const blank = page(() => ({ success: true, status: 1 }));
  assert.deepEqual((await outcome((ok, fail) => blank.window.EIMZOClient.checkVersion(ok, fail))).fail,
    [null, 'E-IMZO Version is undefined']);
  const refused = page(() => ({ success: false, status: -9999, reason: 'nope' }));
  assert.deepEqual((await outcome((ok, fail) => refused.window.EIMZOClient.checkVersion(ok, fail))).fail,
    [null, 'nope']);
});

test('loadKey with verifyPassword asks the agent to check the password first', async () => {
  const { window, agent } = page(standardAgent);
  const vo = { type: 'pfx', disk: 'C:\\', path: '', name: 'DS1', alias: 'cn=x' };
  const loaded = await outcome((ok, fail) => window.EIMZOClient.loadKey(vo, ok, fail, true));
  assert.deepEqual(loaded.ok, ['k'.repeat(32)]);
  assert.deepEqual(agent.requests.at(-1), { plugin: 'pfx', name: 'verify_password', arguments: ['k'.repeat(32)] });
  const changed = await outcome((ok, fail) => window.EIMZOClient.changeKeyPassword(vo, ok, fail));
  assert.deepEqual(changed.ok, []);
  assert.equal(agent.requests.at(-1).name, 'change_password');
});

test('createPkcs7: detached, data already in Base64, and a timestamper', async () => {
  const { window, agent } = page(standardAgent);
  const client = window.EIMZOClient;
  await outcome((ok, fail) => client.createPkcs7('id', 'AAEC', null, ok, fail, true, true));
  assert.deepEqual(agent.requests.at(-1).arguments, ['AAEC', 'id', 'yes']);
  /** @type {any[]} */
  const stamped = [];
  const result = await outcome((ok, fail) => client.createPkcs7('id', 'text', (
    /** @type {string} */ signatureHex, /** @type {Function} */ done) => {
    stamped.push(signatureHex);
    done('TST64');
  }, ok, fail));
  assert.deepEqual(stamped, ['beef']);
  assert.deepEqual(result.ok, ['MIIT']);
  assert.deepEqual(agent.requests.at(-1), { plugin: 'pkcs7', name: 'attach_timestamp_token_pkcs7',
    arguments: ['MIIS', '7283d8ca', 'TST64'] });
});

test('device checks, Base64 and _getX500Val', async () => {
  const { window } = page(standardAgent);
  const client = window.EIMZOClient;
  await outcome((ok, fail) => client.checkVersion(ok, fail));
  assert.deepEqual((await outcome((ok, fail) => client.idCardIsPLuggedIn(ok, fail))).ok, [true]);
  assert.deepEqual((await outcome((ok, fail) => client.isBAIKTokenPLuggedIn(ok, fail))).ok, [false]);
  assert.equal(window.Base64.encode('O‘zbekiston 😀'), Buffer.from('O‘zbekiston 😀').toString('base64'));
  assert.equal(window.Base64.decode(window.Base64.encode('Qaraqalpaqsha: ǵ ń ú')), 'Qaraqalpaqsha: ǵ ń ú');
  assert.equal(client._getX500Val('CN=ALIYEV VALI,O=A\\, B,T=X', 'O'), 'A, B');
  assert.equal(client._getX500Val('CN=ALIYEV VALI', 'O'), undefined);
});
