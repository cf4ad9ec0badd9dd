// qfit's built-in page (web/) in headless Chromium against `qfit serve` on loopback with
// the shared model: chat streaming and stop, pull with progress, "Will it fit?" against
// `qfit plan --json`, model output shown as text, the API key prompt. Tests wait on what
// the page shows (never on elapsed time).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, modelPath, qfit, repoRoot, skipReason, startRegistry, startServer } from '../clients/harness.mjs';
import { browserSkipReason, byTestId, launch, openPage } from './browser.mjs';

const skip = skipReason() || browserSkipReason();

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// Every text the assistant's last message showed, in order (a MutationObserver in the page).
async function recordAssistant(page) {
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const all = document.querySelectorAll('[data-testid="chat-message-assistant"]');
      const t = all.length ? all[all.length - 1].textContent : '';
      if (t && window.__seen.at(-1) !== t) window.__seen.push(t);
    }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
  });
}

async function send(page, text) {
  await page.click(byTestId('chat-input'));
  await page.type(byTestId('chat-input'), text);
  await page.click(byTestId('chat-send'));
}

const idle = (page) => page.waitForFunction(() => !document.querySelector('[data-testid="chat-send"]').disabled &&
  document.querySelector('[data-testid="chat-stop"]').disabled);

describe('web page', { skip: skip ?? false }, () => {
  let srv, browser;
  before(async () => {
    srv = await startServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    if (srv) assert.equal(await srv.stop(), 0, 'qfit serve exited cleanly');
  });

  test('the page: its files, security headers, every test id, no console error', async () => {
    const res = await fetch(`${srv.url}/`, { headers: { Accept: 'text/html' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
    assert.doesNotMatch(res.headers.get('content-security-policy'), /unsafe-inline/);
    const page = await openPage(browser, srv.url);
    for (const id of ['chat-input', 'chat-send', 'chat-stop', 'model-select', 'plan-model', 'plan-ctx', 'plan-chart',
      'plan-verdict', 'pull-input', 'pull-progress', 'tab-chat', 'tab-models', 'tab-plan'])
      assert.ok(await page.$(byTestId(id)), `data-testid="${id}" is on the page`);
    const models = await page.$$eval(`${byTestId('model-select')} option`, (o) => o.map((x) => x.value));
    assert.ok(models.includes('kjv:latest'), models.join(', '));
    const timing = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      const bytes = performance.getEntriesByType('resource').filter((r) => r.name.includes('/ui/'))
        .reduce((s, r) => s + r.encodedBodySize, n.encodedBodySize);
      return { ms: n.loadEventEnd - n.startTime, bytes };
    });
    console.log(`page load from loopback: ${timing.ms.toFixed(1)} ms, ${timing.bytes} bytes (page and its files)`);
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('chat: the streamed answer arrives in several steps and the conversation is kept', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('chat-clear'));
    await page.select(byTestId('model-select'), 'kjv:latest');
    await page.click('#chat-options summary');
    await page.type('#chat-predict', '24');
    await page.type('#chat-temperature', '0');
    await recordAssistant(page);
    await send(page, 'In the beginning');
    await idle(page);
    const seen = await page.evaluate(() => window.__seen);
    const final = seen.at(-1);
    assert.ok(final && final.length > 0, 'an answer');
    assert.ok(seen.length >= 3, `the answer grew in ${seen.length} steps: ${JSON.stringify(seen)}`);
    for (const s of seen) assert.ok(final.startsWith(s.trimEnd()) || final.includes(s.trim()), `${JSON.stringify(s)} is part of the answer`);
    assert.equal((await page.$$(byTestId('chat-message-user'))).length, 1);
    // kept in localStorage: a reload shows it again; clear removes it
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector(byTestId('chat-message-assistant'));
    assert.equal(await page.$eval(byTestId('chat-message-assistant'), (e) => e.textContent), final);
    await page.click(byTestId('chat-clear'));
    assert.equal((await page.$$(byTestId('chat-message-assistant'))).length, 0);
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('chat: stop ends the generation on the server', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('chat-clear'));
    await page.select(byTestId('model-select'), 'kjv:latest');
    await page.click('#chat-options summary');
    await page.type('#chat-temperature', '0');   // greedy: it runs to the context's end (~500 tokens)
    const cancelled = await metric(srv.url, 'qfit_cancellations_total');
    // the stop button is clicked as soon as the first words show (from within the page, so
    // that no round trip to the test lets the model reach its context's end first)
    await page.evaluate(() => {
      const obs = new MutationObserver(() => {
        const a = document.querySelector('[data-testid="chat-message-assistant"]');
        if (a && a.textContent.length > 0) { obs.disconnect(); document.querySelector('[data-testid="chat-stop"]').click(); }
      });
      obs.observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
    });
    await send(page, 'And God said');
    await idle(page);
    assert.ok(await page.$eval(byTestId('chat-message-assistant'), (e) => e.classList.contains('stopped')), 'shown as stopped');
    assert.ok(await eventually(async () => (await metric(srv.url, 'qfit_cancellations_total')) > cancelled),
      'the server counted a cancelled generation');
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('models: pull from a loopback registry, the progress reaches 100%', async () => {
    const reg = await startRegistry(srv.store, 'kjv');
    const page = await openPage(browser, srv.url);
    try {
      const name = `127.0.0.1:${reg.port}/library/kjv:latest`;
      await page.click(byTestId('tab-models'));
      await page.type(byTestId('pull-input'), name);
      await page.click(byTestId('pull-insecure'));
      await page.click(byTestId('pull-button'));
      await page.waitForFunction(() => /success/.test(document.querySelector('[data-testid="pull-status"]').textContent),
        { timeout: 60000 });
      assert.equal(await page.$eval(byTestId('pull-progress'), (p) => p.value), 100);
      assert.match(await page.$eval(byTestId('pull-status'), (e) => e.textContent), /100%/);
      const listed = (n) => [...document.querySelectorAll('#models-table tr')].some((tr) => tr.cells[0]?.textContent === n);
      await page.waitForFunction(listed, {}, name);
      // delete asks first: dismissed, the model stays; accepted, it goes
      const row = (n) => [...document.querySelectorAll('#models-table tr')].findIndex((tr) => tr.cells[0]?.textContent === n);
      const clickDelete = async () => {
        const i = await page.evaluate(row, name);
        await page.evaluate((k) => document.querySelectorAll('#models-table tr')[k].querySelector('[data-testid="model-delete"]').click(), i);
      };
      const dialogs = [];
      page.once('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
      await clickDelete();
      await eventually(() => dialogs.length === 1);
      assert.ok(dialogs[0].includes(name), dialogs[0]);
      assert.ok(await page.evaluate(listed, name), 'still there after cancelling');
      page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
      await clickDelete();
      await page.waitForFunction((n) => ![...document.querySelectorAll('#models-table tr')].some((tr) => tr.cells[0]?.textContent === n), {}, name);
      const tags = await (await fetch(`${srv.url}/api/tags`)).json();
      assert.ok(!tags.models.some((m) => m.name === name), 'deleted on the server');
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
      await reg.stop();
    }
  });

  test('models: what is loaded, its memory and expiry, and unload', async () => {
    const gen = await fetch(`${srv.url}/api/generate`, { method: 'POST',
      body: JSON.stringify({ model: 'kjv', prompt: 'In the beginning', stream: false, options: { num_predict: 1 } }) });
    assert.equal(gen.status, 200);
    const ps = (await (await fetch(`${srv.url}/api/ps`)).json()).models;
    assert.ok(ps.some((m) => m.name === 'kjv:latest'), 'loaded');
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('tab-models'));
    const row = () => [...document.querySelectorAll('#ps-table tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent))
      .find((c) => c[0] === 'kjv:latest');
    await page.waitForFunction(row);
    const cells = await page.evaluate(row);
    assert.match(cells[1], /MiB$/, `memory: ${cells[1]}`);
    assert.match(cells[3], /^in \d+m \d+s$/, `expiry: ${cells[3]}`);
    assert.ok(await page.$eval(`${byTestId('model-select')} option[value="kjv:latest"]`, (o) => o.textContent.includes('(loaded)')));
    await page.evaluate(() => [...document.querySelectorAll('#ps-table tbody tr')].find((tr) => tr.cells[0].textContent === 'kjv:latest')
      .querySelector('button').click());
    await page.waitForFunction(() => ![...document.querySelectorAll('#ps-table tbody tr')].some((tr) => tr.cells[0].textContent === 'kjv:latest'));
    assert.ok(!(await (await fetch(`${srv.url}/api/ps`)).json()).models.some((m) => m.name === 'kjv:latest'), 'unloaded on the server');
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('will it fit: changing the context changes the bar and the verdict to qfit plan --json', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('tab-plan'));
    await page.select(byTestId('plan-model'), 'kjv:latest');
    await page.type(byTestId('plan-mem'), '64M');
    for (const ctx of [1024, 8192]) {
      const want = JSON.parse(qfit(['plan', modelPath, '--mem', '64M', '--ctx', String(ctx), '--json']));
      await page.$eval(byTestId('plan-ctx'), (e) => { e.value = ''; });   // then typed, as a user would
      await page.type(byTestId('plan-ctx'), `${ctx}\n`);
      assert.equal(await page.$eval(byTestId('plan-ctx'), (e) => e.value), String(ctx));
      await page.waitForFunction((t) => document.querySelector('[data-testid="plan-chart"] svg')?.dataset.total === String(t),
        {}, want.total_bytes).catch(async (e) => {
        const seen = await page.evaluate(() => ({ total: document.querySelector('#plan-chart svg')?.dataset.total,
          verdict: document.getElementById('plan-verdict').textContent, error: document.getElementById('error').textContent,
          command: document.getElementById('plan-command').textContent }));
        throw new Error(`ctx ${ctx}: the chart never showed ${want.total_bytes}: ${JSON.stringify(seen)} (${e.message})`);
      });
      const bar = await page.$$eval(`${byTestId('plan-chart')} rect`, (rs) =>
        Object.fromEntries(rs.map((r) => [r.dataset.segment, Number(r.dataset.bytes)])));
      assert.deepEqual(bar, { weights: want.weights_resident_bytes, kv: want.kv_bytes, compute: want.compute_bytes,
        overhead: want.overhead_bytes }, `ctx ${ctx}`);
      assert.equal(await page.$eval(`${byTestId('plan-chart')} svg`, (s) => Number(s.dataset.budget)), want.budget_bytes);
      assert.equal(await page.$eval(byTestId('plan-verdict'), (e) => e.dataset.verdict), want.verdict);
      assert.ok((await page.$eval(byTestId('plan-verdict'), (e) => e.textContent)).startsWith(want.verdict));
    }
    // 8192 does not fit in 64M: the planner's fixes are offered, and one applies in a click
    const fixes = await page.$$(byTestId('plan-fix'));
    assert.ok(fixes.length > 0, 'fixes offered');
    const before = await page.$eval(`${byTestId('plan-chart')} svg`, (s) => s.dataset.total);
    await fixes[0].click();
    await page.waitForFunction((t) => document.querySelector('[data-testid="plan-chart"] svg').dataset.total !== t, {}, before);
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('quality: the shared-model table, then a qfit eval JSON opened from disk', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('tab-quality'));
    const mixes = (await (await fetch(`${srv.url}/api/plan`)).json()).mixes;
    await page.waitForFunction((n) => document.querySelectorAll('#quality-table tbody tr').length === n, {}, mixes.length);
    assert.ok(await page.$$eval(`${byTestId('quality-chart')} circle`, (c) => c.length) > 5, 'the mix table plotted');
    // the eval file: one point per quantized type (the base has no KLD), the Pareto front labelled
    const file = path.join(repoRoot, 'tests/data/web/kjv.eval.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const input = await page.$(byTestId('quality-file'));
    await input.uploadFile(file);
    const quantized = doc.rows.filter((r) => !r.base).map((r) => r.name).sort();
    await page.waitForFunction((n) => document.querySelectorAll('#quality-table tbody tr').length === n, {}, doc.rows.length);
    assert.deepEqual(await page.$$eval(`${byTestId('quality-chart')} circle`, (c) => c.map((x) => x.dataset.name).sort()), quantized);
    // the front: no other type is both smaller and closer to the base
    const front = doc.rows.filter((r) => !r.base).filter((p) => !doc.rows.some((q) => !q.base && q !== p &&
      q.tensor_bytes <= p.tensor_bytes && q.kld_mean < p.kld_mean)).map((r) => r.name).sort();
    assert.deepEqual(await page.$$eval(`${byTestId('quality-chart')} circle.front`, (c) => c.map((x) => x.dataset.name).sort()), front);
    assert.equal(await page.$$eval(`${byTestId('speed-chart')} circle`, (c) => c.length), doc.rows.filter((r) => r.tg_tps > 0).length);
    // anything else is refused with a message, the page unchanged
    const bad = path.join(srv.dir, 'not-eval.json');
    fs.writeFileSync(bad, '{"rows": 3}');
    await input.uploadFile(bad);
    await page.waitForFunction(() => /not a qfit eval JSON/.test(document.getElementById('error').textContent));
    assert.equal(await page.$$eval('#quality-table tbody tr', (r) => r.length), doc.rows.length);
    await page.close();
  });

  test('keyboard only: arrow keys switch tabs, Enter sends, Escape stops', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('chat-clear'));
    await page.select(byTestId('model-select'), 'kjv:latest');
    await page.click('#chat-options summary');
    await page.type('#chat-temperature', '0');   // greedy: a long answer, there to be stopped
    await page.focus(byTestId('tab-chat'));
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'tab-models');
    assert.equal(await page.$eval('#view-models', (v) => v.hidden), false);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.$eval('#view-chat', (v) => v.hidden), false);
    assert.equal(await page.$eval('#view-models', (v) => v.hidden), true);
    await page.focus(byTestId('chat-input'));
    await page.keyboard.type('And God said');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid="chat-message-assistant"]')?.textContent.length > 0,
      { polling: 'mutation' });
    await page.keyboard.press('Escape');
    await idle(page);
    assert.equal(await page.$eval(byTestId('chat-message-user'), (e) => e.textContent), 'And God said');
    assert.ok(await page.$eval(byTestId('chat-message-assistant'), (e) => e.classList.contains('stopped')), 'Escape stopped it');
    await page.click(byTestId('chat-clear'));
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test('model output with <script> and markup is shown as text', async () => {
    const page = await openPage(browser, srv.url);
    await page.click(byTestId('chat-clear'));
    const evil = '<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> **bold** `<b>code</b>`\n\n' +
      '```html\n<script>window.__pwned = 3</script>\n<svg onload="window.__pwned = 4"></svg>\n```\n';
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (!req.url().endsWith('/api/chat')) { req.continue(); return; }
      const line = (content, done) => JSON.stringify({ model: 'kjv', message: { role: 'assistant', content }, done });
      req.respond({ status: 200, contentType: 'application/x-ndjson', body: `${line(evil.slice(0, 20), false)}\n${line(evil.slice(20), false)}\n${line('', true)}\n` });
    });
    await send(page, 'hello');
    await idle(page);
    const msg = byTestId('chat-message-assistant');
    const text = await page.$eval(msg, (e) => e.textContent);
    assert.ok(text.includes('<script>window.__pwned = 1</script>'), text);
    assert.ok(text.includes('<img src=x'), text);
    assert.equal(await page.$eval(msg, (e) => e.querySelectorAll('script, img').length), 0, 'no element from the output');
    assert.equal(await page.$eval(msg, (e) => e.querySelector('strong')?.textContent), 'bold', 'markdown still formatted');
    assert.equal(await page.$eval(msg, (e) => e.querySelector('p code')?.textContent), '<b>code</b>');
    assert.equal(await page.$eval(msg, (e) => e.querySelector('pre code')?.textContent),
      '<script>window.__pwned = 3</script>\n<svg onload="window.__pwned = 4"></svg>', 'the code block, as text');
    assert.equal(await page.$eval(msg, (e) => e.querySelectorAll('svg, b').length), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await page.click(byTestId('chat-clear'));
    await page.close();
  });
});

describe('web page with an API key', { skip: skip ?? false }, () => {
  let srv, browser;
  before(async () => {
    srv = await startServer({ QFIT_API_KEY: 'web-test-key' });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    if (srv) assert.equal(await srv.stop(), 0, 'qfit serve exited cleanly');
  });

  test('the key is asked once, then kept for the tab (sessionStorage)', async () => {
    assert.equal((await fetch(`${srv.url}/api/plan`)).status, 401, 'the plan endpoint needs the key');
    const page = await openPage(browser, srv.url, { ready: false });
    await page.waitForSelector('#key-form:not([hidden])');
    await page.type('#key-input', 'web-test-key\n');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="model-select"] option').length > 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('qfit-api-key')), 'web-test-key');
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="model-select"] option').length > 0);
    assert.ok(await page.$eval('#key-form', (f) => f.hidden), 'not asked again');
    await page.close();
  });
});
