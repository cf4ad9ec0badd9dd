// The official Ollama JavaScript client (ollama 0.6.x) against qfit serve.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { eventually, modelPath, norm, qfit, skipReason, startRegistry, startServer } from './harness.mjs';

const skip = skipReason();

describe('ollama client', { skip: skip ?? false }, () => {
  let srv;
  let ollama;
  before(async () => {
    srv = await startServer({ QFIT_NUM_PARALLEL: '2' });
    ollama = new Ollama({ host: srv.url });
  });
  after(async () => {
    const code = await srv.stop();
    assert.equal(code, 0, `qfit serve exited with ${code}:\n${srv.log()}`);
  });

  test('generate (raw, greedy) gives what qfit run gives', async () => {
    const prompt = 'In the beginning';
    const r = await ollama.generate({ model: 'kjv', prompt, raw: true, options: { temperature: 0, num_predict: 16 } });
    const cli = qfit(['run', modelPath, '-p', prompt, '--temp', '0', '-n', '16']);
    assert.equal(prompt + r.response + '\n', cli);
    assert.equal(r.done, true);
    assert.equal(r.done_reason, 'length');
    assert.equal(r.eval_count, 16);
    for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_duration'])
      assert.ok(Number.isInteger(r[k]), `${k}: ${r[k]}`);
  });

  test('generate streams the same text as without streaming', async () => {
    const req = { model: 'kjv', prompt: 'And God said', options: { temperature: 0, num_predict: 20 } };
    const whole = await ollama.generate(req);
    let text = '';
    let last;
    let parts = 0;
    for await (const part of await ollama.generate({ ...req, stream: true })) {
      text += part.response;
      last = part;
      parts++;
    }
    assert.ok(parts > 2, `${parts} parts`);
    assert.equal(text, whole.response);
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'length');
    assert.equal(last.eval_count, 20);
  });

  test('chat, streaming and not, through the template', async () => {
    const messages = [{ role: 'system', content: 'Thou art a scribe.' }, { role: 'user', content: 'Who made the heaven?' }];
    const options = { temperature: 0, num_predict: 12 };
    const r = await ollama.chat({ model: 'kjv', messages, options });
    assert.equal(r.message.role, 'assistant');
    assert.ok(r.message.content.length > 0);
    let text = '';
    for await (const part of await ollama.chat({ model: 'kjv', messages, options, stream: true })) text += part.message.content;
    assert.equal(text, r.message.content);
    // the rendered prompt is what the template makes of the messages
    assert.ok(r.prompt_eval_count > 10, `prompt_eval_count ${r.prompt_eval_count}`);
  });

  test('structured output: every answer at temperature 1 parses and validates', async () => {
    const format = {
      type: 'object',
      properties: { book: { enum: ['Genesis', 'Exodus', 'Psalms'] }, chapter: { type: 'integer', minimum: 1, maximum: 150 },
        verses: { type: 'array', items: { type: 'string', maxLength: 20 }, minItems: 1, maxItems: 3 } },
      required: ['book', 'chapter', 'verses'],
    };
    for (let seed = 1; seed <= 4; seed++) {
      const r = await ollama.chat({ model: 'kjv', messages: [{ role: 'user', content: 'Name a verse.' }], format,
        options: { temperature: 1, seed, num_predict: 200 } });
      const v = JSON.parse(r.message.content);
      assert.ok(['Genesis', 'Exodus', 'Psalms'].includes(v.book), r.message.content);
      assert.ok(Number.isInteger(v.chapter) && v.chapter >= 1 && v.chapter <= 150, r.message.content);
      assert.ok(Array.isArray(v.verses) && v.verses.length >= 1 && v.verses.length <= 3, r.message.content);
      for (const s of v.verses) assert.ok(typeof s === 'string' && [...s].length <= 20, r.message.content);
      assert.deepEqual(Object.keys(v), ['book', 'chapter', 'verses']);
    }
  });

  test('tools: a conversation with tool calls and results renders, and no markup reaches content', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather of a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const messages = [
      { role: 'user', content: 'Weather in Jerusalem?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Jerusalem' } } }] },
      { role: 'tool', content: 'hot and dry', tool_name: 'get_weather' },
    ];
    const r = await ollama.chat({ model: 'kjv-tools', messages, tools, options: { temperature: 0, num_predict: 24 } });
    assert.equal(r.message.role, 'assistant');
    assert.ok(!r.message.content.includes('<tool_call>'), r.message.content);
    for (const c of r.message.tool_calls ?? []) assert.equal(c.function.name, 'get_weather');
  });

  test('a per-request template is rendered, and logprobs come with each token', async () => {
    const template = 'Q: {{ .Prompt }}\nA:';
    const r = await ollama.generate({ model: 'kjv', prompt: 'In the beginning', template, logprobs: true, top_logprobs: 3,
      options: { temperature: 0, num_predict: 6 } });
    const tok = await (await fetch(`${srv.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kjv', content: 'Q: In the beginning\nA:', add_special: true }) })).json();
    assert.equal(r.prompt_eval_count, tok.tokens.length, 'the prompt is the request template rendered');
    assert.equal(r.logprobs.length, r.eval_count);
    for (const l of r.logprobs) {
      assert.ok(l.logprob <= 0, JSON.stringify(l));
      assert.equal(l.top_logprobs.length, 3);
      assert.ok(l.top_logprobs[0].logprob >= l.top_logprobs[2].logprob);
      assert.equal(l.top_logprobs[0].token, l.token, 'greedy: the chosen token is the most likely');
    }
    assert.equal(r.logprobs.map((l) => l.token).join(''), r.response);
    await assert.rejects(ollama.generate({ model: 'kjv', prompt: 'x', template: '{{ .Prompt ' }), (e) => e.status_code === 400);
  });

  test('embed: one normalised vector per input, batch equals single', async () => {
    const r = await ollama.embed({ model: 'kjv', input: ['In the beginning', 'God is love'] });
    assert.equal(r.embeddings.length, 2);
    const one = await ollama.embed({ model: 'kjv', input: 'God is love' });
    assert.equal(one.embeddings[0].length, r.embeddings[1].length);
    for (const v of r.embeddings) assert.ok(Math.abs(norm(v) - 1) < 1e-4, `norm ${norm(v)}`);
    const dot = one.embeddings[0].reduce((s, x, i) => s + x * r.embeddings[1][i], 0);
    assert.ok(dot > 0.9999, `cosine ${dot}`);
    assert.ok(r.prompt_eval_count > 0);
    // the legacy endpoint: the same vector before normalisation (Ollama does not normalise there)
    const legacy = await ollama.embeddings({ model: 'kjv', prompt: 'God is love' });
    assert.equal(legacy.embedding.length, one.embeddings[0].length);
    const n = norm(legacy.embedding);
    assert.ok(n > 0 && Number.isFinite(n), `norm ${n}`);
    for (let i = 0; i < legacy.embedding.length; i++)
      assert.ok(Math.abs(legacy.embedding[i] / n - one.embeddings[0][i]) < 1e-5, `value ${i}`);
  });

  test('list, show, ps', async () => {
    const list = await ollama.list();
    const names = list.models.map((m) => m.name);
    for (const n of ['kjv:latest', 'kjv-tools:latest', 'kjv-raw:latest']) assert.ok(names.includes(n), names.join(' '));
    const show = await ollama.show({ model: 'kjv' });
    assert.ok(show.template.includes('.Messages'), show.template);
    assert.equal(show.details.family, 'llama');
    await ollama.generate({ model: 'kjv', prompt: 'In', options: { num_predict: 1 } });
    const ps = await ollama.ps();
    const e = ps.models.find((m) => m.name === 'kjv:latest');
    assert.ok(e, JSON.stringify(ps));
    assert.ok(e.size > 0);
    assert.ok(new Date(e.expires_at) > new Date());
  });

  test('qfit ps and qfit stop talk to the server', async () => {
    const env = { QFIT_HOST: srv.url };
    await ollama.generate({ model: 'kjv', prompt: 'In', options: { num_predict: 1 } });
    const ps = qfit(['ps'], env).split('\n');
    assert.match(ps[0], /^NAME\s+ID\s+SIZE\s+PROCESSOR\s+CONTEXT\s+PARALLEL\s+UNTIL/);
    assert.ok(ps.some((l) => /^kjv:latest\s+[0-9a-f]{12}\s+\d+ MB\s+100% CPU\s+512\s+2\s+\d+ minutes from now/.test(l)), ps.join('\n'));
    qfit(['stop', 'kjv'], env);
    assert.ok(!(await ollama.ps()).models.some((m) => m.name === 'kjv:latest'));
    assert.throws(() => qfit(['stop', 'kjv'], env), /not loaded/);
  });

  test('create, copy, delete', async () => {
    await ollama.create({ model: 'kjv-scribe', from: 'kjv', system: 'Thou art a scribe.', parameters: { temperature: 0 } });
    const show = await ollama.show({ model: 'kjv-scribe' });
    assert.equal(show.system, 'Thou art a scribe.');
    assert.match(show.parameters, /temperature\s+0/);
    await ollama.copy({ source: 'kjv-scribe', destination: 'kjv-scribe2' });
    assert.ok((await ollama.list()).models.some((m) => m.name === 'kjv-scribe2:latest'));
    await ollama.delete({ model: 'kjv-scribe2' });
    assert.ok(!(await ollama.list()).models.some((m) => m.name === 'kjv-scribe2:latest'));
    await assert.rejects(ollama.delete({ model: 'kjv-scribe2' }), (e) => e.status_code === 404);
  });

  test('pull from a loopback registry, with progress', async () => {
    const reg = await startRegistry(srv.store, 'kjv');
    try {
      const name = `127.0.0.1:${reg.port}/library/kjv:latest`;
      const statuses = [];
      for await (const p of await ollama.pull({ model: name, insecure: true, stream: true })) statuses.push(p.status);
      assert.equal(statuses.at(-1), 'success', statuses.join(', '));
      assert.ok(statuses.some((s) => s.startsWith('pulling')), statuses.join(', '));
      assert.ok((await ollama.list()).models.some((m) => m.name === name), 'pulled model listed');
    } finally {
      await reg.stop();
    }
  });

  test('fill-in-the-middle: suffix goes through a template that uses .Suffix', async () => {
    const FIM = '{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{- else }}{{ .Prompt }}{{- end }}';
    await ollama.create({ model: 'kjv-fim', from: 'kjv', template: FIM });
    assert.ok((await ollama.show({ model: 'kjv-fim' })).capabilities.includes('insert'));
    const options = { temperature: 0, num_predict: 8 };
    const fim = await ollama.generate({ model: 'kjv-fim', prompt: 'In the beginning', suffix: ' and the earth.', options });
    // the same text as the prompt the template makes, sent raw
    const raw = await ollama.generate({ model: 'kjv-fim', prompt: '<PRE> In the beginning <SUF> and the earth. <MID>',
      raw: true, options });
    assert.equal(fim.response, raw.response);
    assert.equal(fim.prompt_eval_count, raw.prompt_eval_count);
    assert.ok(fim.response.length > 0);
    await assert.rejects(ollama.generate({ model: 'kjv', prompt: 'In', suffix: 'x', options }),
      (e) => e.status_code === 400 && /does not support insert/.test(e.error));
    await assert.rejects(ollama.generate({ model: 'kjv-fim', prompt: 'In', suffix: 'x', raw: true, options }),
      (e) => e.status_code === 400 && /suffix cannot be used with raw/.test(e.error));
  });

  test('load and unload with an empty prompt; keep_alive expiry', async () => {
    const load = await ollama.generate({ model: 'kjv-raw', prompt: '' });
    assert.equal(load.done_reason, 'load');
    assert.ok((await ollama.ps()).models.some((m) => m.name === 'kjv-raw:latest'));
    const unload = await ollama.generate({ model: 'kjv-raw', prompt: '', keep_alive: 0 });
    assert.equal(unload.done_reason, 'unload');
    assert.ok(!(await ollama.ps()).models.some((m) => m.name === 'kjv-raw:latest'));
    await ollama.generate({ model: 'kjv-raw', prompt: 'In', keep_alive: '1s', options: { num_predict: 1 } });
    assert.ok((await ollama.ps()).models.some((m) => m.name === 'kjv-raw:latest'));
    const gone = await eventually(async () => !(await ollama.ps()).models.some((m) => m.name === 'kjv-raw:latest'));
    assert.ok(gone, 'keep_alive 1s never expired');
  });

  test('a routing model sends each request by its rules, and says which model answered', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const mf = path.join(srv.dir, 'router.Modelfile');
    fs.writeFileSync(path.join(srv.dir, 'long.Modelfile'), 'FROM kjv\nPARAMETER num_ctx 512\n');
    qfit(['create', 'kjv-long', '-f', path.join(srv.dir, 'long.Modelfile')], { QFIT_MODELS: srv.store });
    fs.writeFileSync(mf, 'ROUTE code kjv-tools\nROUTE long>60 kjv-long\nROUTE default kjv\n');
    qfit(['create', 'router', '-f', mf], { QFIT_MODELS: srv.store });
    const show = await ollama.show({ model: 'router' });
    assert.match(show.modelfile, /ROUTE code kjv-tools\nROUTE long>60 kjv-long\nROUTE default kjv/);
    const ask = async (content) => {
      const res = await fetch(`${srv.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'router', stream: false,
        messages: [{ role: 'user', content }], options: { num_predict: 2 } }) });
      const j = await res.json();
      assert.equal(res.status, 200, JSON.stringify(j));
      assert.equal(j.model, 'router', 'the response names the model asked for');
      assert.equal(j.routed_model, res.headers.get('x-qfit-routed-model'));
      return j.routed_model;
    };
    assert.equal(await ask('Who made the heaven?'), 'kjv');
    assert.equal(await ask('Why does this python function fail?'), 'kjv-tools');
    assert.equal(await ask('```\nint main(void) { return 0; }\n```'), 'kjv-tools');
    assert.equal(await ask('and the LORD said unto Moses '.repeat(12)), 'kjv-long');
    const r = await ollama.chat({ model: 'router', messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 2 } });
    assert.equal(r.routed_model, 'kjv');
    assert.throws(() => qfit(['run', 'router', 'hi'], { QFIT_MODELS: srv.store }), /routing model/);
  });

  test('a client that goes away cancels its generation', async () => {
    const metric = async () => Number((await (await fetch(`${srv.url}/metrics`)).text())
      .match(/^qfit_cancellations_total (\d+)/m)[1]);
    const before = await metric();
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/api/generate`, { method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json' },
      // shift: the context shifts instead of ending the answer, so it runs until cancelled
      body: JSON.stringify({ model: 'kjv', prompt: 'In the beginning', shift: true, options: { num_predict: 1000000 } }) });
    const reader = res.body.getReader();
    await reader.read();   // the first chunk: it is generating
    ac.abort();
    const cancelled = await eventually(async () => (await metric()) > before, 10000, 50);
    assert.ok(cancelled, 'the generation was not cancelled');
    // the sequence is free again: a request is served at once
    const r = await ollama.generate({ model: 'kjv', prompt: 'In', options: { num_predict: 2 } });
    assert.equal(r.done, true);
  });

  test('a client that goes away cancels a non-streaming generation too', async () => {
    const metric = async () => Number((await (await fetch(`${srv.url}/metrics`)).text())
      .match(/^qfit_cancellations_total (\d+)/m)[1]);
    const before = await metric();
    const ac = new AbortController();
    const pending = fetch(`${srv.url}/api/generate`, { method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kjv', prompt: 'In the beginning', stream: false, shift: true,
        options: { num_predict: 1000000 } }) }).catch(() => null);
    // tokens flow for a while with nobody reading them, then the client leaves
    await new Promise((r) => setTimeout(r, 500));
    ac.abort();
    await pending;
    const cancelled = await eventually(async () => (await metric()) > before, 10000, 50);
    assert.ok(cancelled, 'the non-streaming generation ran on after its client left');
  });

  test('thinking: a prompt that opens <think> puts the answer in thinking, and think:false hides it', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const mf = path.join(srv.dir, 'think.Modelfile');
    const q = '"""';
    fs.writeFileSync(mf, `FROM kjv\nTEMPLATE ${q}{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}\n{{ end }}<|assistant|><think>\n${q}\n`);
    qfit(['create', 'kjv-think', '-f', mf], { QFIT_MODELS: srv.store });
    const messages = [{ role: 'user', content: 'Who made the heaven?' }];
    const on = await ollama.chat({ model: 'kjv-think', messages, think: true, options: { temperature: 0, num_predict: 12 } });
    assert.ok(on.message.thinking && on.message.thinking.length > 0, JSON.stringify(on.message));
    assert.ok(!on.message.content.includes('<think>') && !on.message.thinking.includes('<think>'));
    const off = await ollama.chat({ model: 'kjv-think', messages, think: false, options: { temperature: 0, num_predict: 12 } });
    assert.ok(!off.message.thinking, JSON.stringify(off.message));
    assert.equal(off.message.content, '', 'the reasoning never reaches content');
  });

  test('errors: unknown model 404, bad option 400, prompt over the context 400 naming both counts', async () => {
    await assert.rejects(ollama.generate({ model: 'no-such-model', prompt: 'x' }),
      (e) => e.status_code === 404 && /not found/.test(e.error));
    await assert.rejects(ollama.generate({ model: 'kjv', prompt: 'x', options: { temperature: 'hot' } }),
      (e) => e.status_code === 400 && /temperature/.test(e.error));
    const long = 'and the LORD said '.repeat(400);
    await assert.rejects(ollama.generate({ model: 'kjv', prompt: long }),
      (e) => e.status_code === 400 && /512/.test(e.error) && /\d{4} tokens/.test(e.error));
    await assert.rejects(ollama.chat({ model: 'kjv-raw', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e.status_code === 400 && /template/.test(e.error));
  });
});
