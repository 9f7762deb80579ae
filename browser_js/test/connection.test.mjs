// The client's socket handling: one kept-open connection with a queue, reconnection, falling back to a socket per
// call, timeouts and aborts — against an in-process fake WebSocket.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AbortedError,
  AgentUnavailableError,
  ConnectionLostError,
  EimzoClient,
  RequestTimeoutError,
} from '../eimzo-agent.mjs';
import { fakeAgent, makeFakeWebSocket, settle } from '../testing/fakes.mjs';

const URL = 'ws://127.0.0.1:64646/service/cryptapi';
const VERSION = { success: true, status: 1, major: '6', minor: '4', patch: '7', edition: 'Standard' };

/** @param {any} WebSocket @param {object} [options] */
function client(WebSocket, options = {}) {
  return new EimzoClient({ url: URL, WebSocket, location: null, ...options });
}

test('calls share one socket opened with ?keepConnection, one request at a time, replies in order', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const first = c.call('version');
  const second = c.call('list_all_certificates', [], { plugin: 'pfx' });
  await settle();
  assert.equal(FakeWebSocket.instances.length, 1);
  const socket = FakeWebSocket.instances[0];
  assert.equal(socket.url, `${URL}?keepConnection`);
  socket._open();
  assert.deepEqual(socket.requests, [{ name: 'version', arguments: [] }]); // the second waits for the first reply
  socket._message(VERSION);
  assert.equal((await first).major, '6');
  assert.deepEqual(socket.requests[1], { name: 'list_all_certificates', arguments: [], plugin: 'pfx' });
  socket._message({ success: true, status: 1, certificates: [] });
  assert.deepEqual((await second).certificates, []);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(c.usesKeptConnection, true);
});

test('arguments are sent as strings, as E-IMZO expects', async () => {
  const agent = fakeAgent({ handle: () => ({ success: true, status: 1 }) });
  await client(agent.WebSocket).call('verify_pin', ['id', 1], { plugin: 'ftjc' });
  assert.deepEqual(agent.requests[0].arguments, ['id', '1']);
});

test('a socket the agent closed while idle is reopened for the next call', async () => {
  const agent = fakeAgent({ handle: () => VERSION });
  const c = client(agent.WebSocket);
  await c.version();
  await c.version();
  assert.equal(agent.sockets.length, 1);
  agent.sockets[0]._closeFromServer(1000); // the agent's idle timeout
  await settle();
  await c.version();
  assert.equal(agent.sockets.length, 2);
  assert.equal(c.usesKeptConnection, true, 'an idle close long after the reply is not a reason to give up keeping');
});

test('an agent that closes after every reply makes the client fall back to a socket per call', async () => {
  const agent = fakeAgent({ handle: () => VERSION, keep: false });
  const c = client(agent.WebSocket);
  const results = await Promise.all([c.version(), c.version(), c.version()]);
  assert.equal(results.length, 3);
  assert.equal(c.usesKeptConnection, false);
  assert.equal(agent.requests.length, 3, 'every request was answered exactly once');
  await c.version();
  const last = agent.sockets[agent.sockets.length - 1];
  assert.equal(last.url, URL, 'per-call sockets do not ask for keepConnection');
});

test('keepConnection: false opens a socket per call, in parallel, and closes each after its reply', async () => {
  const agent = fakeAgent({ handle: () => VERSION });
  const c = client(agent.WebSocket, { keepConnection: false });
  await Promise.all([c.version(), c.version()]);
  assert.equal(agent.sockets.length, 2);
  assert.ok(agent.sockets.every((s) => s.url === URL));
  await settle();
  assert.ok(agent.sockets.every((s) => s.readyState === 3));
});

test('a clean close without a reply means the frame was not taken: it is sent again once on a new socket', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const call = c.call('version');
  await settle();
  FakeWebSocket.instances[0]._open();
  FakeWebSocket.instances[0]._closeFromServer(1000); // the agent closed an idle socket as we sent
  await settle();
  assert.equal(FakeWebSocket.instances.length, 2);
  const retry = FakeWebSocket.instances[1];
  retry._open();
  assert.deepEqual(retry.requests, [{ name: 'version', arguments: [] }]);
  retry._message(VERSION);
  assert.equal((await call).minor, '4');
});

test('a second clean close without a reply fails the call instead of looping', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const call = c.call('version');
  for (let i = 0; i < 2; i++) {
    await settle();
    const socket = FakeWebSocket.instances[i];
    socket._open();
    socket._closeFromServer(1000);
  }
  await assert.rejects(call, ConnectionLostError);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test('a connection that breaks before the reply fails with ConnectionLostError and the next call reconnects',
  async () => {
    const FakeWebSocket = makeFakeWebSocket();
    const c = client(FakeWebSocket);
    const call = c.call('create_pkcs7', ['AA==', 'id', 'no'], { plugin: 'pkcs7' });
    await settle();
    FakeWebSocket.instances[0]._open();
    FakeWebSocket.instances[0]._closeFromServer(1006);
    await assert.rejects(call, (error) => error instanceof ConnectionLostError && error.closeCode === 1006 &&
      error.code === 'CONNECTION_LOST');
    const next = c.call('version');
    await settle();
    assert.equal(FakeWebSocket.instances.length, 2, 'create_pkcs7 is not retried after an abnormal close');
    FakeWebSocket.instances[1]._open();
    FakeWebSocket.instances[1]._message(VERSION);
    await next;
  });

test('nothing listening: AgentUnavailableError for the call and for each queued call', async () => {
  const agent = fakeAgent({ handle: () => VERSION, refuse: true });
  const c = client(agent.WebSocket);
  const results = await Promise.allSettled([c.version(), c.version()]);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.ok(result.reason instanceof AgentUnavailableError);
    assert.equal(result.reason.code, 'UNAVAILABLE');
    assert.equal(result.reason.closeCode, 1006);
  }
});

test('a socket that never opens fails after connectTimeout', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket, { connectTimeout: 20 });
  await assert.rejects(c.version(), (error) => error instanceof AgentUnavailableError && /timed out/.test(error.message));
  assert.ok(FakeWebSocket.instances[0].closedByClient);
});

test('a timeout closes the kept socket (its late reply must not answer the next call) and the queue goes on',
  async () => {
    const FakeWebSocket = makeFakeWebSocket();
    const c = client(FakeWebSocket, { timeout: 30 });
    const slow = c.call('list_all_certificates', [], { plugin: 'pfx' });
    const queued = c.call('version', [], { timeout: 1000 });
    await settle();
    FakeWebSocket.instances[0]._open();
    await assert.rejects(slow, (error) => error instanceof RequestTimeoutError && error.timeout === 30);
    assert.ok(FakeWebSocket.instances[0].closedByClient, 'the timed-out socket is closed');
    await settle();
    assert.equal(FakeWebSocket.instances.length, 2);
    const fresh = FakeWebSocket.instances[1];
    fresh._open();
    assert.deepEqual(fresh.requests, [{ name: 'version', arguments: [] }]);
    fresh._message(VERSION);
    assert.equal((await queued).major, '6');
  });

test('a queued call that times out leaves the socket alone', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const first = c.call('version', [], { timeout: 1000 });
  const second = c.call('version', [], { timeout: 20 });
  await settle();
  FakeWebSocket.instances[0]._open();
  await assert.rejects(second, RequestTimeoutError);
  assert.equal(FakeWebSocket.instances[0].closedByClient, null);
  FakeWebSocket.instances[0]._message(VERSION);
  await first;
  assert.equal(FakeWebSocket.instances[0].sent.length, 1, 'the timed-out call was never sent');
});

test('password dialogs get the interactive timeout, other calls the normal one', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket, { timeout: 15, interactiveTimeout: 60 });
  const signing = c.call('create_pkcs7', ['AA==', 'id', 'no'], { plugin: 'pkcs7' });
  await settle(30);
  FakeWebSocket.instances[0]._open();
  FakeWebSocket.instances[0]._message({ success: true, status: 1, pkcs7_64: 'MA==' });
  assert.equal((await signing).pkcs7_64, 'MA==');
});

test('an AbortSignal gives up the call', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const controller = new AbortController();
  const call = c.call('version', [], { signal: controller.signal });
  await settle();
  FakeWebSocket.instances[0]._open();
  controller.abort();
  await assert.rejects(call, AbortedError);
  const already = new AbortController();
  already.abort();
  await assert.rejects(c.call('version', [], { signal: already.signal }), AbortedError);
});

test('close() rejects what is pending and refuses new calls', async () => {
  const FakeWebSocket = makeFakeWebSocket();
  const c = client(FakeWebSocket);
  const pending = [c.call('version'), c.call('version')];
  await settle();
  FakeWebSocket.instances[0]._open();
  c.close();
  for (const result of await Promise.allSettled(pending)) {
    assert.ok(result.status === 'rejected' && result.reason instanceof AbortedError);
  }
  await assert.rejects(c.version(), AbortedError);
  assert.ok(FakeWebSocket.instances[0].closedByClient);
});

test('a WebSocket constructor that throws (e.g. mixed content) is reported as AgentUnavailableError', async () => {
  class Refusing {
    constructor() {
      throw new Error('SecurityError: insecure WebSocket from an https page');
    }
  }
  const c = client(Refusing);
  await assert.rejects(c.version(), (error) => error instanceof AgentUnavailableError && /SecurityError/.test(error.message));
});

test('ws on http pages, wss on https pages, both overridable', () => {
  assert.equal(new EimzoClient({ location: { protocol: 'http:', hostname: 'x' } }).url,
    'ws://127.0.0.1:64646/service/cryptapi');
  assert.equal(new EimzoClient({ location: { protocol: 'https:', hostname: 'x' } }).url,
    'wss://127.0.0.1:64443/service/cryptapi');
  assert.equal(new EimzoClient({ location: { protocol: 'https:', hostname: 'x' }, wssUrl: 'wss://localhost:1/s' }).url,
    'wss://localhost:1/s');
  assert.equal(new EimzoClient({ location: { protocol: 'http:', hostname: 'x' }, wsUrl: 'ws://localhost:2/s' }).url,
    'ws://localhost:2/s');
  assert.equal(new EimzoClient({ location: null, url: 'ws://127.0.0.1:9/x' }).url, 'ws://127.0.0.1:9/x');
});
