// HTML to plain text for the model, and the links an HTML body points to.
//
// One linear scan over the markup: no DOM, no recursion, so deeply nested or enormous HTML (an "HTML
// bomb") costs time proportional to its length and nothing more. Script, style, head and comments
// are dropped; block elements become line breaks, list items dashes; entities are decoded. Nothing is
// fetched: images and other remote content are never loaded, only their link targets noted.

const BLOCK = new Set(['p', 'div', 'br', 'tr', 'li', 'ul', 'ol', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'pre', 'hr', 'section', 'article', 'header', 'footer', 'center', 'dd', 'dt', 'dl', 'form', 'address', 'title']);
// (Not head: malformed mail often opens <head> inside <body> and never closes it.)
const SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'xml']);

const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–',
  laquo: '«', raquo: '»', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', bull: '•', middot: '·', euro: '€', pound: '£', yen: '¥', cent: '¢', deg: '°',
  eacute: 'é', egrave: 'è', agrave: 'à', aacute: 'á', ouml: 'ö', uuml: 'ü', auml: 'ä', szlig: 'ß', ccedil: 'ç', ntilde: 'ñ', times: '×',
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});?/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '';
    }
    return NAMED[e.toLowerCase()] ?? m;
  });
}

export interface HtmlText {
  text: string;
  /** Targets of <a href>, in order of appearance (decoded, not validated). */
  hrefs: string[];
}

/** Converts HTML to text; `maxChars` bounds the output (the rest is not scanned). */
export function htmlToText(html: string, maxChars = 200_000): HtmlText {
  const out: string[] = [];
  let size = 0;
  const hrefs: string[] = [];
  let skipping: string | null = null;
  let i = 0;
  // Runs of breaks (at most a blank line) and of spaces collapse as they are made, so that empty
  // nesting adds nothing to the output.
  let breaks = 2;
  let space = true;
  const emit = (s: string): void => {
    if (s === '\n' ? breaks >= 2 : s === ' ' && space) return;
    out.push(s);
    size += s.length;
    breaks = s === '\n' ? breaks + 1 : 0;
    space = s === '\n' || s.endsWith(' ');
  };
  while (i < html.length && size < maxChars) {
    const lt = html.indexOf('<', i);
    const end = lt < 0 ? html.length : lt;
    if (skipping === null && end > i) {
      const text = decodeEntities(html.slice(i, end)).replace(/\s+/g, ' ');
      if (text.trim() !== '' || !space) emit(text);
    }
    if (lt < 0) break;
    if (html.startsWith('<!--', lt)) {
      const close = html.indexOf('-->', lt + 4);
      i = close < 0 ? html.length : close + 3;
      continue;
    }
    const gt = html.indexOf('>', lt + 1);
    if (gt < 0) break; // an unterminated tag: the rest is not text
    const tag = html.slice(lt + 1, gt);
    i = gt + 1;
    const m = /^(\/?)([a-zA-Z][a-zA-Z0-9]*)/.exec(tag);
    if (m === null) continue;
    const closing = m[1] === '/';
    const name = m[2].toLowerCase();
    if (skipping !== null) {
      if (closing && name === skipping) skipping = null;
      continue;
    }
    if (SKIP.has(name) && !closing && !tag.endsWith('/')) {
      skipping = name;
      continue;
    }
    if (name === 'a' && !closing) {
      const h = /\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(tag);
      const href = h ? decodeEntities(h[1] ?? h[2] ?? h[3] ?? '').trim() : '';
      if (href !== '' && hrefs.length < 500) hrefs.push(href);
    }
    if (name === 'img' && !closing) {
      const alt = /\balt\s*=\s*(?:"([^"]*)"|'([^']*)')/i.exec(tag);
      const t = alt ? decodeEntities(alt[1] ?? alt[2] ?? '').trim() : '';
      if (t !== '') emit(` ${t} `);
    }
    if (name === 'li' && !closing) emit('\n- ');
    else if (name === 'td' || name === 'th') emit(' ');
    else if (BLOCK.has(name)) emit('\n');
  }
  const text = out
    .join('')
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return { text: text.slice(0, maxChars), hrefs };
}
