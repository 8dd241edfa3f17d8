// Labels. The evaluation set is labelled by hand (data/mail/eval-labels.jsonl: each category
// decided by reading the message). The corpus itself says only spam or ham, so the training messages
// get their category from the fixed heuristic below over headers and text, except where the recipe
// has a hand label for them (data/mail/train-labels.jsonl, by the guide in data/mail/LABELLING.md:
// the hard ham, where commercial mail hides and the heuristic is weakest). The shipped model and the
// baseline learn from the same labels; how well either does is measured on the evaluation set only.
import { readFile } from 'node:fs/promises';
import type { ParsedMessage } from './parse.js';

export interface HandLabel {
  /** A corpus id ('easy-ham-1/00001.7c53336b37003a9286aba55d2945844c') or, with `path`, the file. */
  id: string;
  /** A raw message file (.eml) instead of a corpus message. */
  path?: string;
  category: string;
}

export async function readLabels(path: string, categories: readonly string[]): Promise<HandLabel[]> {
  const text = await readFile(path, 'utf8').catch((err: Error) => {
    throw new Error(`labels ${path}: ${err.message}`);
  });
  const out: HandLabel[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const r = v as Record<string, unknown>;
    if (typeof r?.path === 'string' && r.path !== '' && r.id === undefined) r.id = r.path;
    if (typeof r?.id !== 'string' || r.id === '') throw new Error(`${where}: needs "id" (a corpus message id) or "path" (a message file)`);
    if (typeof r.category !== 'string' || !categories.includes(r.category)) throw new Error(`${where}: "category" must be one of ${categories.join(', ')}, got ${JSON.stringify(r.category)}`);
    if (seen.has(r.id)) throw new Error(`${where}: ${r.id} is labelled twice`);
    seen.add(r.id);
    out.push({ id: r.id, category: r.category, ...(typeof r.path === 'string' ? { path: r.path } : {}) });
  });
  return out;
}

const PROMO = /\b(sales?|save|offers?|discounts?|deals?|free shipping|% off|coupon|special price|buy now|order now|limited time)\b/i;
const NOTICE = /\b(receipt|order|invoice|password|account|confirm|confirmation|subscription|registration|statement|your .* (has|was|is)|reminder|alert|errata|security advisory)\b/i;
const PUBLISHER = /(rss|news|letter|digest|update|bulletin|weekly|daily|announce)/i;
const URGENT = /\b(urgent|asap|immediately|emergency|deadline today|action required)\b/i;
/** Headers only list servers add (RFC 2369/2919, Mailman, majordomo, ezmlm). */
const LIST_HEADERS = ['list-id', 'x-mailing-list', 'mailing-list', 'x-beenthere', 'list-post', 'list-help', 'list-subscribe', 'x-mailman-version', 'x-list'];
/** Envelope addresses of list servers: "foo-admin@", "foo-bounces@", "owner-foo@", "foo-request@". */
const LIST_ADDRESS = /(-admin|-bounces?|-request|-owner)@|^owner-/i;
/** The local part of a bulk sender: a role address, or a per-recipient (VERP) address full of digits. */
const MACHINE_SENDER = /^(no-?reply|do-?not-?reply|donotuse|webmaster|newsletters?|news|info|announce\w*|updates?|alerts?|mailer|bounces?|promo\w*|offers?|specials?|subscriptions?)([-_.+].*)?$/i;
/** A publication's subject: "Vol 6, No 2", "Issue #12", "… Newsletter". */
const ISSUE = /\b(newsletter|vol\.? ?\d+|issue #?\d+|no\.? ?\d+,)/i;
/** A list's subject tag: "[Name] …" or "Re: [Name] …". */
const SUBJECT_TAG = /^((re|fwd?|aw)\s*:\s*)*\[[^\]]{2,30}\]/i;
/** Opt-out text that bulk mail carries and person-to-person mail does not. */
const OPT_OUT = /\b(unsubscribe|opt[- ]out|remove yourself|to be removed|you are receiving this|you received this|manage your subscription|email preferences)\b/i;

/** The local part of an address without its "+detail" sub-address. */
function localPart(address: string): string {
  return (address.split('@')[0] ?? '').split('+')[0];
}

function machineSender(address: string): boolean {
  const local = localPart(address);
  return MACHINE_SENDER.test(local) || (local.length >= 20 && (local.match(/\d+/g) ?? []).length >= 3);
}

/** What bulk mail is about, from its subject: a sale, an account event, or news. */
function bulkKind(m: ParsedMessage): string {
  if (/(rss|feed)/i.test(m.from.address)) return 'newsletter'; // feed items are news whatever their words
  if (PROMO.test(m.subject)) return 'promotional';
  if (NOTICE.test(m.subject)) return 'notification';
  return 'newsletter';
}

/**
 * The weak label of a corpus message. Spam is the corpus' own (true) label; ham is split by rules
 * that hold for any mailbox, in order: machine-sent (Auto-Submitted) → notification; a mailing list
 * (list headers or list-server envelope addresses) → FYI, unless only its publisher writes to it; bulk mail (Precedence, List-Unsubscribe,
 * a publisher's or machine's sender address) → newsletter, promotional or notification by subject;
 * a list's subject tag → FYI; opt-out text in the body → bulk again; then person-to-person mail.
 */
export function weakLabel(m: ParsedMessage, spam: boolean): string {
  if (spam) return 'spam';
  const h = m.headers;
  const auto = (h['auto-submitted'] ?? '').toLowerCase();
  if (auto !== '' && !auto.startsWith('no')) return 'notification';
  if (/^(mailer-daemon|postmaster)$/i.test(localPart(m.from.address))) return 'notification'; // delivery reports
  if (LIST_HEADERS.some((k) => h[k] !== undefined) || [h.sender, h['errors-to'], h['return-path']].some((a) => a !== undefined && LIST_ADDRESS.test(a))) {
    // A list only its publisher writes to is a newsletter: nobody may post (List-Post "NO", or a
    // List-Subscribe without a List-Post), an announce list, or a publisher's address or issue line.
    // A reply is discussion whatever the list.
    const post = h['list-post'];
    const announceOnly = /^\s*no\b/i.test(post ?? '') || (post === undefined && h['list-subscribe'] !== undefined);
    const name = `${h['list-id'] ?? ''} ${h['x-beenthere'] ?? ''} ${h['mailing-list'] ?? ''}`;
    const reply = m.inReplyTo !== null || m.references.length > 0 || /^(re|aw)\s*:/i.test(m.subject);
    if (!reply && (announceOnly || /announce|news/i.test(name) || PUBLISHER.test(localPart(m.from.address)) || machineSender(m.from.address) || ISSUE.test(m.subject))) return bulkKind(m);
    return 'FYI';
  }
  const bulk = /bulk|list|junk/i.test(h.precedence ?? '') || h['list-unsubscribe'] !== undefined;
  if (bulk || PUBLISHER.test(m.from.address) || machineSender(m.from.address)) return bulkKind(m);
  if (SUBJECT_TAG.test(m.subject)) return 'FYI';
  if (OPT_OUT.test(m.body)) return bulkKind(m);
  if (NOTICE.test(m.subject) && /(support|service|account|billing|admin)/i.test(m.from.address)) return 'notification';
  if (URGENT.test(m.subject)) return 'urgent';
  if (/\?/.test(m.body.slice(0, 600))) return 'needs reply';
  return 'personal';
}
