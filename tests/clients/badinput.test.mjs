// The HTTP/API bad-input corpus of ../shared/docs/user-pain-points.md (Part 4) against the
// engine routes: every request is refused with a 4xx and a message naming the problem, nothing
// is generated unconstrained, and the server is alive and answering afterwards (0 crashes).
// (The HTTP layer's own list — Host, Origin, body size, depth, names, management from a remote
// peer — is in tests/test_server.c.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startServer } from './harness.mjs';

const skip = skipReason();

describe('bad input (user-pain-points Part 4, HTTP/API)', { skip: skip ?? false }, () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => {
    const code = await srv.stop();
    assert.equal(code, 0, `qfit serve exited with ${code}:\n${srv.log()}`);
  });

  const post = async (path, body) => {
    const res = await fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text };
  };
  // each case: [path, body, what the message must name]
  const gen = (extra) => ({ model: 'kjv', prompt: 'In the beginning', stream: false, ...extra });
  const chat = (extra) => ({ model: 'kjv', messages: [{ role: 'user', content: 'Hi' }], stream: false, ...extra });
  const oai = (extra) => ({ model: 'kjv', messages: [{ role: 'user', content: 'Hi' }], ...extra });
  // a schema nested n deep, as text (JSON.stringify would overflow the stack)
  const deep = (n) => '{"model":"kjv","stream":false,"messages":[{"role":"user","content":"Hi"}],"format":' +
    '{"type":"array","items":'.repeat(n) + '{"type":"string"}' + '}'.repeat(n) + '}';
  const cases = [
    // context
    ['/api/generate', gen({ prompt: 'and the LORD said '.repeat(3000) }), /tokens.*context|context.*tokens/],
    ['/api/chat', chat({ messages: Array.from({ length: 10000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'word' })) }), /tokens/],
    ['/v1/completions', { model: 'kjv-raw', prompt: 'x'.repeat(40000) }, /tokens/],
    ['/detokenize', { model: 'kjv', tokens: [-1] }, /tokens\[0\]/],
    ['/detokenize', { model: 'kjv', tokens: [2 ** 31] }, /tokens\[0\]/],
    // sampling
    ['/api/generate', gen({ options: { temperature: -1 } }), /temperature/],
    ['/api/generate', gen({ options: { temperature: 'NaN' } }), /temperature/],
    ['/api/generate', gen({ options: { temperature: 'Infinity' } }), /temperature/],
    ['/api/generate', gen({ options: { top_p: 1.5 } }), /top_p/],
    ['/api/generate', gen({ options: { min_p: -0.1 } }), /min_p/],
    ['/api/generate', gen({ options: { top_k: 2 ** 31 } }), /top_k/],
    ['/api/generate', gen({ logprobs: true, top_logprobs: 1000000 }), /top_logprobs/],
    ['/api/generate', gen({ options: { num_keep: -5 } }), /num_keep/],
    ['/api/generate', gen({ options: { seed: 2 ** 64 } }), /seed|too big integer/],
    ['/v1/chat/completions', oai({ max_tokens: 2 ** 40 }), /max_tokens/],
    ['/v1/chat/completions', oai({ n: 1000000 }), /\bn\b/],
    ['/v1/chat/completions', oai({ temperature: 1e6 }), /temperature/],
    ['/v1/chat/completions', oai({ top_logprobs: 1000000, logprobs: true }), /top_logprobs/],
    // grammar / schema
    ['/api/chat', deep(70000), /nest|deep|depth/],
    ['/api/chat', deep(100), /nest|deep|depth/],
    ['/api/chat', chat({ format: { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/a' } } } }), /\$ref|cycle/],
    ['/api/chat', chat({ format: { type: 'string', pattern: '(a+)+$\\1' } }), /pattern|backreference/],
    ['/api/chat', chat({ format: { type: 'object', not: {} } }), /not/],
    ['/api/chat', chat({ format: { type: 'object', properties: Object.fromEntries(Array.from({ length: 200000 }, (_, i) => [`p${i}`, { type: 'string' }])) } }), /schema|large|bytes/],
    ['/api/chat', chat({ format: { type: 'string', pattern: '[' } }), /pattern/],
    // images (no vision)
    ['/api/generate', gen({ images: ['not base64 at all'] }), /image/],
    ['/api/chat', chat({ messages: [{ role: 'user', content: 'x', images: [''] }] }), /image/],
    // body
    ['/api/chat', String.raw`{"model":"kjv","messages":[{"role":"user","content":"\udc00 lone"}]}`, /Unicode|invalid/i],
    ['/api/chat', Buffer.concat([Buffer.from('{"model":"kjv","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]),
      Buffer.from('"}]}')]), /byte|UTF-8|invalid/i],
    ['/api/generate', '{"model":"kj\\u0000v","prompt":"x"}', /model|NUL|name/i],
    // names
    ['/api/generate', { model: '../../etc/passwd', prompt: 'x' }, /model|name|not found/i],
    ['/api/generate', { model: 'a/../../b', prompt: 'x' }, /model|name|not found/i],
    ['/api/embed', { model: 'x'.repeat(5000), input: 'x' }, /model|name|long/i],
  ];

  test('each refused with a 4xx naming the problem; the server stays up', async () => {
    const failures = [];
    for (const [path, body, want] of cases) {
      const { status, text } = await post(path, body);
      const msg = text.slice(0, 200);
      const what = `${path} ${(typeof body === 'object' && !Buffer.isBuffer(body) ? JSON.stringify(body) : String(body)).slice(0, 80)}`;
      if (status < 400 || status >= 500) failures.push(`${what}: status ${status}: ${msg}`);
      else if (!want.test(text)) failures.push(`${what}: message does not name it: ${msg}`);
    }
    assert.deepEqual(failures, []);
    const ok = await post('/api/generate', gen({ options: { num_predict: 4 } }));
    assert.equal(ok.status, 200, 'the server answers after the corpus');
  });
});
