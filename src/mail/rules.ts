// Rules first: what the headers settle needs no model. In order: the user's rules (config file),
// senders the user corrected before (a correction becomes a rule for that address), then built-in
// header rules that hold for any mailbox — Auto-Submitted (RFC 3834) marks machine-sent mail, and a
// reply inside a mailing-list thread is list discussion. Everything else goes to the model.
import type { MailConfig, Rule } from './config.js';
import type { ParsedMessage } from './parse.js';

export interface RuleDecision {
  category: string;
  priority: number;
  /** Which rule: "config:<name>", "sender:<address>" or "header:<what>". */
  rule: string;
}

/** Default priority (1 most pressing … 5 least) of each default category. */
export const CATEGORY_PRIORITY: Record<string, number> = { urgent: 1, 'needs reply': 2, personal: 2, notification: 3, FYI: 4, newsletter: 4, promotional: 5, spam: 5 };

export function priorityOf(category: string): number {
  return CATEGORY_PRIORITY[category] ?? 3;
}

function matches(rule: Rule, m: ParsedMessage): boolean {
  if (rule.from && !rule.from.test(m.from.address) && !rule.from.test(`${m.from.name} <${m.from.address}>`)) return false;
  if (rule.to && !m.to.some((t) => rule.to!.test(t))) return false;
  if (rule.subject && !rule.subject.test(m.subject)) return false;
  if (rule.listId && !rule.listId.test(m.headers['list-id'] ?? '')) return false;
  if (rule.header && !rule.header.value.test(m.headers[rule.header.name] ?? '')) return false;
  return true;
}

/** `senders`: address → category the user chose for it in a correction. */
export function decideByRules(m: ParsedMessage, config: MailConfig, senders: ReadonlyMap<string, string> = new Map()): RuleDecision | null {
  for (const rule of config.rules) {
    if (matches(rule, m)) return { category: rule.category, priority: rule.priority ?? priorityOf(rule.category), rule: `config:${rule.name}` };
  }
  const corrected = senders.get(m.from.address);
  if (corrected !== undefined && config.categories.includes(corrected)) return { category: corrected, priority: priorityOf(corrected), rule: `sender:${m.from.address}` };
  const cats = config.categories;
  const auto = (m.headers['auto-submitted'] ?? '').toLowerCase();
  if (auto !== '' && !auto.startsWith('no') && cats.includes('notification')) return { category: 'notification', priority: priorityOf('notification'), rule: 'header:auto-submitted' };
  const isReply = m.inReplyTo !== null || m.references.length > 0;
  if (m.headers['list-id'] !== undefined && isReply && cats.includes('FYI')) return { category: 'FYI', priority: priorityOf('FYI'), rule: 'header:list-reply' };
  return null;
}
