// The part of a body worth a model's attention, and the links a body holds.
//
// Quoted replies (lines starting with '>', the "On … wrote:" line before them, Outlook's "-----Original
// Message-----" and everything after it), signatures (after the "-- " delimiter) and mailing-list
// footers are cut for the model; the original text is kept beside it.

const ORIGINAL = /^\s*-{2,}\s*(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$/i;
const WROTE = /^\s*(On .{4,200} wrote|.{2,100} (wrote|writes|schrieb|a écrit)):\s*$/i;
const FOOTER = /^_{20,}\s*$/;

/** The body without quoted replies, signature and list footer (at most `maxChars`). */
export function trimBody(text: string, maxChars = 4000): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '-- ' || line === '--' || ORIGINAL.test(line) || FOOTER.test(line)) break;
    if (/^\s*>/.test(line)) continue;
    if (WROTE.test(line) && lines.slice(i + 1, i + 4).some((l) => /^\s*>/.test(l) || l.trim() === '')) continue;
    kept.push(line);
  }
  let out = kept.join('\n').replace(/\n{3,}/g, '\n\n').trim();
  // Nothing of its own (a forward, or a reply written below the quote it cuts): read the quote.
  if (out === '') out = lines.map((l) => l.replace(/^(\s*>)+\s?/, '')).join('\n').replace(/\n{3,}/g, '\n\n').trim();
  return out.length > maxChars ? `${out.slice(0, maxChars)}…` : out;
}

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`{}|\\^\[\]]+/gi;
const MAILTO_RE = /\bmailto:[^\s<>"'`]+/gi;

/** Canonical form used to compare a model's link with the message's: no trailing punctuation. */
export function cleanLink(url: string): string {
  let u = url.trim().replace(/[.,;:!?)\]}>'"]+$/, '');
  if (/^www\./i.test(u)) u = `http://${u}`;
  return u;
}

/** The http(s) and mailto links in text and hrefs, deduplicated in order of appearance (at most `max`). */
export function extractLinks(text: string, hrefs: readonly string[] = [], max = 100): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (raw: string): void => {
    const u = cleanLink(raw);
    if (!/^(https?:\/\/[^/\s]+|mailto:\S+@\S+)/i.test(u) || u.length > 2000 || seen.has(u) || out.length >= max) return;
    seen.add(u);
    out.push(u);
  };
  for (const h of hrefs) add(h);
  for (const m of text.matchAll(URL_RE)) add(m[0]);
  for (const m of text.matchAll(MAILTO_RE)) add(m[0]);
  return out;
}
