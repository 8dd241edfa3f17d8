import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  applyChatTemplate,
  loadTokenizer,
  parseCompletion,
  r1ZeroPrompt,
  renderChatTemplate,
  renderR1Chat,
  R1_CHAT_TEMPLATE,
  SPECIAL_TOKENS,
  trainTokenizer,
  type ChatMessage,
} from '../src/tokenizer/index.js';
import { realTokenizerDir } from './tokenizer-helpers.js';

const BOS = SPECIAL_TOKENS.bos;
const EOS = SPECIAL_TOKENS.eos;

function chatTemplateOf(name: 'deepseek_v3' | 'qwen3'): string {
  return JSON.parse(readFileSync(join(realTokenizerDir(name), 'tokenizer_config.json'), 'utf8')).chat_template;
}

const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'What is 2+2?' }],
  [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi' },
  ],
  [
    { role: 'system', content: 'Rule one.' },
    { role: 'system', content: 'Rule two.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: 'It is 4.' },
    { role: 'user', content: 'And 3+3, in 日本語? 🤗' },
  ],
  [
    { role: 'user', content: 'a' },
    { role: 'assistant', content: '' },
    { role: 'user', content: 'line\nbreaks\n\n' },
  ],
];

describe('R1 chat format', () => {
  test('renders the documented layout, dropping past reasoning', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\n2+2 is 4.\n</think>\n\nIt is 4.' },
      { role: 'user', content: 'And 3+3?' },
    ];
    assert.equal(
      renderR1Chat(messages),
      `${BOS}Be brief.<｜User｜>What is 2+2?<｜Assistant｜>\n\nIt is 4.${EOS}<｜User｜>And 3+3?<｜Assistant｜><think>\n`,
    );
    assert.equal(renderR1Chat([{ role: 'user', content: 'x' }], { addGenerationPrompt: false }), `${BOS}<｜User｜>x`);
    // Only the text after the last </think> survives.
    assert.equal(
      renderR1Chat([{ role: 'assistant', content: 'a</think>b</think>c' }], { addGenerationPrompt: false }),
      `${BOS}<｜Assistant｜>c${EOS}`,
    );
    assert.throws(() => renderR1Chat([{ role: 'tool', content: 'x' }]), /unsupported chat role "tool"/);
  });

  test('our Jinja template renders exactly what renderR1Chat does', () => {
    const withReasoning = [...CONVERSATIONS[2].slice(0, 3), { role: 'assistant', content: '<think>\nhmm</think>\n\n4' }, { role: 'user', content: '?' }];
    for (const messages of [...CONVERSATIONS, withReasoning]) {
      for (const addGenerationPrompt of [true, false]) {
        assert.equal(
          renderChatTemplate(R1_CHAT_TEMPLATE, messages, { addGenerationPrompt, bosToken: BOS, eosToken: EOS }),
          renderR1Chat(messages, { addGenerationPrompt }),
        );
      }
    }
  });

  test("DeepSeek-V3's own template renders the same layout, without the opened <think>", () => {
    const template = chatTemplateOf('deepseek_v3');
    for (const messages of CONVERSATIONS) {
      for (const addGenerationPrompt of [true, false]) {
        assert.equal(
          renderChatTemplate(template, messages, { addGenerationPrompt, bosToken: BOS, eosToken: EOS }),
          renderR1Chat(messages, { addGenerationPrompt, openThink: false }),
        );
      }
    }
  });

  test("Qwen3's template renders its ChatML layout and thinking switch", () => {
    const template = chatTemplateOf('qwen3');
    const messages = CONVERSATIONS[1];
    const base = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
    assert.equal(renderChatTemplate(template, messages, { addGenerationPrompt: true }), base);
    assert.equal(
      renderChatTemplate(template, messages, { addGenerationPrompt: true, variables: { enable_thinking: false } }),
      `${base}<think>\n\n</think>\n\n`,
    );
  });

  test('applyChatTemplate uses the tokenizer’s template and tokens', async () => {
    const deepseek = await loadTokenizer(realTokenizerDir('deepseek_v3'));
    assert.equal(applyChatTemplate(deepseek, CONVERSATIONS[0]), `${BOS}<｜User｜>What is 2+2?<｜Assistant｜>`);
    const ours = await trainTokenizer(['hello world'], { vocabSize: 300 });
    const prompt = applyChatTemplate(ours, CONVERSATIONS[2]);
    assert.equal(prompt, renderR1Chat(CONVERSATIONS[2]));
    const ids = ours.encode(prompt);
    assert.equal(ids[0], ours.special.bos);
    assert.deepEqual(ids.slice(-3), [ours.special.assistant, ours.special.think, ours.encode('\n')[0]]);
  });
});

describe('R1-Zero prompt', () => {
  test('frames the question and ends with "Assistant:"', () => {
    const prompt = r1ZeroPrompt('What is $1 + 2$?');
    assert.ok(prompt.startsWith('A conversation between User and Assistant.'));
    assert.ok(prompt.includes('<think>') && prompt.includes('</answer>'));
    assert.ok(prompt.endsWith('User: What is $1 + 2$?\nAssistant:'));
    assert.ok(r1ZeroPrompt('q', { openThink: true }).endsWith('Assistant: <think>'));
  });
});

describe('parseCompletion', () => {
  test('the R1-Zero format: <think>…</think> <answer>…</answer>', () => {
    const p = parseCompletion(' <think> 3 times 7 is 21 </think>\n<answer> 21 </answer>\n');
    assert.equal(p.reasoning, '3 times 7 is 21');
    assert.equal(p.answer, '21');
    assert.equal(p.content, '<answer> 21 </answer>');
    assert.deepEqual(p.format, { thinkOpened: true, thinkClosed: true, answerOpened: true, answerClosed: true, strictThink: true, strict: true });
  });

  test('the R1 chat case: the prompt opened <think>, the completion only closes it', () => {
    const p = parseCompletion('Let me add.\n</think>\n\nThe answer is 4.', { promptOpenedThink: true });
    assert.equal(p.reasoning, 'Let me add.');
    assert.equal(p.content, 'The answer is 4.');
    assert.equal(p.answer, 'The answer is 4.');
    assert.equal(p.format.strictThink, true);
    assert.equal(p.format.strict, false);
    // Without the option the same text has reasoning closed but never opened.
    const q = parseCompletion('Let me add.\n</think>\n\nThe answer is 4.');
    assert.equal(q.reasoning, 'Let me add.');
    assert.equal(q.format.thinkOpened, false);
    assert.equal(q.format.strictThink, false);
  });

  test('a completion cut off inside its reasoning has no content', () => {
    const p = parseCompletion('<think> still thinking about', {});
    assert.equal(p.reasoning, 'still thinking about');
    assert.equal(p.content, '');
    assert.equal(p.answer, '');
    assert.equal(p.format.thinkClosed, false);
    const q = parseCompletion('still thinking', { promptOpenedThink: true });
    assert.equal(q.reasoning, 'still thinking');
    assert.equal(q.content, '');
  });

  test('no tags at all is all content', () => {
    const p = parseCompletion('  just 42 ');
    assert.equal(p.reasoning, '');
    assert.equal(p.content, 'just 42');
    assert.equal(p.answer, 'just 42');
    assert.deepEqual(p.format, { thinkOpened: false, thinkClosed: false, answerOpened: false, answerClosed: false, strictThink: false, strict: false });
  });

  test('repeated, stray and unbalanced tags are tolerated but not strict', () => {
    const repeated = parseCompletion('<think>a</think>b</think><answer>1</answer><answer>2</answer>');
    assert.equal(repeated.reasoning, 'a</think>b');
    assert.equal(repeated.answer, '2');
    assert.equal(repeated.format.strictThink, false);
    assert.equal(repeated.format.strict, false);

    const prefixed = parseCompletion('Sure! <think>x</think><answer>1</answer>');
    assert.equal(prefixed.reasoning, 'x');
    assert.equal(prefixed.answer, '1');
    assert.equal(prefixed.format.strictThink, false);

    const reopened = parseCompletion('<think>x</think>\n<answer>1</answer>', { promptOpenedThink: true });
    assert.equal(reopened.reasoning, 'x');
    assert.equal(reopened.format.strictThink, false);

    const unclosed = parseCompletion('<think>x</think> <answer> 7');
    assert.equal(unclosed.answer, '7');
    assert.equal(unclosed.format.answerOpened, true);
    assert.equal(unclosed.format.answerClosed, false);
    assert.equal(unclosed.format.strict, false);

    const trailing = parseCompletion('<think>x</think><answer>1</answer> and more');
    assert.equal(trailing.answer, '1');
    assert.equal(trailing.format.strict, false);

    const nested = parseCompletion('<think>x <think> y</think><answer>1</answer>');
    assert.equal(nested.format.strictThink, false);
  });
});
