// The HTML digest: one self-contained page (no scripts, no remote content), messages grouped by
// category in the configured order, each with its summary, actions and deadlines, links, and a link
// to the original (the imap:// UID URL, the file, or the Message-ID).
import type { TriageRecord } from '../triage.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A link to the original: file paths become file:// URLs, imap:// stays, else mid: of the Message-ID. */
export function originalHref(r: TriageRecord): string {
  if (r.location.startsWith('imap://')) return r.location;
  if (r.location.startsWith('/')) return `file://${r.location.split('#')[0].split('/').map(encodeURIComponent).join('/')}`;
  return r.message_id ? `mid:${encodeURIComponent(r.message_id)}` : '#';
}

const safeLink = (u: string): boolean => /^(https?:|mailto:)/i.test(u);

export function renderDigest(records: readonly TriageRecord[], categories: readonly string[], title = 'Mail digest'): string {
  const groups = new Map<string, TriageRecord[]>();
  for (const c of [...categories, 'needs review', 'errors']) groups.set(c, []);
  for (const r of records) {
    const g = r.status === 'error' ? 'errors' : r.status === 'needs_review' || r.category === null ? 'needs review' : r.category;
    (groups.get(g) ?? groups.set(g, []).get(g)!).push(r);
  }
  const sections: string[] = [];
  for (const [name, list] of groups) {
    if (list.length === 0) continue;
    list.sort((a, b) => (a.priority ?? 9) - (b.priority ?? 9) || (b.date ?? '').localeCompare(a.date ?? ''));
    const items = list.map((r) => {
      const actions = r.actions.length === 0 ? '' : `<ul class="actions">${r.actions.map((a) => `<li>${escapeHtml(a.task)}${a.due ? ` <span class="due">due ${escapeHtml(a.due)}</span>` : ''}</li>`).join('')}</ul>`;
      const links = r.links.filter(safeLink).length === 0 ? '' : `<div class="links">${r.links.filter(safeLink).map((l) => `<a href="${escapeHtml(l)}" rel="noreferrer noopener">${escapeHtml(l.length > 70 ? `${l.slice(0, 67)}…` : l)}</a>`).join(' · ')}</div>`;
      const note = r.error ? `<div class="note">${escapeHtml(r.error)}</div>` : '';
      return (
        `<li class="msg"><div class="head"><span class="prio p${r.priority ?? 0}">${r.priority ?? '–'}</span> ` +
        `<a class="subject" href="${escapeHtml(originalHref(r))}">${escapeHtml(r.subject || '(no subject)')}</a></div>` +
        `<div class="meta">${escapeHtml(r.from.name || r.from.address)} · ${escapeHtml((r.date ?? '').slice(0, 10))} · ${escapeHtml(r.decided_by ?? '')}</div>` +
        `<div class="summary">${escapeHtml(r.summary)}</div>${actions}${links}${note}</li>`
      );
    });
    sections.push(`<section><h2>${escapeHtml(name)} <span class="count">${list.length}</span></h2><ul>${items.join('')}</ul></section>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.count{color:#888;font-weight:normal}ul{list-style:none;padding:0}.msg{margin:.8em 0}
.meta{color:#777;font-size:.85em}.summary{margin:.2em 0}.actions{list-style:disc;padding-left:1.4em;margin:.2em 0}
.due{background:#fde9c8;border-radius:3px;padding:0 .3em;font-size:.85em}.links{font-size:.85em}.links a{color:#3465a4}
.note{color:#a40000;font-size:.85em}.prio{display:inline-block;width:1.4em;text-align:center;border-radius:3px;background:#eee;font-size:.85em}
.p1{background:#f4b6b6}.p2{background:#f9d6a8}.subject{color:#222;font-weight:600;text-decoration:none}
</style></head><body>
<h1>${escapeHtml(title)}</h1><p class="meta">${records.length} messages, made on this machine by nanoseek mail.</p>
${sections.join('\n')}
</body></html>
`;
}
