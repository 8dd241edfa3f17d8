// The tokenizer carried in GGUF metadata (src/io/gguf-tokenizer.ts): real tokenizer.json files →
// GGUF metadata → tokenizer, id for id; padding to the embedding size; our shipped tokenizers; the
// metadata llama.cpp's converter writes for DeepSeek-R1-Distill-Qwen-1.5B; bad metadata; and the
// R1 distills' two chat template revisions through our renderer and reasoning split.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { GgufMetadata, GgufValue } from '../src/io/gguf.js';
import {
  GGUF_TOKEN_TYPE,
  looksSpecial,
  NORMALIZER_KEY,
  QWEN2_PATTERN,
  tokenizerFromGguf,
  tokenizerToGguf,
  type GgufTokenizer,
} from '../src/io/gguf-tokenizer.js';
import { promptOpensThink, ReasoningSplitter, splitCompletion } from '../src/infer/reasoning.js';
import {
  applyChatTemplate,
  ByteLevelBpeTokenizer,
  loadTokenizer,
  parseCompletion,
  PRE_TOKENIZER_PATTERN,
  renderR1Chat,
  type ChatMessage,
} from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';
import { R1_DISTILL_ROWS, r1DistillFiles, readJson, TEMPLATE_2025_01, TEMPLATE_2025_02, type Json } from './gguf-tokenizer-helpers.js';
import { corpusTexts, randomText, realTokenizerDir, ROOT, type RealTokenizerName } from './tokenizer-helpers.js';

function texts(seed: number): string[] {
  const rng = new Rng(seed);
  const out = corpusTexts();
  for (let i = 0; i < 300; i++) out.push(randomText(rng, 25));
  return out;
}

/** Same ids for every text, and the same text back from those ids. */
function assertSameEncoding(expected: ByteLevelBpeTokenizer, actual: ByteLevelBpeTokenizer, inputs: string[], label: string): void {
  for (const text of inputs) {
    const ids = expected.encode(text);
    assert.deepEqual(actual.encode(text), ids, `${label}: ${JSON.stringify(text.slice(0, 80))}`);
    assert.equal(actual.decode(ids), expected.decode(ids), `${label} decode: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

function arrayOf(meta: GgufMetadata, key: string): Array<number | bigint | boolean | string> {
  const v = meta.get(key);
  assert.ok(v && v.type === 'array', `${key} is an array`);
  return v.value;
}

function scalar(meta: GgufMetadata, key: string): GgufValue | undefined {
  return meta.get(key);
}

/** The types llama.cpp's loader insists on (llama-vocab.cpp: gguf_get_arr_type / get_key checks). */
function assertLlamaCppTypes(meta: GgufMetadata): void {
  const expect: Record<string, string> = {
    'tokenizer.ggml.model': 'string',
    'tokenizer.ggml.pre': 'string',
    'tokenizer.ggml.tokens': 'array:string',
    'tokenizer.ggml.token_type': 'array:i32',
    'tokenizer.ggml.merges': 'array:string',
    'tokenizer.ggml.bos_token_id': 'u32',
    'tokenizer.ggml.eos_token_id': 'u32',
    'tokenizer.ggml.padding_token_id': 'u32',
    'tokenizer.ggml.add_bos_token': 'bool',
    'tokenizer.ggml.add_eos_token': 'bool',
    'tokenizer.chat_template': 'string',
    [NORMALIZER_KEY]: 'string',
  };
  for (const [key, v] of meta) {
    const type = v.type === 'array' ? `array:${v.itemType}` : v.type;
    assert.equal(type, expect[key], `${key} has llama.cpp's type`);
  }
}

/**
 * What convert_hf_to_gguf.py writes for a GPT-2-style BPE model (get_vocab_base, _set_vocab_gpt2,
 * gguf-py's SpecialVocab), rewritten here from those sources as an independent second opinion:
 * every id below `hparams.vocab_size` gets the tokenizer's token or "[PAD{id}]" (UNUSED); added
 * tokens are CONTROL when special or special-looking, else USER_DEFINED with "▁" turned into " ";
 * special ids come from tokenizer_config.json's token texts looked up among the added tokens, then
 * from config.json; add_bos/add_eos from tokenizer_config.json.
 */
function convertLikeLlamaCpp(json: Json, config: Json, hparams: Record<string, number>, pre: string): GgufMetadata {
  // does_token_look_special
  const looksSpecial = (t: string) =>
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) ||
    (t.startsWith('<unused') && t.endsWith('>'));
  const model = json.model as Json;
  const added = json.added_tokens as Json[];
  const reverse = new Map<number, string>();
  for (const [text, id] of Object.entries(model.vocab as Record<string, number>)) reverse.set(id, text);
  for (const t of added) reverse.set(t.id as number, t.content as string);
  const addedById = new Map(added.map((t) => [t.id as number, t]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < hparams.vocab_size; i++) {
    const text = reverse.get(i);
    if (text === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(5);
      continue;
    }
    const a = addedById.get(i);
    if (a && (a.special === true || looksSpecial(text))) types.push(3);
    else if (a) types.push(4);
    else types.push(1);
    tokens.push(a && a.special !== true && !looksSpecial(text) ? text.replaceAll('▁', ' ') : text);
  }
  const merges = (model.merges as Array<string | string[]>).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const meta: GgufMetadata = new Map();
  meta.set('tokenizer.ggml.model', { type: 'string', value: 'gpt2' });
  meta.set('tokenizer.ggml.pre', { type: 'string', value: pre });
  meta.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens });
  meta.set('tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types });
  meta.set('tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges });
  const keys: Record<string, string> = { bos: 'bos_token_id', eos: 'eos_token_id', pad: 'padding_token_id' };
  for (const typ of ['bos', 'eos', 'pad']) {
    const entry = config[`${typ}_token`];
    const content = typeof entry === 'string' ? entry : ((entry as Json | null)?.content as string | undefined);
    const id = added.find((t) => t.content === content)?.id ?? hparams[`${typ}_token_id`];
    if (typeof id === 'number') meta.set(`tokenizer.ggml.${keys[typ]}`, { type: 'u32', value: id });
  }
  for (const typ of ['bos', 'eos']) {
    const flag = config[`add_${typ}_token`];
    if (typeof flag === 'boolean') meta.set(`tokenizer.ggml.add_${typ}_token`, { type: 'bool', value: flag });
  }
  if (typeof config.chat_template === 'string') meta.set('tokenizer.chat_template', { type: 'string', value: config.chat_template });
  return meta;
}

const REAL: { name: RealTokenizerName; pre: string; rows: number }[] = [
  // Embedding rows of DeepSeek-V3/R1 (config.json vocab_size 129280), Qwen3 (151936), Llama 3.1 (128256).
  { name: 'deepseek_v3', pre: 'deepseek-v3', rows: 129280 },
  { name: 'qwen3', pre: 'qwen2', rows: 151936 },
  { name: 'llama3_1', pre: 'llama-bpe', rows: 128256 },
];

for (const { name, pre, rows } of REAL) {
  describe(`${name} tokenizer.json → GGUF metadata → tokenizer`, () => {
    let json: Json;
    let config: Json;
    let ref: ByteLevelBpeTokenizer;
    let meta: GgufMetadata;
    let gguf: GgufTokenizer;
    before(() => {
      json = readJson(realTokenizerDir(name), 'tokenizer.json');
      config = readJson(realTokenizerDir(name), 'tokenizer_config.json');
      ref = new ByteLevelBpeTokenizer(json, config);
      meta = tokenizerToGguf(ref, { vocabSize: rows });
      gguf = tokenizerFromGguf(meta, `${name}.gguf`);
    });

    test('writes what llama.cpp reads', () => {
      assertLlamaCppTypes(meta);
      assert.equal(scalar(meta, 'tokenizer.ggml.pre')?.value, pre);
      assert.equal(arrayOf(meta, 'tokenizer.ggml.tokens').length, rows);
      assert.equal(meta.has(NORMALIZER_KEY), false, 'the family normalizer needs no extension key');
      const types = arrayOf(meta, 'tokenizer.ggml.token_type');
      for (const t of ref.addedTokens) {
        assert.equal(types[t.id], t.special || looksSpecial(t.content) ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined, t.content);
      }
      const unused = types.filter((t) => t === GGUF_TOKEN_TYPE.unused).length;
      assert.equal(unused, rows - ref.vocabSize);
      assert.equal(gguf.pre, pre);
      assert.equal(gguf.vocabSize, rows);
    });

    test('encodes and decodes id for id as the tokenizer.json does', () => {
      assertSameEncoding(ref, gguf.tokenizer, texts(11), name);
    });

    test('keeps the special tokens, BOS rule and chat template', () => {
      const { bos, eos, pad } = ref.special;
      assert.deepEqual([gguf.bosId, gguf.eosId, gguf.padId], [bos, eos, pad]);
      assert.deepEqual(gguf.tokenizer.special, ref.special);
      assert.equal(gguf.addBos, name !== 'qwen3');
      assert.equal(gguf.addEos, false);
      assert.equal(gguf.chatTemplate, ref.chatTemplate);
      assert.equal(gguf.tokenizer.chatTemplate, ref.chatTemplate);
      // A Hugging Face tokenizer built from the reconstructed files adds BOS exactly when the model's does.
      const hf = new HfTokenizer(gguf.tokenizerJson, gguf.tokenizerConfig);
      const withSpecial = hf.encode('Hello world', { add_special_tokens: true }).ids;
      assert.deepEqual(withSpecial, gguf.addBos ? [bos, ...ref.encode('Hello world')] : ref.encode('Hello world'));
      assert.deepEqual(hf.encode(corpusTexts()[0], { add_special_tokens: false }).ids, ref.encode(corpusTexts()[0]));
    });

    if (name === 'qwen3') {
      test('takes BOS from config.json when the tokenizer names none, as the converter does', () => {
        // Qwen3's tokenizer_config.json has bos_token null; its config.json says bos_token_id 151643.
        const withBos = tokenizerToGguf(ref, { vocabSize: rows, configIds: { bos: 151643 } });
        assert.equal(scalar(withBos, 'tokenizer.ggml.bos_token_id')?.value, 151643);
        assert.equal(scalar(withBos, 'tokenizer.ggml.add_bos_token')?.value, false);
        assert.throws(() => tokenizerToGguf(ref, { vocabSize: rows, configIds: { bos: rows - 1 } }), /bos id 151935 is no token/);
      });
    }

    if (name === 'deepseek_v3') {
      test('pads to the embedding size with UNUSED tokens that encode never produces', () => {
        const tokens = arrayOf(meta, 'tokenizer.ggml.tokens');
        assert.equal(tokens[ref.vocabSize], `[PAD${ref.vocabSize}]`);
        const text = `x[PAD${ref.vocabSize}] [PAD${rows - 1}]`;
        assert.ok(gguf.tokenizer.encode(text).every((id) => id < ref.vocabSize));
        assert.equal(gguf.tokenizer.decode([ref.vocabSize, rows - 1]), '');
        assert.equal(gguf.tokenizer.idToToken(rows - 1), undefined);
      });
    }
  });
}

interface R1DistillFixture {
  /** Built from the (stand-in) tokenizer.json and tokenizer_config.json. */
  ref: ByteLevelBpeTokenizer;
  /** The metadata llama.cpp's converter writes, with the 2025-02 chat template. */
  converted: GgufMetadata;
  gguf: GgufTokenizer;
}
let r1Fixture: R1DistillFixture | undefined;

function r1Distill(): R1DistillFixture {
  if (!r1Fixture) {
    const { json, config } = r1DistillFiles(readJson(realTokenizerDir('qwen3'), 'tokenizer.json'), TEMPLATE_2025_02);
    const ref = new ByteLevelBpeTokenizer(json, config);
    // config.json: bos_token_id = eos_token_id = 151643, vocab_size 151936.
    const converted = convertLikeLlamaCpp(json, config, { vocab_size: R1_DISTILL_ROWS, bos_token_id: 151643, eos_token_id: 151643 }, 'deepseek-r1-qwen');
    r1Fixture = { ref, converted, gguf: tokenizerFromGguf(converted, 'DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf') };
  }
  return r1Fixture;
}

describe('DeepSeek-R1-Distill-Qwen-1.5B as llama.cpp converts it', () => {
  let ref: ByteLevelBpeTokenizer;
  let converted: GgufMetadata;
  let gguf: GgufTokenizer;
  before(() => {
    ({ ref, converted, gguf } = r1Distill());
  });

  test('yields the documented special ids and types', () => {
    assert.equal(ref.vocabSize, 151665);
    assert.equal(gguf.vocabSize, R1_DISTILL_ROWS);
    assert.equal(gguf.pre, 'deepseek-r1-qwen');
    assert.deepEqual([gguf.bosId, gguf.eosId, gguf.padId, gguf.addBos, gguf.addEos], [151646, 151643, 151643, true, false]);
    assert.deepEqual(gguf.tokenizer.special, { bos: 151646, eos: 151643, pad: 151643, user: 151644, assistant: 151645, think: 151648, thinkEnd: 151649 });
    const types = arrayOf(converted, 'tokenizer.ggml.token_type');
    assert.equal(types[151646], GGUF_TOKEN_TYPE.control); // <｜begin▁of▁sentence｜>
    assert.equal(types[151644], GGUF_TOKEN_TYPE.control); // <｜User｜>: not special, but looks special
    assert.equal(types[151648], GGUF_TOKEN_TYPE.userDefined); // <think>
    assert.equal(types[151649], GGUF_TOKEN_TYPE.userDefined); // </think>
    assert.equal(types[151665], GGUF_TOKEN_TYPE.unused);
    assert.equal(arrayOf(converted, 'tokenizer.ggml.tokens')[151935], '[PAD151935]');
    // <think> stays visible when special tokens are skipped (the reasoning split needs it); BOS does not.
    assert.equal(gguf.tokenizer.decode([151646, 151648, 151649], { skipSpecial: true }), '<think></think>');
  });

  test('encodes id for id as the tokenizer.json does, never producing padding', () => {
    const inputs = texts(12);
    inputs.push('[PAD151665][PAD151935] <think>x</think><｜User｜>');
    assertSameEncoding(ref, gguf.tokenizer, inputs, 'r1-distill');
    for (const text of inputs) assert.ok(gguf.tokenizer.encode(text).every((id) => id < 151665));
    assert.equal(gguf.tokenizer.decode([151665, 151935]), '');
  });

  test('our writer produces the converter\'s metadata, in its order', () => {
    const ours = tokenizerToGguf(ref, { vocabSize: R1_DISTILL_ROWS, pre: 'deepseek-r1-qwen' });
    assert.deepEqual([...ours.keys()], [...converted.keys()]);
    for (const [key, value] of converted) assert.deepEqual(ours.get(key), value, key);
  });
});

describe('our shipped tokenizers through GGUF', () => {
  for (const model of ['nano-r1zero', 'nano-base']) {
    test(`${model} round-trips`, async () => {
      const dir = join(ROOT, 'models', model);
      const ours = (await loadTokenizer(dir)) as ByteLevelBpeTokenizer;
      const rows = (readJson(dir, 'config.json').vocab_size as number) + 3; // padded, as a converter would
      const meta = tokenizerToGguf(ours, { vocabSize: rows });
      assertLlamaCppTypes(meta);
      // Our regex is exactly Qwen2's, so "qwen2" (llama.cpp's QWEN2 pre-tokenizer); we have no NFC.
      assert.equal(PRE_TOKENIZER_PATTERN, QWEN2_PATTERN);
      assert.equal(scalar(meta, 'tokenizer.ggml.pre')?.value, 'qwen2');
      assert.equal(scalar(meta, NORMALIZER_KEY)?.value, 'null');
      const back = tokenizerFromGguf(meta, `${model}.gguf`);
      assert.equal(back.tokenizerJson.normalizer, null);
      assertSameEncoding(ours, back.tokenizer, [...texts(13), 'cafe\u0301 vs café'], model);
      assert.deepEqual(back.tokenizer.special, ours.special);
      assert.equal(back.tokenizer.chatTemplate, ours.chatTemplate);
      assert.deepEqual([back.addBos, back.addEos, back.vocabSize], [false, false, rows]);
      // Everything but the `special` flag of the tokens llama.cpp makes CONTROL comes back as it was.
      const flags = (t: ByteLevelBpeTokenizer) => t.addedTokens.map((a) => ({ ...a, special: a.special || looksSpecial(a.content) }));
      assert.deepEqual(flags(back.tokenizer), flags(ours));
      assert.deepEqual(back.tokenizer.mergePairs(), ours.mergePairs());
      // A second trip changes nothing.
      const again = tokenizerToGguf(back.tokenizer, { vocabSize: rows });
      assert.deepEqual([...again], [...meta]);
    });
  }
});

describe('bad metadata and unrepresentable tokenizers', () => {
  let small: ByteLevelBpeTokenizer;
  let good: GgufMetadata;
  before(async () => {
    small = (await loadTokenizer(join(ROOT, 'models', 'nano-r1zero'))) as ByteLevelBpeTokenizer;
    good = tokenizerToGguf(small, { vocabSize: small.vocabSize + 2 });
  });

  const edit = (change: (m: GgufMetadata) => void): GgufMetadata => {
    const m: GgufMetadata = new Map(good);
    change(m);
    return m;
  };
  const withArray = (m: GgufMetadata, key: string, f: (v: Array<number | bigint | boolean | string>) => void) => {
    const v = m.get(key);
    assert.ok(v && v.type === 'array');
    const copy = [...v.value];
    f(copy);
    m.set(key, { ...v, value: copy });
  };
  const rejects = (m: GgufMetadata, key: string) =>
    assert.throws(() => tokenizerFromGguf(m, 'bad.gguf'), (err: Error) => err.message.startsWith(`bad.gguf: ${key}`), key);

  test('reads the good one', () => {
    assert.equal(tokenizerFromGguf(good, 'good.gguf').vocabSize, small.vocabSize + 2);
  });

  test('unknown model and pre-tokenizer names', () => {
    rejects(edit((m) => m.set('tokenizer.ggml.model', { type: 'string', value: 'llama' })), 'tokenizer.ggml.model');
    rejects(edit((m) => m.delete('tokenizer.ggml.model')), 'tokenizer.ggml.model');
    rejects(edit((m) => m.set('tokenizer.ggml.pre', { type: 'string', value: 'gpt-4o' })), 'tokenizer.ggml.pre');
    rejects(edit((m) => m.delete('tokenizer.ggml.pre')), 'tokenizer.ggml.pre');
    // llama.cpp's aliases of llama-bpe are read as llama-bpe.
    const llama3 = tokenizerFromGguf(edit((m) => m.set('tokenizer.ggml.pre', { type: 'string', value: 'llama3' })), 'x');
    assert.equal(llama3.pre, 'llama-bpe');
  });

  test('token count disagreeing with the merges, the ids or the model', () => {
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.merges', (v) => v.push('Ġzz qq'))), 'tokenizer.ggml.merges');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.merges', (v) => v.push('nospace'))), 'tokenizer.ggml.merges');
    // A merge may not use a padding entry: those are no tokens.
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.merges', (v) => v.push(`[PAD${small.vocabSize}] a`))), 'tokenizer.ggml.merges');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.tokens', (v) => v.splice(3, 1))), 'tokenizer.ggml.token_type');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.token_type', (v) => v.pop())), 'tokenizer.ggml.token_type');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.token_type', (v) => (v[100] = 6))), 'tokenizer.ggml.token_type');
    const archKeys = (m: GgufMetadata) => {
      m.set('general.architecture', { type: 'string', value: 'deepseek2' });
      m.set('deepseek2.vocab_size', { type: 'u32', value: small.vocabSize });
    };
    rejects(edit(archKeys), 'deepseek2.vocab_size');
    // The bytes must all be there for byte-level BPE.
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.tokens', (v) => (v[60] = 'not-a-byte'))), 'tokenizer.ggml.tokens');
  });

  test('token-type arrays of another type, special ids out of range or of the wrong type', () => {
    rejects(edit((m) => m.set('tokenizer.ggml.token_type', { type: 'array', itemType: 'u8', value: [1] })), 'tokenizer.ggml.token_type');
    rejects(edit((m) => m.set('tokenizer.ggml.tokens', { type: 'string', value: 'a' })), 'tokenizer.ggml.tokens');
    const n = small.vocabSize + 2;
    rejects(edit((m) => m.set('tokenizer.ggml.bos_token_id', { type: 'u32', value: n })), 'tokenizer.ggml.bos_token_id');
    rejects(edit((m) => m.set('tokenizer.ggml.eos_token_id', { type: 'u32', value: n + 100 })), 'tokenizer.ggml.eos_token_id');
    rejects(edit((m) => m.set('tokenizer.ggml.eos_token_id', { type: 'i32', value: -1 })), 'tokenizer.ggml.eos_token_id');
    rejects(edit((m) => m.set('tokenizer.ggml.padding_token_id', { type: 'u32', value: n - 1 })), 'tokenizer.ggml.padding_token_id');
    rejects(edit((m) => m.set('tokenizer.ggml.bos_token_id', { type: 'string', value: '0' })), 'tokenizer.ggml.bos_token_id');
    rejects(edit((m) => m.set('tokenizer.ggml.add_bos_token', { type: 'u8', value: 1 })), 'tokenizer.ggml.add_bos_token');
    rejects(
      edit((m) => {
        m.delete('tokenizer.ggml.bos_token_id');
        m.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: true });
      }),
      'tokenizer.ggml.add_bos_token',
    );
    rejects(edit((m) => m.set(NORMALIZER_KEY, { type: 'string', value: '{"type":"Lowercase"}' })), NORMALIZER_KEY);
  });

  test('duplicate and empty tokens', () => {
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.tokens', (v) => (v[200] = v[100]))), 'tokenizer.ggml.tokens');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.tokens', (v) => (v[small.vocabSize] = v[5]))), 'tokenizer.ggml.tokens');
    rejects(edit((m) => withArray(m, 'tokenizer.ggml.tokens', (v) => (v[200] = ''))), 'tokenizer.ggml.tokens');
  });

  test('the writer refuses what GGUF cannot carry', () => {
    const json = small.toJSON();
    const config = small.configJSON();
    const variant = (change: Json) => new ByteLevelBpeTokenizer({ ...json, ...change }, config);
    assert.throws(() => tokenizerToGguf(small, { vocabSize: small.vocabSize - 1 }), /vocabSize 516 is smaller/);
    assert.throws(() => tokenizerToGguf(small, { vocabSize: small.vocabSize, pre: 'llama-bpe' }), /"llama-bpe" does not describe/);
    // GPT-2's own ByteLevel regex has no llama.cpp name among ours.
    const gpt2 = variant({ pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true } });
    assert.throws(() => tokenizerToGguf(gpt2, { vocabSize: 600 }), /no llama.cpp pre-tokenizer name matches/);
    // Qwen2's regex with ignore_merges: llama.cpp's qwen2 would merge where this tokenizer does not.
    const ignoring = variant({ model: { ...(json.model as Json), ignore_merges: true } });
    assert.throws(() => tokenizerToGguf(ignoring, { vocabSize: 600 }), /ignore_merges=true/);
    const stripping = variant({ added_tokens: [...(json.added_tokens as Json[]).slice(0, 8), { ...(json.added_tokens as Json[])[8], lstrip: true }] });
    assert.throws(() => tokenizerToGguf(stripping, { vocabSize: 600 }), /lstrip\/rstrip/);
  });
});

describe('R1 distill chat templates, both revisions', () => {
  const gguf = {} as Record<'2025-01' | '2025-02', GgufTokenizer>;
  before(() => {
    // The same GGUF with the chat template of each revision (older files carry the first).
    const { converted, gguf: revised } = r1Distill();
    const old = new Map(converted);
    old.set('tokenizer.chat_template', { type: 'string', value: TEMPLATE_2025_01 });
    gguf['2025-01'] = tokenizerFromGguf(old, 'old.gguf');
    gguf['2025-02'] = revised;
  });

  const conversation: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '<think>\n2+2 is 4.\n</think>\n\nIt is 4.' },
    { role: 'user', content: 'And 2+3?' },
  ];

  test('render the DeepSeek layout with earlier reasoning dropped', () => {
    const old = applyChatTemplate(gguf['2025-01'].tokenizer, conversation);
    const revised = applyChatTemplate(gguf['2025-02'].tokenizer, conversation);
    const expected = '<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is 2+2?<｜Assistant｜>\n\nIt is 4.<｜end▁of▁sentence｜><｜User｜>And 2+3?<｜Assistant｜>';
    assert.equal(old, expected);
    assert.equal(revised, `${expected}<think>\n`);
    // The same text our own R1 layout writes, with and without the opened reasoning block.
    assert.equal(old, renderR1Chat(conversation, { openThink: false }));
    assert.equal(revised, renderR1Chat(conversation));
    assert.equal(applyChatTemplate(gguf['2025-02'].tokenizer, conversation.slice(0, 3), { addGenerationPrompt: false }), expected.slice(0, expected.indexOf('<｜User｜>And')));
    // Tokenized: one BOS (the template's), role markers and the opened block as single tokens.
    const ids = gguf['2025-02'].tokenizer.encode(revised);
    assert.equal(ids[0], 151646);
    assert.equal(ids.filter((id) => id === 151646).length, 1);
    assert.deepEqual(ids.slice(-3), [151645, 151648, gguf['2025-02'].tokenizer.encode('\n')[0]]);
    assert.equal(promptOpensThink(old), false);
    assert.equal(promptOpensThink(revised), true);
  });

  // What the model writes after each prompt: after the first revision it opens the block itself,
  // after the second it starts inside it (sometimes repeating the opening tag).
  const replies: { label: string; revision: '2025-01' | '2025-02'; text: string; reasoning: string; content: string }[] = [
    { label: 'opens its block', revision: '2025-01', text: '<think>\nLet me add: 2+3=5.\n</think>\n\nIt is 5.', reasoning: 'Let me add: 2+3=5.', content: 'It is 5.' },
    { label: 'starts inside the block', revision: '2025-02', text: 'Let me add: 2+3=5.\n</think>\n\nIt is 5.', reasoning: 'Let me add: 2+3=5.', content: 'It is 5.' },
    { label: 'repeats the opening tag', revision: '2025-02', text: '<think>\nLet me add: 2+3=5.\n</think>\n\nIt is 5.', reasoning: 'Let me add: 2+3=5.', content: 'It is 5.' },
    { label: 'is cut off while reasoning (old)', revision: '2025-01', text: '<think>\nLet me add: 2+3', reasoning: 'Let me add: 2+3', content: '' },
    { label: 'is cut off while reasoning (new)', revision: '2025-02', text: 'Let me add: 2+3', reasoning: 'Let me add: 2+3', content: '' },
    { label: 'skips reasoning', revision: '2025-02', text: '\n</think>\n\nIt is 5.', reasoning: '', content: 'It is 5.' },
  ];
  for (const r of replies) {
    test(`split the same whichever revision rendered the prompt: a reply that ${r.label}`, () => {
      const { tokenizer } = gguf[r.revision];
      const prompt = applyChatTemplate(tokenizer, conversation);
      const opened = promptOpensThink(prompt);
      assert.deepEqual(splitCompletion(r.text, opened), { reasoning: r.reasoning, content: r.content });
      const parsed = parseCompletion(r.text, { promptOpenedThink: opened });
      assert.deepEqual([parsed.reasoning, parsed.content], [r.reasoning, r.content]);
      // Streamed token by token, as the engine decodes them (special tokens skipped).
      const stream = tokenizer.createDecodeStream({ skipSpecial: true });
      const splitter = new ReasoningSplitter(opened);
      let reasoning = '';
      let content = '';
      for (const id of [...tokenizer.encode(r.text), 151643]) {
        const out = splitter.push(stream.push(id));
        reasoning += out.reasoning;
        content += out.content;
      }
      const rest = splitter.flush();
      assert.deepEqual({ reasoning: reasoning + rest.reasoning, content: content + rest.content }, { reasoning: r.reasoning, content: r.content });
    });
  }
});
