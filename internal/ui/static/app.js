// The debug page. Everything it does goes through the hub's public HTTP
// interface on this origin: GET (subscribe) and POST (publish) on the hub
// path, and the subscriptions API, with the token in an Authorization
// header. It never writes received data as HTML.

import { readEventStream } from './sse.js';
import { decodeToken, isAccessToken, keyBytes, mintToken, relative } from './jwt.js';

const $ = (id) => document.getElementById(id);
const REPLAY_DONE = 'mercurectl:replay-done';

const cfg = await (await fetch('config.json', { cache: 'no-store' })).json();
const hubPath = cfg.hubPath;

// ---- page header and token -------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function showHubInfo() {
  const info = $('hub-info');
  info.textContent = `Hub ${location.origin}${hubPath} · ${cfg.draft08Only ? 'draft-08 only' : 'draft-07 and draft-08'} · ` +
    `anonymous subscribers ${cfg.anonymous ? 'on' : 'off'} · subscriptions API ${cfg.subscriptions ? 'on' : 'off'}`;
  if (cfg.dev) info.append(el('span', { class: 'badge dev' }, 'development mode'));
}

const tokenBox = $('token');
const token = () => tokenBox.value.trim();

function tokenGeneration(raw) {
  if (!raw) return null;
  try { return isAccessToken(decodeToken(raw).header) ? 8 : 7; } catch { return null; }
}

function showToken() {
  const out = $('token-decoded');
  out.replaceChildren();
  const raw = token();
  if (!raw) return;
  let t;
  try { t = decodeToken(raw); } catch (e) {
    out.append(el('p', { class: 'status error' }, e.message));
    return;
  }
  const dl = el('dl', { class: 'claims' });
  const row = (k, v, cls) => dl.append(el('dt', {}, k), el('dd', cls ? { class: cls } : {}, v));
  row('Format', `${t.format} (alg ${t.header.alg ?? '?'}${t.header.kid ? `, kid ${t.header.kid}` : ''})`);
  if (t.claims.iss !== undefined) row('Issuer', t.claims.iss);
  if (t.claims.aud !== undefined) row('Audience', [].concat(t.claims.aud).join(', '));
  if (t.claims.sub !== undefined) row('Subject', t.claims.sub);
  if (typeof t.claims.exp === 'number') {
    const expired = t.claims.exp * 1000 <= Date.now();
    row('Expires', `${new Date(t.claims.exp * 1000).toISOString()} (${expired ? 'expired ' : ''}${relative(t.claims.exp)})`, expired ? 'expired' : '');
  } else {
    row('Expires', 'never (no exp)');
  }
  row('Publish', t.publish.length ? t.publish.join(', ') : 'nothing');
  row('Subscribe', t.subscribe.length ? t.subscribe.join(', ') : 'nothing (public updates only)');
  if (t.payload !== null) row('Payload', JSON.stringify(t.payload));
  out.append(dl, el('p', { class: 'muted' }, 'Decoded here, not verified: only the hub can check the signature.'));
}

tokenBox.addEventListener('input', showToken);

function setupToken() {
  const note = $('token-note');
  if (cfg.token) {
    tokenBox.value = cfg.token;
    note.textContent = 'The development token of this hub: it grants publishing and subscribing on every topic.';
  } else if (cfg.withheld) {
    note.textContent = cfg.withheld;
  } else {
    note.textContent = 'Paste a token to subscribe to private updates or to publish. It stays in this page.';
  }
  if (cfg.mintKey) {
    const mint = $('mint');
    mint.hidden = false;
    $('mint-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const lines = (id) => $(id).value.split('\n').map((s) => s.trim()).filter(Boolean);
      try {
        tokenBox.value = await mintToken(keyBytes(cfg.mintKey), {
          alg: cfg.mintAlg, format: $('mint-format').value, publish: lines('mint-publish'), subscribe: lines('mint-subscribe'),
          ttlSeconds: Math.max(1, Number($('mint-ttl').value) || 60) * 60,
          audience: cfg.resourceIdentifier || `${location.origin}${hubPath}`, issuer: cfg.issuer,
        });
        note.textContent = 'Minted in this page with the development key.';
      } catch (err) {
        note.textContent = err.message;
      }
      showToken();
    });
  }
  showToken();
}

// ---- refusals ----------------------------------------------------------------

// refusal reads why the hub refused a request: the error_description of a
// draft-08 WWW-Authenticate challenge, else the plain-text body (draft-07).
async function refusal(res) {
  const body = (await res.text()).trim();
  const challenge = res.headers.get('WWW-Authenticate') ?? '';
  const m = /error_description="((?:[^"\\]|\\.)*)"/.exec(challenge);
  const reason = m ? m[1].replace(/\\(.)/g, '$1') : body;
  return `${res.status} ${res.statusText}${reason ? `: ${reason}` : ''}`;
}

function setStatus(node, text, kind = '') {
  node.textContent = text;
  node.className = `status ${kind}`;
}

// ---- events ------------------------------------------------------------------

let received = 0;

function showEvent(ev, sub) {
  received++;
  $('event-count').textContent = `${received} received`;
  let data = ev.data;
  try {
    const parsed = JSON.parse(data);
    if (parsed !== null && typeof parsed === 'object') data = JSON.stringify(parsed, null, 2);
  } catch { /* not JSON: shown as is */ }
  const meta = el('div', { class: 'meta' },
    el('span', {}, el('b', {}, 'time '), new Date().toLocaleTimeString()),
    el('span', {}, el('b', {}, 'id '), ev.id ?? '—'),
    el('span', {}, el('b', {}, 'type '), ev.type || 'message (none set)'));
  if (ev.retry !== null) meta.append(el('span', {}, el('b', {}, 'retry '), `${ev.retry} ms`));
  meta.append(el('span', {}, el('b', {}, 'via '), sub.label));
  const li = el('li', { class: 'event' }, meta, el('pre', { class: 'data' }, data));
  $('events').prepend(li);
}

$('clear').addEventListener('click', () => {
  received = 0;
  $('event-count').textContent = '0 received';
  $('events').replaceChildren();
});

// ---- subscribing -------------------------------------------------------------

// matchParam is the draft-08 parameter for one selector: "*" as is, a path
// segment starting with ':' or '*' as a URL pattern, anything else exact.
function matchParam(selector, choice) {
  if (choice === 'exact') return 'match';
  if (choice === 'urlpattern') return 'match_urlpattern';
  return selector !== '*' && /(^|\/)[:*]/.test(selector) ? 'match_urlpattern' : 'match';
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// A Stream is one subscription that reconnects by itself, resuming after the
// last event id it saw (the Last-Event-ID header, as EventSource does).
class Stream {
  constructor({ selectors, gen, matchChoice, tok, cursor, resumeId, onEvent, onState, label }) {
    Object.assign(this, { selectors, gen, matchChoice, tok, onEvent, onState, label });
    // The first connection sends the cursor as a query parameter (an empty
    // one asks the hub for the current position); reconnections send the
    // position reached in the Last-Event-ID header, as EventSource does.
    this.cursor = cursor;
    this.lastId = resumeId ?? null;
    this.retry = 3000;
    this.ctl = new AbortController();
    this.attempt = 0;
  }

  url() {
    const q = new URLSearchParams();
    for (const s of this.selectors) q.append(this.gen === 7 ? 'topic' : matchParam(s, this.matchChoice), s);
    if (this.lastId === null && this.cursor !== null) q.append(this.gen === 7 ? 'lastEventID' : 'last_event_id', this.cursor);
    return `${hubPath}?${q}`;
  }

  headers() {
    const h = { Accept: 'text/event-stream' };
    if (this.tok) h.Authorization = `Bearer ${this.tok}`;
    if (this.lastId !== null && this.lastId !== '') h['Last-Event-ID'] = this.lastId;
    return h;
  }

  stop() { this.ctl.abort(); }

  reconnectNow() { this.wake?.(); }

  async run() {
    const signal = this.ctl.signal;
    while (!signal.aborted) {
      let res;
      try {
        res = await fetch(this.url(), { headers: this.headers(), signal, cache: 'no-store' });
      } catch (e) {
        if (signal.aborted) return;
        await this.pause(`cannot reach the hub (${e.message})`);
        continue;
      }
      if (!res.ok) {
        const why = await refusal(res);
        if (res.status === 503 || res.status === 429) { await this.pause(`refused: ${why}`); continue; }
        this.onState('error', `Refused: ${why}`);
        return;
      }
      this.attempt = 0;
      const cursor = res.headers.get(this.gen === 8 ? 'Mercure-Last-Event-ID' : 'Last-Event-ID');
      if (cursor !== null) this.lastId = cursor;
      const replaying = res.headers.has('Mercurectl-Replay-Marker');
      const what = `${this.gen === 8 ? 'draft-08' : 'draft-07'}, ${this.tok ? 'with the token' : 'anonymous'}`;
      this.onState('open', `Subscribed (${what})${cursor !== null ? `; resume position ${cursor}` : ''}${replaying ? '; replaying history' : ''}.`);
      try {
        await readEventStream(res.body, {
          onEvent: (ev) => {
            if (ev.id !== null) this.lastId = ev.id;
            if (ev.retry !== null) this.retry = ev.retry;
            this.onEvent(ev);
          },
          onComment: (c) => {
            if (c === REPLAY_DONE) this.onState('open', `Subscribed (${what}); replay done, now live.`);
          },
        });
      } catch (e) {
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      await this.pause('the stream ended');
    }
  }

  // pause waits before reconnecting: the hub's retry, doubled per failed
  // attempt up to a minute, with jitter.
  async pause(why) {
    const delay = Math.min(60000, this.retry * 2 ** this.attempt++) * (0.8 + Math.random() * 0.4);
    this.onState('retry', `${why}; reconnecting in ${Math.round(delay / 100) / 10}s${this.lastId ? ` after ${this.lastId}` : ''}.`);
    await new Promise((resolve) => {
      this.wake = resolve;
      sleep(delay, this.ctl.signal).then(resolve);
    });
    this.wake = null;
  }
}

let current = null;

function stopCurrent() {
  current?.stop();
  current = null;
  $('stop').disabled = true;
  $('reconnect').disabled = true;
}

function chooseGeneration(choice, tok) {
  if (choice === '7' || choice === '8') return Number(choice);
  if (cfg.draft08Only) return 8;
  // A draft-08 subscription needs an access token; a legacy token speaks 07.
  return tokenGeneration(tok) ?? 8;
}

// subscribe opens a new subscription from the form; resumeId, when given,
// is sent as Last-Event-ID instead of the form's cursor.
function subscribe(resumeId) {
  const status = $('sub-status');
  const selectors = $('selector').value.split('\n').map((s) => s.trim()).filter(Boolean);
  if (!selectors.length) { setStatus(status, 'Type a topic selector first.', 'error'); return; }
  stopCurrent();
  const tok = $('sub-use-token').checked ? token() : '';
  const gen = chooseGeneration($('sub-protocol').value, tok);
  const cursor = $('last-event-id').value.trim();
  const s = new Stream({
    selectors, gen, tok, cursor, resumeId, matchChoice: $('sub-match').value,
    label: `${selectors.join(', ')}${tok ? ' (token)' : ' (anonymous)'}`,
    onEvent: (ev) => showEvent(ev, s),
    onState: (state, text) => {
      if (current !== s) return;
      status.dataset.state = state;
      setStatus(status, text, state === 'error' ? 'error' : state === 'open' ? 'ok' : '');
      if (state === 'error') { $('stop').disabled = true; $('reconnect').disabled = false; }
    },
  });
  current = s;
  status.dataset.state = 'connecting';
  setStatus(status, 'Connecting…');
  $('stop').disabled = false;
  $('reconnect').disabled = false;
  s.run();
}

$('subscribe-form').addEventListener('submit', (e) => { e.preventDefault(); subscribe(); });
$('stop').addEventListener('click', () => {
  stopCurrent();
  const status = $('sub-status');
  status.dataset.state = 'idle';
  setStatus(status, 'Stopped.');
});
// Reconnect starts a new connection that resumes after the last event seen,
// the way a client comes back after a network failure.
$('reconnect').addEventListener('click', () => {
  const last = current?.lastId || undefined;
  subscribe(last);
});

// ---- publishing --------------------------------------------------------------

$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const status = $('pub-status');
  const topics = $('pub-topic').value.split('\n').map((s) => s.trim()).filter(Boolean);
  if (!topics.length) { setStatus(status, 'Type a topic first.', 'error'); return; }
  const tok = token();
  if (!tok) { setStatus(status, 'Publishing needs a token with a publish grant: paste one above.', 'error'); return; }
  const body = new URLSearchParams();
  for (const t of topics) body.append('topic', t);
  body.append('data', $('pub-data').value);
  if ($('pub-private').checked) body.append('private', 'on');
  for (const [id, name] of [['pub-id', 'id'], ['pub-type', 'type'], ['pub-retry', 'retry']]) {
    const v = $(id).value.trim();
    if (v !== '') body.append(name, v);
  }
  setStatus(status, 'Publishing…');
  try {
    const res = await fetch(hubPath, {
      method: 'POST', body, cache: 'no-store',
      headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    if (!res.ok) { setStatus(status, `Refused: ${await refusal(res)}`, 'error'); return; }
    setStatus(status, `Published ${(await res.text()).trim()}${$('pub-private').checked ? ' (private)' : ''}.`, 'ok');
  } catch (err) {
    setStatus(status, `Cannot reach the hub: ${err.message}`, 'error');
  }
});

// ---- active subscriptions ----------------------------------------------------

let watcher = null;
let watchedGen = null;
let watchLive = false;
const active = new Map();

function renderSubscriptions() {
  if (watchLive) {
    setStatus($('subs-status'), `Live: ${active.size} active draft-0${watchedGen} subscription${active.size === 1 ? '' : 's'} ` +
      `(each generation's API lists its own; ${watchedGen === 7 ? 'a draft-08 access token' : 'a draft-07 token'} lists the others).`);
  }
  const body = $('subs-body');
  body.replaceChildren();
  for (const d of [...active.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    body.append(el('tr', {},
      el('td', {}, el('code', {}, d.match ?? d.topic)),
      el('td', {}, d.match_type ?? 'draft-07'),
      el('td', {}, el('code', {}, d.subscriber)),
      el('td', {}, d.payload !== undefined ? JSON.stringify(d.payload) : '')));
  }
}

// watchSubscriptions reads the subscriptions API, then follows its events
// from the cursor the API returned, so that no change is missed in between.
async function watchSubscriptions() {
  const status = $('subs-status');
  watcher?.stop();
  const tok = token();
  const gen = tokenGeneration(tok);
  if (!gen) { setStatus(status, 'Listing subscriptions needs a token that grants subscribing to them.', 'error'); return; }
  const res = await fetch(`${hubPath}/subscriptions`, { headers: { Authorization: `Bearer ${tok}` }, cache: 'no-store' });
  if (!res.ok) { setStatus(status, `Refused: ${await refusal(res)}`, 'error'); return; }
  const doc = await res.json();
  active.clear();
  for (const d of doc.subscriptions ?? []) active.set(d.id, d);
  watchedGen = gen;
  watchLive = false;
  renderSubscriptions();
  const etag = res.headers.get('ETag');
  const cursor = gen === 7 ? doc.lastEventID : etag ? etag.replace(/^W\//, '').replace(/^"|"$/g, '') : '';
  const selector = gen === 7 ? `${hubPath}/subscriptions{/topic}{/subscriber}` : `${hubPath}/subscriptions/*`;
  watcher = new Stream({
    selectors: [selector], gen, tok, cursor, matchChoice: 'urlpattern', label: 'subscriptions',
    onEvent: (ev) => {
      try {
        const d = JSON.parse(ev.data);
        if (d.active) active.set(d.id, d); else active.delete(d.id);
        renderSubscriptions();
      } catch { /* not a subscription document */ }
    },
    onState: (state, text) => {
      watchLive = state === 'open';
      if (watchLive) renderSubscriptions(); else setStatus(status, text, state === 'error' ? 'error' : '');
    },
  });
  watcher.run();
}

function setupSubscriptions() {
  if (!cfg.subscriptions) return;
  $('subscriptions').hidden = false;
  $('watch').addEventListener('click', watchSubscriptions);
  if (token()) watchSubscriptions();
  else setStatus($('subs-status'), 'Paste a token that grants subscribing to the subscriptions, then Watch.');
}

showHubInfo();
setupToken();
setupSubscriptions();
document.body.dataset.ready = 'true';
