// signBatch(): the request it sends to batch.create_pkcs7 and the result it makes of the agent's reply (a fake
// agent answering in the shape tests/test_batch.py checks on the real one).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentError, EimzoClient, Status, base64ToBytes } from '../eimzo-agent.mjs';
import { fakeAgent } from '../testing/fakes.mjs';

/** @param {(request: any) => any} batch the reply to batch.create_pkcs7 */
function agentWith(batch) {
  return fakeAgent({
    handle(request) {
      if (request.name === 'apikey') return { success: true, status: 1, message: 'https://portal.example.uz' };
      if (request.plugin === 'batch' && request.name === 'create_pkcs7') return batch(request);
      return { success: false, status: 0, reason: 'Функция не найдена' };
    },
  });
}

/** @param {any} agent */
function client(agent) {
  return new EimzoClient({ url: 'ws://127.0.0.1:64646/service/cryptapi', WebSocket: agent.WebSocket, location: null });
}

test('signBatch() sends one request with every document and maps the reply', async () => {
  const agent = agentWith(() => ({ success: true, status: 1, signed: 2, cancelled: 1, signatures: [
    { name: 'a.xml', pkcs7_64: 'MIIA', signer_serial_number: '7283d8ca', signature_hex: 'ab' },
    { name: 'b.pdf', pkcs7_64: 'MIIB', signer_serial_number: '7283d8ca', signature_hex: 'cd' },
    { name: 'c.txt', cancelled: true },
  ] }));
  /** @type {any[]} */
  const progress = [];
  const result = await client(agent).signBatch({ keyId: 'k'.repeat(32), type: 'PFX_KEY_STORE' }, [
    { name: 'a.xml', data: 'Faktura № 1' },
    { name: 'b.pdf', data: new Blob([new Uint8Array([1, 2, 3])]) },
    { name: 'c.txt', digestHex: 'ab'.repeat(32) },
  ], { detached: true, onProgress: (p) => progress.push(p) });

  const sent = agent.requests.filter((/** @type {any} */ r) => r.plugin === 'batch');
  assert.equal(sent.length, 1);
  const [documents, keyId, detached] = sent[0].arguments;
  assert.equal(keyId, 'k'.repeat(32));
  assert.equal(detached, 'yes');
  const items = JSON.parse(documents);
  assert.equal(new TextDecoder().decode(base64ToBytes(items[0].data_64)), 'Faktura № 1');
  assert.deepEqual(items.slice(1), [{ name: 'b.pdf', data_64: 'AQID' }, { name: 'c.txt', digest_hex: 'ab'.repeat(32) }]);

  assert.deepEqual(result, { signed: 2, cancelled: 1, signatures: [
    { name: 'a.xml', pkcs7: 'MIIA', signerSerialNumber: '7283d8ca', signatureHex: 'ab' },
    { name: 'b.pdf', pkcs7: 'MIIB', signerSerialNumber: '7283d8ca', signatureHex: 'cd' },
    { name: 'c.txt', cancelled: true },
  ] });
  assert.deepEqual(progress.map((p) => `${p.stage} ${p.done}/${p.total}`),
    ['encoding 1/3', 'encoding 2/3', 'encoding 3/3', 'signing 0/3', 'done 2/3']);
});

test('signBatch() refuses bad input before sending, and a refusal is an AgentError', async () => {
  const agent = agentWith(() => ({ success: false, status: -9999,
    reason: 'Too many documents in one batch: 600; at most 500 are allowed (limits.batch_max_documents)' }));
  const c = client(agent);
  await assert.rejects(c.signBatch('k', []), TypeError);
  await assert.rejects(c.signBatch('k', [{ name: 'x' }]), /document 1 needs data, data64 or digestHex/);
  await assert.rejects(c.signBatch(undefined, [{ name: 'x', data: 'y' }]), /signBatch\(\): the key/);
  assert.equal(agent.requests.filter((/** @type {any} */ r) => r.plugin === 'batch').length, 0);
  await assert.rejects(c.signBatch('k', [{ name: 'x', data64: 'eA==' }]), (error) =>
    error instanceof AgentError && error.status === Status.OTHER && /Too many documents/.test(error.message));
});
