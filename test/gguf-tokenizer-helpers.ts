// Shared by the GGUF tokenizer tests: cached tokenizer.json files, a stand-in for
// DeepSeek-R1-Distill-Qwen-1.5B's tokenizer files and the two revisions of its chat template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './tokenizer-helpers.js';

export type Json = Record<string, unknown>;

const parsed = new Map<string, Json>();

/** A parsed JSON file, read once per process (the big tokenizer.json files are shared between suites; never mutate them). */
export function readJson(dir: string, file: string): Json {
  const path = join(dir, file);
  let json = parsed.get(path);
  if (!json) {
    json = JSON.parse(readFileSync(path, 'utf8')) as Json;
    parsed.set(path, json);
  }
  return json;
}

// DeepSeek-R1-Distill-Qwen-1.5B: the base vocabulary and merges of Qwen2.5 (the same as Qwen3's,
// so Qwen3's tokenizer.json stands in for them) with DeepSeek's added tokens and
// tokenizer_config.json. Ids 151643–151646, 151648 and 151649 are from the model card and config
// notes; the rest of the list (Qwen's vision/tool/FIM tokens kept in place) is from the published
// tokenizer_config.json as remembered, not checked here: no copy of the model's files offline.
export const R1_DISTILL_ADDED: readonly [number, string, boolean][] = [
  [151643, '<｜end▁of▁sentence｜>', true],
  [151644, '<｜User｜>', false],
  [151645, '<｜Assistant｜>', false],
  [151646, '<｜begin▁of▁sentence｜>', true],
  [151647, '<|EOT|>', false],
  [151648, '<think>', false],
  [151649, '</think>', false],
  [151650, '<|quad_start|>', true],
  [151651, '<|quad_end|>', true],
  [151652, '<|vision_start|>', true],
  [151653, '<|vision_end|>', true],
  [151654, '<|vision_pad|>', true],
  [151655, '<|image_pad|>', true],
  [151656, '<|video_pad|>', true],
  [151657, '<tool_call>', false],
  [151658, '</tool_call>', false],
  [151659, '<|fim_prefix|>', false],
  [151660, '<|fim_middle|>', false],
  [151661, '<|fim_suffix|>', false],
  [151662, '<|fim_pad|>', false],
  [151663, '<|repo_name|>', false],
  [151664, '<|file_sep|>', false],
];
/** config.json vocab_size: the embedding rows. */
export const R1_DISTILL_ROWS = 151936;

const CHAT_DIR = join(ROOT, 'test', 'fixtures', 'chat');
// The chat_template of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B's tokenizer_config.json as first
// published, and the revision of 2025-02 that ends the generation prompt with "<think>\n" instead of
// nothing (its only change; the same template ships with the other R1 distills). Stored byte for byte.
export const TEMPLATE_2025_01 = readFileSync(join(CHAT_DIR, 'deepseek-r1-distill-qwen-1.5b.2025-01.jinja'), 'utf8');
export const TEMPLATE_2025_02 = readFileSync(join(CHAT_DIR, 'deepseek-r1-distill-qwen-1.5b.2025-02.jinja'), 'utf8');

/** tokenizer.json and tokenizer_config.json of R1-Distill-Qwen-1.5B, built on Qwen's tokenizer.json. */
export function r1DistillFiles(qwen: Json, chatTemplate: string): { json: Json; config: Json } {
  const token = (content: string) => ({ __type: 'AddedToken', content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return {
    json: {
      ...qwen,
      added_tokens: R1_DISTILL_ADDED.map(([id, content, special]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special })),
    },
    config: {
      add_bos_token: true,
      add_eos_token: false,
      bos_token: token('<｜begin▁of▁sentence｜>'),
      clean_up_tokenization_spaces: false,
      eos_token: token('<｜end▁of▁sentence｜>'),
      legacy: true,
      model_max_length: 16384,
      pad_token: token('<｜end▁of▁sentence｜>'),
      sp_model_kwargs: {},
      unk_token: null,
      tokenizer_class: 'LlamaTokenizerFast',
      chat_template: chatTemplate,
    },
  };
}
