// Test harness: a qfit server on a free loopback port with a fresh store holding
// the shared model under a few names, and helpers to run the qfit CLI beside it.
//   QFIT_BIN     the qfit binary (default: build/release/qfit of this checkout)
//   QFIT_SHARED  the shared data (default: ../shared beside the checkout); absent:
//                the tests skip, unless CI=true (then they fail)
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const qfitBin = process.env.QFIT_BIN || path.join(repoRoot, 'build/release/qfit');
const shared = process.env.QFIT_SHARED || path.resolve(repoRoot, '../shared');
export const modelPath = path.join(shared, 'models/kjv-llama-7m-f32.gguf');

/** null when the tests can run, else why they skip (throws under CI=true). */
export function skipReason() {
  if (!fs.existsSync(qfitBin)) throw new Error(`qfit binary not found: ${qfitBin} (run make release)`);
  if (fs.existsSync(modelPath)) return null;
  if (process.env.CI === 'true') throw new Error(`shared model not found: ${modelPath} (CI=true: not skipping)`);
  return `shared model not found: ${modelPath}`;
}

// A chat template for the shared model (it has none), and one that offers tools in
// the Hermes / Qwen markup, so that the server detects that tool-call format.
export const CHAT_TEMPLATE =
  '{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}\n{{ end }}<|assistant|>';
export const TOOLS_TEMPLATE =
  '{{- if .Tools }}<|system|>Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}. Call one as ' +
  '<tool_call>{"name": ..., "arguments": ...}</tool_call>\n{{ end }}' +
  '{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}{{ range .ToolCalls }}<tool_call>{"name": ' +
  '"{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}</tool_call>{{ end }}\n{{ end }}<|assistant|>';

export function qfit(args, env = {}) {
  return execFileSync(qfitBin, args, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function createModel(store, dir, name, template, extra = '') {
  const mf = path.join(dir, `${name}.Modelfile`);
  let text = `FROM ${modelPath}\n`;
  if (template) text += `TEMPLATE """${template}"""\n`;
  fs.writeFileSync(mf, text + extra);
  qfit(['create', name, '-f', mf], { QFIT_MODELS: store });
}

/**
 * Start `qfit serve` on 127.0.0.1:0 with a fresh store holding:
 *   kjv        the shared model with CHAT_TEMPLATE
 *   kjv-tools  the same with TOOLS_TEMPLATE
 *   kjv-raw    the shared model as it is (no template)
 * env: extra environment for the server (QFIT_NUM_PARALLEL, QFIT_KEEP_ALIVE, ...).
 */
export async function startServer(env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfit-clients-'));
  const store = path.join(dir, 'store');
  createModel(store, dir, 'kjv', CHAT_TEMPLATE);
  createModel(store, dir, 'kjv-tools', TOOLS_TEMPLATE);
  createModel(store, dir, 'kjv-raw', null);
  const proc = spawn(qfitBin, ['serve', '--host', '127.0.0.1:0'], {
    env: { ...process.env, QFIT_MODELS: store, QFIT_CONTEXT_LENGTH: '512', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`qfit serve did not start:\n${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`qfit serve exited (${code}):\n${log}`)); });
  });
  return {
    url, store, dir, proc,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      fs.rmSync(dir, { recursive: true, force: true });
      // under CI, the server's own account of anything that went wrong (the request log
      // lines are left out)
      if (process.env.CI === 'true') {
        const notable = log.split('\n').filter((l) => l && !/ (GET|POST|HEAD|DELETE|OPTIONS) \/\S* [1-3]\d\d /.test(l));
        if (notable.length) console.error(`qfit serve said:\n${notable.slice(-40).join('\n')}`);
      }
      return proc.exitCode;
    },
  };
}

/** Poll fn until it returns true (at most ms); returns its last value. */
export async function eventually(fn, ms = 15000, step = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, step));
  }
}

/** A loopback registry (tests/registry/registry.py) serving one model of the store. */
export async function startRegistry(store, name = 'kjv') {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qfit-registry-'));
  const src = path.join(store, 'manifests/registry.ollama.ai/library', name, 'latest');
  fs.mkdirSync(path.join(root, 'manifests/library', name), { recursive: true });
  fs.copyFileSync(src, path.join(root, 'manifests/library', name, 'latest'));
  fs.mkdirSync(path.join(root, 'blobs'));
  const manifest = JSON.parse(fs.readFileSync(src, 'utf8'));
  for (const l of [manifest.config, ...manifest.layers]) {
    const file = l.digest.replace(':', '-');
    fs.copyFileSync(path.join(store, 'blobs', file), path.join(root, 'blobs', file));
  }
  const proc = spawn('python3', [path.join(repoRoot, 'tests/registry/registry.py'), root, '--timeout', '300'],
    { stdio: 'ignore' });
  const ports = await eventually(() => fs.existsSync(path.join(root, 'ports')) &&
    fs.readFileSync(path.join(root, 'ports'), 'utf8').trim(), 15000);
  if (!ports) throw new Error('the loopback registry did not start');
  return {
    port: Number(ports.split(/\s+/)[0]),
    async stop() {
      proc.kill('SIGTERM');
      if (proc.exitCode === null) await once(proc, 'exit');
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The L2 norm of a vector. */
export const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
