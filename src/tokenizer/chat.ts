// Prompt formats: the DeepSeek-R1 chat layout, the plain R1-Zero prompt, Jinja chat templates from
// tokenizer_config.json files, and the parser that splits a completion into reasoning and answer.

import { Template } from '@huggingface/jinja';
import { SPECIAL_TOKENS } from './special.js';
import type { Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface R1ChatOptions {
  /** End with the opening of the assistant's turn (default true). */
  addGenerationPrompt?: boolean;
  /** Open the reasoning block in the generation prompt, as R1 does (default true); false gives V3's layout. */
  openThink?: boolean;
  bosToken?: string;
  eosToken?: string;
}

/** What a past assistant turn keeps: R1 drops earlier reasoning from the history. */
function visibleAnswer(content: string): string {
  const end = content.lastIndexOf(SPECIAL_TOKENS.thinkEnd);
  return end < 0 ? content : content.slice(end + SPECIAL_TOKENS.thinkEnd.length);
}

/**
 * `<｜begin▁of▁sentence｜>{system}<｜User｜>{msg}<｜Assistant｜><think>\n`: system messages first
 * (joined by a blank line), then the turns; past assistant turns end with the EOS token.
 */
export function renderR1Chat(messages: readonly ChatMessage[], options: R1ChatOptions = {}): string {
  const { addGenerationPrompt = true, openThink = true, bosToken = SPECIAL_TOKENS.bos, eosToken = SPECIAL_TOKENS.eos } = options;
  const system = messages.filter((m) => m.role === 'system').map((m) => m.content);
  let out = bosToken + system.join('\n\n');
  for (const m of messages) {
    if (m.role === 'user') out += SPECIAL_TOKENS.user + m.content;
    else if (m.role === 'assistant') out += SPECIAL_TOKENS.assistant + visibleAnswer(m.content) + eosToken;
    else if (m.role !== 'system') throw new Error(`unsupported chat role "${m.role}"`);
  }
  if (addGenerationPrompt) out += SPECIAL_TOKENS.assistant + (openThink ? `${SPECIAL_TOKENS.think}\n` : '');
  return out;
}

/**
 * The same layout as a Jinja chat template, written into the tokenizer_config.json of our
 * tokenizers so that Hugging Face transformers' apply_chat_template renders what renderR1Chat does.
 */
export const R1_CHAT_TEMPLATE = [
  "{%- set ns = namespace(system='', seen=false) -%}",
  '{%- for message in messages -%}',
  "{%- if message['role'] == 'system' -%}",
  "{%- if ns.seen %}{% set ns.system = ns.system + '\\n\\n' %}{% endif -%}",
  "{%- set ns.system = ns.system + message['content'] -%}",
  '{%- set ns.seen = true -%}',
  '{%- endif -%}',
  '{%- endfor -%}',
  '{{- bos_token + ns.system -}}',
  '{%- for message in messages -%}',
  "{%- if message['role'] == 'user' -%}",
  `{{- '${SPECIAL_TOKENS.user}' + message['content'] -}}`,
  "{%- elif message['role'] == 'assistant' -%}",
  "{%- set content = message['content'] -%}",
  `{%- if '${SPECIAL_TOKENS.thinkEnd}' in content %}{% set content = content.split('${SPECIAL_TOKENS.thinkEnd}')[-1] %}{% endif -%}`,
  `{{- '${SPECIAL_TOKENS.assistant}' + content + eos_token -}}`,
  '{%- endif -%}',
  '{%- endfor -%}',
  `{%- if add_generation_prompt %}{{ '${SPECIAL_TOKENS.assistant}${SPECIAL_TOKENS.think}\\n' }}{% endif -%}`,
].join('');

/**
 * The R1-Zero prompt: a plain-text frame (no chat tokens) that asks the base model to reason inside
 * <think> tags and answer inside <answer> tags. `{question}` is replaced by the question.
 */
export const R1_ZERO_TEMPLATE =
  'A conversation between User and Assistant. The User asks a question and the Assistant solves it. ' +
  'The Assistant first works through its reasoning, then states the final answer. The reasoning goes ' +
  'between <think> and </think>, the answer between <answer> and </answer>, like this: ' +
  '<think> reasoning here </think> <answer> answer here </answer>.\n' +
  'User: {question}\n' +
  'Assistant:';

/** Fills in the R1-Zero prompt; `openThink` appends " <think>" so the model starts reasoning at once. */
export function r1ZeroPrompt(question: string, options: { openThink?: boolean } = {}): string {
  const prompt = R1_ZERO_TEMPLATE.replace('{question}', () => question);
  return options.openThink ? `${prompt} ${SPECIAL_TOKENS.think}` : prompt;
}

/**
 * A Jinja chat template that renders a conversation as the R1-Zero prompt of its last user message,
 * BOS first (with " <think>" at the end when `openThink`): how a model trained from that prompt is
 * served, so chat renders what the model knows.
 */
export function r1ZeroChatTemplate(openThink: boolean): string {
  const [before, after] = R1_ZERO_TEMPLATE.split('{question}');
  const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return [
    "{%- set ns = namespace(q='') -%}",
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.q = m['content'] -%}{%- endif -%}{%- endfor -%}",
    `{{- bos_token + ${lit(before)} + ns.q + ${lit(after)}${openThink ? ` + ' ${SPECIAL_TOKENS.think}'` : ''} -}}`,
  ].join('');
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Further template variables (e.g. `enable_thinking` for Qwen3, `tools`). */
  variables?: Record<string, unknown>;
}

const templateCache = new Map<string, Template>();

/** Renders a Hugging Face Jinja chat template. */
export function renderChatTemplate(template: string, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  let compiled = templateCache.get(template);
  if (!compiled) {
    compiled = new Template(template);
    templateCache.set(template, compiled);
  }
  return compiled.render({
    ...options.variables,
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? false,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  });
}

/**
 * The prompt for `messages` in the tokenizer's own format: its Jinja chat template when it has one,
 * the R1 layout otherwise. The result is text; encode it without addBos (the template has the BOS).
 */
export function applyChatTemplate(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean; variables?: Record<string, unknown> } = {},
): string {
  const token = (id: number | undefined) => (id === undefined ? '' : (tokenizer.idToToken(id) ?? ''));
  const bosToken = token(tokenizer.special.bos);
  const eosToken = token(tokenizer.special.eos);
  const addGenerationPrompt = options.addGenerationPrompt ?? true;
  if (tokenizer.chatTemplate === undefined) return renderR1Chat(messages, { addGenerationPrompt, bosToken, eosToken });
  return renderChatTemplate(tokenizer.chatTemplate, messages, { ...options, addGenerationPrompt, bosToken, eosToken });
}

export interface CompletionFormat {
  /** The reasoning block was opened, by the prompt or by a <think> in the completion. */
  thinkOpened: boolean;
  /** A </think> closes it. */
  thinkClosed: boolean;
  /** An <answer> tag follows the reasoning. */
  answerOpened: boolean;
  /** The last <answer> is closed by </answer>. */
  answerClosed: boolean;
  /** Exactly one reasoning block, opened and closed, nothing but whitespace before it, no stray think tags. */
  strictThink: boolean;
  /** strictThink, then exactly one <answer>…</answer> and nothing else but whitespace: the R1-Zero format. */
  strict: boolean;
}

export interface ParsedCompletion {
  /** The text of the reasoning block, trimmed. */
  reasoning: string;
  /** Everything after the reasoning block, trimmed: what a chat API returns as `content`. */
  content: string;
  /** Inside the last <answer>…</answer> (or after a final unclosed <answer>), else the content; trimmed. */
  answer: string;
  format: CompletionFormat;
}

function occurrences(text: string, tag: string): number {
  return text.split(tag).length - 1;
}

/**
 * Splits a generated completion into reasoning and answer.
 * @param promptOpenedThink the prompt ended inside an open <think> (the R1 chat template does), so
 *   the completion starts with reasoning and holds only the closing </think>.
 * A completion cut off inside its reasoning has reasoning and no content; one with no think tags at
 * all is all content. With several </think>, the last one ends the reasoning (as the R1 template's
 * history rule has it), and the format flags say the completion was not well formed.
 */
export function parseCompletion(text: string, options: { promptOpenedThink?: boolean } = {}): ParsedCompletion {
  const { think, thinkEnd, answer: answerTag, answerEnd } = SPECIAL_TOKENS;
  let body = text;
  let thinkOpened = options.promptOpenedThink === true;
  let cleanStart = true;
  const open = text.indexOf(think);
  if (open >= 0 && (!thinkOpened || text.slice(0, open).trim() === '')) {
    // With the prompt already inside <think>, a repeated opening tag is tolerated but not strict.
    cleanStart = !thinkOpened && text.slice(0, open).trim() === '';
    thinkOpened = true;
    body = text.slice(open + think.length);
  }
  const close = body.lastIndexOf(thinkEnd);
  const thinkClosed = close >= 0;
  let reasoning = '';
  let content = body;
  if (thinkClosed) {
    reasoning = body.slice(0, close);
    content = body.slice(close + thinkEnd.length);
  } else if (thinkOpened) {
    reasoning = body;
    content = '';
  }

  const answerAt = content.lastIndexOf(answerTag);
  const answerOpened = answerAt >= 0;
  let answerClosed = false;
  let answer = content;
  if (answerOpened) {
    const inner = content.slice(answerAt + answerTag.length);
    const end = inner.indexOf(answerEnd);
    answerClosed = end >= 0;
    answer = answerClosed ? inner.slice(0, end) : inner;
  }

  const strictThink =
    thinkOpened && thinkClosed && cleanStart && occurrences(reasoning, think) + occurrences(reasoning, thinkEnd) + occurrences(content, think) === 0;
  const trimmed = content.trim();
  const strict =
    strictThink &&
    trimmed.startsWith(answerTag) &&
    trimmed.endsWith(answerEnd) &&
    occurrences(trimmed, answerTag) === 1 &&
    occurrences(trimmed, answerEnd) === 1;
  return {
    reasoning: reasoning.trim(),
    content: trimmed,
    answer: answer.trim(),
    format: { thinkOpened, thinkClosed, answerOpened, answerClosed, strictThink, strict },
  };
}
