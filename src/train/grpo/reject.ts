// Rejection sampling (the R1 recipe's step between reasoning RL and the final SFT): sample the RL
// model on training problems, keep the correct completions in the strict format, and write them as
// SFT records ({prompt, completion}) that `nanoseek train sft` reads.
import { openedThink, sampleCompletions } from '../../infer/index.js';
import type { CausalLM } from '../../model/model.js';
import { grade, questionText, renderPrompt, type Problem, type PromptTemplate } from '../../tasks/index.js';
import { SPECIAL_TOKENS, type Tokenizer } from '../../tokenizer/index.js';

export interface RejectSampleOptions {
  template: PromptTemplate;
  openThink?: boolean;
  /** Completions sampled per problem. */
  samples: number;
  /** Distinct correct completions kept per problem at most. */
  keepPerProblem: number;
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  seed: number;
}

export interface RejectSampleRecord {
  /** The bare question: SFT data wraps it in its own template. */
  prompt: string;
  /** `<think>…</think> <answer>…</answer>` as the model wrote it. */
  completion: string;
}

export interface RejectSampleResult {
  records: RejectSampleRecord[];
  sampled: number;
  correct: number;
  /** Problems with at least one kept completion. */
  solved: number;
  /** Tokens sampled, stop tokens included. */
  tokens: number;
}

/**
 * Samples every problem `samples` times; each reply is whole: a prompt that opened <think> put the
 * tag in the prompt, so the reply gets it back (SFT data holds the whole reply).
 */
export async function sampleReplies(
  model: CausalLM, tokenizer: Tokenizer, problems: readonly Problem[], o: Omit<RejectSampleOptions, 'keepPerProblem'>,
): Promise<{ replies: string[][]; tokens: number }> {
  const prompts = problems.map((p) => renderPrompt(tokenizer, p, o.template, o.openThink));
  const done = await sampleCompletions(model, tokenizer, prompts.map((p) => p.ids), {
    samples: o.samples, maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, seed: o.seed,
  });
  const replies = problems.map((_, p) => {
    const opened = openedThink(prompts[p].text);
    return done.slice(p * o.samples, (p + 1) * o.samples).map((c) => (opened !== null ? `${SPECIAL_TOKENS.think}${opened}${c.text}` : c.text.trimStart()));
  });
  return { replies, tokens: done.reduce((n, c) => n + c.tokens.length, 0) };
}

/** Samples every problem and keeps its correct, strictly formatted replies as SFT records. */
export async function rejectSample(model: CausalLM, tokenizer: Tokenizer, problems: readonly Problem[], o: RejectSampleOptions): Promise<RejectSampleResult> {
  const { replies, tokens } = await sampleReplies(model, tokenizer, problems, o);
  const records: RejectSampleRecord[] = [];
  let correct = 0;
  let solved = 0;
  problems.forEach((problem, p) => {
    const r = keepCorrect(problem, replies[p], o.keepPerProblem);
    correct += r.correct;
    if (r.kept.length > 0) solved++;
    for (const completion of r.kept) records.push({ prompt: questionText(problem), completion });
  });
  return { records, sampled: replies.length * o.samples, correct, solved, tokens };
}

/**
 * Rejection sampling's filter: of whole replies (`<think>…</think> <answer>…</answer>`, the think
 * tag included), the correct ones in the strict format, distinct, at most `keep`. `correct` counts
 * every correct reply, well-formed or not.
 */
export function keepCorrect(problem: Problem, replies: readonly string[], keep: number): { kept: string[]; correct: number } {
  const kept = new Set<string>();
  let correct = 0;
  for (const reply of replies) {
    const g = grade(problem, reply);
    if (g.accuracy !== 1) continue;
    correct++;
    if (g.format !== 1 || kept.size >= keep) continue;
    kept.add(reply.trimEnd());
  }
  return { kept: [...kept], correct };
}
