// GRPO rewards: named functions of one completion, summed with weights from the config. The built-in
// ones are R1-Zero's rule-based rewards (accuracy, format) and DAPO's soft penalty for overlong
// answers; anything else is a plain TypeScript function registered under a name the config can use.
import { grade, type Problem } from '../../tasks/index.js';

export interface RewardContext {
  /** The prompt text the completion continues. */
  prompt: string;
  /** The completion text (special tokens such as EOS left out; </answer> kept). */
  completion: string;
  problem: Problem;
  /** The completion's token ids, a final stop token included. */
  tokens: readonly number[];
  /** The prompt ended inside an open <think> block (the R1 chat layout, or open_think). */
  promptOpensThink: boolean;
  /** The rollout's max_new_tokens, for length-based rewards. */
  maxTokens: number;
}

export type RewardFn = (ctx: RewardContext) => number;

/** Tokens before max_new_tokens where the overlong penalty starts (DAPO's soft overlong punishment). */
export const OVERLONG_BUFFER = 16;

const BUILT_IN: Readonly<Record<string, RewardFn>> = {
  /** 1 for a correct answer inside <answer>…</answer>, else 0. */
  accuracy: (c) => grade(c.problem, c.completion, { promptOpensThink: c.promptOpensThink }).accuracy,
  /** The grader's structure score: 0, 0.25, 0.5 or 1 (see tasks/grade.ts). */
  format: (c) => grade(c.problem, c.completion, { promptOpensThink: c.promptOpensThink }).format,
  /** 0 until the last OVERLONG_BUFFER tokens of the budget, then falling linearly to −1 at the limit. */
  overlong: (c) => {
    const start = Math.max(0, c.maxTokens - OVERLONG_BUFFER);
    return c.tokens.length <= start ? 0 : -Math.min(1, (c.tokens.length - start) / Math.max(1, c.maxTokens - start));
  },
};

const registry = new Map<string, RewardFn>(Object.entries(BUILT_IN));

/** Makes `fn` available to GRPO configs as `rewards: {"<name>": weight}`. Built-in names cannot be replaced. */
export function registerReward(name: string, fn: RewardFn): void {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) throw new Error(`registerReward: ${JSON.stringify(name)} is not a valid name (letters, digits, _ and -)`);
  if (name in BUILT_IN) throw new Error(`registerReward: "${name}" is a built-in reward`);
  if (typeof fn !== 'function') throw new Error(`registerReward: the reward "${name}" must be a function`);
  registry.set(name, fn);
}

export function unregisterReward(name: string): void {
  if (!(name in BUILT_IN)) registry.delete(name);
}

export function rewardNames(): string[] {
  return [...registry.keys()];
}

export function getReward(name: string): RewardFn {
  const fn = registry.get(name);
  if (fn === undefined) throw new Error(`unknown reward "${name}" (known: ${rewardNames().join(', ')}; register others with registerReward)`);
  return fn;
}

export interface ScoredCompletion {
  /** The weighted sum. */
  reward: number;
  /** Each named reward's raw value. */
  parts: Record<string, number>;
}

/** Scores one completion with every reward of `weights` (names resolved when the scorer is made). */
export function makeScorer(weights: Readonly<Record<string, number>>): (ctx: RewardContext) => ScoredCompletion {
  const fns = Object.entries(weights).map(([name, w]) => ({ name, w, fn: getReward(name) }));
  return (ctx) => {
    const parts: Record<string, number> = {};
    let reward = 0;
    for (const { name, w, fn } of fns) {
      const v = fn(ctx);
      if (!Number.isFinite(v)) throw new Error(`reward "${name}" returned ${v} (rewards must be finite numbers)`);
      parts[name] = v;
      reward += w * v;
    }
    return { reward, parts };
  };
}
