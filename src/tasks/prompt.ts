// How a problem is put to a model: BOS + the R1-Zero template, or the tokenizer's chat template (R1).
// RL, evaluation and rejection sampling render prompts the same way, so a model is evaluated on
// exactly the prompt it was trained on.
import { promptOpensThink } from '../infer/reasoning.js';
import { applyChatTemplate, type Tokenizer } from '../tokenizer/index.js';
import { questionText, zeroPrompt } from './problems.js';
import type { Problem } from './types.js';

/** How a problem becomes a prompt: BOS + the R1-Zero template, or the tokenizer's chat template (R1). */
export type PromptTemplate = 'r1-zero' | 'r1';
export const PROMPT_TEMPLATES: readonly PromptTemplate[] = ['r1-zero', 'r1'];

export interface RenderedPrompt {
  /** The prompt text (without a BOS the tokenizer adds). */
  text: string;
  ids: number[];
  /** The prompt leaves the model inside an open <think> block. */
  opensThink: boolean;
}

/** The prompt for a problem in the given template, as text and token ids. */
export function renderPrompt(tokenizer: Tokenizer, problem: Problem, template: PromptTemplate, openThink = false): RenderedPrompt {
  if (template === 'r1') {
    const text = applyChatTemplate(tokenizer, [{ role: 'user', content: questionText(problem) }]);
    return { text, ids: tokenizer.encode(text), opensThink: promptOpensThink(text) };
  }
  const text = zeroPrompt(problem, { openThink });
  return { text, ids: tokenizer.encode(text, { addBos: tokenizer.special.bos !== undefined }), opensThink: openThink };
}
