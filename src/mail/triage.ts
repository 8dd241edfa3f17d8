// One message from raw bytes to its triage record: parse, rules, at most `maxCalls` model calls,
// validation, and the checks a model's word is put to (links must be in the message, dates must be
// real days, relative dates are resolved against the Date header). A failure is recorded on the
// message — "error" when it could not be read, "needs_review" when no valid answer came — and
// never stops the run.
import { cleanLink } from './body.js';
import type { MailConfig } from './config.js';
import { resolveDue, validDate } from './dates.js';
import type { TriageModel } from './model.js';
import { parseMessage, type Attachment, type ParsedMessage } from './parse.js';
import { fitBody } from './prompt.js';
import { decideByRules, priorityOf } from './rules.js';
import { answerValidator, type ModelAnswer } from './schema.js';
import type { RawMessage } from './sources/source.js';

export type TriageStatus = 'ok' | 'needs_review' | 'error';

export interface TriageRecord {
  source: string;
  folder: string;
  key: string;
  /** Where the original is: an imap:// UID URL or a file path. */
  location: string;
  id: string;
  message_id: string | null;
  thread: string;
  date: string | null;
  from: { name: string; address: string };
  subject: string;
  status: TriageStatus;
  category: string | null;
  priority: number | null;
  summary: string;
  actions: { task: string; due: string | null }[];
  links: string[];
  attachments: Attachment[];
  /** The start of the trimmed body, for reading the message where the source is out of reach. */
  excerpt: string;
  /** "rule:<which>" or "model:<name>". */
  decided_by: string | null;
  model_calls: number;
  /** Why the record is not "ok", and anything odd about the message. */
  error: string | null;
  problems: string[];
  /** Seconds spent on this message. */
  seconds: number;
}

export interface TriageContext {
  config: MailConfig;
  model: TriageModel | null;
  /** Sender → category from the user's corrections. */
  senders?: ReadonlyMap<string, string>;
  /** Model calls per message at most (default 2: one retry after an invalid answer). */
  maxCalls?: number;
  /** Answer tokens per call (default 160). */
  answerTokens?: number;
  /** Skip the rules: every message goes to the model. */
  noRules?: boolean;
  /** Characters of body a prompt may carry before the model's context cuts it further (default 6000). */
  bodyChars?: number;
}

const validators = new Map<string, (v: unknown) => string | null>();

function validatorFor(categories: readonly string[]): (v: unknown) => string | null {
  const k = JSON.stringify(categories);
  let v = validators.get(k);
  if (v === undefined) validators.set(k, (v = answerValidator(categories)));
  return v;
}

/** The subject without reply/forward prefixes and list tags: the summary of last resort. */
export function cleanSubject(s: string): string {
  let t = s;
  for (let i = 0; i < 5; i++) t = t.replace(/^\s*((re|fwd?|aw|wg|sv|tr)\s*(\[\d+\])?\s*:|\[[^\]]{1,40}\])\s*/i, '');
  return t.trim() || s.trim() || '(no subject)';
}

function base(raw: RawMessage, source: string): TriageRecord {
  return {
    source,
    folder: raw.folder,
    key: raw.key,
    location: raw.location,
    id: '',
    message_id: null,
    thread: '',
    date: null,
    from: { name: '', address: '' },
    subject: '',
    status: 'error',
    category: null,
    priority: null,
    summary: '',
    actions: [],
    links: [],
    attachments: [],
    excerpt: '',
    decided_by: null,
    model_calls: 0,
    error: null,
    problems: [],
    seconds: 0,
  };
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}]/u;

/**
 * Whether a summary is about the message: at least a quarter of its words (of 3+ letters; character pairs
 * in scripts written without spaces) occur in the subject or text. A paraphrase passes; a summary of
 * some other message — what a small model writes when it cannot copy — does not.
 */
export function summaryGrounded(summary: string, m: ParsedMessage): boolean {
  const hay = `${m.subject}\n${m.text}`.toLowerCase();
  const units: string[] = [];
  for (const w of summary.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    if (CJK.test(w)) for (let i = 0; i + 1 < w.length; i++) units.push(w.slice(i, i + 2));
    else if (w.length >= 3) units.push(w);
  }
  if (units.length === 0) return true;
  return units.filter((u) => hay.includes(u)).length / units.length >= 0.25;
}

/**
 * Checks a model's answer against the message: links it holds, real dates, resolved deadlines, and a
 * summary about this message (else the subject stands in, and `problem` says so).
 */
export function groundAnswer(a: ModelAnswer, m: ParsedMessage): ModelAnswer & { problem?: string } {
  const present = new Set(m.links.map((l) => cleanLink(l).toLowerCase()));
  const links = [...new Set(a.links.map(cleanLink))].filter((l) => present.has(l.toLowerCase()));
  const actions = a.actions.map((x) => ({ task: x.task.trim(), due: validDate(x.due) ?? resolveDue(x.task, m.date) }));
  const summary = a.summary.trim();
  if (summaryGrounded(summary, m)) return { ...a, summary, links, actions };
  return { ...a, summary: cleanSubject(m.subject), links, actions, problem: `the model's summary was not about this message (${JSON.stringify(summary.slice(0, 80))}); the subject stands in` };
}

export async function triageMessage(raw: RawMessage, source: string, ctx: TriageContext): Promise<TriageRecord> {
  const t0 = performance.now();
  const rec = base(raw, source);
  const done = (): TriageRecord => ({ ...rec, seconds: (performance.now() - t0) / 1000 });
  let m: ParsedMessage;
  try {
    m = await parseMessage(raw.bytes);
  } catch (err) {
    rec.error = `unreadable message: ${(err as Error).message}`;
    return done();
  }
  Object.assign(rec, {
    id: m.id,
    message_id: m.messageId,
    thread: m.thread,
    date: m.date,
    from: m.from,
    subject: m.subject,
    attachments: m.attachments,
    excerpt: m.body.slice(0, 1500),
    problems: m.problems,
  });
  const rule = ctx.noRules ? null : decideByRules(m, ctx.config, ctx.senders);
  if (rule !== null) {
    Object.assign(rec, { status: 'ok', category: rule.category, priority: rule.priority, summary: cleanSubject(m.subject), decided_by: `rule:${rule.rule}` });
    return done();
  }
  if (ctx.model === null) {
    Object.assign(rec, { status: 'needs_review', error: 'no rule applies and no model was given' });
    return done();
  }
  const categories = ctx.config.categories;
  const answerTokens = ctx.answerTokens ?? 160;
  const messages = fitBody(m, categories, (msgs) => ctx.model!.fits(msgs, answerTokens), ctx.bodyChars ?? 6000);
  const validate = validatorFor(categories);
  const maxCalls = ctx.maxCalls ?? 2;
  let last = '';
  for (let call = 0; call < maxCalls; call++) {
    rec.model_calls++;
    let text: string;
    try {
      const r = await ctx.model.complete({ messages, maxTokens: answerTokens, temperature: call === 0 ? 0 : 0.7, seed: call });
      text = r.text;
      if (r.finishReason === 'length') {
        last = `the answer did not finish within ${answerTokens} tokens`;
        continue;
      }
    } catch (err) {
      last = `the model failed: ${(err as Error).message}`;
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      last = `the answer is not JSON: ${JSON.stringify(text.slice(0, 120))}`;
      continue;
    }
    const problem = validate(value);
    if (problem !== null) {
      last = `the answer does not follow the schema: ${problem}`;
      continue;
    }
    const a = groundAnswer(value as ModelAnswer, m);
    if (a.problem !== undefined) rec.problems = [...rec.problems, a.problem];
    Object.assign(rec, { status: 'ok', category: a.category, priority: a.priority, summary: a.summary, actions: a.actions, links: a.links, decided_by: `model:${ctx.model.name}`, error: null });
    return done();
  }
  Object.assign(rec, { status: 'needs_review', error: last, priority: priorityOf('') });
  return done();
}
