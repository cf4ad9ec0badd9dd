// The official OpenAI JavaScript client (openai 6.x) against qfit serve's /v1 API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { norm, skipReason, startServer } from './harness.mjs';

const skip = skipReason();

describe('openai client', { skip: skip ?? false }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await startServer({ QFIT_NUM_PARALLEL: '2' });
    client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'not-needed-on-loopback', maxRetries: 0 });
  });
  after(async () => {
    const code = await srv.stop();
    assert.equal(code, 0, `qfit serve exited with ${code}:\n${srv.log()}`);
  });

  const messages = [{ role: 'developer', content: 'Thou art a scribe.' }, { role: 'user', content: 'Who made the heaven?' }];

  test('chat completion, and the same text streamed with usage', async () => {
    const r = await client.chat.completions.create({ model: 'kjv', messages, max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
    const stream = await client.chat.completions.create({ model: 'kjv', messages, max_tokens: 12, temperature: 0,
      stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(text, r.choices[0].message.content);
    assert.equal(finish, 'length');
    assert.deepEqual(usage, r.usage);
  });

  test('completions, streaming and not', async () => {
    const req = { model: 'kjv-raw', prompt: 'In the beginning', max_tokens: 10, temperature: 0 };
    const r = await client.completions.create(req);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].finish_reason, 'length');
    let text = '';
    for await (const chunk of await client.completions.create({ ...req, stream: true })) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0].text);
  });

  test('stop strings end the answer and are not part of it', async () => {
    const base = await client.completions.create({ model: 'kjv-raw', prompt: 'In the beginning', max_tokens: 16, temperature: 0 });
    const text = base.choices[0].text;
    const word = text.trim().split(/\s+/)[2];
    const r = await client.completions.create({ model: 'kjv-raw', prompt: 'In the beginning', max_tokens: 16,
      temperature: 0, stop: [word] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].text, text.slice(0, text.indexOf(word)));
  });

  test('tool_choice required: a valid call of the tool', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather of a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
        required: ['city', 'days'] } } }];
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
      const r = await client.chat.completions.create({ model: 'kjv-tools', messages: [{ role: 'user', content: 'Weather in Jerusalem?' }],
        tools, tool_choice, temperature: 1, seed: 3 });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
      assert.equal(c.message.tool_calls.length, 1);
      const call = c.message.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.match(call.id, /^call_/);
      const args = JSON.parse(call.function.arguments);
      assert.equal(typeof args.city, 'string');
      assert.ok([...args.city].length <= 16);
      assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7, call.function.arguments);
      assert.ok(!(c.message.content ?? '').includes('<tool_call>'));
    }
  });

  test('response_format json_schema: the answer validates', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string', maxLength: 30 }, sure: { type: 'boolean' } },
      required: ['answer', 'sure'], additionalProperties: false };
    const r = await client.chat.completions.create({ model: 'kjv', messages, temperature: 1, seed: 7, max_tokens: 120,
      response_format: { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } } });
    const v = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(v), ['answer', 'sure']);
    assert.equal(typeof v.sure, 'boolean');
  });

  test('models list and retrieve', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('kjv:latest'), ids.join(' '));
    const m = await client.models.retrieve('kjv:latest');
    assert.equal(m.id, 'kjv:latest');
    assert.equal(m.object, 'model');
    await assert.rejects(client.models.retrieve('no-such-model'), (e) => e.status === 404);
  });

  test('embeddings: base64 (the client default) and float give the same normalised vectors', async () => {
    const input = ['In the beginning', 'God is love'];
    const b64 = await client.embeddings.create({ model: 'kjv', input });   // the client asks for base64 and decodes it
    const flt = await client.embeddings.create({ model: 'kjv', input, encoding_format: 'float' });
    assert.equal(b64.data.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.equal(b64.data[i].index, i);
      assert.deepEqual(Array.from(b64.data[i].embedding), flt.data[i].embedding);
      assert.ok(Math.abs(norm(flt.data[i].embedding) - 1) < 1e-4);
    }
    assert.ok(flt.usage.prompt_tokens > 0);
  });

  test('errors as the client expects them', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }),
      (e) => e instanceof OpenAI.NotFoundError && /not found/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'kjv', messages, n: 2 }),
      (e) => e instanceof OpenAI.BadRequestError && /\bn\b/.test(e.message));
    const long = 'and the LORD said '.repeat(400);
    await assert.rejects(client.completions.create({ model: 'kjv-raw', prompt: long }),
      (e) => e instanceof OpenAI.BadRequestError && /512/.test(e.message));
  });
});
