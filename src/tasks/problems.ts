// Drawing problems, the fixed train / held-out split, and the text a model is shown.
//
// The split is a property of the problem itself, not of any seed or run: a problem is held out iff a
// hash of its canonical key is divisible by HELDOUT_MODULUS. Training draws reject held-out problems,
// and evaluation sets are built only from them, so no choice of seed, difficulty or corpus size can
// leak an evaluation problem into training data.
import { Rng } from '../util/rng.js';
import { arithmeticKey, arithmeticProblem, drawArithmetic, MAX_DIGITS, MAX_TERMS, parseArithmeticQuestion } from './arithmetic.js';
import { countdownKey, countdownQuestion, drawCountdownCandidate, MAX_COUNT, solveCountdown } from './countdown.js';
import type { Problem, Split, TaskSpec } from './types.js';
import { R1_ZERO_TEMPLATE, r1ZeroPrompt } from '../tokenizer/chat.js';

/** One problem in this many is held out (5%). Changing it moves problems between splits: don't. */
export const HELDOUT_MODULUS = 20;

/** The seed evaluation sets are drawn with, so "the first N held-out problems" is one fixed list. */
export const EVAL_SEED = 0x5eed;

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so that the low bits are well mixed. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Identifies a problem up to presentation: Countdown numbers in any order, `a + b` and `b + a`, and
 * questions differing only in spacing all share one key, hence one split.
 */
export function problemKey(p: Problem): string {
  if (p.task === 'countdown') return countdownKey(p.numbers, p.target);
  const item = parseArithmeticQuestion(p.question);
  return item ? arithmeticKey(item) : `arithmetic:?${p.question.trim().replace(/\s+/g, ' ')}`;
}

export function isHeldOut(p: Problem): boolean {
  return hashKey(problemKey(p)) % HELDOUT_MODULUS === 0;
}

/** Stable across runs and machines: the task name and the key's hash. */
export function problemId(p: Problem): string {
  return `${p.task}-${hashKey(problemKey(p)).toString(16).padStart(8, '0')}`;
}

function inSplit(key: string, split: Split): boolean {
  return (hashKey(key) % HELDOUT_MODULUS === 0) === (split === 'heldout');
}

function checkInt(name: string, v: unknown, lo: number, hi: number): void {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) {
    throw new Error(`${name}: expected an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
  }
}

/** Throws an error naming the offending field when a spec cannot be generated from. */
export function validateSpec(spec: TaskSpec): void {
  if (spec.task === 'arithmetic') {
    if (!Array.isArray(spec.digits) || spec.digits.length < 2 || spec.digits.length > MAX_TERMS) {
      throw new Error(`digits: expected 2 to ${MAX_TERMS} digit counts, one per operand, like [3, 2], got ${JSON.stringify(spec.digits)}`);
    }
    spec.digits.forEach((d, i) => checkInt(`digits[${i}]`, d, 1, MAX_DIGITS));
    if (!Array.isArray(spec.ops) || spec.ops.length === 0) throw new Error("ops: expected a non-empty list of '+', '-', '*'");
    for (const op of spec.ops) if (!['+', '-', '*'].includes(op)) throw new Error(`ops: unknown operator ${JSON.stringify(op)}; use '+', '-', '*'`);
  } else if (spec.task === 'countdown') {
    if (!Array.isArray(spec.count) || spec.count.length !== 2) throw new Error('count: expected [min, max] numbers per problem, like [3, 4]');
    checkInt('count[0]', spec.count[0], 2, MAX_COUNT);
    checkInt('count[1]', spec.count[1], spec.count[0], MAX_COUNT);
    checkInt('numberMax', spec.numberMax, 1, 1_000_000);
    checkInt('targetMax', spec.targetMax, 1, 1_000_000_000);
  } else {
    throw new Error(`task: unknown task ${JSON.stringify((spec as { task: unknown }).task)}`);
  }
}

// Enough for the held-out split (1 in 20) of any spec whose problem space is not tiny; a spec that
// still fails this many draws cannot produce the split at all and says so.
const MAX_ATTEMPTS = 20_000;

/**
 * One problem from `split` (default 'train', which never yields a held-out problem), with its `id`
 * and, for Countdown, a shortest `solution`. Deterministic given the rng state.
 */
export function sampleProblem(spec: TaskSpec, rng: Rng, split: Split = 'train'): Problem {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (spec.task === 'arithmetic') {
      const item = drawArithmetic(spec, rng);
      if (!inSplit(arithmeticKey(item), split)) continue;
      const p = arithmeticProblem(item);
      return { ...p, id: problemId(p) };
    }
    const { numbers, target } = drawCountdownCandidate(spec, rng);
    if (!inSplit(countdownKey(numbers, target), split)) continue;
    const solution = solveCountdown(numbers, target);
    if (!solution) continue;
    const p: Problem = { task: 'countdown', numbers, target };
    return { ...p, id: problemId(p), solution: solution.expr };
  }
  throw new Error(
    `no ${split} problem found in ${MAX_ATTEMPTS} draws from ${JSON.stringify(spec)}: ` +
      (spec.task === 'countdown' ? 'raise numberMax or count, or lower targetMax' : 'the problem space is too small; use more digits'),
  );
}

/**
 * The evaluation set: the first `n` distinct held-out problems drawn from `seed`. Identical on every
 * call and machine. Fewer than `n` come back when the spec's held-out split has fewer problems (a
 * small spec, like one-digit addition, has only a handful).
 */
export function heldOutSet(spec: TaskSpec, n: number, seed = EVAL_SEED): Problem[] {
  validateSpec(spec);
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const out: Problem[] = [];
  // A run of repeats this long means the split is (nearly) exhausted.
  for (let repeats = 0; out.length < n && repeats < 2000; ) {
    const p = sampleProblem(spec, rng, 'heldout');
    const key = problemKey(p);
    if (seen.has(key)) {
      repeats++;
      continue;
    }
    repeats = 0;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/** The question as the user would ask it; never contains any tag. */
export function questionText(p: Problem): string {
  return p.task === 'arithmetic' ? p.question : countdownQuestion(p);
}

/** The known answer text: the integer for arithmetic, a solution expression for Countdown (or null if unsolvable). */
export function solutionOf(p: Problem): string | null {
  if (p.task === 'arithmetic') return p.answer;
  return p.solution ?? solveCountdown(p.numbers, p.target)?.expr ?? null;
}

/** The R1-Zero template (DeepSeek-R1 paper), restated. */
/** The R1-Zero prompt (one text for the whole project: the chat module owns it). */
export const ZERO_TEMPLATE = R1_ZERO_TEMPLATE;

/**
 * The R1-Zero prompt for a problem. `openThink` ends the prompt with "<think>" (TinyZero's trick to
 * get a tiny base model into the format); grade those completions with `promptOpensThink`.
 */
export function zeroPrompt(p: Problem, opts: { openThink?: boolean } = {}): string {
  return r1ZeroPrompt(questionText(p), opts);
}

/** "sums of six one-digit numbers", "sums of 5 to 7 one-digit numbers", else the spec's short form. */
export function taskPhrase(specs: readonly TaskSpec[]): string {
  const words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
  const sums = specs.every((s) => s.task === 'arithmetic' && s.ops.length === 1 && s.ops[0] === '+' && s.digits.every((d) => d === s.digits[0]));
  const width = sums ? new Set(specs.map((s) => (s as { digits: number[] }).digits[0])) : null;
  if (sums && width!.size === 1) {
    const counts = [...new Set(specs.map((s) => (s as { digits: number[] }).digits.length))].sort((a, b) => a - b);
    const d = [...width!][0];
    const many = counts.length === 1 ? (words[counts[0]] ?? String(counts[0])) : `${counts[0]} to ${counts[counts.length - 1]}`;
    return `sums of ${many} ${d === 1 ? 'one' : (words[d] ?? String(d))}-digit numbers`;
  }
  return specs.map((s) => (s.task === 'arithmetic' ? `arithmetic ${s.digits.join('×')}-digit ${s.ops.join(' ')}` : `countdown with ${s.count.join('–')} numbers`)).join(', ');
}
