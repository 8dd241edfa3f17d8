// Evaluation metrics over sampled completions: the unbiased pass@k estimator (Codex paper) and
// majority voting (maj@k, self-consistency).
import type { Grade, Problem } from '../tasks/index.js';

/**
 * Probability that at least one of k samples drawn without replacement from n, of which c are
 * correct, is correct: 1 − C(n−c, k)/C(n, k), as a product so that large n stays exact enough.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(c) || !Number.isSafeInteger(k) || n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw new Error(`passAtK: needs integers 0 <= c <= n and 1 <= k <= n, got n = ${n}, c = ${c}, k = ${k}`);
  }
  if (n - c < k) return 1;
  let missAll = 1;
  for (let i = n - c + 1; i <= n; i++) missAll *= 1 - k / i;
  return 1 - missAll;
}

/**
 * What a sample votes for: the answer's value for arithmetic; for Countdown every valid solution is
 * the same answer ("the target is reached"), and wrong ones vote by what they evaluate to. Null: no
 * usable answer, no vote.
 */
export function voteKey(problem: Problem, g: Pick<Grade, 'answer' | 'value' | 'accuracy'>): string | null {
  if (g.answer === null) return null;
  if (problem.task === 'countdown') return g.accuracy === 1 ? 'reaches target' : `value ${g.value ?? `text ${g.answer}`}`;
  return g.value ?? `text ${g.answer}`;
}

/**
 * Whether the most common answer among the votes is correct. Ties go to the answer reached first, so
 * the result is deterministic; with no votes at all it is not correct.
 */
export function majorityCorrect(problem: Problem, votes: readonly (string | null)[]): boolean {
  const counts = new Map<string, number>();
  let best: string | null = null;
  for (const v of votes) {
    if (v === null) continue;
    const n = (counts.get(v) ?? 0) + 1;
    counts.set(v, n);
    if (best === null || n > counts.get(best)!) best = v;
  }
  if (best === null) return false;
  return best === (problem.task === 'countdown' ? 'reaches target' : problem.answer);
}

/** Tokens inside the reasoning block of a completion (to </think>, or to the end when it never closes). */
export function thinkTokens(tokens: readonly number[], ids: { think?: number; thinkEnd?: number }, promptOpensThink: boolean): number {
  let start = promptOpensThink ? 0 : -1;
  if (start < 0) {
    const at = ids.think === undefined ? -1 : tokens.indexOf(ids.think);
    if (at < 0) return 0;
    start = at + 1;
  }
  const end = ids.thinkEnd === undefined ? -1 : tokens.indexOf(ids.thinkEnd, start);
  return (end < 0 ? tokens.length : end) - start;
}
