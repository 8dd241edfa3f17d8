// The terminal view: one line per triaged message, and a progress line (messages per minute, ETA)
// rewritten in place on a terminal.
import type { RunProgress } from '../run.js';
import type { TriageRecord } from '../triage.js';

function cut(s: string, n: number): string {
  const t = s.replace(/\s+/g, ' ');
  return t.length <= n ? t.padEnd(n) : `${t.slice(0, n - 1)}…`;
}

export function tableHeader(): string {
  return `${'category'.padEnd(13)} ${'p'} ${'from'.padEnd(24)} ${'subject'.padEnd(40)} summary`;
}

export function tableRow(r: TriageRecord): string {
  const cat = r.status === 'error' ? 'ERROR' : r.status === 'needs_review' ? 'REVIEW' : (r.category ?? '');
  const tail = r.status === 'ok' ? r.summary : (r.error ?? '');
  return `${cut(cat, 13)} ${r.priority ?? '-'} ${cut(r.from.address || r.from.name, 24)} ${cut(r.subject, 40)} ${cut(tail, 60).trimEnd()}`;
}

export function progressLine(p: RunProgress): string {
  const rate = p.elapsedS > 0 ? (p.done / p.elapsedS) * 60 : 0;
  const left = rate > 0 ? ((p.total - p.done) / rate) * 60 : NaN;
  const eta = Number.isFinite(left) ? (left >= 3600 ? `${(left / 3600).toFixed(1)} h` : left >= 60 ? `${Math.round(left / 60)} min` : `${Math.round(left)} s`) : '?';
  const width = 24;
  const filled = p.total === 0 ? width : Math.round((p.done / p.total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}  ${rate.toFixed(1)} msg/min  ETA ${eta}`;
}
