// Evaluating a model on problems: greedy pass@1, and pass@k / maj@k from n sampled completions per
// problem, with format compliance and response / reasoning lengths. Prompts are rendered as in RL
// (tasks/prompt.ts) and sampled as in RL (infer/rollout.ts).
import { sampleCompletions, type Completion } from '../infer/index.js';
import type { CausalLM } from '../model/model.js';
import { grade, questionText, renderPrompt, type Problem, type PromptTemplate } from '../tasks/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { majorityCorrect, passAtK, thinkTokens, voteKey } from './metrics.js';

export interface EvalOptions {
  template: PromptTemplate;
  /** R1-Zero template: the prompt ends with "<think>". */
  openThink?: boolean;
  /** Sampled completions per problem for pass@k and maj@k (0: greedy only). */
  n: number;
  /** k of pass@k and maj@k, at most n; default n. */
  k?: number;
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed: number;
  /** Completions to return as examples (greedy, first problems first). */
  examples?: number;
  /**
   * Text every response is made to begin with: appended to the prompt and graded (and counted) as
   * part of the completion. After an opened <think>, "\n" forces the worked form and
   * " </think> <answer>" a direct answer: how to tell which of the two a base model does better.
   */
  prefill?: string;
}

export interface EvalExample {
  question: string;
  completion: string;
  accuracy: number;
  format: number;
}

export interface EvalReport {
  problems: number;
  n: number;
  k: number | null;
  /** Greedy decoding, share correct. */
  'pass@1': number;
  /** Unbiased estimate from the n samples (null when n = 0). */
  'pass@k': number | null;
  /** Majority vote over the first k samples (null when n = 0). */
  'maj@k': number | null;
  /** Mean accuracy of the sampled completions (null when n = 0). */
  sampled_accuracy: number | null;
  /** Greedy completions in the strict think-then-answer format. */
  format_rate: number;
  /** Greedy completions: tokens generated (stop token included). */
  mean_response_tokens: number;
  /** Greedy completions: tokens inside the reasoning block. */
  mean_think_tokens: number;
  examples: EvalExample[];
}

/** Scores `model` on `problems` (an empty list is an error: there is nothing to report). */
export async function evaluateModel(model: CausalLM, tokenizer: Tokenizer, problems: readonly Problem[], o: EvalOptions): Promise<EvalReport> {
  if (problems.length === 0) throw new Error('evaluate: no problems');
  const k = o.n === 0 ? null : (o.k ?? o.n);
  if (k !== null && (!Number.isSafeInteger(k) || k < 1 || k > o.n)) throw new Error(`evaluate: k = ${k} must be in [1, n = ${o.n}]`);
  const prompts = problems.map((p) => renderPrompt(tokenizer, p, o.template, o.openThink));
  const opens = prompts.map((p) => p.opensThink);
  const prefill = o.prefill ?? '';
  const pre = prefill === '' ? [] : tokenizer.encode(prefill);
  const ids = prompts.map((p) => [...p.ids, ...pre]);
  const common = { maxNewTokens: o.maxNewTokens, seed: o.seed };
  const greedy = await sampleCompletions(model, tokenizer, ids, { ...common, samples: 1, temperature: 0 });
  const gradeOf = (c: Completion) => grade(problems[c.promptIndex], prefill + c.text, { promptOpensThink: opens[c.promptIndex] });

  let correct = 0, strict = 0, tokens = 0, think = 0;
  const examples: EvalExample[] = [];
  for (const c of greedy) {
    const g = gradeOf(c);
    correct += g.accuracy;
    if (g.format === 1) strict++;
    tokens += pre.length + c.tokens.length;
    think += thinkTokens([...pre, ...c.tokens], tokenizer.special, opens[c.promptIndex]);
    if (examples.length < (o.examples ?? 0)) examples.push({ question: questionText(problems[c.promptIndex]), completion: prefill + c.text, accuracy: g.accuracy, format: g.format });
  }
  const P = problems.length;
  const report: EvalReport = {
    problems: P,
    n: o.n,
    k,
    'pass@1': correct / P,
    'pass@k': null,
    'maj@k': null,
    sampled_accuracy: null,
    format_rate: strict / P,
    mean_response_tokens: tokens / P,
    mean_think_tokens: think / P,
    examples,
  };
  if (k === null) return report;

  const sampled = await sampleCompletions(model, tokenizer, ids, { ...common, samples: o.n, temperature: o.temperature, topP: o.topP, topK: o.topK });
  let pass = 0, maj = 0, sampledCorrect = 0;
  for (let p = 0; p < P; p++) {
    const mine = sampled.slice(p * o.n, (p + 1) * o.n).map((c) => ({ c, g: gradeOf(c) }));
    const right = mine.filter((x) => x.g.accuracy === 1).length;
    sampledCorrect += right;
    pass += passAtK(o.n, right, k);
    if (majorityCorrect(problems[p], mine.slice(0, k).map((x) => voteKey(problems[p], x.g)))) maj++;
  }
  report['pass@k'] = pass / P;
  report['maj@k'] = maj / P;
  report.sampled_accuracy = sampledCorrect / (P * o.n);
  return report;
}
