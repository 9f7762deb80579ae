// docs/js-client.md's error table quotes the messages the client builds: each documented message is produced, and
// each produced one is documented in its class's row (<placeholders> stand for the variable parts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { EimzoClient } from '../eimzo-agent.mjs';
import { fakeAgent, makeFakeWebSocket } from '../testing/fakes.mjs';

const URL = 'ws://127.0.0.1:64646/service/cryptapi';
const DOC = readFileSync(new globalThis.URL('../../docs/js-client.md', import.meta.url), 'utf8');

/** @returns {Map<string, string[]>} class name → the message templates of its row */
function documentedMessages() {
  const section = DOC.split('**Errors.**')[1].split('\n\n**')[0];
  /** @type {Map<string, string[]>} */
  const rows = new Map();
  for (const line of section.split('\n')) {
    const cells = line.split('|');
    if (!line.startsWith('| `') || cells.length !== 6) continue;
    const name = cells[1].trim().replace(/`/g, '');
    const messages = [...cells[4].matchAll(/`([^`]+)`/g)].map((m) => m[1]).filter((m) => m.includes(' '));
    rows.set(name, messages);
  }
  return rows;
}

/** @param {string} template */
function pattern(template) {
  const parts = template.split(/<[^>]+>/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+')}$`);
}

/** @param {Partial<ConstructorParameters<typeof EimzoClient>[0]>} options */
const client = (options) => new EimzoClient({ url: URL, location: null, ...options });

/** @param {(request: any, socket: any) => any} handle */
const agent = (handle) => fakeAgent({ handle }).WebSocket;

/** Every message the client can give, with the class it comes with. */
async function producedErrors() {
  /** @type {Array<() => Promise<unknown>>} */
  const cases = [
    () => client({ WebSocket: fakeAgent({ handle: () => undefined, refuse: true }).WebSocket }).version(),
    () => client({ WebSocket: makeFakeWebSocket(), connectTimeout: 10 }).version(),
    () => client({ WebSocket: class { constructor() { throw new Error('SecurityError'); } } }).version(),
    () => client({ WebSocket: 42 }).version(),
    () => client({ WebSocket: agent((_, socket) => void setTimeout(() => socket._closeFromServer(1006))) })
      .version(),
    () => client({ WebSocket: agent(() => undefined), timeout: 20 }).version(),
    () => client({ WebSocket: agent(() => undefined) }).call('version', [], { signal: AbortSignal.abort() }),
    () => {
      const c = client({ WebSocket: agent(() => undefined) });
      const pending = c.version();
      c.close();
      return pending;
    },
    () => client({ WebSocket: agent((_, socket) => void setTimeout(() => socket._message('<html>'))) }).version(),
    () => client({ WebSocket: agent(() => 42) }).version(),
    () => client({ WebSocket: agent(() => ({ success: true, status: 1 })) }).version(),
    () => client({ WebSocket: agent(() => ({ success: true, status: 1, major: '3', minor: '27' })) })
      .ensureVersion(),
    () => client({ WebSocket: agent(() => ({ success: false, status: -9999 })) }).version(),
    // The portal's server, in login() (sign({timestampUrl}) shares the code): fetch answers scripted here.
    ...[
      () => Promise.reject(new TypeError('fetch failed')),
      () => Promise.resolve(new Response('Service Unavailable', { status: 503 })),
      () => Promise.resolve(Response.json({ status: -20, message: 'Challenge not found or expired' })),
      () => Promise.resolve(new Response('<html>')),
      () => Promise.resolve(Response.json({ status: 1, ttl: 120 })),
      null,
    ].map((fetch) => () => {
      const c = client({ WebSocket: agent(() => undefined) });
      c.fetch = fetch;
      return c.login({ challengeUrl: 'https://portal.example.uz/frontend/challenge', authUrl: '/auth', key: 'k' });
    }),
  ];
  const errors = [];
  for (const run of cases) {
    try {
      await run();
      assert.fail('no error');
    } catch (error) {
      errors.push(/** @type {any} */ (error));
    }
  }
  return errors;
}

test('the error table quotes exactly the messages the client produces', async () => {
  const documented = documentedMessages();
  assert.ok(documented.size >= 7, [...documented.keys()].join(', '));
  const used = new Set();
  for (const error of await producedErrors()) {
    const templates = documented.get(error.name) || [];
    const match = templates.find((template) => pattern(template).test(error.message));
    assert.ok(match, `${error.name}: "${error.message}" is not in its row of the doc's error table`);
    used.add(match);
  }
  const unused = [...documented.values()].flat().filter((template) => !used.has(template));
  assert.deepEqual(unused, [], 'documented messages the client never produces');
});
