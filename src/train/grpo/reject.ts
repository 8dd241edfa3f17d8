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
}

/**
 * Samples every problem and keeps its correct, strictly formatted completions. A prompt that opened
 * <think> put the tag in the prompt, so the record's completion gets it back: SFT data holds the
 * whole reply.
 */
export async function rejectSample(model: CausalLM, tokenizer: Tokenizer, problems: readonly Problem[], o: RejectSampleOptions): Promise<RejectSampleResult> {
  const prompts = problems.map((p) => renderPrompt(tokenizer, p, o.template, o.openThink));
  const done = await sampleCompletions(model, tokenizer, prompts.map((p) => p.ids), {
    samples: o.samples, maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, seed: o.seed,
  });
  const records: RejectSampleRecord[] = [];
  let correct = 0;
  let solved = 0;
  problems.forEach((problem, p) => {
    const opens = prompts[p].opensThink;
    const kept = new Set<string>();
    for (const c of done.slice(p * o.samples, (p + 1) * o.samples)) {
      const g = grade(problem, c.text, { promptOpensThink: opens });
      if (g.accuracy !== 1) continue;
      correct++;
      if (g.format !== 1 || kept.size >= o.keepPerProblem) continue;
      const reply = opens ? `${SPECIAL_TOKENS.think}${openedThink(prompts[p].text)}${c.text}` : c.text.trimStart();
      kept.add(reply.trimEnd());
    }
    if (kept.size > 0) solved++;
    for (const completion of kept) records.push({ prompt: questionText(problem), completion });
  });
  return { records, sampled: done.length, correct, solved };
}
