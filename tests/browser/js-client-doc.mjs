/**
 * Browser half of tests/test_js_client_doc.py: opens the page that holds docs/js-client.md's "ten lines" example
 * verbatim and waits for the example's last step, its POST of the signature to /api/signed.
 *
 *   node tests/browser/js-client-doc.mjs PAGE_URL
 *
 * Prints one JSON line: {"event":"result", posted, pageErrors, consoleErrors, ms} or {"event":"error", message}.
 */

import { launchChromium } from './chromium.mjs';

const TIMEOUT = 60000;
const started = Date.now();

/** @param {Record<string, unknown>} message */
function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  /** @type {string[]} */
  const pageErrors = [];
  /** @type {string[]} */
  const consoleErrors = [];
  // An uncaught error in the example (a rejected await at the module's top level) ends the wait at once.
  const failed = new Promise((resolve) => page.on('pageerror', (error) => {
    pageErrors.push(error.message);
    resolve(null);
  }));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  const posted = page.waitForRequest((request) => request.method() === 'POST' &&
    new URL(request.url()).pathname === '/api/signed', { timeout: TIMEOUT });
  await page.goto(process.argv[2]);
  const request = await Promise.race([posted, failed]);
  emit({ event: 'result', posted: request ? request.postData() : null, pageErrors, consoleErrors,
    ms: Date.now() - started });
} catch (error) {
  emit({ event: 'error', message: String(error) });
} finally {
  await browser.close();
}
