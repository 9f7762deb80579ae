/**
 * Debian's Chromium as every browser test (tests/browser/*.mjs) and bench/browser_large.mjs start it: headless,
 * without the sandbox (CI runs as root), and without the background traffic, updates and QUIC that a test does not
 * want. `extraArgs` adds a script's own switches (tests/browser/lna.mjs: host rules, address-space overrides).
 */

import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = Object.freeze(['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync',
  '--disable-quic']);

/**
 * @param {string[]} [extraArgs]
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true, args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}
