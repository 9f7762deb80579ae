/**
 * Browser half of tests/test_browser_e2e.py: drives Debian's Chromium (playwright-core) against the real agent.
 *
 *   node tests/browser/e2e.mjs CONFIG.json
 *
 * CONFIG: {agentPort, wssPort, portalPort, text, file, screenshot, clientModule}. portalPort is a plain web server
 * on 127.0.0.1 (not an agent) that serves /compat.html. Prints JSON lines on stdout:
 * {"event":"stop-agent"} when the agent should be stopped (then waits for a line on stdin), and finally
 * {"event":"result", …} with everything the Python side checks (signatures are verified there with OpenSSL).
 */

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { launchChromium } from './chromium.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const AGENT_HTTP = `http://127.0.0.1:${config.agentPort}`;
const AGENT_WS = `ws://127.0.0.1:${config.agentPort}/service/cryptapi`;
const TIMEOUT = 30000;
const started = Date.now();
/** @type {Record<string, number>} */
const timings = {};
const mark = (/** @type {string} */ name) => {
  timings[name] = Date.now() - started;
};
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

/** @param {Record<string, unknown>} message */
function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

/**
 * diagnose() (and, when it says ok, listKeys()) on a page of a public site. Playwright answers the site's requests
 * itself (with the client module from browser_js/), so Chromium places the page on the public internet and applies
 * Local Network Access to its connections to the agent.
 * @param {string} origin
 * @param {boolean} grant give the site the local-network-access permission first
 */
async function publicPortal(origin, grant) {
  const context = await browser.newContext();
  try {
    if (grant) await context.grantPermissions(['local-network-access'], { origin });
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${origin}: ${error.message}`));
    const module = readFileSync(config.clientModule, 'utf8');
    await page.route(`${origin}/**`, (route) => route.request().url().endsWith('/eimzo-agent.mjs')
      ? route.fulfill({ contentType: 'text/javascript; charset=utf-8', body: module })
      : route.fulfill({ contentType: 'text/html; charset=utf-8', body: '<!DOCTYPE html><title>portal</title>' }));
    await page.goto(`${origin}/`);
    return await page.evaluate(async (url) => {
      const { EimzoClient } = await import('/eimzo-agent.mjs');
      const client = new EimzoClient({ url });
      const d = await client.diagnose({ lang: 'ru' });
      /** @type {Record<string, unknown>} */
      const result = { status: d.status, permission: d.permission, message: d.message, secure: isSecureContext };
      if (d.ok) {
        try {
          result.keys = (await client.listKeys()).length;
        } catch (error) {
          const e = /** @type {any} */ (error);
          result.listKeysError = { name: e.name, code: e.code, status: e.status, reason: e.reason };
        }
      }
      client.close();
      return result;
    }, AGENT_WS);
  } finally {
    await context.close();
  }
}

const browser = await launchChromium();
mark('launched');
/** @type {string[]} */
const pageErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, locale: 'uz-UZ' });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`demo: ${error.message}`));

  // --- the demo portal, served by the agent itself ---
  await page.goto(`${AGENT_HTTP}/demo/?lang=uz`);
  await page.waitForSelector('#keys-body[data-state="ready"]');
  mark('demo-ready');
  const demo = {
    diagnosis: await page.getAttribute('#diagnosis', 'data-status'),
    diagnosisText: await page.textContent('#diagnosis-message'),
    version: await page.textContent('#agent-version'),
    keys: await page.$$eval('#keys-body tr', (rows) => rows.map((row) => ({
      serial: row.getAttribute('data-serial'),
      type: row.getAttribute('data-type'),
      expired: row.getAttribute('data-expired') === 'true',
      disabled: Boolean(row.querySelector('input[type="radio"]')?.hasAttribute('disabled')),
      text: /** @type {HTMLElement} */ (row).innerText.replace(/\s+/g, ' ').trim(),
    }))),
    languages: /** @type {Record<string, string | null>} */ ({}),
  };
  for (const lang of ['kaa', 'ru', 'uz']) {
    await page.click(`nav button[data-lang="${lang}"]`);
    demo.languages[lang] = await page.textContent('#keys-heading');
  }

  /**
   * Sign on the demo page with the key in row `serial` and return what the page shows.
   * @param {'text' | 'file'} kind @param {'attached' | 'detached'} mode @param {string} serial
   */
  async function signOnPage(kind, mode, serial) {
    await page.click(`#keys-body tr[data-serial="${serial}"]`);
    await page.check(`input[name="mode"][value="${mode}"]`);
    const before = await page.inputValue('#pkcs7');
    await page.click(kind === 'text' ? '#sign-text' : '#sign-file');
    await page.waitForFunction((previous) => {
      const result = document.getElementById('result');
      const pkcs7 = /** @type {HTMLTextAreaElement} */ (document.getElementById('pkcs7'));
      const error = document.getElementById('error');
      return (result?.dataset.state === 'ready' && pkcs7.value !== previous) || (error && !error.hidden);
    }, before);
    const error = await page.$eval('#error', (box) => (box.hidden ? null : box.textContent));
    if (error) throw new Error(`signing ${kind}/${mode} failed on the page: ${error}`);
    return {
      kind,
      mode,
      serial,
      shownKind: await page.getAttribute('#result', 'data-kind'),
      shownMode: await page.getAttribute('#result', 'data-mode'),
      pkcs7: await page.inputValue('#pkcs7'),
      signer: await page.$$eval('#signer dd[data-field]', (items) =>
        Object.fromEntries(items.map((dd) => [dd.getAttribute('data-field'), dd.textContent]))),
    };
  }

  // The demo keys (password Demo-Passw0rd, which the test's askpass gives), found by their PINFL.
  const individual = demo.keys.find((k) => k.text.includes('31234567890123'));
  const legal = demo.keys.find((k) => k.text.includes('41234567890124'));
  if (!individual || !legal) throw new Error(`demo keys missing: ${JSON.stringify(demo.keys)}`);
  await page.fill('#text', config.text);
  const signatures = [await signOnPage('text', 'attached', individual.serial || '')];
  mark('first-signature');
  await page.screenshot({ path: config.screenshot, fullPage: true });
  signatures.push(await signOnPage('text', 'detached', legal.serial || ''));
  await page.setInputFiles('#file', config.file);
  signatures.push(await signOnPage('file', 'attached', legal.serial || ''));
  signatures.push(await signOnPage('file', 'detached', individual.serial || ''));
  mark('demo-signed');

  // --- diagnose() against the running agent, its untrusted TLS port, and a port another program holds ---
  const diagnose = await page.evaluate(async ({ ws, wss, busy }) => {
    const { EimzoClient } = await import('/eimzo-agent.mjs');
    return {
      running: brief(await new EimzoClient({ url: ws }).diagnose()),
      untrustedTls: brief(await new EimzoClient({ url: wss, wsUrl: ws }).diagnose()),
      otherProgram: brief(await new EimzoClient({ url: `ws://127.0.0.1:${busy}/service/cryptapi` }).diagnose()),
    };
    /** @param {any} d */
    function brief(d) {
      return { status: d.status, agent: d.agent, message: d.messages.uz, permission: d.permission, checks: d.checks };
    }
  }, { ws: AGENT_WS, wss: `wss://127.0.0.1:${config.wssPort}/service/cryptapi`, busy: config.portalPort });

  // --- Local Network Access: public portals (pages the browser does not place on this machine) ---
  diagnose.publicHttp = await publicPortal('http://portal.example.uz', false);
  diagnose.publicHttps = await publicPortal('https://portal.example.uz', false);
  diagnose.publicHttpsGranted = await publicPortal('https://portal.example.uz', true);
  mark('diagnosed');

  // --- the classic e-imzo-client.js flow on a portal page at http://localhost:<port> ---
  const portal = await context.newPage();
  portal.on('pageerror', (error) => pageErrors.push(`portal: ${error.message}`));
  await portal.goto(`http://localhost:${config.portalPort}/compat.html`);
  await portal.waitForFunction(() => Boolean(/** @type {any} */ (window).__result));
  const compat = await portal.evaluate(() => /** @type {any} */ (window).__result);
  mark('compat-done');

  // --- a sandboxed iframe (Origin: null) of a site, after "null" was approved by an earlier agent version ---
  await portal.goto(`http://localhost:${config.portalPort}/sandbox.html`);
  await portal.waitForFunction(() => Boolean(/** @type {any} */ (window).__sandboxed));
  const sandboxed = await portal.evaluate(() => /** @type {any} */ (window).__sandboxed);
  mark('sandboxed-done');

  // --- the agent goes away: diagnose() must say "not running" ---
  emit({ event: 'stop-agent' });
  const answer = await lines.next();
  if (answer.done || answer.value.trim() !== 'stopped') throw new Error('the test did not confirm the stop');
  await page.click('#diagnose-button');
  await page.waitForFunction(() => document.getElementById('diagnosis')?.dataset.status !== 'pending');
  const stopped = {
    shownStatus: await page.getAttribute('#diagnosis', 'data-status'),
    shownText: await page.textContent('#diagnosis-message'),
    direct: await page.evaluate(async (url) => {
      const { EimzoClient } = await import('/eimzo-agent.mjs');
      const d = await new EimzoClient({ url }).diagnose({ lang: 'ru' });
      return { status: d.status, message: d.message, checks: d.checks };
    }, AGENT_WS),
  };
  mark('stopped-diagnosed');

  emit({ event: 'result', demo, signatures, diagnose, compat, sandboxed, stopped, pageErrors, timings });
} catch (error) {
  emit({ event: 'error', message: String((error && /** @type {Error} */ (error).stack) || error), pageErrors,
    timings });
  process.exitCode = 1;
} finally {
  stdin.close();
  await browser.close();
}
