// Labels. The evaluation set is labelled by hand (data/mail/eval-labels.jsonl: each category decided
// by reading the message); the rest of the corpus, which trains the shipped model and the baseline
// alike, gets weak labels from this fixed heuristic over headers and text, since the corpus itself
// says only spam or ham. The shipped model learns the heuristic and whatever the text adds; how well
// either does is measured on the hand labels only.
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

const PROMO = /\b(sale|save|offer|discount|deal|free shipping|% off|coupon|special price|buy now|order now|limited time)\b/i;
const NOTICE = /\b(receipt|order|invoice|password|account|confirm|confirmation|subscription|registration|statement|your .* (has|was|is)|reminder|alert)\b/i;
const PUBLISHER = /(rss|news|letter|digest|update|bulletin|weekly|daily|announce)/i;
const URGENT = /\b(urgent|asap|immediately|emergency|deadline today|action required)\b/i;

/** The weak label of a message whose only known label is spam or ham. */
export function weakLabel(m: ParsedMessage, spam: boolean): string {
  if (spam) return 'spam';
  const h = m.headers;
  const auto = (h['auto-submitted'] ?? '').toLowerCase();
  if (auto !== '' && !auto.startsWith('no')) return 'notification';
  const list = h['list-id'] ?? h['x-mailing-list'] ?? h['mailing-list'] ?? h['x-beenthere'];
  if (list !== undefined) return 'FYI';
  const bulk = /bulk|list|junk/i.test(h.precedence ?? '') || h['list-unsubscribe'] !== undefined;
  if (bulk || PUBLISHER.test(m.from.address)) {
    if (PROMO.test(m.subject)) return 'promotional';
    if (NOTICE.test(m.subject)) return 'notification';
    return 'newsletter';
  }
  if (NOTICE.test(m.subject) && /(no-?reply|support|service|account|billing|admin|mailer)/i.test(m.from.address)) return 'notification';
  if (URGENT.test(m.subject)) return 'urgent';
  if (/\?/.test(m.body.slice(0, 600))) return 'needs reply';
  return 'personal';
}
