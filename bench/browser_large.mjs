/**
 * Browser half of bench/bench_browser_large.py: a page in Debian's Chromium (playwright-core) signs a large document
 * the way e-imzo.js does — a new WebSocket, the create_pkcs7 request as one text message, the reply JSON.parse'd in
 * onmessage — and reports how long that took, as a portal's page sees it.
 *
 *   node bench/browser_large.mjs CONFIG.json
 *
 * CONFIG: {port, origin, keyId, megabytes}. The page is served by playwright itself at `origin` (the agent's keyId
 * belongs to that origin). Reads one line per call on stdin ("sign" or "quit"); for each "sign" prints
 * {"ms", "length" (the reply's pkcs7_64), "opened", "sent", "uploaded", "message"} (ms since the call began) on
 * stdout, so the Python side can time the C hash between calls.
 */

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { launchChromium } from '../tests/browser/chromium.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const browser = await launchChromium();
try {
  const context = await browser.newContext();
  // The page is answered by playwright, not by a server on a loopback address: Chromium's Local Network Access
  // then asks, as for a public site, before it lets the page reach 127.0.0.1 (docs/deployment: the permission).
  await context.grantPermissions(['local-network-access'], { origin: config.origin });
  const page = await context.newPage();
  await page.route(`${config.origin}/**`, (route) => route.fulfill({
    contentType: 'text/html; charset=utf-8', body: '<!DOCTYPE html><title>portal</title>',
  }));
  await page.goto(`${config.origin}/`);
  // The document and its request are made once, in the page, outside the timed part (a portal has its file's
  // Base64 before it calls create_pkcs7).
  await page.evaluate(({ keyId, megabytes }) => {
    const bytes = new Uint8Array(Math.round(megabytes * 1024 * 1024));
    for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    let binary = '';
    for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
    const document64 = btoa(binary);
    // e-imzo.js: JSON.stringify({plugin, name, arguments}).
    window.request = JSON.stringify({ plugin: 'pkcs7', name: 'create_pkcs7', arguments: [document64, keyId, 'no'] });
  }, config);
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  for (;;) {
    const { value, done } = await lines.next();
    if (done || value.trim() !== 'sign') break;
    const result = await page.evaluate((url) => new Promise((resolve, reject) => {
      const start = performance.now();
      const since = () => performance.now() - start;
      /** Where the page's time goes: open, send() returned, bufferedAmount back to 0, the message, its parse. */
      const phases = { opened: 0, sent: 0, uploaded: 0, message: 0 };
      const ws = new WebSocket(url);
      ws.onopen = () => {
        phases.opened = since();
        ws.send(window.request);
        phases.sent = since();
        const drained = () => {
          if (ws.bufferedAmount === 0) phases.uploaded = since();
          else setTimeout(drained, 1);
        };
        drained();
      };
      ws.onmessage = (event) => {
        phases.message = since();
        const reply = JSON.parse(event.data);
        const ms = since();
        if (!reply.success) reject(new Error(JSON.stringify(reply).slice(0, 300)));
        resolve({ ms, length: reply.pkcs7_64.length, ...phases });
      };
      ws.onerror = () => reject(new Error('WebSocket error'));
    }), `ws://127.0.0.1:${config.port}/service/cryptapi`);
    process.stdout.write(JSON.stringify(result) + '\n');
  }
} finally {
  await browser.close();
}
