// Due dates resolved against the message's own Date header: "by Friday" in mail sent on a Tuesday
// is that week's Friday, "tomorrow" is the day after it was sent, not after it is read.

const DAY = 86_400_000;
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

const iso = (t: number): string => new Date(t).toISOString().slice(0, 10);

/** YYYY-MM-DD of a real calendar day, else null. */
export function validDate(s: string | null): string | null {
  if (s === null || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return null;
  const t = Date.parse(`${s}T00:00:00Z`);
  return Number.isFinite(t) && iso(t) === s ? s : null;
}

/** The first date a phrase names, relative to `sent` (ISO); null when it names none. */
export function resolveDue(text: string, sent: string | null): string | null {
  const t = text.toLowerCase();
  const explicit = /\b(\d{4})-(\d{2})-(\d{2})\b/.exec(t);
  if (explicit) return validDate(explicit[0]);
  if (sent === null) return null;
  const base = Date.parse(sent.slice(0, 10) + 'T00:00:00Z');
  if (!Number.isFinite(base)) return null;
  if (/\b(today|tonight|this evening|eod|end of (the )?day|asap|immediately)\b/.test(t)) return iso(base);
  if (/\btomorrow\b/.test(t)) return iso(base + DAY);
  const inN = /\bin (\d{1,2}|a|one|two|three) (day|week)s?\b/.exec(t);
  if (inN) {
    const n = { a: 1, one: 1, two: 2, three: 3 }[inN[1]] ?? Number(inN[1]);
    return iso(base + n * (inN[2] === 'week' ? 7 : 1) * DAY);
  }
  if (/\bnext week\b/.test(t)) {
    const dow = new Date(base).getUTCDay();
    return iso(base + ((8 - dow) % 7 || 7) * DAY); // the Monday after
  }
  if (/\b(end of (the )?week|this week)\b/.test(t)) {
    const dow = new Date(base).getUTCDay();
    return iso(base + ((5 - dow + 7) % 7) * DAY);
  }
  const wd = new RegExp(`\\b(next )?(${WEEKDAYS.join('|')})\\b`).exec(t);
  if (wd) {
    const dow = new Date(base).getUTCDay();
    let ahead = (WEEKDAYS.indexOf(wd[2]) - dow + 7) % 7 || 7;
    if (wd[1]) ahead += ahead < 7 ? 7 : 0;
    return iso(base + ahead * DAY);
  }
  const md = new RegExp(`\\b(?:(\\d{1,2})(?:st|nd|rd|th)? (${MONTHS.join('|')})[a-z]*|(${MONTHS.join('|')})[a-z]* (\\d{1,2})(?:st|nd|rd|th)?)\\b`).exec(t);
  if (md) {
    const day = Number(md[1] ?? md[4]);
    const month = MONTHS.indexOf((md[2] ?? md[3]) as string);
    const year = new Date(base).getUTCFullYear();
    let d = Date.UTC(year, month, day);
    if (new Date(d).getUTCDate() !== day) return null;
    if (d < base - 30 * DAY) d = Date.UTC(year + 1, month, day); // "Jan 5" in December mail is next year
    return iso(d);
  }
  return null;
}

/** The weekday and date the prompt states, so that a model can resolve relative dates itself. */
export function describeDate(sent: string | null): string {
  if (sent === null) return 'unknown';
  const d = new Date(sent);
  return `${sent.slice(0, 10)} (${WEEKDAYS[d.getUTCDay()][0].toUpperCase()}${WEEKDAYS[d.getUTCDay()].slice(1)})`;
}
