// qfit's built-in page: chat, models, "will it fit?" and quality, talking only to this
// server's own API (same origin). Plain JavaScript, no framework, no build step.
//
// Safety rule for everything a model or a server sends: text goes into the page either
// as textContent or through escapeHtml() first; markdown() formats already-escaped text
// and adds only its own tags (no links, no attributes), so model output cannot inject
// markup. The Content-Security-Policy forbids inline scripts as a second line.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'qfit-api-key';      // sessionStorage: asked once per tab
const CHAT_STORE = 'qfit-chat';        // localStorage: the conversation
const state = { options: null, tags: [], controller: null, lastPlan: null, evalFile: null };

// ------------------------------------------------------------------ helpers

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// Inline formatting of one escaped line: `code`, **bold**, *italic*.
function inline(escaped) {
  return escaped
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>');
}

// A small Markdown subset to HTML: fenced code blocks, headings, lists, paragraphs.
// The text is escaped before any tag is added.
function markdown(text) {
  const out = [];
  const parts = String(text).split(/^```[^\n]*\n?/m);
  parts.forEach((part, i) => {
    if (i % 2 === 1) { out.push(`<pre><code>${escapeHtml(part.replace(/\n$/, ''))}</code></pre>`); return; }
    for (const block of part.split(/\n{2,}/)) {
      if (!block.trim()) continue;
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*[-*] /.test(l))) {
        out.push(`<ul>${lines.map((l) => `<li>${inline(escapeHtml(l.replace(/^\s*[-*] /, '')))}</li>`).join('')}</ul>`);
      } else if (lines.every((l) => /^\s*\d+\. /.test(l))) {
        out.push(`<ol>${lines.map((l) => `<li>${inline(escapeHtml(l.replace(/^\s*\d+\. /, '')))}</li>`).join('')}</ol>`);
      } else if (/^#{1,6} /.test(lines[0]) && lines.length === 1) {
        out.push(`<p><strong>${inline(escapeHtml(lines[0].replace(/^#+ /, '')))}</strong></p>`);
      } else {
        out.push(`<p>${lines.map((l) => inline(escapeHtml(l))).join('<br>')}</p>`);
      }
    }
  });
  return out.join('');
}

function fmtBytes(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(b);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i >= 3 ? 2 : i ? 1 : 0)} ${u[i]}`;
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = !msg;
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function askKey() {
  $('key-form').hidden = false;
  $('key-input').focus();
}

async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (res.status === 401) {
    askKey();
    throw new ApiError(401, 'this server needs its API key');
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    throw new ApiError(res.status, msg);
  }
  return res;
}

// The objects of an NDJSON response, one per line, as they arrive.
async function* ndjson(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield JSON.parse(line);
    }
  }
  buf += dec.decode();
  if (buf.trim()) yield JSON.parse(buf.trim());
}

// ------------------------------------------------------------------ tabs

const TABS = ['chat', 'models', 'plan', 'quality'];

function selectTab(name, focus = false) {
  for (const t of TABS) {
    const on = t === name;
    const tab = $(`tab-${t}`);
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (name === 'models') refreshModels();
  if (name === 'plan' && !state.lastPlan) runPlan();
  if (name === 'quality') refreshQuality();
}

function initTabs() {
  TABS.forEach((t, i) => {
    const tab = $(`tab-${t}`);
    tab.addEventListener('click', () => selectTab(t));
    tab.addEventListener('keydown', (e) => {   // arrow keys move between tabs (WAI-ARIA tabs)
      const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (d) { e.preventDefault(); selectTab(TABS[(i + d + TABS.length) % TABS.length], true); }
    });
  });
}

// ------------------------------------------------------------------ chat

function loadChat() {
  try { return JSON.parse(localStorage.getItem(CHAT_STORE)) || { messages: [] }; } catch { return { messages: [] }; }
}
function saveChat(chat) { localStorage.setItem(CHAT_STORE, JSON.stringify(chat)); }

function messageEl(role) {
  const m = el('div', { class: `msg ${role}`, 'data-testid': `chat-message-${role}` });
  $('messages').append(m);
  return m;
}

function renderMessage(node, msg) {
  if (msg.role === 'user') node.textContent = msg.content;
  else node.innerHTML = markdown(msg.content);   // markdown() escapes first
  node.classList.toggle('stopped', !!msg.stopped);
}

function renderChat() {
  $('messages').replaceChildren();
  for (const m of loadChat().messages) renderMessage(messageEl(m.role), m);
}

function setBusy(busy) {
  $('chat-send').disabled = busy;
  $('chat-stop').disabled = !busy;
}

function chatOptions() {
  const o = {};
  const t = $('chat-temperature').value, c = $('chat-ctx').value, p = $('chat-predict').value;
  if (t !== '') o.temperature = Number(t);
  if (c !== '') o.num_ctx = Number(c);
  if (p !== '') o.num_predict = Number(p);
  return o;
}

async function sendChat() {
  const text = $('chat-input').value;
  const model = $('model-select').value;
  if (!text.trim() || state.controller) return;
  if (!model) { showError('no model: pull one in the Models tab'); return; }
  const chat = loadChat();
  chat.messages.push({ role: 'user', content: text });
  saveChat(chat);
  $('chat-input').value = '';
  renderMessage(messageEl('user'), chat.messages.at(-1));
  const reply = { role: 'assistant', content: '' };
  const node = messageEl('assistant');
  node.setAttribute('aria-busy', 'true');
  const history = chat.messages.map(({ role, content }) => ({ role, content }));
  const system = $('chat-system').value.trim();
  if (system) history.unshift({ role: 'system', content: system });
  state.controller = new AbortController();
  setBusy(true);
  showError('');
  try {
    const res = await api('/api/chat', {
      method: 'POST', signal: state.controller.signal,
      body: { model, messages: history, stream: true, options: chatOptions() },
    });
    for await (const part of ndjson(res)) {
      if (part.error) throw new Error(part.error);
      if (part.message && part.message.content) {
        reply.content += part.message.content;
        renderMessage(node, reply);
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') reply.stopped = true;   // the server cancels on disconnect
    else { node.classList.add('failed'); showError(`chat: ${e.message}`); }
  } finally {
    state.controller = null;
    setBusy(false);
    node.removeAttribute('aria-busy');
    renderMessage(node, reply);
    if (reply.content || reply.stopped) {   // a failed request leaves no empty answer in the history
      const after = loadChat();
      after.messages.push(reply);
      saveChat(after);
    }
  }
}

function initChat() {
  renderChat();
  $('chat-form').addEventListener('submit', (e) => { e.preventDefault(); sendChat(); });
  $('chat-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendChat(); }
    if (e.key === 'Escape' && state.controller) { e.preventDefault(); state.controller.abort(); }
  });
  $('chat-stop').addEventListener('click', () => state.controller && state.controller.abort());
  $('chat-clear').addEventListener('click', () => { localStorage.removeItem(CHAT_STORE); renderChat(); });
  $('model-select').addEventListener('change', () => localStorage.setItem('qfit-model', $('model-select').value));
}

// ------------------------------------------------------------------ models

async function refreshModels() {
  try {
    const [tags, ps] = await Promise.all([(await api('/api/tags')).json(), (await api('/api/ps')).json()]);
    state.tags = tags.models || [];
    const loaded = new Set((ps.models || []).map((m) => m.name));
    fillModelSelect(loaded);
    fillPlanModels();
    const body = $('models-table').tBodies[0];
    body.replaceChildren();
    for (const m of state.tags) {
      const d = m.details || {};
      const tr = el('tr');
      tr.append(el('td', {}, m.name), el('td', { class: 'num' }, fmtBytes(m.size)), el('td', {}, d.quantization_level || ''),
        el('td', {}, d.family || ''), el('td', {}, d.parameter_size || ''));
      const td = el('td');
      const plan = el('button', { type: 'button' }, 'Will it fit?');
      plan.addEventListener('click', () => { $('plan-model').value = m.name; state.lastPlan = null; selectTab('plan'); });
      const del = el('button', { type: 'button', 'data-testid': 'model-delete' }, 'Delete');
      del.addEventListener('click', () => deleteModel(m.name));
      td.append(plan, ' ', del);
      tr.append(td);
      body.append(tr);
    }
    const psBody = $('ps-table').tBodies[0];
    psBody.replaceChildren();
    for (const m of ps.models || []) {
      const tr = el('tr');
      const left = Math.max(0, Math.round((Date.parse(m.expires_at) - Date.now()) / 1000));
      tr.append(el('td', {}, m.name), el('td', { class: 'num' }, fmtBytes(m.size)), el('td', { class: 'num' }, String(m.context_length || '')),
        el('td', {}, Number.isFinite(left) ? `in ${Math.floor(left / 60)}m ${left % 60}s` : ''));
      const un = el('button', { type: 'button' }, 'Unload');
      un.addEventListener('click', () => unloadModel(m.name));
      const td = el('td');
      td.append(un);
      tr.append(td);
      psBody.append(tr);
    }
  } catch (e) { showError(`models: ${e.message}`); }
}

function fillModelSelect(loaded) {
  const sel = $('model-select');
  const want = sel.value || localStorage.getItem('qfit-model');
  sel.replaceChildren();
  for (const m of state.tags) sel.append(el('option', { value: m.name }, loaded.has(m.name) ? `${m.name} (loaded)` : m.name));
  if (want && state.tags.some((m) => m.name === want)) sel.value = want;
}

async function deleteModel(name) {
  if (!window.confirm(`Delete ${name} from this machine?`)) return;
  try { await api('/api/delete', { method: 'DELETE', body: { model: name } }); } catch (e) { showError(`delete: ${e.message}`); }
  refreshModels();
}

async function unloadModel(name) {
  try { await api('/api/generate', { method: 'POST', body: { model: name, keep_alive: 0, stream: false } }); } catch (e) { showError(`unload: ${e.message}`); }
  refreshModels();
}

async function pull(e) {
  e.preventDefault();
  const name = $('pull-input').value.trim();
  const bar = $('pull-progress'), status = $('pull-status');
  const layers = new Map();
  bar.value = 0;
  $('pull-button').disabled = true;
  status.textContent = 'starting';
  try {
    const res = await api('/api/pull', { method: 'POST', body: { model: name, insecure: $('pull-insecure').checked, stream: true } });
    for await (const p of ndjson(res)) {
      if (p.error) throw new Error(p.error);
      if (p.digest && p.total) layers.set(p.digest, { total: p.total, completed: p.completed || 0 });
      let total = 0, done = 0;
      for (const l of layers.values()) { total += l.total; done += l.completed; }
      const pct = p.status === 'success' ? 100 : total ? Math.floor((100 * done) / total) : 0;
      bar.value = pct;
      status.textContent = `${p.status} ${pct}%`;
    }
  } catch (err) {
    status.textContent = `failed: ${err.message}`;
  } finally {
    $('pull-button').disabled = false;
    refreshModels();
  }
}

// ------------------------------------------------------------------ will it fit?

function fillPlanModels() {
  const sel = $('plan-model');
  const want = sel.value;
  sel.replaceChildren();
  const stored = el('optgroup', { label: 'Stored models' });
  for (const m of state.tags) stored.append(el('option', { value: m.name }, m.name));
  const cat = el('optgroup', { label: 'Catalog' });
  for (const c of (state.options && state.options.catalog) || []) cat.append(el('option', { value: c.name }, c.name));
  sel.append(stored, cat);
  if (want && [...sel.options].some((o) => o.value === want)) sel.value = want;
}

function initPlanForm(o) {
  for (const m of o.machines) {
    const label = m.name === 'this' ? `this machine (${fmtBytes(m.mem_bytes)})` : `${m.name} (${fmtBytes(m.mem_bytes)})`;
    $('plan-machine').append(el('option', { value: m.name }, label));
  }
  $('plan-quant').append(el('option', { value: '' }, 'as stored / published'));
  for (const m of o.mixes) $('plan-quant').append(el('option', { value: m.name }, m.name));
  for (const k of o.kv_types) $('plan-kv').append(el('option', { value: k }, k));
  fillPlanModels();
  const form = $('plan-form');
  form.addEventListener('submit', (e) => { e.preventDefault(); runPlan(); });
  form.addEventListener('change', () => runPlan());
  form.addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target.tagName === 'INPUT') { e.preventDefault(); runPlan(); } });
}

function planRequest() {
  const req = { model: $('plan-model').value };
  const mem = $('plan-mem').value.trim();
  if (mem) req.mem = mem; else req.machine = $('plan-machine').value || 'this';
  if ($('plan-quant').value) req.quant = $('plan-quant').value;
  if ($('plan-ctx').value) req.ctx = Number($('plan-ctx').value);
  if ($('plan-kv').value && $('plan-kv').value !== 'f16') req.kv_type = $('plan-kv').value;
  if ($('plan-parallel').value && $('plan-parallel').value !== '1') req.parallel = Number($('plan-parallel').value);
  if ($('plan-fa').value !== 'auto') req.flash_attn = $('plan-fa').value;
  return req;
}

let planSeq = 0;
async function runPlan() {
  if (!$('plan-model').value) return;
  const seq = ++planSeq;   // a slower earlier answer never overwrites a later one
  try {
    const plan = await (await api('/api/plan', { method: 'POST', body: planRequest() })).json();
    if (seq !== planSeq) return;
    state.lastPlan = plan;
    showError('');
    renderPlan(plan);
  } catch (e) {
    if (seq === planSeq) { showError(`plan: ${e.message}`); $('plan-verdict').textContent = ''; }
  }
}

const SEGMENTS = [
  ['weights', 'weights', (p) => p.weights_resident_bytes],
  ['kv', 'KV cache', (p) => p.kv_bytes],
  ['compute', 'compute', (p) => p.compute_bytes],
  ['overhead', 'overhead', (p) => p.overhead_bytes],
];

function renderPlan(p) {
  const W = 640, H = 86, X0 = 4, BAR_Y = 22, BAR_H = 34;
  const scale = Math.max(p.total_bytes, p.budget_bytes) * 1.04;
  const x = (b) => X0 + ((W - 2 * X0) * b) / scale;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-total': p.total_bytes, 'data-budget': p.budget_bytes,
    'aria-label': `total ${fmtBytes(p.total_bytes)} against a budget of ${fmtBytes(p.budget_bytes)}` });
  let at = 0;
  for (const [key, label, get] of SEGMENTS) {
    const b = get(p);
    const r = svgEl('rect', { class: `seg-${key}`, x: x(at), y: BAR_Y, width: Math.max(0, x(at + b) - x(at)), height: BAR_H,
      'data-segment': key, 'data-bytes': b });
    r.append(svgEl('title', {}, `${label}: ${fmtBytes(b)}`));
    svg.append(r);
    at += b;
  }
  const comfort = (p.budget_bytes * (p.verdict_thresholds ? p.verdict_thresholds.comfortable_max_pct : 85)) / 100;
  svg.append(svgEl('line', { class: 'comfort-line', x1: x(comfort), x2: x(comfort), y1: BAR_Y - 6, y2: BAR_Y + BAR_H + 6 }));
  svg.append(svgEl('line', { class: 'budget-line', x1: x(p.budget_bytes), x2: x(p.budget_bytes), y1: 4, y2: BAR_Y + BAR_H + 10,
    'data-bytes': p.budget_bytes }));
  const bx = x(p.budget_bytes);
  svg.append(svgEl('text', { x: bx > W / 2 ? bx - 4 : bx + 4, y: 14, 'text-anchor': bx > W / 2 ? 'end' : 'start' },
    `budget ${fmtBytes(p.budget_bytes)}`));
  svg.append(svgEl('text', { x: X0, y: H - 6 }, `total ${fmtBytes(p.total_bytes)}`));
  $('plan-chart').replaceChildren(svg);

  const pct = p.budget_bytes ? Math.round((100 * p.total_bytes) / p.budget_bytes) : 0;
  const v = $('plan-verdict');
  v.textContent = `${p.verdict}: ${fmtBytes(p.total_bytes)} of ${fmtBytes(p.budget_bytes)} (${pct}%)`;
  v.dataset.verdict = p.verdict;
  v.className = `v-${p.verdict.replace(/ /g, '-')}`;
  const legend = $('plan-legend');
  legend.replaceChildren();
  for (const [key, label, get] of SEGMENTS) {
    const li = el('li');
    li.append(el('i', { class: `k-${key}` }), `${label} ${fmtBytes(get(p))}`);
    legend.append(li);
  }
  const s = p.settings;
  legend.append(el('li', {}, `${s.quant}${s.weights_as_stored ? ' (as stored)' : ''}, ${p.bits_per_weight.toFixed(2)} bits/weight, context ${s.ctx}` +
    ` x ${s.parallel}, KV ${s.kv_type}`));
  if (p.speed && p.speed.tokens_per_s_high > 0)
    legend.append(el('li', {}, `~${p.speed.tokens_per_s_low.toFixed(1)}-${p.speed.tokens_per_s_high.toFixed(1)} tokens/s (estimate)`));
  if (p.note) legend.append(el('li', {}, p.note));

  const fixes = $('plan-fixes');
  fixes.replaceChildren();
  for (const f of p.recommendations || []) {
    const b = el('button', { type: 'button', 'data-testid': 'plan-fix' },
      `${f.fix}: saves ${fmtBytes(f.saves_bytes)}, ${fmtBytes(f.new_total_bytes)} (${f.new_verdict})`);
    b.addEventListener('click', () => applyFix(f.command));
    const li = el('li');
    li.append(b);
    fixes.append(li);
  }
  if (!fixes.children.length) fixes.append(el('li', { class: 'muted' }, p.verdict === 'comfortable' ? 'It fits comfortably.' : 'No single change helps.'));
  $('plan-command').textContent = p.command || '';
}

// A fix is the `qfit plan` command of the changed settings (qfit_plan_command: every
// setting that differs from its default): put them into the form.
function applyFix(command) {
  const t = command.split(/\s+/);
  const model = t[2];
  if (model && [...$('plan-model').options].some((o) => o.value === model)) $('plan-model').value = model;
  // the command names every setting that is not the default: start from the defaults
  $('plan-quant').value = '';
  $('plan-kv').value = 'f16';
  $('plan-parallel').value = '1';
  $('plan-fa').value = 'auto';
  for (let i = 3; i < t.length - 1; i++) {
    const v = t[i + 1];
    if (t[i] === '--quant') $('plan-quant').value = v;
    else if (t[i] === '--ctx') $('plan-ctx').value = v;
    else if (t[i] === '--kv-type' || t[i] === '--cache-type-k') $('plan-kv').value = v;
    else if (t[i] === '--parallel') $('plan-parallel').value = v;
    else if (t[i] === '--flash-attn') $('plan-fa').value = v;
  }
  runPlan();
}

// ------------------------------------------------------------------ quality

// Without an eval file: the planner's mix table (mean KLD measured on the shared model)
// beside the sizes of the "Will it fit?" tab's model. With one (a `qfit eval --json`
// output opened from disk, read in the browser, never uploaded): that model's own numbers.
async function refreshQuality() {
  if (state.evalFile) { renderEval(state.evalFile); return; }
  const o = state.options;
  if (!o || !$('plan-model').value) return;
  let rows = [];
  try {
    rows = (await (await api('/api/plan', { method: 'POST', body: { ...planRequest(), table: true } })).json()).mixes || [];
  } catch (e) { showError(`quality: ${e.message}`); }
  const byName = new Map(rows.map((r) => [r.quant, r]));
  $('quality-note').textContent = `Mean KL divergence against F32 and perplexity: measured on ${o.quality_model}. ` +
    `Bits per weight and size: ${$('plan-model').value} on the "Will it fit?" tab's machine and context.`;
  const points = [];
  fillQualityTable(['Mix', 'Mean KLD', 'Perplexity', 'Bits/weight', 'Weights', 'Fits?'], o.mixes.map((m) => {
    const r = byName.get(m.name) || {};
    if (m.mean_kld > 0 && r.bits_per_weight) points.push({ name: m.name, x: r.bits_per_weight, y: m.mean_kld });
    return [m.name, m.mean_kld == null ? 'not measured' : m.mean_kld.toFixed(6), m.ppl == null ? '' : m.ppl.toFixed(3),
      r.bits_per_weight ? r.bits_per_weight.toFixed(2) : '', r.weights_bytes ? fmtBytes(r.weights_bytes) : (r.error || ''), r.verdict || ''];
  }));
  $('quality-chart').replaceChildren(scatter(points, { xLabel: 'bits per weight', yLabel: 'KLD', logY: true, front: true }));
  $('speed-chart').replaceChildren();
}

function fillQualityTable(head, rows) {
  const t = $('quality-table');
  t.tHead.rows[0].replaceChildren(...head.map((h, i) => el('th', i && i < head.length - 1 ? { class: 'num' } : {}, h)));
  t.tBodies[0].replaceChildren(...rows.map((r) => {
    const tr = el('tr');
    tr.append(...r.map((v, i) => el('td', i && i < r.length - 1 ? { class: 'num' } : {}, v)));
    return tr;
  }));
}

// A `qfit eval --json` document (src/eval/evalrun.c): its rows, checked; throws on anything else.
function parseEval(text, name) {
  const j = JSON.parse(text);
  if (!j || !Array.isArray(j.rows) || !j.rows.length) throw new Error(`${name} is not a qfit eval JSON (no "rows": make it with qfit eval MODEL TEXT --json)`);
  for (const r of j.rows)
    if (typeof r.name !== 'string' || !Number.isFinite(r.tensor_bytes) || !Number.isFinite(r.kld_mean))
      throw new Error(`${name}: a row without name, tensor_bytes or kld_mean`);
  return { name, doc: j };
}

function renderEval({ name, doc }) {
  const mib = (b) => b / 1048576;
  $('quality-note').textContent = `${name}: measured by qfit eval (${doc.n_chunks} chunks of ${doc.n_ctx} tokens), ` +
    'mean KL divergence against the base model and generation speed, by size.';
  const q = doc.rows.filter((r) => !r.base && r.kld_mean > 0).map((r) => ({ name: r.name, x: mib(r.tensor_bytes), y: r.kld_mean }));
  const sp = doc.rows.filter((r) => r.tg_tps > 0).map((r) => ({ name: r.name, x: mib(r.tensor_bytes), y: r.tg_tps }));
  $('quality-chart').replaceChildren(scatter(q, { xLabel: 'size (MiB)', yLabel: 'KLD', logY: true, front: true }));
  $('speed-chart').replaceChildren(sp.length ? scatter(sp, { xLabel: 'size (MiB)', yLabel: 'tokens/s', logY: false, front: false }) : '');
  fillQualityTable(['Type', 'Mean KLD', 'Perplexity', 'Bits/weight', 'Size', 'Tokens/s'], doc.rows.map((r) => [
    r.base && r.name !== 'base' ? `${r.name} (base)` : r.name, Number(r.kld_mean).toFixed(6), Number.isFinite(r.ppl) ? r.ppl.toFixed(3) : '',
    Number.isFinite(r.bpw) ? r.bpw.toFixed(2) : '', fmtBytes(r.tensor_bytes), r.tg_tps > 0 ? r.tg_tps.toFixed(1) : '']));
}

function initQuality() {
  $('quality-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      state.evalFile = parseEval(await f.text(), f.name);
      $('quality-reset').hidden = false;
      showError('');
      refreshQuality();
    } catch (err) { showError(`quality: ${err.message}`); }
  });
  $('quality-reset').addEventListener('click', () => {
    state.evalFile = null;
    $('quality-file').value = '';
    $('quality-reset').hidden = true;
    refreshQuality();
  });
}

// Points {name, x, y} as an SVG scatter plot. front: join the points no other point beats
// on both x and y (smaller is better on both: the Pareto front of size and KLD), and label them.
function scatter(points, { xLabel, yLabel, logY, front }) {
  const W = 640, H = 260, L = 72, R = 12, T = 24, B = 34;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${yLabel} against ${xLabel}` });
  if (!points.length) return svg;
  const fy = (v) => (logY ? Math.log10(v) : v);
  const xs = points.map((p) => p.x), ys = points.map((p) => fy(p.y));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys, logY ? Infinity : 0), y1 = Math.max(...ys);
  const x = (v) => L + ((W - L - R) * (v - x0)) / (x1 - x0 || 1);
  const y = (v) => T + ((H - T - B) * (y1 - fy(v))) / (y1 - y0 || 1);
  svg.append(svgEl('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }), svgEl('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(svgEl('text', { x: (W + L) / 2, y: H - 4, 'text-anchor': 'middle' }, xLabel));
  svg.append(svgEl('text', { x: 4, y: T - 8 }, yLabel));
  // the ends of both axes, as numbers
  const num = (v) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v >= 0.01 || !v ? v.toPrecision(2) : v.toExponential(1));
  const yMin = logY ? 10 ** y0 : y0, yMax = logY ? 10 ** y1 : y1;
  svg.append(svgEl('text', { x: L, y: H - B + 16, 'text-anchor': 'middle' }, num(x0)),
    svgEl('text', { x: W - R, y: H - B + 16, 'text-anchor': 'end' }, num(x1)),
    svgEl('text', { x: L - 4, y: y(yMax) + 4, 'text-anchor': 'end' }, num(yMax)),
    svgEl('text', { x: L - 4, y: y(yMin > 0 || !logY ? yMin : yMax), 'text-anchor': 'end' }, num(yMin)));
  const onFront = front ? points.filter((p) => !points.some((q) => q !== p && q.x <= p.x && q.y < p.y)).sort((a, b) => a.x - b.x) : [];
  if (onFront.length) svg.append(svgEl('polyline', { class: 'front-line', points: onFront.map((p) => `${x(p.x)},${y(p.y)}`).join(' ') }));
  for (const p of points) {
    const on = onFront.includes(p);
    const c = svgEl('circle', { class: on ? 'dot front' : 'dot', cx: x(p.x), cy: y(p.y), r: 4, 'data-name': p.name });
    c.append(svgEl('title', {}, `${p.name}: ${xLabel} ${p.x.toFixed(2)}, ${yLabel} ${p.y}`));
    svg.append(c);
    const right = x(p.x) > W * 0.8;   // labels near the right edge grow leftwards
    if (on || !front) svg.append(svgEl('text', { x: x(p.x) + (right ? -6 : 6), y: y(p.y) - 6, 'text-anchor': right ? 'end' : 'start' }, p.name));
  }
  return svg;
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    state.options = await (await api('/api/plan')).json();
    initPlanForm(state.options);
    await refreshModels();
    showError('');
  } catch (e) {
    if (e.status !== 401) showError(e.message);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  initTabs();
  initChat();
  initQuality();
  $('pull-form').addEventListener('submit', pull);
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORE, $('key-input').value);
    $('key-form').hidden = true;
    if (!state.options) start(); else refreshModels();
  });
  start();
});
