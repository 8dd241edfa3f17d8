// Rule-based rewards for completions (R1-Zero: no reward model). A completion is split into its
// think/answer structure, the answer is parsed by ./expr.ts (never evaluated as code) and checked
// exactly. Everything a model can emit yields a grade with a reason; nothing throws.
//
// Format score, by structure:
//   1     <think>…</think> then <answer>…</answer>, each tag exactly once, only whitespace outside
//         (and between) the two blocks.
//   0.5   exactly one <answer>…</answer> that comes after every think tag, but the rest is off:
//         missing or repeated think tags, text outside the blocks.
//   0.25  no usable answer block, but one complete <think>…</think>.
//   0     anything else.
// Reward = (1 − formatWeight)·accuracy + formatWeight·format, formatWeight 0.1 by default, so a
// strict-format completion scores 1 when right and 0.1 when wrong (TinyZero's 1 / 0.1 / 0 scale), and
// no answer block scores at most 0.025.
import { abbreviate, DEFAULT_LIMITS, evaluate, literals, parseExpr, parseInteger, type ExprLimits } from './expr.js';
import type { Problem } from './types.js';

export interface GradeOptions {
  /**
   * The prompt already ended with "<think>" (R1 chat template, or zeroPrompt's openThink), so the
   * completion starts mid-thought: it must contain "</think>" then the answer block, and no "<think>".
   */
  promptOpensThink?: boolean;
  /** Share of the reward given to format; default 0.1. */
  formatWeight?: number;
  limits?: ExprLimits;
}

export interface Grade {
  accuracy: 0 | 1;
  /** 0, 0.25, 0.5 or 1; see the scale above. */
  format: number;
  reward: number;
  /** The text inside <answer>…</answer>, trimmed, or null when there is no usable answer block. */
  answer: string | null;
  /** What the answer evaluates to, in decimal, when it parsed. */
  value: string | null;
  /** 'correct', or why not. */
  reason: string;
}

export interface Structure {
  format: number;
  answer: string | null;
  /** Why there is no usable answer block (null when there is one). */
  problem: string | null;
}

const TAG = /<\/?(?:think|answer)>/g;

/** Scores the think/answer structure and extracts the answer block. */
export function parseStructure(completion: string, promptOpensThink = false): Structure {
  const text = promptOpensThink ? `<think>${completion}` : completion;
  const tags: { tag: string; start: number; end: number }[] = [];
  for (const m of text.matchAll(TAG)) tags.push({ tag: m[0], start: m.index, end: m.index + m[0].length });
  const count = (t: string): number => tags.filter((x) => x.tag === t).length;

  const opens = tags.filter((t) => t.tag === '<answer>');
  const closes = tags.filter((t) => t.tag === '</answer>');
  let answer: string | null = null;
  let problem: string | null = null;
  if (opens.length !== 1 || closes.length !== 1) {
    problem = opens.length + closes.length === 0 ? 'no <answer> block' : `expected one <answer> and one </answer>, found ${opens.length} and ${closes.length}`;
  } else {
    const open = opens[0] as (typeof tags)[number];
    const close = closes[0] as (typeof tags)[number];
    if (close.start < open.start) problem = '</answer> comes before <answer>';
    else if (tags.some((t) => t.tag.includes('think') && t.start > open.start)) problem = 'a think tag after <answer>';
    else answer = text.slice(open.end, close.start).trim();
  }

  const thinkOpen = tags.findIndex((t) => t.tag === '<think>');
  const thinkClose = tags.findIndex((t) => t.tag === '</think>');
  const oneThink = count('<think>') === 1 && count('</think>') === 1 && thinkOpen < thinkClose;
  let format = 0;
  if (answer !== null) {
    const strict =
      oneThink &&
      tags.length === 4 &&
      tags[0]?.tag === '<think>' &&
      tags[2]?.tag === '<answer>' &&
      text.slice(0, tags[0].start).trim() === '' &&
      text.slice((tags[1] as { end: number }).end, tags[2].start).trim() === '' &&
      text.slice((tags[3] as { end: number }).end).trim() === '';
    format = strict ? 1 : 0.5;
  } else if (oneThink) {
    format = 0.25;
  }
  return { format, answer, problem };
}

/** Checks an answer text (the inside of the answer block) against a problem. */
export function checkAnswer(p: Problem, answer: string, limits: ExprLimits = DEFAULT_LIMITS): { correct: boolean; value: string | null; reason: string } {
  if (answer.trim() === '') return { correct: false, value: null, reason: 'empty answer' };
  if (p.task === 'arithmetic') {
    const got = parseInteger(answer, limits.maxChars);
    if (!got.ok) return { correct: false, value: null, reason: `answer is ${got.error}` };
    const value = got.value.toString();
    return got.value === BigInt(p.answer)
      ? { correct: true, value, reason: 'correct' }
      : { correct: false, value, reason: `expected ${p.answer}, got ${abbreviate(got.value)}` };
  }
  const parsed = parseExpr(answer, limits);
  if (!parsed.ok) return { correct: false, value: null, reason: `answer is not a valid expression: ${parsed.error}` };
  const available = new Map<string, number>();
  for (const n of p.numbers) available.set(String(n), (available.get(String(n)) ?? 0) + 1);
  const used = new Map<string, number>();
  for (const lit of literals(parsed.value)) {
    const k = lit.toString();
    used.set(k, (used.get(k) ?? 0) + 1);
    const have = available.get(k) ?? 0;
    if (have === 0) return { correct: false, value: null, reason: `uses ${abbreviate(lit)}, which is not among the numbers` };
    if ((used.get(k) as number) > have) return { correct: false, value: null, reason: `uses ${k} more than the ${have} time(s) it is given` };
  }
  const v = evaluate(parsed.value);
  if (!v.ok) return { correct: false, value: null, reason: v.error };
  const value = v.value.toString();
  return v.value === BigInt(p.target)
    ? { correct: true, value, reason: 'correct' }
    : { correct: false, value, reason: `evaluates to ${abbreviate(v.value)}, not ${p.target}` };
}

export function grade(p: Problem, completion: string, opts: GradeOptions = {}): Grade {
  const w = opts.formatWeight ?? 0.1;
  if (!(w >= 0 && w <= 1)) throw new Error(`formatWeight must be in [0, 1], got ${w}`);
  const s = parseStructure(completion, opts.promptOpensThink ?? false);
  const reward = (accuracy: 0 | 1): number => (1 - w) * accuracy + w * s.format;
  if (s.answer === null) return { accuracy: 0, format: s.format, reward: reward(0), answer: null, value: null, reason: s.problem ?? 'no answer' };
  const c = checkAnswer(p, s.answer, opts.limits);
  const accuracy = c.correct ? 1 : 0;
  return { accuracy, format: s.format, reward: reward(accuracy), answer: s.answer, value: c.value, reason: c.reason };
}
