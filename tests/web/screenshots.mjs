// Screenshots of each view of the page at 375 px and 1280 px wide, into docs/screenshots/
// (committed, linked from the README):   node tests/web/screenshots.mjs
// A server with the shared model on loopback, a short chat, a plan that does not fit
// (so the fixes show), the quality table. Also prints the page's size and load time.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, startServer } from '../clients/harness.mjs';
import { byTestId, launch, openPage } from './browser.mjs';

const out = path.join(repoRoot, 'docs/screenshots');
fs.mkdirSync(out, { recursive: true });

const srv = await startServer();
const browser = await launch();
try {
  for (const width of [375, 1280]) {
    const page = await openPage(browser, srv.url, { width, height: width < 500 ? 740 : 800 });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      const bytes = performance.getEntriesByType('resource').filter((r) => r.name.includes('/ui/'))
        .reduce((s, r) => s + r.encodedBodySize, n.encodedBodySize);
      return { ms: n.loadEventEnd - n.startTime, bytes };
    });
    console.log(`${width}px: page loaded in ${nav.ms.toFixed(1)} ms, ${nav.bytes} bytes`);

    await page.click(byTestId('chat-clear'));
    await page.select(byTestId('model-select'), 'kjv:latest');
    await page.click('#chat-options summary');
    await page.type('#chat-temperature', '0');
    await page.type('#chat-predict', '40');
    await page.type(byTestId('chat-input'), 'In the beginning');
    await page.click(byTestId('chat-send'));
    await page.waitForFunction(() => !document.querySelector('[data-testid="chat-send"]').disabled);
    await page.click('#chat-options summary');
    await page.screenshot({ path: path.join(out, `chat-${width}.png`), fullPage: true });

    await page.click(byTestId('tab-models'));
    await page.waitForFunction(() => document.querySelectorAll('#models-table tbody tr').length > 0);
    await page.screenshot({ path: path.join(out, `models-${width}.png`), fullPage: true });

    await page.click(byTestId('tab-plan'));
    await page.select(byTestId('plan-model'), 'llama3.1:8b');
    await page.select(byTestId('plan-machine'), 'm1-8gb');
    await page.focus(byTestId('plan-ctx'));
    await page.keyboard.type('32768\n');
    await page.waitForFunction(() => /does not fit|tight/.test(document.querySelector('[data-testid="plan-verdict"]').textContent));
    await page.screenshot({ path: path.join(out, `plan-${width}.png`), fullPage: true });
    if (width === 1280) {
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
      await page.screenshot({ path: path.join(out, `plan-${width}-dark.png`), fullPage: true });
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    }

    await page.click(byTestId('tab-quality'));
    await page.waitForFunction(() => document.querySelectorAll('#quality-chart circle').length > 0);
    await page.screenshot({ path: path.join(out, `quality-${width}.png`) });   // the chart and the table's top
    // a model's own qfit eval output, opened from disk
    await (await page.$(byTestId('quality-file'))).uploadFile(path.join(repoRoot, 'tests/data/web/kjv.eval.json'));
    await page.waitForFunction(() => document.querySelectorAll('#speed-chart circle').length > 0);
    await page.screenshot({ path: path.join(out, `quality-eval-${width}.png`) });
    await page.click(byTestId('tab-chat'));
    await page.click(byTestId('chat-clear'));
    await page.close();
  }
  // load time from loopback, warm (the browser and server started): the median of 20 loads
  const page = await openPage(browser, srv.url, { width: 1280, height: 800 });
  const times = [];
  for (let i = 0; i < 20; i++) {
    await page.reload({ waitUntil: 'load' });
    times.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd));
  }
  times.sort((a, b) => a - b);
  console.log(`load event after ${times[10].toFixed(1)} ms (median of 20; min ${times[0].toFixed(1)}, max ${times[19].toFixed(1)})`);
  await page.close();
} finally {
  await browser.close();
  await srv.stop();
}
for (const f of fs.readdirSync(out).sort()) console.log(`${f} ${fs.statSync(path.join(out, f)).size} bytes`);
