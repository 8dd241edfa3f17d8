// The /mail page of `nanoseek serve --mail-state <db>`: the triaged messages of the state database,
// filtered by category, status or text; a message opens to its summary, actions, links, excerpt and
// the way to the original; a person corrects its category, the correction is stored and, as a sender
// rule, decides that sender's mail in the next run.
//
//   GET  /mail                   the page (self-contained: inline script and style, no remote content)
//   GET  /mail/api/records       {categories, records}
//   POST /mail/api/correct       {source, folder, key, category} → the updated record
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExtraRoute } from '../serve/server.js';
import type { MailState } from './state.js';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function body(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 1 << 16) throw new Error('the request body is too large');
    chunks.push(c);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export function mailRoutes(state: MailState, categories: readonly string[]): ExtraRoute {
  return {
    prefix: '/mail',
    async handle(req, res, path) {
      const method = req.method ?? 'GET';
      if (path === '/mail') {
        if (method !== 'GET' && method !== 'HEAD') return send(res, 405, { error: { message: `${method} is not allowed on /mail` } });
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:",
        });
        res.end(method === 'HEAD' ? undefined : MAIL_PAGE);
        return;
      }
      if (path === '/mail/api/records' && method === 'GET') return send(res, 200, { categories, records: state.records() });
      if (path === '/mail/api/correct' && method === 'POST') {
        // A JSON body only: a form on another site cannot send one without the browser asking first.
        if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, { error: { message: 'send application/json' } });
        let b: Record<string, unknown>;
        try {
          b = (await body(req)) as Record<string, unknown>;
        } catch (err) {
          return send(res, 400, { error: { message: `malformed request: ${(err as Error).message}` } });
        }
        for (const k of ['source', 'folder', 'key', 'category']) {
          if (typeof b?.[k] !== 'string' || b[k] === '') return send(res, 400, { error: { message: `${k}: must be a non-empty string`, param: k } });
        }
        if (!categories.includes(b.category as string)) return send(res, 400, { error: { message: `category: must be one of ${categories.join(', ')}`, param: 'category' } });
        try {
          return send(res, 200, state.correct(b.source as string, b.folder as string, b.key as string, b.category as string));
        } catch (err) {
          return send(res, 404, { error: { message: (err as Error).message } });
        }
      }
      send(res, 404, { error: { message: `no route ${method} ${path}` } });
    },
  };
}

const MAIL_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>nanoseek mail</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;display:flex;height:100vh}
#side{width:48%;border-right:1px solid #ddd;display:flex;flex-direction:column}
#bar{padding:.6em;border-bottom:1px solid #ddd;display:flex;gap:.4em;flex-wrap:wrap}
#list{overflow:auto;flex:1;margin:0;padding:0;list-style:none}
#list li{padding:.45em .6em;border-bottom:1px solid #f0f0f0;cursor:pointer}
#list li:hover,#list li.sel{background:#eef3fb}
.cat{display:inline-block;min-width:6.5em;font-size:.8em;color:#555}.subj{font-weight:600}
.from{color:#777;font-size:.85em}#view{flex:1;padding:1em 1.4em;overflow:auto}
#view h2{margin-top:0;font-size:1.2em}.excerpt{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:.6em;font-size:.9em}
.due{background:#fde9c8;border-radius:3px;padding:0 .3em}.muted{color:#888}
</style></head><body>
<div id="side">
 <div id="bar">
  <select id="cat" aria-label="category"><option value="">all categories</option></select>
  <select id="status" aria-label="status"><option value="">any status</option><option>ok</option><option>needs_review</option><option>error</option></select>
  <input id="q" type="search" placeholder="search subject, sender, summary" aria-label="search">
  <span id="count" class="muted"></span>
 </div>
 <ul id="list"></ul>
</div>
<div id="view"><p class="muted">Choose a message.</p></div>
<script>
let data = { categories: [], records: [] };
let selected = null;
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, props); for (const k of kids) e.append(k); return e; };
const keyOf = (r) => r.source + '\\u0000' + r.folder + '\\u0000' + r.key;
function label(r) { return r.status === 'ok' ? r.category : r.status; }
function shown() {
  const c = $('cat').value, s = $('status').value, q = $('q').value.toLowerCase();
  return data.records.filter((r) => (!c || r.category === c) && (!s || r.status === s) &&
    (!q || (r.subject + ' ' + r.from.address + ' ' + r.from.name + ' ' + r.summary).toLowerCase().includes(q)));
}
function renderList() {
  const list = $('list'); list.textContent = '';
  const rows = shown();
  $('count').textContent = rows.length + ' of ' + data.records.length;
  for (const r of rows) {
    const li = el('li', { className: selected === keyOf(r) ? 'sel' : '' },
      el('span', { className: 'cat', textContent: label(r) }), el('span', { className: 'subj', textContent: r.subject || '(no subject)' }),
      el('div', { className: 'from', textContent: (r.from.name || r.from.address) + ' · ' + (r.date || '').slice(0, 10) }));
    li.dataset.key = keyOf(r);
    li.onclick = () => { selected = keyOf(r); renderList(); renderView(r); };
    list.append(li);
  }
}
function renderView(r, note = '') {
  const v = $('view'); v.textContent = '';
  v.append(el('h2', { textContent: r.subject || '(no subject)' }));
  v.append(el('p', { className: 'from', textContent: (r.from.name ? r.from.name + ' <' + r.from.address + '>' : r.from.address) + ' · ' + (r.date || 'no date') }));
  const sel = el('select', { id: 'correct', ariaLabel: 'correct category' });
  for (const c of data.categories) sel.append(el('option', { value: c, textContent: c, selected: c === r.category }));
  const btn = el('button', { id: 'save', textContent: 'Save category' });
  btn.onclick = async () => {
    const res = await fetch('/mail/api/correct', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ source: r.source, folder: r.folder, key: r.key, category: sel.value }) });
    const out = await res.json();
    if (!res.ok) { $('msg').textContent = out.error.message; return; }
    data.records[data.records.findIndex((x) => keyOf(x) === keyOf(r))] = out;
    renderList(); renderView(out, 'Saved: ' + out.category + '. Mail from ' + out.from.address + ' will be filed so next time.');
  };
  v.append(el('p', {}, 'Category ', sel, ' ', btn, ' ', el('span', { id: 'msg', className: 'muted', textContent: note })));
  v.append(el('p', { className: 'muted', textContent: 'decided by ' + (r.decided_by || 'nothing') + (r.priority ? ' · priority ' + r.priority : '') }));
  if (r.error) v.append(el('p', { textContent: r.error }));
  v.append(el('p', { id: 'summary', textContent: r.summary }));
  if (r.actions.length) { const ul = el('ul'); for (const a of r.actions) ul.append(el('li', {}, a.task, a.due ? el('span', { className: 'due', textContent: ' due ' + a.due }) : '')); v.append(ul); }
  for (const l of r.links) if (/^(https?:|mailto:)/i.test(l)) v.append(el('div', {}, el('a', { href: l, rel: 'noreferrer noopener', textContent: l })));
  if (r.attachments.length) v.append(el('p', { className: 'muted', textContent: 'Attachments: ' + r.attachments.map((a) => a.name + ' (' + a.type + ')').join(', ') }));
  v.append(el('p', { className: 'muted', textContent: 'Original: ' + r.location }));
  v.append(el('div', { className: 'excerpt', textContent: r.excerpt }));
}
async function load() {
  data = await (await fetch('/mail/api/records')).json();
  for (const c of data.categories) $('cat').append(el('option', { value: c, textContent: c }));
  renderList();
}
for (const id of ['cat', 'status', 'q']) $(id).addEventListener('input', renderList);
load();
</script>
</body></html>
`;
