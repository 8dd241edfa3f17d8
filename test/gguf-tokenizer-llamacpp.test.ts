// llama.cpp as the oracle for our GGUF tokenizer metadata: tokenizerToGguf's entries are written
// into a vocabulary-only GGUF file, loaded by llama.cpp (node-llama-cpp's prebuilt binary, CPU),
// and its token ids compared with those of tokenizerFromGguf's tokenizer. This checks that
// llama.cpp accepts the metadata (names, value types, padding) and that each pre-tokenizer name
// means to llama.cpp what it means to us.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { writeGguf, type GgufMetadata } from '../src/io/gguf.js';
import { tokenizerFromGguf, tokenizerToGguf } from '../src/io/gguf-tokenizer.js';
import { ByteLevelBpeTokenizer, loadTokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';
import { R1_DISTILL_ROWS, r1DistillFiles, readJson, TEMPLATE_2025_02 } from './gguf-tokenizer-helpers.js';
import { corpusTexts, randomText, realTokenizerDir, ROOT } from './tokenizer-helpers.js';

let llama: Llama;
let dir: string;

before(async () => {
  // The probes node-llama-cpp runs on a file without tensors log errors; the vocabulary loads.
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
  dir = mkdtempSync(join(tmpdir(), 'nanoseek-gguf-tok-'));
});

after(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Writes `tokenizerMeta` with the few model keys llama.cpp reads before the vocabulary, and loads
 * it. The architecture only has to load; the vocabulary does not depend on it.
 */
async function loadVocab(name: string, tokenizerMeta: GgufMetadata, arch: string): Promise<LlamaModel> {
  const meta: GgufMetadata = new Map([
    ['general.architecture', { type: 'string', value: arch }],
    [`${arch}.context_length`, { type: 'u32', value: 4096 }],
    [`${arch}.embedding_length`, { type: 'u32', value: 64 }],
    [`${arch}.block_count`, { type: 'u32', value: 1 }],
    [`${arch}.attention.head_count`, { type: 'u32', value: 1 }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: 1e-6 }],
    ...tokenizerMeta,
  ]);
  const path = join(dir, `${name}.gguf`);
  await writeGguf(path, meta, []);
  return llama.loadModel({ modelPath: path, vocabOnly: true });
}

function inputs(seed: number): string[] {
  const rng = new Rng(seed);
  const out = corpusTexts();
  for (let i = 0; i < 300; i++) out.push(randomText(rng, 25));
  return out;
}

/** llama.cpp's ids with special-token parsing on (as our encode always matches added tokens), and its detokenization. */
function assertLlamaCppAgrees(model: LlamaModel, ours: ByteLevelBpeTokenizer, texts: string[], label: string, decode = true): void {
  for (const text of texts) {
    const ids = ours.encode(text);
    assert.deepEqual([...model.tokenize(text, true)], ids, `${label}: ${JSON.stringify(text.slice(0, 80))}`);
    if (decode) assert.equal(model.detokenize(ids as Token[], true), ours.decode(ids), `${label} detokenize: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

describe('llama.cpp reads our tokenizer metadata as we do', () => {
  test('nanoseek\'s own tokenizer as "qwen2" (no normalizer: exact)', async () => {
    const ours = (await loadTokenizer(join(ROOT, 'models', 'nano-r1zero'))) as ByteLevelBpeTokenizer;
    const meta = tokenizerToGguf(ours, { vocabSize: ours.vocabSize + 3 });
    const back = tokenizerFromGguf(meta, 'nano.gguf').tokenizer;
    const model = await loadVocab('nano', meta, 'qwen2');
    try {
      assert.deepEqual([model.tokens.bos, model.tokens.eos], [ours.special.bos, ours.special.eos]);
      assertLlamaCppAgrees(model, back, inputs(21), 'nano');
    } finally {
      await model.dispose();
    }
  });

  test('R1-Distill-Qwen-1.5B as "deepseek-r1-qwen", padded to 151936 rows', async () => {
    const { json, config } = r1DistillFiles(readJson(realTokenizerDir('qwen3'), 'tokenizer.json'), TEMPLATE_2025_02);
    const meta = tokenizerToGguf(new ByteLevelBpeTokenizer(json, config), { vocabSize: R1_DISTILL_ROWS, pre: 'deepseek-r1-qwen' });
    const ours = tokenizerFromGguf(meta, 'r1-distill.gguf').tokenizer;
    const model = await loadVocab('r1-distill', meta, 'qwen2');
    try {
      assert.deepEqual([model.tokens.bos, model.tokens.eos], [151646, 151643]);
      // llama.cpp applies no normalizer; Qwen's tokenizer.json (and so ours) normalizes to NFC.
      // On NFC text the two must agree exactly.
      assertLlamaCppAgrees(model, ours, inputs(22).map((t) => t.normalize('NFC')), 'r1-distill');
      // Token types at work: without special-token parsing llama.cpp still matches the
      // USER_DEFINED <think> but spells out the CONTROL <｜User｜>.
      const plain = model.tokenize('<｜User｜><think>', false).map(Number);
      assert.equal(plain.at(-1), 151648);
      assert.ok(!plain.includes(151644));
    } finally {
      await model.dispose();
    }
  });

  test('DeepSeek-V3 as "deepseek-v3"', async () => {
    const name = 'deepseek_v3';
    const ref = new ByteLevelBpeTokenizer(readJson(realTokenizerDir(name), 'tokenizer.json'), readJson(realTokenizerDir(name), 'tokenizer_config.json'));
    const meta = tokenizerToGguf(ref, { vocabSize: 129280 });
    const model = await loadVocab(name, meta, 'qwen2');
    try {
      assertLlamaCppAgrees(model, tokenizerFromGguf(meta, 'v3.gguf').tokenizer, inputs(23), name);
    } finally {
      await model.dispose();
    }
  });

  test('Llama 3.1 as "llama-bpe" (ids; llama.cpp also cleans up spaces when detokenizing)', async () => {
    const name = 'llama3_1';
    const ref = new ByteLevelBpeTokenizer(readJson(realTokenizerDir(name), 'tokenizer.json'), readJson(realTokenizerDir(name), 'tokenizer_config.json'));
    const meta = tokenizerToGguf(ref, { vocabSize: 128256 });
    const model = await loadVocab(name, meta, 'qwen2');
    try {
      assertLlamaCppAgrees(model, tokenizerFromGguf(meta, 'llama.gguf').tokenizer, inputs(24), name, false);
    } finally {
      await model.dispose();
    }
  });
});
