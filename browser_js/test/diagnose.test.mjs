// diagnose(): which failure the page can tell apart, from fake WebSocket, fetch and Permissions API answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ADMIN_MESSAGES, EimzoClient, LANGUAGES, LNA_POLICIES, MESSAGES, adminFix, explain, localNetworkPermission,
  pickLanguage } from '../eimzo-agent.mjs';
import { fakeAgent, makeFakeWebSocket } from '../testing/fakes.mjs';

const WS = 'ws://127.0.0.1:64646/service/cryptapi';
const WSS = 'wss://127.0.0.1:64443/service/cryptapi';
const AGENT_PAGE = 'E-IMZO-v6.4.7 … eimzo-agent 0.1.0 is running';
const VERSION = { success: true, status: 1, major: '6', minor: '4', patch: '7', agent: 'eimzo-agent',
  agent_version: '0.1.0' };

const refused = () => fakeAgent({ handle: () => VERSION, refuse: true }).WebSocket;
const answering = (/** @type {any} */ reply) => fakeAgent({ handle: () => reply }).WebSocket;

/**
 * A fetch that answers per URL: a string = a CORS-readable page; 'opaque' = answers only no-cors requests;
 * 'refuse' = network error; 'hang' = never answers (until aborted).
 * @param {Record<string, string>} answers
 */
function fakeFetch(answers) {
  /** @type {Array<{url: string, mode: string}>} */
  const calls = [];
  const fetch = (/** @type {string} */ url, /** @type {any} */ init) => {
    calls.push({ url, mode: init.mode });
    const answer = answers[url] ?? 'refuse';
    if (answer === 'hang') {
      return new Promise((_, reject) => {
        init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    }
    if (answer === 'refuse' || (answer === 'opaque' && init.mode === 'cors')) {
      return Promise.reject(new TypeError('Failed to fetch'));
    }
    const body = answer === 'opaque' ? '' : answer;
    return Promise.resolve({ status: 200, text: async () => body });
  };
  return Object.assign(fetch, { calls });
}

/** @param {Record<string, string | Error>} states by permission name; an Error is thrown (unknown name) */
function fakePermissions(states) {
  return {
    async query(/** @type {{name: string}} */ { name }) {
      const state = states[name];
      if (state === undefined || state instanceof Error) throw new TypeError(`unknown permission ${name}`);
      return { state };
    },
  };
}

const localPage = { protocol: 'http:', hostname: '127.0.0.1' };
const portalPage = { protocol: 'https:', hostname: 'portal.example.uz' };

/** @param {object} options */
function client(options) {
  return new EimzoClient({ url: WS, location: localPage, permissions: null, ...options });
}

test('ok: the agent answers version; eimzo-agent is told from E-IMZO', async () => {
  const result = await client({
    WebSocket: answering(VERSION),
    fetch: fakeFetch({ 'http://127.0.0.1:64646/': AGENT_PAGE }),
  }).diagnose({ lang: 'ru' });
  assert.equal(result.status, 'ok');
  assert.equal(result.ok, true);
  assert.equal(result.agent, 'eimzo-agent');
  assert.equal(result.version?.text, '6.4.7');
  assert.equal(result.lang, 'ru');
  assert.equal(result.message, MESSAGES.ok.ru);
  assert.deepEqual(Object.keys(result.messages).sort(), [...LANGUAGES].sort());

  const vendor = await client({
    WebSocket: answering({ success: true, status: 1, major: '6', minor: '4', patch: '7' }),
    fetch: fakeFetch({ 'http://127.0.0.1:64646/': 'opaque' }),
  }).diagnose();
  assert.equal(vendor.status, 'ok');
  assert.equal(vendor.agent, 'E-IMZO');
});

test('too-old: the version is below the minimum; the message names both versions', async () => {
  const result = await client({
    WebSocket: answering({ success: true, status: 1, major: '3', minor: '27' }),
    fetch: fakeFetch({}),
  }).diagnose({ lang: 'uz' });
  assert.equal(result.status, 'too-old');
  assert.match(result.message, /3\.27/);
  assert.match(result.message, /3\.36/);
  const stricter = await client({ WebSocket: answering(VERSION), fetch: fakeFetch({}) }).diagnose({ minVersion: 700 });
  assert.equal(stricter.status, 'too-old');
});

test('not-running: nothing answers on the port, quickly', async () => {
  const fetch = fakeFetch({});
  const result = await client({ WebSocket: refused(), fetch }).diagnose();
  assert.equal(result.status, 'not-running');
  assert.equal(result.agent, null);
  assert.equal(result.checks.websocket.outcome, 'failed');
  assert.equal(result.checks.websocket.closeCode, 1006);
  assert.equal(result.checks.http.outcome, 'failed');
  assert.deepEqual(fetch.calls.map((c) => c.mode), ['cors', 'no-cors']);
});

test('port-busy: another program answers HTTP (readable or not) or speaks WebSocket but not E-IMZO', async () => {
  const other = await client({ WebSocket: refused(), fetch: fakeFetch({ 'http://127.0.0.1:64646/': '<h1>nginx</h1>' }) })
    .diagnose({ lang: 'en' });
  assert.equal(other.status, 'port-busy');
  assert.match(other.message, /port 64646/);

  const opaque = await client({ WebSocket: refused(), fetch: fakeFetch({ 'http://127.0.0.1:64646/': 'opaque' }) })
    .diagnose();
  assert.equal(opaque.status, 'port-busy');

  const garbage = await client({ WebSocket: answering('HTTP/1.1 400'), fetch: fakeFetch({}) }).diagnose();
  assert.equal(garbage.status, 'port-busy');

  const FakeWebSocket = makeFakeWebSocket();
  FakeWebSocket.onSend = (socket) => setTimeout(() => socket._closeFromServer(1002));
  const OpensThenDrops = class extends FakeWebSocket {
    constructor(/** @type {string} */ url) {
      super(url);
      setTimeout(() => this._open());
    }
  };
  const drops = await client({ WebSocket: OpensThenDrops, fetch: fakeFetch({}) }).diagnose();
  assert.equal(drops.status, 'port-busy');
  assert.equal(drops.checks.websocket.opened, true);
});

test('tls-untrusted: wss and https fail, but the agent answers on its plain port', async () => {
  const fetch = fakeFetch({ 'https://127.0.0.1:64443/': 'refuse', 'http://127.0.0.1:64646/': AGENT_PAGE });
  const result = await client({ url: WSS, location: portalPage, WebSocket: refused(), fetch }).diagnose({ lang: 'kaa' });
  assert.equal(result.status, 'tls-untrusted');
  assert.equal(result.message, MESSAGES['tls-untrusted'].kaa);
  assert.equal(result.checks.plainHttp?.agent, 'eimzo-agent');

  const nothing = await client({ url: WSS, location: portalPage, WebSocket: refused(), fetch: fakeFetch({}) })
    .diagnose();
  assert.equal(nothing.status, 'not-running');
});

test('lna-denied: the browser says the site may not reach the local machine', async () => {
  const result = await client({
    url: WSS,
    location: portalPage,
    WebSocket: refused(),
    fetch: fakeFetch({}),
    permissions: fakePermissions({ 'loopback-network': 'denied' }),
  }).diagnose({ secureContext: true });
  assert.equal(result.status, 'lna-denied');
  assert.equal(result.permission, 'denied');
  // The person is told where to allow it; the administrator which policies to set, for this very site.
  assert.match(result.messages.en, /“Apps on device” .* to “Allow”/);
  assert.match(result.messages.ru, /«Приложения на устройстве».*«Разрешить»/);
  assert.deepEqual(result.admin, { site: 'https://portal.example.uz', policies: [...LNA_POLICIES],
    command: 'eimzo-agent policy browser --site https://portal.example.uz' });
  for (const lang of LANGUAGES) {
    assert.ok(result.messages[lang].startsWith(MESSAGES['lna-denied'][lang]), lang);
    assert.ok(result.messages[lang].endsWith(
      ADMIN_MESSAGES[lang].replace('{site}', 'https://portal.example.uz')), lang);
  }
});

test("the administrator's part names both policies and the exact command for the page's origin, port included",
  async () => {
    const page = { protocol: 'https:', hostname: 'my.gov.uz', host: 'my.gov.uz:8443',
      origin: 'https://my.gov.uz:8443' };
    const result = await client({ url: WSS, location: page, WebSocket: refused(), fetch: fakeFetch({}),
      permissions: fakePermissions({ 'loopback-network': 'prompt' }) }).diagnose({ secureContext: true, lang: 'uz' });
    assert.equal(result.status, 'lna-prompt');
    assert.equal(result.admin?.command, 'eimzo-agent policy browser --site https://my.gov.uz:8443');
    for (const lang of LANGUAGES) {
      for (const name of LNA_POLICIES) assert.ok(result.messages[lang].includes(name), `${lang}: ${name}`);
      assert.ok(result.messages[lang].includes('eimzo-agent policy browser --site https://my.gov.uz:8443'), lang);
    }
    assert.equal(result.message, result.messages.uz);
    // A location without `origin` (older fakes, odd embedders): built from protocol and host.
    assert.equal(adminFix('lna-prompt', 'https://a.uz')?.site, 'https://a.uz');
    const bare = await client({ url: WSS, location: { protocol: 'https:', hostname: 'a.uz', host: 'a.uz:444' },
      WebSocket: refused(), fetch: fakeFetch({}), permissions: fakePermissions({ 'loopback-network': 'denied' }) })
      .diagnose({ secureContext: true });
    assert.equal(bare.admin?.site, 'https://a.uz:444');
  });

test("no administrator's part where a browser policy is no fix", async () => {
  const insecure = await client({ location: { protocol: 'http:', hostname: 'portal.example.uz' },
    WebSocket: refused(), fetch: fakeFetch({}), permissions: fakePermissions({ 'loopback-network': 'denied' }) })
    .diagnose({ secureContext: false, lang: 'en' });
  assert.equal(insecure.status, 'insecure-page');
  assert.equal(insecure.admin, null);
  assert.equal(insecure.message, MESSAGES['insecure-page'].en);
  const stopped = await client({ url: WSS, location: portalPage, WebSocket: refused(), fetch: fakeFetch({}),
    permissions: fakePermissions({ 'loopback-network': 'granted' }) }).diagnose({ secureContext: true, lang: 'en' });
  assert.equal(stopped.status, 'not-running', 'granted access and nothing answers: the agent is not running');
  assert.equal(stopped.admin, null);
  assert.equal(stopped.message, MESSAGES['not-running'].en);
  assert.equal(explain('not-running', 'en', { site: 'https://a.uz' }), MESSAGES['not-running'].en);
  assert.equal(explain('lna-prompt', 'en'), MESSAGES['lna-prompt'].en, 'no site, no command to show');
  assert.equal(adminFix('lna-denied', null), null);
});

test('lna-prompt: the permission is pending and the connection waits for the user', async () => {
  const Silent = makeFakeWebSocket(); // never opens
  const result = await client({
    url: WSS,
    location: portalPage,
    WebSocket: Silent,
    fetch: fakeFetch({ 'https://127.0.0.1:64443/': 'hang', 'http://127.0.0.1:64646/': 'hang' }),
    permissions: fakePermissions({ 'local-network-access': 'prompt' }), // Chrome 142-144 name only
  }).diagnose({ timeout: 30, secureContext: true });
  assert.equal(result.status, 'lna-prompt');
  assert.equal(result.permission, 'prompt');
  assert.equal(result.checks.websocket.outcome, 'timeout');
  assert.equal(result.checks.http.outcome, 'timeout');
  assert.equal(result.admin?.site, 'https://portal.example.uz');
});

test('lna-prompt without a Permissions API entry: the failure pattern (requests that hang) tells it apart',
  async () => {
    // A browser that gates local network access without a queryable permission: while its prompt is up, the
    // connection waits. "Not running" fails at once instead.
    const hanging = await client({ url: WSS, location: portalPage, WebSocket: makeFakeWebSocket(),
      fetch: fakeFetch({ 'https://127.0.0.1:64443/': 'hang', 'http://127.0.0.1:64646/': 'hang' }),
      permissions: fakePermissions({}) }).diagnose({ timeout: 30, secureContext: true });
    assert.equal(hanging.permission, 'unsupported');
    assert.equal(hanging.status, 'lna-prompt');
    const fast = await client({ url: WSS, location: portalPage, WebSocket: refused(), fetch: fakeFetch({}),
      permissions: fakePermissions({}) }).diagnose({ timeout: 30, secureContext: true });
    assert.equal(fast.status, 'not-running');
  });

test('a program that accepts connections but never answers is port-busy when access is granted', async () => {
  const result = await client({
    WebSocket: makeFakeWebSocket(),
    fetch: fakeFetch({ 'http://127.0.0.1:64646/': 'hang' }),
    permissions: fakePermissions({ 'loopback-network': 'granted' }),
  }).diagnose({ timeout: 30 });
  assert.equal(result.status, 'port-busy');
});

test('lna-prompt: a secure public page whose permission is still to be given, even when requests fail at once',
  async () => {
    // Chromium asks before connecting to 127.0.0.1; a dismissed prompt fails the request immediately.
    const result = await client({
      url: WSS,
      location: portalPage,
      WebSocket: refused(),
      fetch: fakeFetch({}),
      permissions: fakePermissions({ 'loopback-network': 'prompt' }),
    }).diagnose({ secureContext: true });
    assert.equal(result.status, 'lna-prompt');
    // The same page served from the machine itself is not subject to the permission.
    const local = await client({ WebSocket: refused(), fetch: fakeFetch({}),
      permissions: fakePermissions({ 'loopback-network': 'prompt' }) }).diagnose({ secureContext: true });
    assert.equal(local.status, 'not-running');
  });

test('insecure-page: an http page on a public site, in a browser that gates local network access', async () => {
  for (const state of ['denied', 'prompt']) { // Chromium 156 reports "denied" for such pages
    const result = await client({
      location: { protocol: 'http:', hostname: 'portal.example.uz' },
      WebSocket: refused(),
      fetch: fakeFetch({}),
      permissions: fakePermissions({ 'loopback-network': state }),
    }).diagnose({ secureContext: false });
    assert.equal(result.status, 'insecure-page', state);
  }
  // Without the permission (older browsers), the same failure can only be "not running".
  const older = await client({ location: { protocol: 'http:', hostname: 'portal.example.uz' }, WebSocket: refused(),
    fetch: fakeFetch({}) }).diagnose({ secureContext: false });
  assert.equal(older.status, 'not-running');
});

test('localNetworkPermission(): newest name first, unknown names and missing API are "unsupported"', async () => {
  assert.equal(await localNetworkPermission(fakePermissions({ 'loopback-network': 'granted',
    'local-network-access': 'denied' })), 'granted');
  assert.equal(await localNetworkPermission(fakePermissions({ 'local-network-access': 'denied' })), 'denied');
  assert.equal(await localNetworkPermission(fakePermissions({})), 'unsupported');
  assert.equal(await localNetworkPermission(null), 'unsupported');
});

test('every status has a text in every language; explain() fills parameters; pickLanguage() falls back', () => {
  for (const [status, texts] of Object.entries({ ...MESSAGES, admin: ADMIN_MESSAGES })) {
    for (const lang of LANGUAGES) assert.ok(texts[lang] && texts[lang].length > 20, `${status}/${lang}`);
    assert.notEqual(texts.uz, texts.kaa, `${status}: Karakalpak must not be a copy of Uzbek`);
  }
  for (const lang of LANGUAGES) assert.match(ADMIN_MESSAGES[lang], /--site \{site\}/);
  assert.match(explain('port-busy', 'ru', { port: '64646' }), /Порт 64646/);
  assert.equal(explain(/** @type {any} */ ('nonsense'), 'en'), MESSAGES.unknown.en);
  assert.equal(pickLanguage('ru-RU'), 'ru');
  assert.equal(pickLanguage('uz-Latn-UZ'), 'uz');
  assert.equal(pickLanguage('kaa'), 'kaa');
  assert.equal(pickLanguage('de'), pickLanguage(undefined));
});
