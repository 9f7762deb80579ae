/**
 * Browser half of tests/test_browser_lna.py: Chromium's Local Network Access against a public portal, before and
 * after the managed policy that `eimzo-agent policy browser` writes.
 *
 *   node tests/browser/lna.mjs CONFIG.json
 *
 * Runs inside the test's private mount namespace, where POLICY_DIR (/etc/chromium/policies/managed) is a
 * temporary folder. CONFIG: {portalUrl, publicEndpoint, hostRules, spki, policyDir, policyCommand}.
 * 1. Chromium without any policy opens the portal (which Chromium places on the public internet) and the page
 *    runs diagnose(), listKeys(), loadKey(), sign().
 * 2. policyCommand (`eimzo-agent policy browser --site <portal> --out <policyDir>`) runs, as an admin would.
 * 3. A fresh Chromium (policies are read at start) opens the same page again.
 * Prints one JSON line {"event":"result", …} (or {"event":"error"}); signatures are verified by the Python side.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

import { launchChromium } from './chromium.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = 30000;
const started = Date.now();
/** @type {Record<string, number>} */
const timings = {};
/** @type {string[]} */
const pageErrors = [];

/** @param {Record<string, unknown>} message */
function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

/**
 * One Chromium run: open the portal page and return what it found.
 * @param {string} phase
 */
async function visitPortal(phase) {
  const browser = await launchChromium([
    // The portal's name resolves to 127.0.0.2, and that address:port counts as the public internet: so the
    // portal is a public site and its connections to 127.0.0.1 are local-network requests.
    `--host-resolver-rules=${config.hostRules}`,
    `--ip-address-space-overrides=${config.publicEndpoint}=public`,
    // The portal's self-made certificate, trusted by its key alone (nothing else is exempted).
    `--ignore-certificate-errors-spki-list=${config.spki}`,
  ]);
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(TIMEOUT);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${phase}: ${error.message}`));
    await page.goto(config.portalUrl);
    await page.waitForFunction(() => Boolean(/** @type {any} */ (window).__portal));
    const result = await page.evaluate(() => /** @type {any} */ (window).__portal);
    timings[phase] = Date.now() - started;
    return result;
  } finally {
    await browser.close();
  }
}

try {
  const policyBefore = readdirSync(config.policyDir);
  const unmanaged = await visitPortal('unmanaged');
  const command = spawnSync(config.policyCommand[0], config.policyCommand.slice(1), { encoding: 'utf8' });
  if (command.status !== 0) throw new Error(`the policy command failed: ${command.stderr}`);
  const policy = {
    stdout: command.stdout.trim(),
    files: readdirSync(config.policyDir),
    content: readFileSync(`${config.policyDir}/eimzo-agent.json`, 'utf8'),
  };
  const managed = await visitPortal('managed');
  emit({ event: 'result', policyBefore, unmanaged, policy, managed, pageErrors, timings });
} catch (error) {
  emit({ event: 'error', message: String((error && /** @type {Error} */ (error).stack) || error), pageErrors,
    timings });
  process.exitCode = 1;
}
