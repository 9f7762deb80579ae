// An API key list with one key the agent rejects (-1020) must not stop the page: the agent still counts the valid
// keys, and pages on the user's machine need none. The rejection only surfaces when the site is then refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentError, EimzoClient } from '../eimzo-agent.mjs';
import { fakeAgent } from '../testing/fakes.mjs';

const REJECTED = { success: false, status: -1020, reason: 'API-key для домена portal.example.uz недействителен.' };

/** @param {() => any} listing */
function setup(listing) {
  const agent = fakeAgent({
    handle(request) {
      if (request.name === 'apikey') return REJECTED;
      if (request.name === 'list_all_certificates') return listing();
      return { success: false, status: 0, reason: 'Функция не найдена' };
    },
  });
  const client = new EimzoClient({ url: 'ws://127.0.0.1:64646/service/cryptapi', WebSocket: agent.WebSocket,
    location: null, apiKeys: { 'portal.example.uz': 'YOUR-API-KEY' } });
  return { agent, client };
}

test('a rejected key does not fail a call the agent allows anyway (a page on localhost)', async () => {
  const { agent, client } = setup(() => ({ success: true, status: 1, certificates: [] }));
  assert.deepEqual(await client.listKeys({ tokens: false }), []);
  assert.deepEqual(await client.listKeys({ tokens: false }), []);
  assert.deepEqual(agent.requests.map((r) => r.name), ['apikey', 'list_all_certificates', 'list_all_certificates'],
    'the keys are presented once');
});

test('when the site is then refused, the key rejection is the error\'s cause', async () => {
  const { agent, client } = setup(() => ({ success: false, status: -1022, reason: 'refused' }));
  await assert.rejects(client.listKeys({ tokens: false }), (/** @type {any} */ error) => {
    assert.ok(error instanceof AgentError);
    assert.equal(error.code, 'DOMAIN_NOT_ALLOWED');
    assert.equal(error.status, -1022);
    assert.ok(error.cause instanceof AgentError);
    assert.equal(error.cause.status, -1020);
    assert.match(error.cause.reason, /portal\.example\.uz/);
    return true;
  });
  await assert.rejects(client.listKeys({ tokens: false }));
  assert.equal(agent.requests.filter((r) => r.name === 'apikey').length, 2, 'presented again after a refusal');
});
