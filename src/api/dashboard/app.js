// Sluice dashboard: a client of /api/v1 like any other. No framework, no build step.
'use strict';

// Errors the page meets are collected here as well as logged (the browser tests read them).
window.__errors = [];
(function collectErrors() {
  const original = console.error.bind(console);
  console.error = (...args) => {
    window.__errors.push(args.map(String).join(' '));
    original(...args);
  };
  window.addEventListener('error', (e) => {
    window.__errors.push(`error: ${e.message} at ${e.filename}:${e.lineno}`);
  });
  window.addEventListener('unhandledrejection', (e) => {
    window.__errors.push(`unhandled rejection: ${e.reason && (e.reason.stack || e.reason)}`);
  });
})();

const API = '/api/v1';
const FINAL = ['complete', 'error', 'cancelled'];
const POLL_MS = 2000;
const HISTORY_PAGE_SIZE = 20;
const RESULT_ROWS_SHOWN = 1000;

const $ = (id) => document.getElementById(id);

/** Build an element: `el('td', {class: 'num', text: '3'}, child…)`. Text never becomes HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

// ---------------------------------------------------------------------------------------------
// Talking to the API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** A readable sentence for any error (the API's `detail`, with the field when it names one). */
function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return 'Cannot reach the Sluice server.';
    const b = err.body;
    const what = b.detail || b.title || `HTTP ${err.status}`;
    return b.field ? `${b.field}: ${what}` : what;
  }
  return String((err && err.message) || err);
}

const session = { auth: null, user: null, abort: null };

/**
 * Call the API with the signed-in credentials. `credentials: 'omit'` keeps the browser from
 * answering the server's Basic challenge with its own login prompt.
 */
async function api(path, { method = 'GET', body, signal, raw = false, auth = session.auth, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, null);
  }
  if (!response.ok) {
    let errorBody = null;
    try { errorBody = await response.json(); } catch (_) { /* not JSON */ }
    const error = new ApiError(response.status, errorBody);
    if (response.status === 401 && auth && auth === session.auth) {
      signOut('Your credentials are no longer accepted; sign in again.');
    }
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Read a `text/event-stream` response with fetch (EventSource cannot send Authorization). */
async function readEvents(path, signal, onOpen, onEvent) {
  const response = await api(path, { raw: true, signal, accept: 'text/event-stream' });
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) {
          let parsed = null;
          try { parsed = JSON.parse(data.join('\n')); } catch (_) { /* not JSON: ignored */ }
          if (parsed) onEvent(event, parsed);
        }
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        // a comment (keep-alive)
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat('en-US');
const fmtInt = (n) => numberFormat.format(Math.round(n || 0));

function fmtDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

function jobDuration(job) {
  if (job.durationMs !== undefined && job.durationMs !== null) return job.durationMs;
  if (job.startedAt && job.stoppedAt) return Date.parse(job.stoppedAt) - Date.parse(job.startedAt);
  return null;
}

const connections = new Map();

function connName(id) {
  const c = connections.get(id);
  return c ? `${c.name} (#${id})` : `#${id}`;
}

function cellText(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// ---------------------------------------------------------------------------------------------
// Flash messages and the confirmation dialog

let flashTimer = null;
function flash(text) {
  const box = $('flash');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { box.hidden = true; }, 10000);
}

/** Run an async UI action; its error becomes a flash message instead of an unhandled rejection. */
function guard(action) {
  return (...args) => {
    Promise.resolve()
      .then(() => action(...args))
      .catch((e) => {
        if (e && e.name === 'AbortError') return;
        if (e instanceof ApiError && e.status === 401) return;
        flash(describe(e));
      });
  };
}

let confirmResolve = null;
function confirmDialog(message, yesLabel) {
  const dialog = $('confirm-dialog');
  $('confirm-message').textContent = message;
  $('confirm-yes').textContent = yesLabel;
  return new Promise((resolve) => {
    confirmResolve = resolve;
    dialog.showModal();
  });
}
function closeConfirm(answer) {
  const dialog = $('confirm-dialog');
  if (dialog.open) dialog.close();
  if (confirmResolve) {
    const resolve = confirmResolve;
    confirmResolve = null;
    resolve(answer);
  }
}

// ---------------------------------------------------------------------------------------------
// Running and queued jobs: one card per job, updated in place from the event stream

/** `kind:id` → { kind, id, job, rows, bytes, rate, elapsedMs, progressAt, finishedAt, node } */
const jobs = new Map();
const pendingFetch = new Set();
const keyOf = (kind, id) => `${kind}:${id}`;
const pathOf = (kind) => (kind === 'transfer' ? 'transfers' : 'queries');
const rowsOf = (job) => (job.rowsWritten !== undefined ? job.rowsWritten : job.rowCount) || 0;

function upsertJob(kind, job) {
  const key = keyOf(kind, job.id);
  let entry = jobs.get(key);
  if (!entry) {
    entry = { kind, id: job.id, job, rows: 0, bytes: 0, rate: null, elapsedMs: null, progressAt: null, finishedAt: null, node: null };
    jobs.set(key, entry);
  } else if (FINAL.includes(entry.job.status) && !FINAL.includes(job.status)) {
    return entry; // a stale list answer never revives a finished job
  }
  const wasFinal = FINAL.includes(entry.job.status);
  entry.job = job;
  const rows = rowsOf(job);
  entry.rows = FINAL.includes(job.status) ? rows : Math.max(entry.rows, rows);
  if (job.bytesRead !== undefined) entry.bytes = Math.max(entry.bytes, job.bytesRead);
  if (FINAL.includes(job.status) && !wasFinal) entry.finishedAt = Date.now();
  renderJob(entry);
  return entry;
}

function progressJob(data) {
  const entry = jobs.get(keyOf(data.kind, data.id));
  if (!entry) {
    fetchJob(data.kind, data.id);
    return;
  }
  if (FINAL.includes(entry.job.status)) return;
  if (entry.job.status === 'queued') entry.job = { ...entry.job, status: 'running' };
  entry.rows = Math.max(entry.rows, data.rowsWritten || 0);
  entry.bytes = Math.max(entry.bytes, data.bytesRead || 0);
  if (typeof data.rowsPerSecond === 'number') entry.rate = data.rowsPerSecond;
  if (typeof data.elapsedMs === 'number') {
    entry.elapsedMs = data.elapsedMs;
    entry.progressAt = Date.now();
  }
  renderJob(entry);
}

function fetchJob(kind, id) {
  const key = keyOf(kind, id);
  if (pendingFetch.has(key)) return;
  pendingFetch.add(key);
  api(`/${pathOf(kind)}/${id}`, { signal: session.abort && session.abort.signal })
    .then((job) => upsertJob(kind, job))
    .catch(() => { /* gone or not ours: nothing to show */ })
    .finally(() => pendingFetch.delete(key));
}

/** The list endpoints' view of what is running and queued now. */
async function loadActive(signal) {
  const query = '?status=running,queued&page_size=100';
  const [transfers, queries] = await Promise.all([
    api(`/transfers${query}`, { signal }),
    api(`/queries${query}`, { signal }),
  ]);
  const seen = new Set();
  for (const t of transfers) { upsertJob('transfer', t); seen.add(keyOf('transfer', t.id)); }
  for (const q of queries) { upsertJob('query', q); seen.add(keyOf('query', q.id)); }
  // A job that left the lists has finished: show its final state.
  for (const entry of jobs.values()) {
    if (!FINAL.includes(entry.job.status) && !seen.has(keyOf(entry.kind, entry.id))) fetchJob(entry.kind, entry.id);
  }
  renderJobsOrder();
}

function elapsedOf(entry) {
  const job = entry.job;
  if (FINAL.includes(job.status)) return jobDuration(job);
  if (job.status === 'running') {
    if (entry.elapsedMs !== null) return entry.elapsedMs + (Date.now() - entry.progressAt);
    if (job.startedAt) return Date.now() - Date.parse(job.startedAt);
  }
  return null;
}

/** Rows are unknown until the end, so the bar follows them on a log scale (10 M rows ≈ full). */
function barPercent(entry) {
  const status = entry.job.status;
  if (FINAL.includes(status)) return 100;
  if (status === 'queued') return 2;
  return Math.min(96, 4 + (92 * Math.log10(entry.rows + 1)) / 7);
}

function buildJobNode(entry) {
  const kind = entry.kind;
  const job = entry.job;
  const title = kind === 'transfer'
    ? `Transfer #${job.id}`
    : `Query #${job.id}`;
  const route = kind === 'transfer'
    ? `${connName(job.sourceId)} → ${connName(job.targetId)} ${job.targetSchema ? `${job.targetSchema}.` : ''}${job.targetTable}`
    : `on ${connName(job.connectionId)}`;
  const fill = el('div', { class: 'fill', 'data-testid': 'job-bar' });
  const node = el('li', { class: 'job', 'data-testid': `job-${kind}-${job.id}`, dataset: { kind, id: job.id } },
    el('div', { class: 'job-head' },
      el('span', { class: 'job-title' }, el('a', { href: `#/${pathOf(kind)}/${job.id}`, text: title })),
      el('span', { class: 'badge', 'data-testid': 'job-status' }),
      el('span', { class: 'muted route', text: route }),
      el('button', { type: 'button', class: 'danger small cancel', 'data-testid': 'job-cancel', text: 'Cancel', onclick: guard(() => cancelJob(entry)) })),
    el('div', { class: 'job-sql mono', title: job.query, text: job.query }),
    el('div', { class: 'bar', role: 'progressbar', 'aria-label': `${title} progress` }, fill),
    el('div', { class: 'job-stats' },
      el('span', {}, 'rows ', el('b', { 'data-testid': 'job-rows' })),
      el('span', {}, 'rows/s ', el('b', { 'data-testid': 'job-rate' })),
      el('span', {}, 'elapsed ', el('b', { 'data-testid': 'job-elapsed' })),
      kind === 'transfer' ? el('span', {}, 'read ', el('b', { 'data-testid': 'job-bytes' })) : null),
    el('div', { class: 'error', 'data-testid': 'job-error', hidden: true }));
  return node;
}

function renderJob(entry) {
  if (!entry.node) entry.node = buildJobNode(entry);
  const node = entry.node;
  const job = entry.job;
  const status = job.status;
  const q = (id) => node.querySelector(`[data-testid="${id}"]`);
  node.dataset.status = status;
  node.dataset.rows = String(entry.rows);
  const badge = q('job-status');
  badge.textContent = status;
  badge.className = `badge ${status}`;
  q('job-rows').textContent = fmtInt(entry.rows);
  const elapsed = elapsedOf(entry);
  let rate = entry.rate;
  if (FINAL.includes(status) || rate === null) {
    rate = elapsed && elapsed > 0 && status !== 'queued' ? (entry.rows * 1000) / elapsed : null;
  }
  q('job-rate').textContent = rate === null ? '–' : fmtInt(rate);
  q('job-elapsed').textContent = status === 'queued' ? 'queued' : fmtDuration(elapsed);
  const bytes = q('job-bytes');
  if (bytes) bytes.textContent = fmtBytes(entry.bytes);
  const bar = node.querySelector('.bar');
  bar.className = `bar ${status}`;
  const percent = barPercent(entry);
  bar.setAttribute('aria-valuenow', String(Math.round(percent)));
  bar.setAttribute('aria-valuetext', `${fmtInt(entry.rows)} rows, ${status}`);
  q('job-bar').style.width = `${percent.toFixed(1)}%`;
  const cancel = q('job-cancel');
  cancel.hidden = FINAL.includes(status);
  const error = q('job-error');
  error.hidden = !job.error;
  error.textContent = job.error || '';
  if (!node.isConnected) renderJobsOrder();
}

function renderJobsOrder() {
  const list = $('jobs-list');
  const rank = { running: 0, queued: 1 };
  const entries = [...jobs.values()].sort((a, b) => {
    const ra = rank[a.job.status] ?? 2;
    const rb = rank[b.job.status] ?? 2;
    if (ra !== rb) return ra - rb;
    if (ra === 2) return (b.finishedAt || 0) - (a.finishedAt || 0);
    return a.id - b.id;
  });
  entries.forEach((entry, i) => {
    if (!entry.node) entry.node = buildJobNode(entry);
    if (list.children[i] !== entry.node) list.insertBefore(entry.node, list.children[i] || null);
  });
  $('jobs-empty').hidden = entries.some((e) => !FINAL.includes(e.job.status));
  $('jobs-clear').hidden = !entries.some((e) => FINAL.includes(e.job.status));
}

function clearFinished() {
  for (const [key, entry] of jobs) {
    if (FINAL.includes(entry.job.status)) {
      if (entry.node) entry.node.remove();
      jobs.delete(key);
    }
  }
  renderJobsOrder();
}

async function cancelJob(entry) {
  const label = `${entry.kind === 'transfer' ? 'transfer' : 'query'} #${entry.id}`;
  const yes = await confirmDialog(`Cancel ${label}? A running job stops and its target is rolled back.`, 'Cancel job');
  if (!yes) return;
  const button = entry.node.querySelector('[data-testid="job-cancel"]');
  button.disabled = true;
  button.textContent = 'Cancelling…';
  try {
    const job = await api(`/${pathOf(entry.kind)}/${entry.id}/cancel`, { method: 'POST' });
    upsertJob(entry.kind, job);
  } finally {
    button.disabled = false;
    button.textContent = 'Cancel';
  }
}

function setLive(mode, text) {
  const badge = $('live-status');
  badge.className = `live ${mode}`;
  badge.textContent = text;
}

/** Admins: one event stream for every job, reconnected with back-off; others: polling. */
async function watchJobs(signal) {
  let delay = 1000;
  while (!signal.aborted) {
    setLive('', 'connecting');
    try {
      await readEvents('/events', signal, () => {
        delay = 1000;
        setLive('on', 'live');
        loadActive(signal).catch(() => {});
      }, (name, data) => {
        if (name === 'progress') progressJob(data);
        else if (data.job && ['queued', 'started', 'finished', 'status'].includes(name)) {
          upsertJob(data.kind, data.job);
          renderJobsOrder();
        }
      });
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && [401, 403, 404].includes(e.status)) {
        if (e.status !== 401) await pollJobs(signal);
        return;
      }
    }
    if (signal.aborted) return;
    setLive('off', 'reconnecting');
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 15000);
  }
}

async function pollJobs(signal) {
  setLive('off', 'polling every 2 s');
  while (!signal.aborted) {
    try { await loadActive(signal); } catch (_) { /* shown on the next success */ }
    await sleep(POLL_MS, signal);
  }
}

function tick() {
  for (const entry of jobs.values()) {
    if (entry.job.status === 'running') renderJob(entry);
  }
}

// ---------------------------------------------------------------------------------------------
// Connections

async function loadConnections(signal) {
  const all = [];
  for (let page = 1; page <= 20; page += 1) {
    const response = await api(`/connections?page=${page}&page_size=100&sort=id`, { raw: true, signal });
    const items = await response.json();
    all.push(...items);
    const total = Number(response.headers.get('X-Total-Count') || all.length);
    if (all.length >= total || items.length === 0) break;
  }
  connections.clear();
  for (const c of all) connections.set(c.id, c);
  fillConnectionSelects();
  return all;
}

function fillConnectionSelects() {
  const historySelect = $('history-connection');
  const keep = historySelect.value;
  historySelect.replaceChildren(el('option', { value: '', text: 'any' }));
  const query = $('query-connection');
  const keepQuery = query.value;
  query.replaceChildren();
  for (const c of connections.values()) {
    historySelect.append(el('option', { value: c.id, text: `${c.name} (#${c.id})` }));
    query.append(el('option', { value: c.id, text: `${c.name} (${c.type})` }));
  }
  historySelect.value = keep;
  if (keepQuery && connections.has(Number(keepQuery))) query.value = keepQuery;
}

function where(c) {
  if (c.type === 'sqlite') return c.path || '';
  return `${c.username ? `${c.username}@` : ''}${c.host || ''}${c.port ? `:${c.port}` : ''}/${c.database || ''}`;
}

async function showConnections() {
  const list = await loadConnections(session.abort.signal);
  const body = $('connections-table').tBodies[0];
  body.replaceChildren();
  for (const c of list) {
    const result = el('td', { class: 'wrap', 'data-testid': 'connection-test-result' });
    const button = el('button', { type: 'button', class: 'small', 'data-testid': 'connection-test', text: 'Test' });
    button.addEventListener('click', guard(async () => {
      button.disabled = true;
      result.className = 'wrap muted';
      result.textContent = 'testing…';
      try {
        const r = await api(`/connections/${c.id}/test`, { method: 'POST' });
        result.className = r.ok ? 'wrap ok-text' : 'wrap error';
        result.textContent = r.ok
          ? `OK · ${r.serverVersion || 'connected'} · ${r.latencyMs} ms`
          : `Failed${r.errorCode ? ` (${r.errorCode})` : ''}: ${r.error || 'unknown error'}`;
      } catch (e) {
        result.className = 'wrap error';
        result.textContent = describe(e);
      } finally {
        button.disabled = false;
      }
    }));
    body.append(el('tr', { 'data-testid': `connection-${c.id}` },
      el('td', { class: 'num', text: c.id }),
      el('td', { text: c.name }),
      el('td', { text: c.type }),
      el('td', { text: where(c) }),
      el('td', {}, button),
      result));
  }
  $('connections-empty').hidden = list.length > 0;
}

// ---------------------------------------------------------------------------------------------
// History and the detail of one job

const historyState = { page: 1, total: 0 };

async function showHistory() {
  const kind = $('history-kind').value;
  const params = new URLSearchParams({ page: historyState.page, page_size: HISTORY_PAGE_SIZE });
  const status = $('history-status').value;
  if (status) params.set('status', status);
  const connection = $('history-connection').value;
  if (connection) params.set('connection', connection);
  const response = await api(`/${kind}?${params}`, { raw: true });
  const items = await response.json();
  historyState.total = Number(response.headers.get('X-Total-Count') || items.length);
  const table = $('history-table');
  const head = kind === 'transfers'
    ? ['Id', 'Status', 'Source → target', 'Table', 'Rows', 'Created', 'Duration']
    : ['Id', 'Status', 'Connection', 'SQL', 'Rows', 'Created', 'Duration'];
  table.tHead.replaceChildren(el('tr', {}, ...head.map((h) => el('th', { text: h }))));
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const job of items) {
    const href = `#/${kind}/${job.id}`;
    const cells = kind === 'transfers'
      ? [connName(job.sourceId) + ' → ' + connName(job.targetId), `${job.targetSchema ? `${job.targetSchema}.` : ''}${job.targetTable}`, fmtInt(job.rowsWritten)]
      : [connName(job.connectionId), job.query.length > 60 ? `${job.query.slice(0, 60)}…` : job.query,
        job.rowsAffected !== null && job.rowsAffected !== undefined ? `${fmtInt(job.rowsAffected)} affected` : fmtInt(job.rowCount)];
    body.append(el('tr', { class: 'link', 'data-testid': `history-${kind}-${job.id}`, onclick: () => { location.hash = href; } },
      el('td', { class: 'num' }, el('a', { href, text: job.id })),
      el('td', {}, el('span', { class: `badge ${job.status}`, text: job.status })),
      el('td', { text: cells[0] }),
      el('td', { class: 'mono', text: cells[1] }),
      el('td', { class: 'num', text: cells[2] }),
      el('td', { text: fmtTime(job.createdAt) }),
      el('td', { class: 'num', text: fmtDuration(jobDuration(job)) })));
  }
  $('history-empty').hidden = items.length > 0;
  const pages = Math.max(1, Math.ceil(historyState.total / HISTORY_PAGE_SIZE));
  $('history-page-info').textContent = `page ${historyState.page} of ${pages} · ${fmtInt(historyState.total)} ${kind}`;
  $('history-prev').disabled = historyState.page <= 1;
  $('history-next').disabled = historyState.page >= pages;
}

function field(name, value, { pre = false, className } = {}) {
  const dd = el('dd', { class: className });
  if (value instanceof Node) dd.append(value);
  else if (pre) dd.append(el('pre', { class: 'mono', text: value }));
  else dd.textContent = value === null || value === undefined || value === '' ? '–' : String(value);
  return [el('dt', { text: name }), dd];
}

async function showDetail(kind, id) {
  const job = await api(`/${kind}/${id}`);
  const transfer = kind === 'transfers';
  $('detail-title').textContent = `${transfer ? 'Transfer' : 'Query'} #${job.id}`;
  const rows = [
    field('Status', el('span', { class: `badge ${job.status}`, 'data-testid': 'detail-status', text: job.status })),
  ];
  if (transfer) {
    rows.push(
      field('Source', connName(job.sourceId)),
      field('Target', `${connName(job.targetId)} · ${job.targetSchema ? `${job.targetSchema}.` : ''}${job.targetTable}${job.overwrite ? ' (overwrite)' : ''}`),
      field('Query', job.query, { pre: true }),
      field('Rows written', fmtInt(job.rowsWritten)),
      field('Bytes read', fmtBytes(job.bytesRead)));
  } else {
    rows.push(
      field('Connection', connName(job.connectionId)),
      field('Query', job.query, { pre: true }),
      field('Rows', fmtInt(job.rowCount) + (job.truncated ? ' (truncated)' : '')),
      field('Rows affected', job.rowsAffected),
      field('Columns', (job.columns || []).map((c) => `${c.name} ${c.dbType}`).join(', ')));
  }
  rows.push(
    field('Attempts', job.attempts),
    field('Created', fmtTime(job.createdAt)),
    field('Started', fmtTime(job.startedAt)),
    field('Stopped', fmtTime(job.stoppedAt)),
    field('Duration', fmtDuration(jobDuration(job))));
  if (job.error) rows.push(field('Error', job.error, { pre: true, className: 'error' }));
  $('detail-fields').replaceChildren(...rows.flat());
  const result = $('detail-result');
  result.hidden = true;
  if (!transfer && job.status === 'complete' && job.columns && job.columns.length && job.rowsAffected == null) {
    const shown = await api(`/queries/${job.id}/result?format=json&page_size=100`);
    renderResult($('detail-result-table'), job.columns, shown);
    $('detail-result-note').textContent = job.rowCount > shown.length ? `The first ${shown.length} of ${fmtInt(job.rowCount)} rows.` : '';
    result.hidden = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Query

/** The result's object keys, as the API makes them: a repeated name gets `_2`, `_3`… */
function resultKeys(columns) {
  const seen = new Map();
  return columns.map((c) => {
    const n = (seen.get(c.name) || 0) + 1;
    seen.set(c.name, n);
    return n === 1 ? c.name : `${c.name}_${n}`;
  });
}

function renderResult(table, columns, rows) {
  const keys = resultKeys(columns);
  table.tHead.replaceChildren(el('tr', {}, ...columns.map((c) => el('th', { title: c.dbType, text: c.name }))));
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((row) => el('tr', {}, ...keys.map((k) => {
    const text = cellText(row[k]);
    return text === null ? el('td', { class: 'null', text: 'NULL' }) : el('td', { text });
  }))));
}

let runningQuery = null;

async function waitForQuery(id, signal) {
  // Follow the query's own event stream; when it is not available, poll.
  let final = null;
  try {
    await readEvents(`/queries/${id}/events`, signal, () => {}, (name, data) => {
      if (name === 'status') {
        if (FINAL.includes(data.status)) final = data;
        else $('query-status').textContent = data.status;
      } else if (name === 'progress') {
        $('query-status').textContent = `running · ${fmtInt(data.rowsWritten)} rows`;
      }
    });
  } catch (e) {
    if (signal.aborted) throw e;
  }
  while (!final) {
    const q = await api(`/queries/${id}`, { signal });
    if (FINAL.includes(q.status)) final = q;
    else {
      $('query-status').textContent = `${q.status} · ${fmtInt(q.rowCount)} rows`;
      await sleep(300, signal);
      if (signal.aborted) throw new DOMException('aborted', 'AbortError');
    }
  }
  return final;
}

async function runQuery(event) {
  event.preventDefault();
  const sql = $('query-sql').value;
  const connectionId = Number($('query-connection').value);
  $('query-error').hidden = true;
  $('query-note').hidden = true;
  const table = $('query-result');
  table.tHead.replaceChildren();
  table.tBodies[0].replaceChildren();
  if (!connectionId) throw new Error('Choose a connection first.');
  const run = $('query-run');
  run.disabled = true;
  $('query-status').textContent = 'submitting…';
  const controller = new AbortController();
  session.abort.signal.addEventListener('abort', () => controller.abort(), { once: true });
  try {
    const submitted = await api('/queries', { method: 'POST', body: { connectionId, query: sql } });
    runningQuery = submitted.id;
    $('query-cancel').hidden = false;
    $('query-status').textContent = submitted.status;
    const done = await waitForQuery(submitted.id, controller.signal);
    $('query-cancel').hidden = true;
    if (done.status === 'error') {
      $('query-status').textContent = 'error';
      $('query-error').textContent = done.error || 'The query failed.';
      $('query-error').hidden = false;
      return;
    }
    if (done.status === 'cancelled') {
      $('query-status').textContent = 'cancelled';
      return;
    }
    if (done.rowsAffected !== null && done.rowsAffected !== undefined && !(done.columns && done.columns.length)) {
      $('query-status').textContent = `complete · ${fmtInt(done.rowsAffected)} rows affected · ${fmtDuration(jobDuration(done))}`;
      return;
    }
    const rows = await api(`/queries/${done.id}/result?format=json&page_size=${RESULT_ROWS_SHOWN}`, { signal: controller.signal });
    renderResult(table, done.columns || [], rows);
    $('query-status').textContent = `complete · ${fmtInt(done.rowCount)} rows · ${fmtDuration(jobDuration(done))}`;
    const notes = [];
    if (done.rowCount > rows.length) notes.push(`Showing the first ${fmtInt(rows.length)} rows.`);
    if (done.truncated) notes.push('The result was cut at the server\'s limit (queries.max_rows / max_bytes).');
    $('query-note').textContent = notes.join(' ');
    $('query-note').hidden = notes.length === 0;
  } catch (e) {
    if (e && e.name === 'AbortError') return;
    $('query-status').textContent = '';
    $('query-error').textContent = describe(e);
    $('query-error').hidden = false;
  } finally {
    run.disabled = false;
    $('query-cancel').hidden = true;
    runningQuery = null;
  }
}

async function cancelQuery() {
  if (runningQuery === null) return;
  await api(`/queries/${runningQuery}/cancel`, { method: 'POST' });
}

// ---------------------------------------------------------------------------------------------
// Views and routing

const VIEWS = ['signin', 'jobs', 'history', 'detail', 'connections', 'query'];

function show(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    const active = a.dataset.view === view || (view === 'detail' && a.dataset.view === 'history');
    a.classList.toggle('active', active);
  }
}

function route() {
  if (!session.auth) { show('signin'); return; }
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const [view, id] = parts;
  if ((view === 'transfers' || view === 'queries') && /^\d+$/.test(id || '')) {
    show('detail');
    $('detail-fields').replaceChildren();
    $('detail-result').hidden = true;
    guard(showDetail)(view, id);
  } else if (view === 'history') {
    show('history');
    guard(showHistory)();
  } else if (view === 'connections') {
    show('connections');
    guard(showConnections)();
  } else if (view === 'query') {
    show('query');
  } else {
    show('jobs');
  }
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

let tickTimer = null;

function startSession(auth, user) {
  session.auth = auth;
  session.user = user;
  session.abort = new AbortController();
  sessionStorage.setItem('sluice.auth', auth);
  $('nav').hidden = false;
  $('whoami').hidden = false;
  $('whoami-name').textContent = `${user.username}${user.admin ? ' (admin)' : ''}`;
  const signal = session.abort.signal;
  guard(loadConnections)(signal);
  if (user.admin) watchJobs(signal).catch(() => {});
  else pollJobs(signal).catch(() => {});
  tickTimer = setInterval(tick, 1000);
  route();
}

function signOut(message) {
  if (session.abort) session.abort.abort();
  session.auth = null;
  session.user = null;
  session.abort = null;
  clearInterval(tickTimer);
  sessionStorage.removeItem('sluice.auth');
  for (const entry of jobs.values()) if (entry.node) entry.node.remove();
  jobs.clear();
  connections.clear();
  $('nav').hidden = true;
  $('whoami').hidden = true;
  $('signin-password').value = '';
  $('signin-token').value = '';
  const error = $('signin-error');
  error.hidden = !message;
  error.textContent = message || '';
  show('signin');
}

function basic(username, password) {
  // btoa takes Latin-1 only: encode UTF-8 first.
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

let signinMode = 'password';
function setSigninMode(mode) {
  signinMode = mode;
  $('signin-password-fields').hidden = mode !== 'password';
  $('signin-token-fields').hidden = mode !== 'token';
  for (const [id, m] of [['signin-mode-password', 'password'], ['signin-mode-token', 'token']]) {
    $(id).classList.toggle('active', m === mode);
    $(id).setAttribute('aria-selected', String(m === mode));
  }
}

async function signIn(event) {
  event.preventDefault();
  const error = $('signin-error');
  error.hidden = true;
  let auth;
  if (signinMode === 'password') {
    const username = $('signin-username').value.trim();
    const password = $('signin-password').value;
    if (!username || !password) throw new Error('Enter a username and a password.');
    auth = basic(username, password);
  } else {
    const token = $('signin-token').value.trim();
    if (!token) throw new Error('Enter an API token.');
    auth = `Bearer ${token}`;
  }
  const submit = $('signin-submit');
  submit.disabled = true;
  try {
    const user = await api('/users/me', { auth });
    startSession(auth, user);
  } catch (e) {
    error.textContent = e instanceof ApiError && e.status === 401
      ? 'Sign-in failed: wrong username, password or token.'
      : describe(e);
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

async function resume() {
  const auth = sessionStorage.getItem('sluice.auth');
  if (!auth) { signOut(); return; }
  try {
    const user = await api('/users/me', { auth });
    startSession(auth, user);
  } catch (e) {
    signOut(e instanceof ApiError && e.status === 401 ? 'Sign in again.' : describe(e));
  }
}

// ---------------------------------------------------------------------------------------------

function init() {
  $('signin-form').addEventListener('submit', (e) => {
    guard(signIn)(e);
  });
  $('signin-mode-password').addEventListener('click', () => setSigninMode('password'));
  $('signin-mode-token').addEventListener('click', () => setSigninMode('token'));
  $('signout').addEventListener('click', () => signOut());
  $('jobs-clear').addEventListener('click', clearFinished);
  $('confirm-yes').addEventListener('click', () => closeConfirm(true));
  $('confirm-no').addEventListener('click', () => closeConfirm(false));
  $('confirm-dialog').addEventListener('close', () => closeConfirm(false));
  $('flash').addEventListener('click', () => { $('flash').hidden = true; });
  for (const id of ['history-kind', 'history-status', 'history-connection']) {
    $(id).addEventListener('change', () => { historyState.page = 1; guard(showHistory)(); });
  }
  $('history-filters').addEventListener('submit', (e) => e.preventDefault());
  $('history-prev').addEventListener('click', () => { historyState.page = Math.max(1, historyState.page - 1); guard(showHistory)(); });
  $('history-next').addEventListener('click', () => { historyState.page += 1; guard(showHistory)(); });
  $('query-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guard(runQuery)(e);
  });
  $('query-cancel').addEventListener('click', guard(cancelQuery));
  window.addEventListener('hashchange', route);
  renderJobsOrder();
  resume();
}

init();
