// login() and sign({timestampUrl}) against a real HTTP server on 127.0.0.1 that answers as E-IMZO-server does
// (raw text bodies, JSON replies with `status`), with the scripted fake agent doing the signing.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { AbortedError, EimzoClient, PortalError } from '../eimzo-agent.mjs';
import { LEGAL_ALIAS, fakeAgent } from '../testing/fakes.mjs';

const KEY_ID = 'a'.repeat(32);
/** The agent's "PKCS#7" for a document: recognisable, so the server can tell what was signed. */
const pkcs7Of = (/** @type {string} */ data64) => Buffer.from(`PKCS7(${data64})`).toString('base64');
const documentOf = (/** @type {string} */ pkcs7) => /^PKCS7\((.*)\)$/.exec(Buffer.from(pkcs7, 'base64').toString())?.[1];

/** @type {import('node:http').Server} */
let server;
let base = '';
/** @type {Array<{method: string, url: string, type?: string, body: string}>} */
let seen = [];
/** Challenges issued and not yet used, as E-IMZO-server keeps them. */
const issued = new Set();
let counter = 0;
let fixed = '';

/** Routes: what a portal's server answers. */
const routes = {
  /** @param {URL} url */
  'GET /frontend/challenge': (url) => {
    const challenge = `eimzo-login v1 origin=${base} issued=20261202T153000Z nonce=${String(++counter).padStart(43, 'A')}` +
      (url.searchParams.get('utf8') ? ' ҳ' : '');
    issued.add(challenge);
    return [200, { challenge, ttl: 120, status: 1, message: '' }];
  },
  'POST /backend/auth': (/** @type {URL} */ _url, /** @type {string} */ body) => {
    const content = Buffer.from(documentOf(body) || '', 'base64').toString('utf8');
    if (!issued.delete(content)) return [200, { status: -20, message: 'Challenge not found or expired' }];
    return [200, { subjectCertificateInfo: { subjectName: { CN: 'KARIMOVA NODIRA', '1.2.860.3.16.1.2': '41234567890124' } },
      status: 1, message: '' }];
  },
  'POST /frontend/timestamp/pkcs7': (/** @type {URL} */ _url, /** @type {string} */ body) =>
    [200, { pkcs7b64: Buffer.from(`TS(${body})`).toString('base64'), timestampedSignerList: [{ serialNumber: '7283d8ca' }],
      status: 1, message: '' }],
  /** Always the same challenge (issued once): a page that replays one. */
  'GET /fixed': () => {
    if (!fixed) {
      fixed = `eimzo-login v1 origin=${base} issued=20261202T153000Z nonce=${'F'.repeat(43)}`;
      issued.add(fixed);
    }
    return [200, { challenge: fixed, ttl: 120, status: 1, message: '' }];
  },
  'GET /down': () => [503, 'Service Unavailable'],
  'GET /html': () => [200, '<html>not json</html>'],
  'GET /no-challenge': () => [200, { ttl: 120, status: 1, message: '' }],
  'GET /refused': () => [400, { status: -1, message: 'bad request' }],
};

before(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const url = new URL(request.url || '/', base);
      seen.push({ method: request.method || '', url: request.url || '', type: request.headers['content-type'], body });
      const route = /** @type {any} */ (routes)[`${request.method} ${url.pathname}`];
      const [code, reply] = route ? route(url, body) : [404, 'not found'];
      response.writeHead(code, { 'Content-Type': typeof reply === 'string' ? 'text/html' : 'application/json' });
      response.end(typeof reply === 'string' ? reply : JSON.stringify(reply));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  base = `http://127.0.0.1:${/** @type {any} */ (server.address()).port}`;
});

after(() => server.close());

/** A client whose agent signs with pkcs7Of(), and the fetch calls it makes (through the real fetch). */
function setup() {
  seen = [];
  const agent = fakeAgent({
    handle(request) {
      const key = `${request.plugin || ''}.${request.name}`;
      if (key === 'pfx.load_key') return { success: true, status: 1, keyId: KEY_ID, type: 'PFX_KEY_STORE' };
      if (key === 'pkcs7.create_pkcs7') {
        return { success: true, status: 1, pkcs7_64: pkcs7Of(request.arguments[0]), signer_serial_number: '7283d8ca',
          signature_hex: 'ab' };
      }
      return { success: false, status: 0, reason: 'Функция не найдена' };
    },
  });
  /** @type {Array<{url: string, init: any}>} */
  const fetches = [];
  const client = new EimzoClient({
    url: 'ws://127.0.0.1:64646/service/cryptapi', WebSocket: agent.WebSocket, location: null,
    fetch: (/** @type {string} */ url, /** @type {any} */ init) => {
      fetches.push({ url, init });
      return fetch(url, init);
    },
  });
  return { client, agent, fetches };
}

test('login(): GET the challenge (uncached), sign it attached, POST the PKCS#7 raw, resolve with the reply', async () => {
  const { client, agent, fetches } = setup();
  const reply = await client.login({ challengeUrl: `${base}/frontend/challenge`, authUrl: `${base}/backend/auth`,
    key: { keyId: KEY_ID, type: 'PFX_KEY_STORE' } });
  assert.equal(reply.status, 1);
  assert.equal(reply.subjectCertificateInfo.subjectName['1.2.860.3.16.1.2'], '41234567890124');

  const [get, post] = seen;
  assert.equal(get.method, 'GET');
  assert.match(get.url, /^\/frontend\/challenge\?_uc=\d+_[a-z0-9]+$/);
  assert.equal(post.method, 'POST');
  assert.equal(post.url, '/backend/auth');
  assert.equal(post.type, 'text/plain');
  assert.deepEqual(fetches.map((f) => f.init.cache), ['no-store', 'no-store']);

  const signing = agent.requests.filter((r) => r.name === 'create_pkcs7');
  assert.equal(signing.length, 1);
  const [data64, keyId, detached] = signing[0].arguments;
  assert.deepEqual([keyId, detached], [KEY_ID, 'no']);
  assert.match(Buffer.from(data64, 'base64').toString(), /^eimzo-login v1 origin=http:\/\/127\.0\.0\.1:\d+ issued=/);
  assert.equal(post.body, pkcs7Of(data64), 'the body is the bare Base64 PKCS#7');
  client.close();
});

test('login(): the challenge is signed as UTF-8; a URL with a query gets &_uc; a listKeys() entry is loaded first',
  async () => {
    const { client, agent } = setup();
    const key = { type: 'pfx', disk: '/media/flash/', path: '', fileName: 'DS4123456789012400001', alias: LEGAL_ALIAS };
    const reply = await client.login({ challengeUrl: `${base}/frontend/challenge?utf8=1`,
      authUrl: `${base}/backend/auth`, key: /** @type {any} */ (key) });
    assert.equal(reply.status, 1);
    assert.match(seen[0].url, /\?utf8=1&_uc=\d+_[a-z0-9]+$/);
    assert.deepEqual(agent.requests.map((r) => `${r.plugin}.${r.name}`), ['pfx.load_key', 'pkcs7.create_pkcs7']);
    const signing = agent.requests[1].arguments;
    assert.equal(signing[1], KEY_ID);
    assert.ok(Buffer.from(signing[0], 'base64').toString('utf8').endsWith(' ҳ'));
    client.close();
  });

test('login(): a reused challenge is refused (status -20): PortalError carries the status and message', async () => {
  const { client } = setup();
  const login = () => client.login({ challengeUrl: `${base}/fixed`, authUrl: `${base}/backend/auth`, key: KEY_ID });
  assert.equal((await login()).status, 1);
  await assert.rejects(login(), (error) => {
    assert.ok(error instanceof PortalError);
    assert.equal(error.code, 'PORTAL_ERROR');
    assert.equal(error.status, -20);
    assert.equal(error.reason, 'Challenge not found or expired');
    assert.equal(error.httpStatus, 200);
    assert.equal(error.url, `${base}/backend/auth`);
    assert.deepEqual(error.reply, { status: -20, message: 'Challenge not found or expired' });
    assert.equal(error.message, `login: ${base}/backend/auth answered status -20: Challenge not found or expired`);
    return true;
  });
  client.close();
});

test('login(): a failing challenge URL rejects before anything is signed', async () => {
  const cases = [
    ['/down', /answered HTTP 503$/, { httpStatus: 503, status: undefined }],
    ['/refused', /answered HTTP 400: bad request$/, { httpStatus: 400, status: -1, reason: 'bad request' }],
    ['/html', /is not a JSON object$/, { httpStatus: 200 }],
    ['/no-challenge', /has no challenge$/, { httpStatus: 200, status: 1 }],
  ];
  for (const [path, message, fields] of cases) {
    const { client, agent } = setup();
    await assert.rejects(client.login({ challengeUrl: `${base}${path}`, authUrl: `${base}/backend/auth`, key: KEY_ID }),
      (error) => {
        assert.ok(error instanceof PortalError, String(error));
        assert.match(error.message, /** @type {RegExp} */ (message));
        for (const [name, value] of Object.entries(/** @type {object} */ (fields))) {
          assert.equal(/** @type {any} */ (error)[name], value, `${path}: ${name}`);
        }
        return true;
      });
    assert.deepEqual(agent.requests, [], `${path}: the agent was asked`);
    assert.equal(seen.length, 1, `${path}: the auth URL was called`);
    client.close();
  }
});

test('login(): an unreachable server, an aborted login and a missing key', async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', () => resolve(undefined)));
  const deadUrl = `http://127.0.0.1:${/** @type {any} */ (closed.address()).port}/frontend/challenge`;
  await new Promise((resolve) => closed.close(resolve));

  const { client, agent } = setup();
  await assert.rejects(client.login({ challengeUrl: deadUrl, authUrl: `${base}/backend/auth`, key: KEY_ID }),
    (error) => error instanceof PortalError && error.message.startsWith(`login: could not reach ${deadUrl}`) &&
      error.cause !== undefined);
  await assert.rejects(client.login({ challengeUrl: `${base}/frontend/challenge`, authUrl: `${base}/backend/auth`,
    key: KEY_ID, signal: AbortSignal.abort() }), (error) => error instanceof AbortedError &&
    error.message === 'login: aborted');
  await assert.rejects(client.login({ challengeUrl: `${base}/frontend/challenge`, authUrl: `${base}/backend/auth`,
    key: /** @type {any} */ (undefined) }), /login\(\): the key must be a loadKey\(\) result or its keyId/);
  await assert.rejects(client.login(/** @type {any} */ ({ authUrl: `${base}/backend/auth`, key: KEY_ID })),
    /login\(\): challengeUrl and authUrl must be URLs/);
  assert.deepEqual(agent.requests, []);
  assert.equal(seen.length, 0, 'nothing reached the server');
  client.close();
});

test('sign({timestampUrl}): the PKCS#7 comes back timestamped by the portal; without it, no request', async () => {
  const { client } = setup();
  const plain = await client.sign(KEY_ID, 'hujjat');
  assert.equal(plain.pkcs7, pkcs7Of(Buffer.from('hujjat').toString('base64')));
  assert.equal(plain.timestampedSigners, undefined);
  assert.equal(seen.length, 0);

  const stamped = await client.sign(KEY_ID, 'hujjat', { timestampUrl: `${base}/frontend/timestamp/pkcs7`,
    headers: { 'X-CSRF-Token': 't' } });
  assert.equal(Buffer.from(stamped.pkcs7, 'base64').toString(), `TS(${plain.pkcs7})`);
  assert.deepEqual(stamped.timestampedSigners, [{ serialNumber: '7283d8ca' }]);
  assert.deepEqual([seen[0].method, seen[0].url, seen[0].type, seen[0].body],
    ['POST', '/frontend/timestamp/pkcs7', 'text/plain', plain.pkcs7]);
  await assert.rejects(client.sign(KEY_ID, 'hujjat', { timestampUrl: `${base}/down` }),
    (error) => error instanceof PortalError && error.message === `sign: ${base}/down answered HTTP 404`);
  client.close();
});
