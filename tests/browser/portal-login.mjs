/**
 * Browser half of tests/test_portal_login_browser.py: the portal demo (`eimzo-agent portal serve --demo`) in
 * Debian's Chromium, with the real agent behind it.
 *
 *   node tests/browser/portal-login.mjs CONFIG.json
 *
 * CONFIG: {portalUrl, agentWs, folder, screenshot, verifyScreenshot, keysScreenshot, logins: [{pinfl, organisation}],
 * signer, text}.
 * "Kirish (ERI bilan)" → key list → pick the key with that PINFL → greeting; for an officer the organisation role;
 * then "verify a signed file" with signatures the agent makes on the page (written into `folder` and chosen with
 * the file inputs). Prints one JSON line {"event":"result", …} (or {"event":"error", message}).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { launchChromium } from './chromium.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const query = `agent=${encodeURIComponent(config.agentWs)}`;
const TIMEOUT = 30000;

/** @param {Record<string, unknown>} message */
function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

const browser = await launchChromium();
/** @type {string[]} */
const pageErrors = [];

/** @param {import('playwright-core').Page} page */
function loginView(page) {
  return page.evaluate(() => {
    const visible = (/** @type {string} */ id) => !(/** @type {HTMLElement} */ (document.getElementById(id))).hidden;
    const text = (/** @type {string} */ id) => document.getElementById(id)?.textContent || '';
    return {
      welcome: visible('welcome'),
      greeting: text('greeting'),
      pinfl: text('person-pinfl'),
      tin: text('person-tin'),
      roles: visible('roles'),
      organisationButton: text('role-organisation'),
      acting: text('acting'),
      actingRole: document.getElementById('acting')?.dataset.role,
      error: visible('error') ? text('error') : null,
      errorKind: document.getElementById('error')?.dataset.kind,
      errorStatus: document.getElementById('error')?.dataset.status,
    };
  });
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} pinfl
 */
async function login(page, pinfl) {
  await page.click('#login-button');
  await page.waitForSelector('#keys[data-state="ready"] button.key', { timeout: TIMEOUT });
  const keys = await page.$$eval('#keys button.key', (buttons) => buttons.map((b) => ({
    pinfl: (/** @type {HTMLElement} */ (b)).dataset.pinfl, disabled: (/** @type {HTMLButtonElement} */ (b)).disabled,
    text: b.textContent,
  })));
  await page.click(`#keys button.key[data-pinfl="${pinfl}"]`);
  await page.waitForSelector('#welcome:not([hidden]), #error:not([hidden])', { timeout: TIMEOUT });
  return { keys, ...(await loginView(page)) };
}

/** @param {import('playwright-core').Page} page */
async function logout(page) {
  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])', { timeout: TIMEOUT });
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} signature
 * @param {string | null} original
 */
async function verify(page, signature, original) {
  await page.goto(`${config.portalUrl}/demo/verify.html?lang=uz&${query}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.setInputFiles('#signature-file', signature);
  if (original) await page.setInputFiles('#original-file', original);
  await page.click('#verify-button');
  await page.waitForFunction(() => !document.getElementById('result')?.hidden ||
    !document.getElementById('error')?.hidden, undefined, { timeout: TIMEOUT });
  return page.evaluate(() => ({
    verdict: document.getElementById('verdict')?.textContent,
    verdictStatus: document.getElementById('verdict')?.dataset.status,
    document: document.getElementById('document')?.textContent,
    error: document.getElementById('error')?.hidden ? null : document.getElementById('error')?.textContent,
    errorKind: document.getElementById('error')?.dataset.kind,
    rows: [...document.querySelectorAll('#signers tr')].map((tr) => ({
      pinfl: (/** @type {HTMLElement} */ (tr)).dataset.pinfl,
      verified: (/** @type {HTMLElement} */ (tr)).dataset.verified,
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
      timestampValid: tr.querySelector('[data-field="timestamp"]')?.classList.contains('ok'),
    })),
  }));
}

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  /** @type {Record<string, any>} */
  const result = { logins: {} };

  await page.goto(`${config.portalUrl}/demo/?lang=uz&${query}`);
  await page.waitForSelector('body[data-ready="true"]');
  result.title = await page.title();
  for (const { pinfl, organisation } of config.logins) {
    const view = await login(page, pinfl);
    if (organisation && view.welcome) {
      await page.click('#role-organisation');
      await page.waitForSelector('#acting[data-role="organisation"]', { timeout: TIMEOUT });
      view.asOrganisation = await loginView(page);
      await page.screenshot({ path: config.screenshot, fullPage: true });
      // The session is the server's (an HttpOnly cookie): a reload still knows the person and the role.
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      view.afterReload = await loginView(page);
      // The texts in the other two languages.
      view.languages = {};
      for (const lang of ['kaa', 'ru']) {
        await page.click(`nav button[data-lang="${lang}"]`);
        view.languages[lang] = await loginView(page);
      }
      await page.click('nav button[data-lang="uz"]');
    } else if (view.welcome) {
      // A person without a legal-entity TIN cannot take the organisation role, whatever the page sends.
      view.forcedRole = await page.evaluate(async () => {
        const response = await fetch('api/role', { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ role: 'organisation' }) });
        return { http: response.status, reply: await response.json() };
      });
    }
    result.logins[pinfl] = view;
    if (view.welcome) await logout(page);
  }
  // A challenge the server never issued (a bare UUID, E-IMZO-server's form): the agent signs it, the server
  // answers -20 and the page says what to do, in each language.
  await page.route('**/frontend/challenge*', (route) => route.fulfill({
    contentType: 'application/json',
    body: JSON.stringify({ challenge: '5f0e9c1a-3b7d-4c2e-9a61-0d8f4b2e7c55', ttl: 120, status: 1, message: '' }),
  }));
  result.staleLogin = await login(page, config.signer);
  await page.screenshot({ path: config.keysScreenshot, fullPage: true });
  result.staleLogin.languages = {};
  for (const lang of ['kaa', 'ru', 'uz']) {
    await page.click(`nav button[data-lang="${lang}"]`);
    result.staleLogin.languages[lang] = (await loginView(page)).error;
  }
  await page.unroute('**/frontend/challenge*');

  // "Verify a signed file": signatures made by the agent on the page, saved as files and chosen with the inputs.
  const signed = await page.evaluate(async ({ pinfl, text }) => {
    const { client } = /** @type {any} */ (window).demo;
    const key = (await client.listKeys()).find((/** @type {any} */ k) => k.pinfl === pinfl);
    const loaded = await client.loadKey(key);
    // The attached one with a timestamp from the server's TSA (CAdES-T), as a portal's signing flow does.
    const attached = await client.sign(loaded, text, { timestampUrl: '/frontend/timestamp/pkcs7' });
    const detached = await client.sign(loaded, text, { detached: true });
    return { attached: attached.pkcs7, detached: detached.pkcs7 };
  }, { pinfl: config.signer, text: config.text });
  const file = (/** @type {string} */ name, /** @type {string | Buffer} */ data) => {
    const path = join(config.folder, name);
    writeFileSync(path, data);
    return path;
  };
  const attached = file('ariza.p7s', Buffer.from(signed.attached, 'base64'));
  const detached = file('ariza-detached.p7s', Buffer.from(signed.detached, 'base64'));
  const original = file('ariza.txt', config.text);
  const changed = file('ariza-changed.txt', `${config.text}!`);
  result.signatures = signed;
  result.verifyAttached = await verify(page, attached, null);
  await page.screenshot({ path: config.verifyScreenshot, fullPage: true });
  result.verifyDetached = await verify(page, detached, original);
  result.verifyChanged = await verify(page, detached, changed);

  result.pageErrors = pageErrors;
  emit({ event: 'result', ...result });
} catch (error) {
  emit({ event: 'error', message: String(error instanceof Error ? error.stack : error), pageErrors });
} finally {
  await browser.close();
}
