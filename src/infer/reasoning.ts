// Splitting a completion into reasoning (the text before </think>) and answer, as DeepSeek's API
// returns them (`reasoning_content` beside `content`), both for a finished text and incrementally for
// a stream. The answer loses its <answer>/</answer> tags: they are R1-Zero's output format, not text
// meant for the reader.
import { parseCompletion, SPECIAL_TOKENS } from '../tokenizer/index.js';
import { partialSuffix } from './stop.js';

const { think, thinkEnd, answer, answerEnd } = SPECIAL_TOKENS;

export interface SplitText {
  reasoning: string;
  content: string;
}

/**
 * What a rendered prompt wrote after the <think> it ends with ("\n" in R1's chat template, "" after
 * the R1-Zero prompt's " <think>"), or null when it leaves no think block open. A whole reply that
 * begins with its own <think> continues such a prompt once the tag and this text are dropped.
 */
export function openedThink(prompt: string): string | null {
  const m = /<think>(\s*)$/.exec(prompt);
  return m ? (m[1] as string) : null;
}

/** True when a rendered prompt leaves the model inside an open <think> block (R1's chat template does). */
export function promptOpensThink(prompt: string): boolean {
  return openedThink(prompt) !== null;
}

function stripAnswerTags(text: string): string {
  return text.split(answer).join('').split(answerEnd).join('').trim();
}

/** The finished completion's reasoning and answer (parseCompletion's rules). */
export function splitCompletion(text: string, promptOpenedThink: boolean): SplitText {
  const parsed = parseCompletion(text, { promptOpenedThink });
  return { reasoning: parsed.reasoning, content: stripAnswerTags(parsed.content) };
}

/** Streams one section trimmed at both ends, as String.trim would trim the whole of it. */
class TrimmedSection {
  private started = false;
  private trailing = '';

  push(text: string): string {
    let t = text;
    if (!this.started) {
      t = t.trimStart();
      if (t === '') return '';
      this.started = true;
    }
    // Whitespace is held back until something follows it: at the end of the section it is dropped.
    const all = this.trailing + t;
    const end = all.trimEnd().length;
    this.trailing = all.slice(end);
    return all.slice(0, end);
  }
}

// start: nothing seen yet, the prompt opened no block; opened: the prompt opened one, which a
// repeated <think> may open again (parseCompletion tolerates that); then reasoning, then content.
type Mode = 'start' | 'opened' | 'reasoning' | 'content';

/**
 * Incremental split of streamed completion text. It agrees with splitCompletion on well-formed
 * output; on malformed output it cannot take text back, so the FIRST </think> ends the reasoning
 * (parseCompletion uses the last) and, when the prompt did not open a reasoning block, only a
 * <think> at the very start opens one.
 */
export class ReasoningSplitter {
  private mode: Mode;
  private pending = '';
  private readonly reasoningPart = new TrimmedSection();
  private readonly contentPart = new TrimmedSection();

  constructor(promptOpenedThink: boolean) {
    this.mode = promptOpenedThink ? 'opened' : 'start';
  }

  /** Still before the end of the reasoning block (or not yet known to have none). */
  get reasoningOpen(): boolean {
    return this.mode !== 'content';
  }

  /**
   * The reasoning and answer text that `text` released. `reasoning` says the text was (at least in
   * part) inside the reasoning block, for counting reasoning tokens.
   */
  push(text: string): SplitText & { inReasoning: boolean } {
    const out = { reasoning: '', content: '', inReasoning: false };
    this.pending += text;
    for (;;) {
      if (this.mode === 'start' || this.mode === 'opened') {
        if (this.mode === 'opened') out.inReasoning = true;
        const t = this.pending.trimStart();
        if (t.startsWith(think)) {
          this.pending = t.slice(think.length);
          this.mode = 'reasoning';
          continue;
        }
        if (think.startsWith(t)) return out; // nothing yet, or the start of a <think>
        this.mode = this.mode === 'opened' ? 'reasoning' : 'content';
        continue;
      }
      if (this.mode === 'reasoning') {
        out.inReasoning = true;
        const end = this.pending.indexOf(thinkEnd);
        if (end >= 0) {
          out.reasoning += this.reasoningPart.push(this.pending.slice(0, end));
          this.pending = this.pending.slice(end + thinkEnd.length);
          this.mode = 'content';
          continue;
        }
        const keep = partialSuffix(this.pending, [thinkEnd]);
        out.reasoning += this.reasoningPart.push(this.pending.slice(0, this.pending.length - keep));
        this.pending = this.pending.slice(this.pending.length - keep);
        return out;
      }
      const clean = this.pending.split(answer).join('').split(answerEnd).join('');
      const keep = partialSuffix(clean, [answer, answerEnd]);
      out.content += this.contentPart.push(clean.slice(0, clean.length - keep));
      this.pending = clean.slice(clean.length - keep);
      return out;
    }
  }

  /** Whatever was held back for a tag that never completed. */
  flush(): SplitText {
    const rest = this.pending;
    this.pending = '';
    if (this.mode === 'reasoning' || this.mode === 'opened') return { reasoning: this.reasoningPart.push(rest), content: '' };
    return { reasoning: '', content: this.contentPart.push(rest) };
  }
}
