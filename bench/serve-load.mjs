// bench/serve-load: many concurrent streaming clients against qfit serve, on loopback only.
//
//   node bench/serve-load.mjs [--clients 64] [--seconds 60] [--parallel 4] [--asan]
//                             [--model PATH.gguf] [--max-queue N]
//
// Starts `qfit serve` on 127.0.0.1:0 with a fresh store holding the model under two names
// (two loaded models), QFIT_NUM_PARALLEL sequences each, and runs N client loops for the
// given time. Each request is one of: native /api/chat stream, native /api/generate stream,
// OpenAI /v1/chat/completions stream, against either model, with a random num_predict
// (8..64). Every NDJSON line and every SSE event must parse as JSON, every stream must end
// with its final object (done:true / data: [DONE]); a 503 (with Retry-After) counts as a
// refusal, anything else as a failure. Measured: requests answered/refused/failed,
// generated tokens (the final counts), aggregate tokens/s, time to first token percentiles
// (first content chunk), the server's peak RSS (VmHWM) against the planner's prediction
// (the largest qfit_memory_planned_bytes seen in /metrics).
// --asan runs the AddressSanitizer build (build/debug/qfit) and fails on any sanitizer
// report in its output after a clean shutdown (RSS is not compared: ASan's shadow memory).
// Exit status: 0 when there were no failures, no malformed lines, no crash, no sanitizer
// report and RSS <= prediction + 5%; 1 otherwise. Prints a JSON summary on stdout.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const asan = args.includes('--asan');
const clients = Number(opt('clients', 64));
const seconds = Number(opt('seconds', asan ? 15 : 60));
const parallel = Number(opt('parallel', 4));
const maxQueue = opt('max-queue', '32');
const shared = process.env.QFIT_SHARED || path.resolve(root, '../shared');
const model = opt('model', path.join(shared, 'models/kjv-llama-7m-f32.gguf'));
const bin = process.env.QFIT_BIN || path.join(root, asan ? 'build/debug/qfit' : 'build/release/qfit');

if (!fs.existsSync(bin)) { console.error(`serve-load: no qfit binary at ${bin} (make ${asan ? 'debug' : 'release'})`); process.exit(2); }
if (!fs.existsSync(model)) { console.error(`serve-load: model not found: ${model}`); process.exit(2); }

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfit-load-'));
const store = path.join(dir, 'store');
const template = '{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}\n{{ end }}<|assistant|>';
for (const name of ['load-a', 'load-b']) {
  const mf = path.join(dir, `${name}.Modelfile`);
  fs.writeFileSync(mf, `FROM ${model}\nTEMPLATE """${template}"""\n`);
  execFileSync(bin, ['create', name, '-f', mf], { env: { ...process.env, QFIT_MODELS: store }, stdio: 'ignore' });
}
const env = { ...process.env, QFIT_MODELS: store, QFIT_NUM_PARALLEL: String(parallel), QFIT_MAX_QUEUE: maxQueue,
  QFIT_MAX_LOADED_MODELS: '2', QFIT_CONTEXT_LENGTH: '512',
  ASAN_OPTIONS: 'detect_leaks=1', LSAN_OPTIONS: `suppressions=${path.join(root, 'tests/lsan.supp')}` };
const srv = spawn(bin, ['serve', '--host', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
srv.stderr.on('data', (d) => { log += d.toString(); if (log.length > 64 << 20) log = log.slice(-(32 << 20)); });
const base = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 60000);
  const check = () => { const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/); if (m) { clearTimeout(t); resolve(m[1]); } };
  srv.stderr.on('data', check);
  srv.on('exit', (c) => reject(new Error(`server exited (${c}):\n${log}`)));
});

const st = { answered: 0, refused: 0, failed: 0, malformed: 0, tokens: 0, ttft: [], errors: {} };
const fail = (why) => { st.failed++; st.errors[why] = (st.errors[why] || 0) + 1; };
let plannedMax = 0;

async function metricsPoll() {
  try {
    const t = await (await fetch(`${base}/metrics`)).text();
    const m = t.match(/^qfit_memory_planned_bytes (\d+)/m);
    if (m) plannedMax = Math.max(plannedMax, Number(m[1]));
  } catch { /* the server is busy or gone: the next poll tells */ }
}

/** Read a streamed body line by line (NDJSON) or event by event (SSE). */
async function* records(res, sse) {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    const sep = sse ? '\n\n' : '\n';
    let i;
    while ((i = buf.indexOf(sep)) >= 0) {
      const rec = buf.slice(0, i);
      buf = buf.slice(i + sep.length);
      yield rec;
    }
  }
  if (buf.trim()) yield buf;
}

async function one(i) {
  const m = i % 2 ? 'load-a' : 'load-b';
  const n = 8 + Math.floor(Math.random() * 57);
  const kind = Math.floor(Math.random() * 3);
  const t0 = performance.now();
  let url, body, sse = false;
  if (kind === 0) { url = '/api/chat'; body = { model: m, messages: [{ role: 'user', content: `Verse ${i}` }], options: { num_predict: n } }; }
  else if (kind === 1) { url = '/api/generate'; body = { model: m, prompt: `And it came to pass ${i}`, options: { num_predict: n } }; }
  else { url = '/v1/chat/completions'; sse = true; body = { model: m, messages: [{ role: 'user', content: `Psalm ${i}` }], max_tokens: n, stream: true, stream_options: { include_usage: true } }; }
  let res;
  try {
    res = await fetch(base + url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  } catch (e) { fail(`connect: ${e.cause?.code || e.message}`); return; }
  if (res.status === 503) {
    if (!res.headers.get('retry-after')) fail('503 without Retry-After');
    else st.refused++;
    await res.arrayBuffer();
    return;
  }
  if (res.status !== 200) { fail(`status ${res.status}`); await res.arrayBuffer(); return; }
  let first = true, ended = false, generated = 0;
  try {
    for await (const rec of records(res, sse)) {
      let text = rec.trim();
      if (!text || text === ': keep-alive') continue;
      if (sse) {
        if (!text.startsWith('data: ')) { st.malformed++; continue; }
        text = text.slice(6);
        if (text === '[DONE]') { ended = true; continue; }
      }
      let obj;
      try { obj = JSON.parse(text); } catch { st.malformed++; continue; }
      if (obj.error) { fail(`stream error: ${JSON.stringify(obj.error).slice(0, 80)}`); return; }
      const piece = sse ? obj.choices?.[0]?.delta?.content : (obj.message?.content ?? obj.response);
      if (first && piece) { st.ttft.push(performance.now() - t0); first = false; }
      if (!sse && obj.done) { ended = true; generated = obj.eval_count; }
      if (sse && obj.usage) generated = obj.usage.completion_tokens;
    }
  } catch (e) { fail(`read: ${e.message}`); return; }
  if (!ended) { fail('stream without its end'); return; }
  st.answered++;
  st.tokens += generated || 0;
}

const tStart = performance.now();
const deadline = Date.now() + seconds * 1000;
const poller = setInterval(metricsPoll, 500);
await Promise.all(Array.from({ length: clients }, async (_, c) => {
  let i = c;
  while (Date.now() < deadline) { await one(i); i += clients; }
}));
clearInterval(poller);
await metricsPoll();
const elapsed = (performance.now() - tStart) / 1000;
let hwm = 0;
try { hwm = Number(fs.readFileSync(`/proc/${srv.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)[1]) * 1024; } catch { /* not Linux */ }
const crashed = srv.exitCode !== null;
srv.kill('SIGTERM');
if (srv.exitCode === null) await once(srv, 'exit');
const sanitizer = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(log);
fs.rmSync(dir, { recursive: true, force: true });

const pct = (p) => { const a = [...st.ttft].sort((x, y) => x - y); return a.length ? Math.round(a[Math.min(a.length - 1, Math.floor(p / 100 * a.length))]) : null; };
const summary = {
  binary: path.relative(root, bin), clients, seconds: Math.round(elapsed), parallel, models: 2,
  answered: st.answered, refused_503: st.refused, failed: st.failed, malformed: st.malformed, errors: st.errors,
  generated_tokens: st.tokens, tokens_per_s: Math.round(st.tokens / elapsed * 10) / 10,
  ttft_ms: { p50: pct(50), p90: pct(90), p99: pct(99) },
  peak_rss_bytes: hwm, planned_bytes: plannedMax,
  rss_over_plan_pct: plannedMax ? Math.round((hwm / plannedMax - 1) * 1000) / 10 : null,
  crashed, exit_code: srv.exitCode, sanitizer_report: sanitizer,
};
console.log(JSON.stringify(summary, null, 2));
if (sanitizer) console.error(log.split('\n').filter((l) => /Sanitizer|runtime error|#\d+ /.test(l)).slice(0, 40).join('\n'));
// (under AddressSanitizer the shadow memory makes RSS meaningless: not checked)
const ok = !crashed && srv.exitCode === 0 && st.failed === 0 && st.malformed === 0 && !sanitizer &&
  (asan || !plannedMax || hwm <= plannedMax * 1.05);
process.exit(ok ? 0 : 1);
