// One raw RFC 822 message → what triage needs: headers, sender, date, text (HTML converted), the
// trimmed body for the model, links and the attachment list. postal-mime does the MIME work
// (multipart, transfer encodings, charsets, encoded words); attachments are listed, never opened.
import { createHash } from 'node:crypto';
import PostalMime, { type Address, type Email } from 'postal-mime';
import { cleanLink, extractLinks, trimBody } from './body.js';
import { htmlToText } from './html.js';

/** Messages beyond this are parsed from their first MAX_PARSE_BYTES (the text parts come first). */
export const MAX_PARSE_BYTES = 8 << 20;

export interface Attachment {
  name: string;
  type: string;
  size: number;
}

export interface ParsedMessage {
  /** Message-ID without brackets, or `sha256:<hex>` of the raw bytes when there is none. */
  id: string;
  messageId: string | null;
  subject: string;
  from: { name: string; address: string };
  to: string[];
  /** ISO 8601 from the Date header; null when missing or unreadable. */
  date: string | null;
  dateHeader: string | null;
  inReplyTo: string | null;
  references: string[];
  /** The conversation: the first References id, else In-Reply-To, else the message's own id. */
  thread: string;
  /** Lower-cased header names → first value (unfolded). */
  headers: Record<string, string>;
  /** The whole text (plain part, else the HTML converted). */
  text: string;
  /** Quoted replies, signature and footer cut; what the model reads. */
  body: string;
  html: boolean;
  links: string[];
  attachments: Attachment[];
  size: number;
  /** What was odd but not fatal: an unreadable date, a truncated message, a missing header… */
  problems: string[];
}

function mailbox(a: Address | undefined): { name: string; address: string } {
  if (a === undefined) return { name: '', address: '' };
  if (a.address !== undefined) return { name: a.name ?? '', address: a.address.toLowerCase() };
  const first = a.group?.[0];
  return { name: first?.name ?? a.name ?? '', address: first?.address?.toLowerCase() ?? '' };
}

function addresses(list: Address[] | undefined): string[] {
  const out: string[] = [];
  for (const a of list ?? []) {
    if (a.address !== undefined) out.push(a.address.toLowerCase());
    else for (const m of a.group ?? []) out.push(m.address.toLowerCase());
  }
  return out;
}

const stripBrackets = (s: string): string => s.trim().replace(/^<|>$/g, '');

function attachmentSize(c: ArrayBuffer | Uint8Array | string): number {
  return typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength;
}

/** Parses raw bytes; never throws for bad MIME (postal-mime is lenient) but may for non-mail input. */
export async function parseMessage(raw: Uint8Array): Promise<ParsedMessage> {
  const problems: string[] = [];
  let bytes = raw;
  if (raw.length > MAX_PARSE_BYTES) {
    // Cut at a line end so that no header or MIME boundary is split.
    let cut = raw.lastIndexOf(0x0a, MAX_PARSE_BYTES);
    if (cut < 0) cut = MAX_PARSE_BYTES;
    bytes = raw.subarray(0, cut + 1);
    problems.push(`the message is ${(raw.length / 2 ** 20).toFixed(1)} MiB; only its first ${(bytes.length / 2 ** 20).toFixed(1)} MiB were read`);
  }
  // An mbox "From " line before the headers is not a header.
  if (bytes[0] === 0x46 && bytes[1] === 0x72 && bytes[2] === 0x6f && bytes[3] === 0x6d && bytes[4] === 0x20) {
    const nl = bytes.indexOf(0x0a);
    bytes = nl < 0 ? new Uint8Array(0) : bytes.subarray(nl + 1);
  }
  const email: Email = await PostalMime.parse(bytes, { attachmentEncoding: 'arraybuffer', maxNestingDepth: 64, maxPartCount: 2000 });
  const headers: Record<string, string> = {};
  const counts = new Map<string, number>();
  for (const h of email.headers) {
    counts.set(h.key, (counts.get(h.key) ?? 0) + 1);
    if (!(h.key in headers)) headers[h.key] = h.value.replace(/\s+/g, ' ').trim();
  }
  for (const k of ['from', 'subject', 'date', 'message-id']) {
    if (!counts.has(k)) problems.push(`no ${k} header`);
    else if ((counts.get(k) ?? 0) > 1) problems.push(`${counts.get(k)} ${k} headers (the first is used)`);
  }
  let date: string | null = null;
  if (email.date !== undefined) {
    const t = Date.parse(email.date);
    if (Number.isFinite(t)) date = new Date(t).toISOString();
  }
  if (date === null && headers.date !== undefined) {
    const t = Date.parse(headers.date.replace(/\s*\([^)]*\)\s*$/, ''));
    if (Number.isFinite(t)) date = new Date(t).toISOString();
    else problems.push(`unreadable date ${JSON.stringify(headers.date.slice(0, 80))}`);
  }
  let text = email.text ?? '';
  let hrefs: string[] = [];
  const html = email.html !== undefined && email.html.trim() !== '';
  if (html) {
    const converted = htmlToText(email.html!);
    hrefs = converted.hrefs;
    // HTML-only mail, or a plain part that is only a stub ("view this in HTML"): read the HTML.
    if (text.trim().length < 40 && converted.text.length > text.trim().length) text = converted.text;
  }
  text = text.replace(/\r\n?/g, '\n').replace(/\u0000/g, '');
  if (text.trim() === '') {
    // Say what the message is rather than hand the model nothing.
    const what = html ? 'HTML without text (images and links only)' : email.attachments.length > 0 ? 'no text, only attachments' : 'an empty body';
    text = `[${what}]`;
  }
  const messageId = email.messageId ? stripBrackets(email.messageId) || null : null;
  const references = (email.references ?? '').split(/\s+/).filter((r) => r !== '').map(stripBrackets);
  const inReplyTo = email.inReplyTo ? stripBrackets(email.inReplyTo.split(/\s+/)[0]) : null;
  const id = messageId ?? `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  return {
    id,
    messageId,
    subject: (email.subject ?? '').replace(/\s+/g, ' ').trim(),
    from: mailbox(email.from),
    to: addresses(email.to),
    date,
    dateHeader: headers.date ?? null,
    inReplyTo,
    references,
    thread: references[0] ?? inReplyTo ?? id,
    headers,
    text,
    body: trimBody(text),
    html,
    links: extractLinks(text, hrefs).map(cleanLink),
    attachments: email.attachments
      .filter((a) => a.disposition !== 'inline' || a.filename !== null)
      .map((a) => ({ name: a.filename ?? '(unnamed)', type: a.mimeType, size: attachmentSize(a.content) })),
    size: raw.length,
    problems,
  };
}
