// bench/serve-overhead: what the server costs one client, against the engine alone.
//
//   node bench/serve-overhead.mjs [--model PATH.gguf] [--tg 64] [--rounds 5]
//
// In each of `rounds` rounds, alternately:
// 1. `qfit bench MODEL --pp 0 --tg N --threads 2 --reps 1`: generation tokens/s of the engine alone;
// 2. one streaming /api/generate request to `qfit serve` holding the model (raw prompt,
//    num_predict N, greedy; one warm-up request loads it first):
//      - generation tokens/s as the client sees it: tokens after the first one divided by
//        the time from the first to the last chunk;
//      - time to first token at the client, minus what the engine reports for the same
//        request (prompt_eval_duration: the prefill, which produces the first token's
//        logits): what HTTP, JSON, tokenizing, scheduling and streaming add. The client is
//        a plain socket (see request()), so a client library's own cost is not counted.
// Prints a JSON summary; run it on an idle machine (medians over the rounds).
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const shared = process.env.QFIT_SHARED || path.resolve(root, '../shared');
const model = path.resolve(opt('model', path.join(shared, 'models/kjv-llama-7m-f32.gguf')));
const tg = Number(opt('tg', 64));
const rounds = Number(opt('rounds', 5));
const bin = process.env.QFIT_BIN || path.join(root, 'build/release/qfit');
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

// 1. the engine alone: one `qfit bench` run per round, interleaved with the server's rounds
// below (this shared machine's speed drifts by 10-20% over minutes: separate phases would
// compare two machines)
function benchOnce() {
  const out = execFileSync(bin, ['bench', model, '--pp', '0', '--tg', String(tg), '--reps', '1', '--threads', '2'],
    { encoding: 'utf8' });
  const row = out.split('\n').find((l) => l.includes(`tg${tg}`));
  return Number(row.split('|').at(-2).trim().split(/\s+/)[0]);
}

// 2. through the server
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfit-overhead-'));
const srv = spawn(bin, ['serve', '--host', '127.0.0.1:0'], { env: { ...process.env, QFIT_MODELS: path.join(dir, 'store') },
  stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
const base = await new Promise((resolve, reject) => {
  srv.stderr.on('data', (d) => { log += d; const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/); if (m) resolve(m[1]); });
  srv.on('exit', (c) => reject(new Error(`server exited (${c}):\n${log}`)));
});

// One streaming request over a plain TCP socket (node:net): a minimal HTTP/1.1 client, so
// that what is measured is the server, not a client library (undici's fetch alone takes
// 2-20 ms per request here while it warms up).
function request() {
  const body = JSON.stringify({ model, prompt: 'In the beginning God created the heaven and the earth.', raw: true,
    options: { temperature: 0, num_predict: tg, num_thread: 2 } });
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    sock.setNoDelay(true);
    let t0 = 0, first = null, last = null, final = null, buf = '', inBody = false;
    sock.on('connect', () => {
      t0 = performance.now();
      sock.write(`POST /api/generate HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      const now = performance.now();
      buf += d;
      if (!inBody) {
        const h = buf.indexOf('\r\n\r\n');
        if (h < 0) return;
        if (!/^HTTP\/1\.1 200/.test(buf)) { reject(new Error(buf)); sock.destroy(); return; }
        inBody = true;
        buf = buf.slice(h + 4);
      }
      // chunked framing: the NDJSON lines are found by their own braces; size lines are hex
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line.startsWith('{')) continue;
        const o = JSON.parse(line);
        if (o.response && first === null) first = now;
        if (o.response) last = now;
        if (o.done) final = o;
      }
    });
    sock.on('error', reject);
    sock.on('close', () => (final ? resolve({ ttft: first - t0, genMs: last - first, final })
                                   : reject(new Error('no final chunk'))));
  });
}

await request();   // load
const r = [], engine = [];
for (let i = 0; i < rounds; i++) {
  engine.push(benchOnce());
  r.push(await request());
}
const engineTps = median(engine);
srv.kill('SIGTERM');
await once(srv, 'exit');
fs.rmSync(dir, { recursive: true, force: true });

const clientTps = median(r.map((x) => (x.final.eval_count - 1) / (x.genMs / 1000)));
const serverTps = median(r.map((x) => x.final.eval_count / (x.final.eval_duration / 1e9)));
const added = median(r.map((x) => x.ttft - x.final.prompt_eval_duration / 1e6));
console.log(JSON.stringify({
  model: path.basename(model), tg, rounds,
  engine_tps: engineTps, server_tps_client: Math.round(clientTps * 10) / 10, server_tps_engine: Math.round(serverTps * 10) / 10,
  ratio: Math.round(clientTps / engineTps * 1000) / 1000,
  ttft_ms_client: Math.round(median(r.map((x) => x.ttft)) * 100) / 100,
  prompt_eval_ms: Math.round(median(r.map((x) => x.final.prompt_eval_duration / 1e6)) * 100) / 100,
  ttft_added_ms: Math.round(added * 100) / 100,
}, null, 2));
