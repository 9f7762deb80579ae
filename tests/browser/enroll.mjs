/**
 * Browser half of tests/test_enroll_browser.py: the demo portal's "get a key online" page in Debian's Chromium.
 *
 *   node tests/browser/enroll.mjs CONFIG.json
 *
 * CONFIG: {agentPort, raUrl, deadUrl, askpassDir, screenshot}. The agent's askpass program answers from files in
 * askpassDir; this script writes "CANCEL" there to press Cancel once. Prints one JSON line: {"event":"result", …}
 * (or {"event":"error", message}); the Python side checks the files and verifies the signatures.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { launchChromium } from './chromium.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const PAGE = `http://127.0.0.1:${config.agentPort}/demo/enroll.html`;
const TIMEOUT = 60000;

/** @param {Record<string, unknown>} message */
function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

const browser = await launchChromium();
/** @type {string[]} */
const pageErrors = [];

/**
 * Fill the form, submit, and wait until the page reports success or a failure.
 * @param {import('playwright-core').Page} page
 * @param {{surname: string, name: string, pinfl: string, tin: string, alg: string, ra?: string}} person
 */
async function enroll(page, person) {
  await page.fill('#surname', person.surname);
  await page.fill('#name', person.name);
  await page.fill('#pinfl', person.pinfl);
  await page.fill('#tin', person.tin);
  await page.selectOption('#alg', person.alg);
  if (person.ra) await page.fill('#ra', person.ra);
  await page.click('#enroll-button');
  // The button is disabled while a run is on; waiting for it to come back never reads the last run's message.
  await page.waitForSelector('#enroll-button:not([disabled])', { timeout: TIMEOUT });
  await page.waitForSelector('#done:not([hidden]), #error:not([hidden])', { timeout: TIMEOUT });
  return page.evaluate(() => {
    const text = (/** @type {string} */ id) => {
      const node = /** @type {HTMLElement} */ (document.getElementById(id));
      return node.hidden ? null : node.textContent;
    };
    return {
      done: text('done'),
      error: text('error'),
      steps: [...document.querySelectorAll('#steps li')].map((li) => (/** @type {HTMLElement} */ (li)).dataset.state),
      keys: [...document.querySelectorAll('#keys-body tr')].map((tr) => ({
        alias: (/** @type {HTMLElement} */ (tr)).dataset.alias,
        isNew: (/** @type {HTMLElement} */ (tr)).dataset.new === 'true',
        text: tr.textContent,
      })),
    };
  });
}

/** @param {import('playwright-core').Page} page */
async function signTest(page) {
  await page.click('#sign-button');
  await page.waitForSelector('#test-sign[data-state]', { timeout: TIMEOUT });
  return page.evaluate(() => ({
    state: document.getElementById('test-sign')?.dataset.state,
    status: document.getElementById('sign-status')?.textContent,
    pkcs7: (/** @type {HTMLTextAreaElement} */ (document.getElementById('test-pkcs7'))).value,
    text: document.getElementById('test-text')?.textContent,
  }));
}

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  /** @type {Record<string, unknown>} */
  const result = {};

  // The way in: the demo portal links to the page (and the page back).
  await page.goto(`http://127.0.0.1:${config.agentPort}/demo/?lang=ru`);
  await page.click('#enroll-link');
  await page.waitForURL(/enroll\.html/);
  result.title = await page.title();
  result.back = await page.getAttribute('#back', 'href');

  // Failures first, each with its own message: cancelled in the agent's dialog, registration service down.
  await page.goto(`${PAGE}?lang=ru&ra=${encodeURIComponent(config.raUrl)}`);
  writeFileSync(join(config.askpassDir, 'choose_disk'), 'CANCEL');
  result.cancelled = await enroll(page, { surname: 'Aliyev', name: 'Vali', pinfl: '31234567890123',
    tin: '512345678', alg: 'OZDST-1092-2009-2' });
  writeFileSync(join(config.askpassDir, 'choose_disk'), '1');
  result.unreachable = await enroll(page, { surname: 'Aliyev', name: 'Vali', pinfl: '31234567890123',
    tin: '512345678', alg: 'OZDST-1092-2009-2', ra: config.deadUrl });

  // The whole flow with a national key (the default algorithm), in Uzbek, then with RSA.
  await page.goto(`${PAGE}?lang=uz&ra=${encodeURIComponent(config.raUrl)}`);
  result.defaultAlg = await page.inputValue('#alg');
  result.ozdst = await enroll(page, { surname: "Qo'chqorov", name: 'Vali', pinfl: '31234567890123',
    tin: '512345678', alg: 'OZDST-1092-2009-2' });
  result.ozdstSign = await signTest(page);
  await page.screenshot({ path: config.screenshot, fullPage: true });
  await page.goto(`${PAGE}?lang=kaa&ra=${encodeURIComponent(config.raUrl)}`);
  result.rsa = await enroll(page, { surname: 'Karimova', name: 'Nodira', pinfl: '41234567890124', tin: '',
    alg: 'RSA-2048' });
  result.rsaSign = await signTest(page);

  // No agent at all: the page says to start it.
  await page.goto(`${PAGE}?lang=ru&agent=${encodeURIComponent('ws://127.0.0.1:9/service/cryptapi')}`);
  result.noAgent = await enroll(page, { surname: 'Aliyev', name: 'Vali', pinfl: '31234567890123', tin: '',
    alg: 'OZDST-1092-2009-2' });

  result.pageErrors = pageErrors;
  emit({ event: 'result', ...result });
} catch (error) {
  emit({ event: 'error', message: String(error instanceof Error ? error.stack : error), pageErrors });
} finally {
  await browser.close();
}
