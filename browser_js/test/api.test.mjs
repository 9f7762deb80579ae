// The Promise API and its typed errors, against a scripted fake agent.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AgentError,
  EimzoClient,
  EimzoError,
  ProtocolError,
  PUBLISHED_API_KEYS,
  Status,
  VersionError,
  base64ToBytes,
  codeForStatus,
  dataToBase64,
} from '../eimzo-agent.mjs';
import { INDIVIDUAL_ALIAS, LEGAL_ALIAS, NO_IDS_ALIAS, fakeAgent } from '../testing/fakes.mjs';

const VERSION = { success: true, status: 1, major: '6', minor: '4', patch: '7', edition: 'Standard',
  agent: 'eimzo-agent', agent_version: '0.1.0' };

/**
 * A fake agent that answers like eimzo-agent: version, apikey, pfx listing/loading, pkcs7 signing.
 * @param {Record<string, (request: any) => any>} [overrides] by "plugin.name"
 */
function agentWith(overrides = {}) {
  return fakeAgent({
    handle(request) {
      const key = `${request.plugin || ''}.${request.name}`;
      if (overrides[key]) return overrides[key](request);
      switch (key) {
        case '.version':
          return VERSION;
        case '.apikey':
          return { success: true, status: 1, message: 'https://portal.example.uz' };
        case 'pfx.list_all_certificates':
          return { success: true, status: 1, certificates: [
            { disk: '/media/flash/', path: 'DSKEYS', name: 'DS4123456789012400001', alias: LEGAL_ALIAS },
            { disk: '/media/flash/', path: '', name: 'DS3123456789012300001', alias: INDIVIDUAL_ALIAS },
            { disk: '/media/flash/', path: '', name: 'SELF', alias: NO_IDS_ALIAS },
          ] };
        case 'token.list_keys':
          return { success: false, status: 0, reason: 'Функция не найдена' };
        case 'pfx.load_key':
          return { success: true, status: 1, keyId: 'a'.repeat(32), type: 'PFX_KEY_STORE' };
        case 'pfx.unload_key':
          return { success: true, status: 1 };
        case 'pkcs7.create_pkcs7':
          return { success: true, status: 1, pkcs7_64: 'MIIB', signer_serial_number: '7283d8ca', signature_hex: 'ab' };
        case 'pkcs7.append_pkcs7_attached':
          return { success: true, status: 1, pkcs7_64: 'MIIC', signer_serial_number: '1a2b', signature_hex: 'cd' };
        default:
          return { success: false, status: 0, reason: 'Функция не найдена или версия E-IMZO устарела.' };
      }
    },
  });
}

/** @param {any} agent @param {object} [options] */
function client(agent, options = {}) {
  return new EimzoClient({ url: 'ws://127.0.0.1:64646/service/cryptapi', WebSocket: agent.WebSocket, location: null,
    ...options });
}

test('version() and ensureVersion()', async () => {
  const c = client(agentWith());
  const version = await c.version();
  assert.deepEqual(version, { major: 6, minor: 4, patch: 7, number: 604, text: '6.4.7', edition: 'Standard',
    agent: 'eimzo-agent', agentVersion: '0.1.0' });
  assert.equal((await c.ensureVersion({ major: 6, minor: 0 })).number, 604);
  assert.equal((await c.ensureVersion('4.86')).number, 604);
  await assert.rejects(c.ensureVersion(700), (error) => error instanceof VersionError &&
    error.code === 'VERSION_TOO_OLD' && error.installed.text === '6.4.7' && error.required.major === 7);
});

test('ensureVersion() refuses an agent older than the default minimum (3.36)', async () => {
  const agent = agentWith({ '.version': () => ({ success: true, status: 1, major: '3', minor: '27' }) });
  const c = client(agent);
  await assert.rejects(c.ensureVersion(), VersionError);
  assert.equal((await c.version()).agent, 'E-IMZO');
});

test('installApiKeys() sends the flat domain/key list and returns the Origin the agent saw', async () => {
  const agent = agentWith();
  const c = client(agent);
  assert.equal(await c.installApiKeys({ 'portal.example.uz': 'ABCD' }), 'https://portal.example.uz');
  assert.deepEqual(agent.requests.at(-1), { name: 'apikey', arguments: ['portal.example.uz', 'ABCD'] });
  await c.installApiKeys([['a.uz', '1'], ['b.uz', '2']]);
  assert.deepEqual(agent.requests.at(-1).arguments, ['a.uz', '1', 'b.uz', '2']);
  await c.installApiKeys();
  assert.deepEqual(agent.requests.at(-1).arguments, [...PUBLISHED_API_KEYS]);
});

test('the apiKeys option is presented once, before the first call that needs an approved domain', async () => {
  const agent = agentWith();
  const c = client(agent, { apiKeys: ['portal.example.uz', 'ABCD'] });
  await c.version();
  assert.deepEqual(agent.requests.map((r) => r.name), ['version'], 'version needs no approval');
  await c.listKeys();
  await c.listKeys();
  assert.deepEqual(agent.requests.map((r) => r.name),
    ['version', 'apikey', 'list_all_certificates', 'list_keys', 'list_all_certificates', 'list_keys']);
});

test('listKeys() parses every alias and keeps what loadKey() needs (pfx entries without ids too)', async () => {
  const c = client(agentWith());
  const keys = await c.listKeys({ now: new Date(2025, 0, 1) });
  assert.equal(keys.length, 3);
  const [legal, individual, selfMade] = keys;
  assert.equal(legal.type, 'pfx');
  assert.equal(legal.legalEntity, true);
  assert.equal(legal.organisation, 'yangi texnologiyalar, mchj');
  assert.equal(legal.fileName, 'DS4123456789012400001');
  assert.equal(legal.path, 'DSKEYS');
  assert.equal(legal.alias, LEGAL_ALIAS);
  assert.equal(individual.expired, true);
  assert.equal(individual.legalEntity, false);
  assert.equal(selfMade.pinfl, null);
});

test('listKeys() adds PKCS#11 token keys when the agent has them', async () => {
  const agent = agentWith({
    'token.list_keys': () => ({ success: true, status: 1, keys: [
      { tokenId: 't1', tokenLabel: 'ruToken', label: 'sign', alias: INDIVIDUAL_ALIAS },
    ] }),
    'token.load_key': (request) => {
      assert.deepEqual(request.arguments, ['t1', INDIVIDUAL_ALIAS]);
      return { success: true, status: 1, keyId: 'b'.repeat(32), type: 'PKCS11_KEY_STORE' };
    },
    'token.unload_key': () => ({ success: true, status: 1 }),
  });
  const c = client(agent);
  const keys = await c.listKeys();
  const token = keys.find((k) => k.type === 'token');
  assert.equal(token?.tokenLabel, 'ruToken');
  const loaded = await c.loadKey(/** @type {any} */ (token));
  assert.deepEqual(loaded, { keyId: 'b'.repeat(32), type: 'PKCS11_KEY_STORE' });
  await c.unloadKey(loaded.keyId);
  assert.equal(agent.requests.at(-1).plugin, 'token', 'a token key is unloaded through the token plugin');
});

test('loadKey() takes a listKeys() entry or E-IMZO\'s raw entry; sign() and unloadKey() use the keyId', async () => {
  const agent = agentWith();
  const c = client(agent);
  const [legal] = await c.listKeys();
  const loaded = await c.loadKey(legal);
  assert.deepEqual(agent.requests.at(-1), { name: 'load_key', plugin: 'pfx',
    arguments: ['/media/flash/', 'DSKEYS', 'DS4123456789012400001', LEGAL_ALIAS] });
  await c.loadKey({ disk: 'C:\\', path: '', name: 'DS1', alias: 'cn=x' });
  assert.deepEqual(agent.requests.at(-1).arguments, ['C:\\', '', 'DS1', 'cn=x']);

  const signed = await c.sign(loaded, 'Shartnoma № 17');
  assert.deepEqual(signed, { pkcs7: 'MIIB', signerSerialNumber: '7283d8ca', signatureHex: 'ab' });
  const [data64, keyId, detached] = agent.requests.at(-1).arguments;
  assert.equal(new TextDecoder().decode(base64ToBytes(data64)), 'Shartnoma № 17');
  assert.equal(keyId, 'a'.repeat(32));
  assert.equal(detached, 'no');

  await c.sign(loaded.keyId, new Uint8Array([0, 255, 1]), { detached: true });
  assert.deepEqual(agent.requests.at(-1).arguments, ['AP8B', 'a'.repeat(32), 'yes']);
  await c.sign('idcard', 'AAEC', { base64: true });
  assert.deepEqual(agent.requests.at(-1).arguments, ['AAEC', 'idcard', 'no']);

  const cosigned = await c.appendSignature(loaded, 'MIIB');
  assert.equal(cosigned.pkcs7, 'MIIC');
  assert.deepEqual(agent.requests.at(-1), { name: 'append_pkcs7_attached', plugin: 'pkcs7',
    arguments: ['MIIB', 'a'.repeat(32)] });
  await c.unloadKey(loaded);
  assert.deepEqual(agent.requests.at(-1), { name: 'unload_key', plugin: 'pfx', arguments: ['a'.repeat(32)] });
});

test('sign() takes Blobs, ArrayBuffers and typed-array views', async () => {
  assert.equal(await dataToBase64(new Blob(['hi ', 'там'])), Buffer.from('hi там').toString('base64'));
  assert.equal(await dataToBase64(new Uint8Array([1, 2, 3]).buffer), 'AQID');
  assert.equal(await dataToBase64(new DataView(new Uint8Array([9, 1, 2, 3]).buffer, 1)), 'AQID');
  const big = new Uint8Array(200000).map((_, i) => i % 251);
  assert.equal(await dataToBase64(big), Buffer.from(big).toString('base64'));
  await assert.rejects(dataToBase64(/** @type {any} */ (42)), TypeError);
});

test('a refusal from the agent is an AgentError carrying E-IMZO\'s status and reason', async () => {
  const agent = agentWith({
    'pkcs7.create_pkcs7': () => ({ success: false, status: -5000, reason: 'Ввод пароля отменен' }),
    'pfx.load_key': () => ({ success: false, status: -2002, reason: 'Файл ключа не существует' }),
  });
  const c = client(agent);
  await assert.rejects(c.sign('x'.repeat(32), 'doc'), (error) => error instanceof AgentError &&
    error instanceof EimzoError && error.status === -5000 && error.reason === 'Ввод пароля отменен' &&
    error.code === 'CANCELLED' && error.cancelled === true && error.message === 'Ввод пароля отменен');
  await assert.rejects(c.loadKey({ disk: 'C:\\', path: '', name: 'X', alias: 'cn=x' }), (error) =>
    error instanceof AgentError && error.status === -2002 && error.code === 'AGENT_ERROR' && !error.cancelled);
});

test('an unknown function is FUNCTION_NOT_FOUND; a reply without status still fails', async () => {
  const agent = agentWith({ '.apidoc': () => ({ success: false, reason: 'boom' }) });
  const c = client(agent);
  await assert.rejects(c.call('nope', [], { plugin: 'pfx' }), (error) => error.code === 'FUNCTION_NOT_FOUND' &&
    error.status === 0);
  await assert.rejects(c.call('apidoc'), (error) => error instanceof AgentError && error.status === undefined &&
    error.reason === 'boom');
});

test('apidoc replies with a bare array, which is a success', async () => {
  const agent = agentWith({ '.apidoc': () => [{ name: 'pfx', functions: [] }] });
  assert.deepEqual(await client(agent).call('apidoc'), [{ name: 'pfx', functions: [] }]);
});

test('a reply that is not JSON is a ProtocolError; the connection stays usable', async () => {
  let first = true;
  const agent = agentWith({
    '.version': () => {
      if (first) {
        first = false;
        return 'not json';
      }
      return VERSION;
    },
  });
  const c = client(agent);
  await assert.rejects(c.version(), (error) => error instanceof ProtocolError && error.code === 'BAD_REPLY');
  assert.equal((await c.version()).number, 604);
});

test('a version reply without major/minor is a ProtocolError', async () => {
  const agent = agentWith({ '.version': () => ({ success: true, status: 1 }) });
  await assert.rejects(client(agent).version(), ProtocolError);
});

test('codeForStatus() maps E-IMZO statuses to stable codes', () => {
  assert.equal(codeForStatus(Status.FUNCTION_NOT_FOUND, ''), 'FUNCTION_NOT_FOUND');
  for (const status of [-5000, -5001, -5002]) assert.equal(codeForStatus(status, ''), 'CANCELLED');
  for (const status of [-1020, -1021, -1022]) assert.equal(codeForStatus(status, ''), 'DOMAIN_NOT_ALLOWED');
  for (const status of [-1010, -1011, -1013, -1014, -1015]) assert.equal(codeForStatus(status, ''), 'KEY_NOT_LOADED');
  assert.equal(codeForStatus(undefined, 'javax.crypto.BadPaddingException: pad block corrupted'), 'WRONG_PASSWORD');
  // The agent's three-wrong-passwords reply: a cancel's status, told apart by the reason alone.
  const wrong = 'Пароль неверный (BadPaddingException): пароль ключа введён неверно 3 раз(а).';
  assert.equal(codeForStatus(-5000, wrong), 'WRONG_PASSWORD');
  assert.equal(codeForStatus(-5000, 'Ввод пароля отменен'), 'CANCELLED');
  assert.equal(codeForStatus(-9999, 'anything'), 'AGENT_ERROR');
});

test('a DOMAIN_NOT_ALLOWED refusal makes the client present its API keys again next time', async () => {
  let refuse = true;
  const agent = agentWith({
    'pfx.list_all_certificates': () => {
      if (refuse) {
        refuse = false;
        return { success: false, status: -1022, reason: 'API-key для домена portal.uz недействителен.' };
      }
      return { success: true, status: 1, certificates: [] };
    },
  });
  const c = client(agent, { apiKeys: { 'portal.uz': 'KEY' } });
  await assert.rejects(c.listKeys(), (error) => error.code === 'DOMAIN_NOT_ALLOWED');
  await c.listKeys();
  assert.equal(agent.requests.filter((r) => r.name === 'apikey').length, 2);
});
