// The traffic the expert report and benchmark put through a model: held-out sums of six one-digit
// numbers in the R1-Zero prompt (what the shipped models answer), decoded greedily in one batch
// through the continuous-batching engine — prefill chunks and decode steps, as when serving.
import type { CausalLM } from '../model/model.js';
import { generate } from '../infer/index.js';
import { grade, heldOutSet, renderPrompt, type Problem } from '../tasks/index.js';
import type { Tokenizer } from '../tokenizer/index.js';

/** The held-out problems of the workload: `count` of them, skipping the first `from`. */
export function workloadProblems(count: number, from = 0): Problem[] {
  return heldOutSet({ task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] }, from + count).slice(from);
}

export interface WorkloadResult {
  /** Every completion's tokens, in problem order. */
  tokens: number[][];
  /** Tokens generated (decode) and prompt tokens (prefill). */
  generated: number;
  prompt: number;
  seconds: number;
  /** Share of the problems answered right (greedy pass@1). */
  accuracy: number;
}

export async function runWorkload(model: CausalLM, tokenizer: Tokenizer, problems: readonly Problem[], o: { maxTokens: number; batch?: number }): Promise<WorkloadResult> {
  const prompts = problems.map((p) => renderPrompt(tokenizer, p, 'r1-zero', true));
  const started = performance.now();
  const out = await generate(model, tokenizer, prompts.map((p) => p.ids), { temperature: 0, maxTokens: o.maxTokens, maxBatch: o.batch ?? problems.length, logprobs: false });
  const seconds = (performance.now() - started) / 1000;
  const right = out.reduce((a, c, i) => a + grade(problems[i], c.text, { promptOpensThink: true }).accuracy, 0);
  return {
    tokens: out.map((c) => c.tokens),
    generated: out.reduce((a, c) => a + c.tokens.length, 0),
    prompt: prompts.reduce((a, p) => a + p.ids.length, 0),
    seconds,
    accuracy: right / problems.length,
  };
}

/**
 * Skews routing on purpose: adds `delta` to the router's correction bias of `experts` in every MoE
 * layer, so selection favours them (the gate weights, raw scores, are untouched). Returns the undo.
 */
export function skewRouting(model: CausalLM, experts: readonly number[], delta: number): () => void {
  const saved = model.moeLayers().map((m) => {
    if (m.bias === null) throw new Error('skewRouting: the model\'s router has no correction bias (topk_method must be noaux_tc)');
    const before = Float32Array.from(m.bias.data);
    for (const e of experts) {
      if (!(Number.isInteger(e) && e >= 0 && e < m.E)) throw new Error(`skewRouting: expert ${e} is outside [0, ${m.E})`);
      m.bias.data[e] += delta;
    }
    return before;
  });
  return () => model.moeLayers().forEach((m, l) => m.bias!.data.set(saved[l]));
}
