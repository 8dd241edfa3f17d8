// The triage configuration file (JSON): categories, the user's own rules, where --apply files each
// category, and the user's addresses. Every field is checked and an error names the file and field.
import { readFile } from 'node:fs/promises';
import { isRecord, JsonFields } from '../util/json-fields.js';

/** Where the shipped mail model lives, relative to the package root. */
export const DEFAULT_MAIL_MODEL = 'models/nano-mail';

export const DEFAULT_CATEGORIES = ['urgent', 'needs reply', 'FYI', 'newsletter', 'promotional', 'notification', 'personal', 'spam'] as const;

/** A rule: every condition given must hold; patterns are case-insensitive regular expressions. */
export interface Rule {
  name: string;
  from?: RegExp;
  to?: RegExp;
  subject?: RegExp;
  listId?: RegExp;
  header?: { name: string; value: RegExp };
  category: string;
  priority?: number;
}

export interface MailConfig {
  categories: string[];
  rules: Rule[];
  /** Category → IMAP/Maildir folder that --apply moves it to; categories not listed stay put. */
  folders: Record<string, string>;
  /** Category → keywords --apply sets (default: "$nanoseek_<category>" style keywords). */
  keywords: Record<string, string[]>;
  /** The user's own addresses: mail from them is never spam; mail to them directly is "personal" material. */
  me: string[];
}

export function defaultConfig(): MailConfig {
  return {
    categories: [...DEFAULT_CATEGORIES],
    rules: [],
    folders: { spam: 'Junk', newsletter: 'Triage/Newsletters', promotional: 'Triage/Promotions', notification: 'Triage/Notifications' },
    keywords: {},
    me: [],
  };
}

function regex(r: JsonFields, field: string): RegExp | undefined {
  const v = r.raw(field);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') r.fail(field, 'must be a non-empty regular expression');
  try {
    return new RegExp(v, 'i');
  } catch (err) {
    return r.fail(field, `not a valid regular expression: ${(err as Error).message}`);
  }
}

export function parseMailConfig(json: unknown, source = 'mail config'): MailConfig {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  const r = new JsonFields(json, source);
  const base = defaultConfig();
  const cats = r.raw('categories') ?? base.categories;
  if (!Array.isArray(cats) || cats.length < 2 || !cats.every((c) => typeof c === 'string' && c.trim() !== '' && c.length <= 40)) {
    r.fail('categories', 'must be an array of at least two non-empty names (at most 40 characters each)');
  }
  const categories = cats as string[];
  if (new Set(categories).size !== categories.length) r.fail('categories', 'lists a name twice');
  const known = (field: string, where: JsonFields, c: unknown): string => {
    if (typeof c !== 'string' || !categories.includes(c)) where.fail(field, `must be one of the categories (${categories.join(', ')})`, c);
    return c as string;
  };
  const rawRules = r.raw('rules') ?? [];
  if (!Array.isArray(rawRules)) r.fail('rules', 'must be an array of rules');
  const rules = (rawRules as unknown[]).map((raw, i): Rule => {
    if (!isRecord(raw)) return r.fail(`rules[${i}]`, 'must be an object like {"from": "@github\\\\.com$", "category": "notification"}', raw);
    const f = new JsonFields(raw, source, `rules[${i}].`);
    const rule: Rule = { name: typeof raw.name === 'string' ? raw.name : `rules[${i}]`, category: known('category', f, f.raw('category')) };
    f.raw('name');
    rule.from = regex(f, 'from');
    rule.to = regex(f, 'to');
    rule.subject = regex(f, 'subject');
    rule.listId = regex(f, 'list_id');
    if (f.has('header')) {
      const h = f.object('header');
      rule.header = { name: h.str('name').toLowerCase(), value: regex(h, 'value') ?? /./ };
      h.done();
    }
    if (f.has('priority')) rule.priority = f.int('priority', 1, undefined, 5);
    f.done();
    if (!rule.from && !rule.to && !rule.subject && !rule.listId && !rule.header) f.fail('from', 'a rule needs at least one condition (from, to, subject, list_id, header)');
    return rule;
  });
  const folders: Record<string, string> = {};
  const fo = r.has('folders') ? r.object('folders') : null;
  for (const [k, v] of Object.entries(fo?.obj ?? base.folders)) {
    if (!categories.includes(k)) {
      if (fo !== null) fo.fail(k, `is not a category (${categories.join(', ')})`);
      continue; // a default folder for a category this config dropped
    }
    if (typeof v !== 'string' || v.trim() === '') fo!.fail(k, 'must be a folder name');
    folders[k] = v as string;
  }
  const keywords: Record<string, string[]> = {};
  if (r.has('keywords')) {
    const ko = r.object('keywords');
    for (const [k, v] of Object.entries(ko.obj)) {
      if (!categories.includes(k)) ko.fail(k, `is not a category (${categories.join(', ')})`);
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && /^[^\s()"{\]%*\\]+$/.test(x))) ko.fail(k, 'must be an array of IMAP keywords (no spaces or specials)');
      keywords[k] = v as string[];
    }
  }
  const me = r.raw('me') ?? [];
  if (!Array.isArray(me) || !me.every((m) => typeof m === 'string' && m.includes('@'))) r.fail('me', 'must be an array of email addresses');
  r.done();
  return { categories, rules, folders, keywords, me: (me as string[]).map((m) => m.toLowerCase()) };
}

export async function loadMailConfig(path: string | undefined): Promise<MailConfig> {
  if (path === undefined) return defaultConfig();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`--config ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseMailConfig(json, path);
}
