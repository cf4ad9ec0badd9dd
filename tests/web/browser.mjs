// Headless Chromium for the web page's tests: Debian's chromium (CHROMIUM_BIN overrides),
// driven by puppeteer-core (no browser download). The qfit server and the loopback
// registry come from the client tests' harness (tests/clients/harness.mjs).
import fs from 'node:fs';
import puppeteer from 'puppeteer-core';

export const chromiumBin = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** null when the browser tests can run, else why they skip (throws under CI=true). */
export function browserSkipReason() {
  if (fs.existsSync(chromiumBin)) return null;
  if (process.env.CI === 'true') throw new Error(`chromium not found: ${chromiumBin} (bash scripts/deps.sh installs it)`);
  return `chromium not found: ${chromiumBin}`;
}

export function launch() {
  return puppeteer.launch({
    executablePath: chromiumBin,
    headless: true,
    // root in containers has no user namespaces for the sandbox; the page is our own
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions'],
  });
}

/**
 * A new tab on the server's page (ready: wait for the model list); collects console errors, page
 * errors and CSP violations into page.problems (a test asserts it stays empty).
 */
export async function openPage(browser, url, { width = 1280, height = 900, ready = true } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations = (window.__cspViolations || 0) + 1;
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(url, { waitUntil: 'load' });
  if (ready) await page.waitForFunction(() => document.querySelectorAll('[data-testid="model-select"] option').length > 0);
  return page;
}

export const byTestId = (id) => `[data-testid="${id}"]`;
