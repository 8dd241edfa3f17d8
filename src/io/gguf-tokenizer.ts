// The tokenizer a GGUF file carries in its metadata (`tokenizer.*`), both ways: metadata → a
// tokenizer.json + tokenizer_config.json pair (and the ByteLevelBpeTokenizer built from them) that
// encodes id for id as the model's Hugging Face files do, and a tokenizer → the metadata entries
// llama.cpp's converter (convert_hf_to_gguf.py) would write for it.
//
// Only byte-level BPE (`tokenizer.ggml.model` = "gpt2") is handled, with the pre-tokenizers of the
// families nanoseek runs: Qwen2/2.5/3 and the R1 distills built on them, Llama 3 (and the R1
// distills on Llama 3.1), DeepSeek-V3/R1, and nanoseek's own tokenizers.
//
// Facts from llama.cpp (src/llama-vocab.cpp, convert_hf_to_gguf.py, gguf-py/gguf/vocab.py):
// - The pre-tokenizer is a name; llama.cpp maps it to fixed regexes. "qwen2" and "deepseek-r1-qwen"
//   (also "kormo", "f2llmv2") use Qwen2's regex; "llama-bpe" (also "llama3", "llama-v3", …) Llama 3's
//   and sets ignore_merges and a default add_bos = true; "deepseek-v3" DeepSeek-V3's three regexes.
//   llama.cpp spells `(?i:'s|…)` as `(?:'[sS]|…)` (its regex engine has no inline flags): the same
//   language. llama.cpp never applies a tokenizer.json normalizer for BPE vocabularies.
// - Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. The converter
//   marks an added token CONTROL when Hugging Face flags it special or it "looks special"
//   (`<|…|>`, `<｜…｜>`, `<unused…>`, `<pad>`, `<mask>`, `<2mass>`, `[@BOS@]`), USER_DEFINED otherwise
//   (so DeepSeek's non-special `<｜User｜>` is CONTROL while `<think>` is USER_DEFINED). It also
//   replaces "▁" by " " in user-defined tokens (a rule meant for SentencePiece vocabularies).
// - The embedding may have more rows than the tokenizer has tokens: the converter fills every id the
//   tokenizer lacks with "[PAD{id}]" of type UNUSED (R1-Distill-Qwen-1.5B: 151665 tokens, 151936 rows).
// - Merges are "a b" strings, split at the first space after the first character.
// - Special ids and add_bos/add_eos come from tokenizer_config.json (SpecialVocab), falling back to
//   config.json's *_token_id and to a TemplateProcessing post-processor for add_bos.
// - llama.cpp matches CONTROL and USER_DEFINED tokens in the text before pre-tokenizing (CONTROL ones
//   only when asked to parse special tokens), as Hugging Face matches added tokens.

import type { GgufMetadata, GgufScalarType, GgufValue } from './gguf.js';
import { BYTE_TO_CHAR } from '../tokenizer/bytes.js';
import { buildNormalizer } from '../tokenizer/pretokenize.js';
import { ByteLevelBpeTokenizer } from '../tokenizer/tokenizer.js';

type Json = Record<string, unknown>;

/** `tokenizer.ggml.token_type` values. */
export const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The `tokenizer.ggml.pre` names handled here (aliases llama.cpp treats the same way are read too). */
export type GgufPreName = 'qwen2' | 'deepseek-r1-qwen' | 'llama-bpe' | 'deepseek-v3';

/**
 * Extension key, ignored by llama.cpp: the tokenizer.json normalizer as JSON text, written only when
 * it differs from the family's (nanoseek's own tokenizers use Qwen2's regex without Qwen's NFC).
 */
export const NORMALIZER_KEY = 'nanoseek.tokenizer.normalizer';

/** Qwen2's word splitter, as in Qwen2/2.5/3's tokenizer.json (and nanoseek's DEFAULT_PRE_TOKENIZER). */
export const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Llama 3's: Qwen2's with numbers in runs of up to three digits. */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** DeepSeek-V3's three splits, in order (as in its tokenizer.json; llama.cpp's DEEPSEEK3_LLM). */
export const DEEPSEEK_V3_PATTERNS = [
  '\\p{N}{1,3}',
  '[一-龥぀-ゟ゠-ヿ]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
] as const;

interface PreFamily {
  /** Split regexes applied in order (behavior Isolated), then ByteLevel without its own regex. */
  splits: readonly string[];
  /** The ByteLevel step's trim_offsets in the family's tokenizer.json (offsets only, never ids). */
  trimOffsets: boolean;
  /** The family's tokenizer.json normalizer. */
  normalizer: Json | null;
  /** llama.cpp's ignore_merges for this name (the tokenizer.json flag of the family). */
  ignoreMerges: boolean;
  /** llama.cpp's add_bos when `tokenizer.ggml.add_bos_token` is absent. */
  addBosDefault: boolean;
}

const QWEN2_FAMILY: PreFamily = {
  splits: [QWEN2_PATTERN],
  trimOffsets: false,
  // Qwen2/2.5/3's tokenizer.json normalize to NFC. The R1-Distill-Qwen files reuse Qwen2.5's
  // tokenizer.json with DeepSeek's added tokens; that they keep its NFC normalizer could not be
  // checked here (no copy of them offline). llama.cpp skips the normalizer either way.
  normalizer: { type: 'NFC' },
  ignoreMerges: false,
  addBosDefault: false,
};

const PRE_FAMILIES: Record<GgufPreName, PreFamily> = {
  qwen2: QWEN2_FAMILY,
  'deepseek-r1-qwen': QWEN2_FAMILY,
  'llama-bpe': { splits: [LLAMA3_PATTERN], trimOffsets: true, normalizer: null, ignoreMerges: true, addBosDefault: true },
  'deepseek-v3': {
    splits: DEEPSEEK_V3_PATTERNS,
    trimOffsets: true,
    normalizer: { type: 'Sequence', normalizers: [] },
    ignoreMerges: false,
    addBosDefault: false,
  },
};

/** Names llama.cpp handles exactly like one of ours. */
const PRE_ALIASES: Record<string, GgufPreName> = { llama3: 'llama-bpe', 'llama-v3': 'llama-bpe' };

/** The order in which a tokenizer's pre-tokenizer is matched to a name when writing. */
const PRE_PREFERENCE: readonly GgufPreName[] = ['qwen2', 'deepseek-r1-qwen', 'llama-bpe', 'deepseek-v3'];

/** What a runtime needs from a GGUF's tokenizer metadata. */
export interface GgufTokenizer {
  tokenizer: ByteLevelBpeTokenizer;
  /** The tokenizer.json and tokenizer_config.json objects `tokenizer` was built from. */
  tokenizerJson: Json;
  tokenizerConfig: Json;
  /** The pre-tokenizer family (an alias such as "llama3" comes back as its canonical name). */
  pre: GgufPreName;
  /** Entries in `tokenizer.ggml.tokens`, padding included: the embedding rows the file expects. */
  vocabSize: number;
  /** Whether a prompt starts with BOS / ends with EOS (llama.cpp's add_bos/add_eos). */
  addBos: boolean;
  addEos: boolean;
  bosId: number | undefined;
  eosId: number | undefined;
  padId: number | undefined;
  /** `tokenizer.chat_template`, if any. */
  chatTemplate: string | undefined;
}

/** The converter's does_token_look_special: added tokens that become CONTROL even when not special. */
export function looksSpecial(token: string): boolean {
  return (
    token === '<pad>' ||
    token === '<mask>' ||
    token === '<2mass>' ||
    token === '[@BOS@]' ||
    (token.startsWith('<|') && token.endsWith('|>')) ||
    (token.startsWith('<｜') && token.endsWith('｜>')) ||
    (token.startsWith('<unused') && token.endsWith('>'))
  );
}

const INTEGER_TYPES: ReadonlySet<GgufScalarType> = new Set(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64']);

/** Reads typed values out of a metadata map, with errors that name the file and the key. */
class MetadataReader {
  constructor(
    private readonly meta: GgufMetadata,
    private readonly source: string,
  ) {}

  fail(key: string, message: string): never {
    throw new Error(`${this.source}: ${key} ${message}`);
  }

  string(key: string): string | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'string') this.fail(key, `must be a string, not ${describe(v)}`);
    return v.value;
  }

  bool(key: string): boolean | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'bool') this.fail(key, `must be a bool, not ${describe(v)}`);
    return v.value;
  }

  integer(key: string): number | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (v.type === 'array' || v.type === 'string' || v.type === 'bool' || !INTEGER_TYPES.has(v.type)) {
      this.fail(key, `must be an integer, not ${describe(v)}`);
    }
    const n = Number((v as { value: number | bigint }).value);
    if (!Number.isSafeInteger(n)) this.fail(key, `is out of range (${String(v.value)})`);
    return n;
  }

  array(key: string, itemTypes: readonly GgufScalarType[]): Array<number | bigint | boolean | string> | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'array' || !itemTypes.includes(v.itemType)) {
      this.fail(key, `must be an array of ${itemTypes.join(' or ')}, not ${describe(v)}`);
    }
    return v.value;
  }
}

function describe(v: GgufValue): string {
  return v.type === 'array' ? `an array of ${v.itemType}` : `a ${v.type}`;
}

function splitStep(pattern: string): Json {
  return { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false };
}

function byteLevel(trimOffsets: boolean): Json {
  return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false };
}

/** The pre_tokenizer section of a family's tokenizer.json. */
export function preTokenizerJson(pre: GgufPreName): Json {
  const f = PRE_FAMILIES[pre];
  return { type: 'Sequence', pretokenizers: [...f.splits.map(splitStep), byteLevel(f.trimOffsets)] };
}

/** A normalizer section as a comparable string: the flattened list of its steps. */
function canonicalNormalizer(config: unknown): string {
  const steps: string[] = [];
  const walk = (c: unknown): void => {
    if (c === null || c === undefined) return;
    const o = c as Json;
    if (o.type === 'Sequence' && Array.isArray(o.normalizers)) o.normalizers.forEach(walk);
    else steps.push(JSON.stringify(o));
  };
  walk(config);
  return steps.join(',');
}

/** A Split + ByteLevel pre-tokenizer as its list of regexes, or null when it is shaped otherwise. */
function splitPatterns(config: unknown): string[] | null {
  const c = config as Json | null;
  if (!c || typeof c !== 'object') return null;
  const steps = c.type === 'Sequence' && Array.isArray(c.pretokenizers) ? (c.pretokenizers as Json[]) : [c];
  const last = steps[steps.length - 1];
  if (!last || last.type !== 'ByteLevel' || last.use_regex !== false || last.add_prefix_space === true) return null;
  const patterns: string[] = [];
  for (const s of steps.slice(0, -1)) {
    const p = s.pattern as Json | undefined;
    if (s.type !== 'Split' || s.behavior !== 'Isolated' || s.invert === true || !p || typeof p.Regex !== 'string') return null;
    patterns.push(p.Regex);
  }
  return patterns;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The names whose pre-tokenizer (and merge rule) reproduce this tokenizer.json exactly. */
function matchingPreNames(preTokenizer: unknown, ignoreMerges: boolean): GgufPreName[] {
  const patterns = splitPatterns(preTokenizer);
  if (!patterns) return [];
  return PRE_PREFERENCE.filter((name) => sameList(PRE_FAMILIES[name].splits, patterns) && PRE_FAMILIES[name].ignoreMerges === ignoreMerges);
}

/** add_bos/add_eos as the converter's SpecialVocab derives them from the tokenizer files. */
function addSpecialFromFiles(postProcessor: unknown, config: Json, which: 'bos' | 'eos', tokenText: string | undefined): boolean | undefined {
  const flag = config[`add_${which}_token`];
  if (typeof flag === 'boolean') return flag;
  // A TemplateProcessing post-processor that puts the token first (last) in a single sequence.
  const post = postProcessor as Json | null | undefined;
  if (!post || tokenText === undefined) return undefined;
  const processors = post.type === 'Sequence' && Array.isArray(post.processors) ? (post.processors as Json[]) : [post];
  for (const p of processors) {
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single) || p.single.length < 2) continue;
    const item = (which === 'bos' ? p.single[0] : p.single[p.single.length - 1]) as Json;
    const special = item?.SpecialToken as Json | undefined;
    return special?.id === tokenText;
  }
  return undefined;
}

export interface TokenizerToGgufOptions {
  /** Embedding rows: the token list is padded to this length with UNUSED "[PAD{id}]" entries. */
  vocabSize: number;
  /**
   * The `tokenizer.ggml.pre` name; it must describe the tokenizer's pre-tokenizer. By default the
   * first matching one of qwen2, deepseek-r1-qwen, llama-bpe, deepseek-v3 ("qwen2" for Qwen's and
   * nanoseek's regex: llama.cpp knows it since 2024, "deepseek-r1-qwen" only since 2025-01).
   */
  pre?: GgufPreName;
  /** Default: tokenizer_config.json's add_bos_token / add_eos_token, else what a TemplateProcessing post-processor adds, else false. */
  addBos?: boolean;
  addEos?: boolean;
  /** Default: the tokenizer's own chat template; null writes none. */
  chatTemplate?: string | null;
  /**
   * config.json's bos_token_id / eos_token_id / pad_token_id, for the special tokens the tokenizer
   * does not name (the converter's fallback: Qwen's BOS is 151643 only there).
   */
  configIds?: { bos?: number; eos?: number; pad?: number };
}

/**
 * The `tokenizer.*` metadata entries llama.cpp expects for this tokenizer, typed as its converter
 * writes them. Refuses what GGUF cannot carry: a pre-tokenizer no llama.cpp name describes, byte
 * fallback, lstrip/rstrip added tokens, merges whose tokens hold spaces, more tokens than `vocabSize`.
 */
export function tokenizerToGguf(tokenizer: ByteLevelBpeTokenizer, opts: TokenizerToGgufOptions): GgufMetadata {
  const pipeline = tokenizer.pipelineJSON();
  const config = tokenizer.configJSON();
  const { vocabSize } = opts;
  if (!Number.isSafeInteger(vocabSize) || vocabSize < tokenizer.vocabSize) {
    throw new Error(`tokenizerToGguf: vocabSize ${vocabSize} is smaller than the tokenizer's ${tokenizer.vocabSize} ids`);
  }
  if (vocabSize > 2 ** 31 - 1) throw new Error(`tokenizerToGguf: vocabSize ${vocabSize} does not fit llama.cpp's int32 ids`);
  if (pipeline.byte_fallback) throw new Error('tokenizerToGguf: byte_fallback BPE is not GGUF "gpt2" (byte-level BPE)');

  const names = matchingPreNames(pipeline.pre_tokenizer, pipeline.ignore_merges);
  if (names.length === 0) {
    throw new Error(
      `tokenizerToGguf: no llama.cpp pre-tokenizer name matches this tokenizer's pre_tokenizer ${JSON.stringify(pipeline.pre_tokenizer)}` +
        ` with ignore_merges=${pipeline.ignore_merges} (known: ${PRE_PREFERENCE.join(', ')})`,
    );
  }
  const pre = opts.pre ?? names[0];
  if (!names.includes(pre)) {
    throw new Error(`tokenizerToGguf: pre-tokenizer "${pre}" does not describe this tokenizer (it matches ${names.join(', ')})`);
  }

  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const text = tokenizer.idToToken(id);
    if (text === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = GGUF_TOKEN_TYPE.unused;
    } else {
      tokens[id] = text;
      types[id] = GGUF_TOKEN_TYPE.normal;
    }
  }
  for (const t of tokenizer.addedTokens) {
    if (t.lstrip || t.rstrip) throw new Error(`tokenizerToGguf: added token ${JSON.stringify(t.content)} strips whitespace (lstrip/rstrip), which GGUF cannot record`);
    // Unlike the converter, "▁" is kept in user-defined tokens: replacing it by a space (done there
    // for SentencePiece vocabularies) would change what a byte-level vocabulary matches.
    types[t.id] = t.special || looksSpecial(t.content) ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined;
  }
  const seen = new Map<string, number>();
  tokens.forEach((text, id) => {
    const other = seen.get(text);
    if (other !== undefined) throw new Error(`tokenizerToGguf: token ${JSON.stringify(text)} has ids ${other} and ${id} (a padding name collides with a real token?)`);
    seen.set(text, id);
  });

  const merges = tokenizer.mergePairs().map(([a, b], r) => {
    if (a.includes(' ') || b.includes(' ')) {
      throw new Error(`tokenizerToGguf: merge #${r} ${JSON.stringify([a, b])} has a token with a space, which "a b" merges cannot carry`);
    }
    return `${a} ${b}`;
  });

  const specialIds = { bos: tokenizer.special.bos, eos: tokenizer.special.eos, pad: tokenizer.special.pad };
  for (const which of ['bos', 'eos', 'pad'] as const) {
    const id = specialIds[which] ?? opts.configIds?.[which];
    if (id !== undefined && tokenizer.idToToken(id) === undefined) throw new Error(`tokenizerToGguf: ${which} id ${id} is no token of this tokenizer`);
    specialIds[which] = id;
  }
  const text = (id: number | undefined) => (id === undefined ? undefined : tokenizer.idToToken(id));
  const addBos = opts.addBos ?? addSpecialFromFiles(pipeline.post_processor, config, 'bos', text(specialIds.bos)) ?? false;
  const addEos = opts.addEos ?? addSpecialFromFiles(pipeline.post_processor, config, 'eos', text(specialIds.eos)) ?? false;
  if (addBos && specialIds.bos === undefined) throw new Error('tokenizerToGguf: add_bos_token is true but the tokenizer has no BOS token');
  if (addEos && specialIds.eos === undefined) throw new Error('tokenizerToGguf: add_eos_token is true but the tokenizer has no EOS token');
  const chatTemplate = opts.chatTemplate === undefined ? tokenizer.chatTemplate : (opts.chatTemplate ?? undefined);

  const meta: GgufMetadata = new Map();
  meta.set('tokenizer.ggml.model', { type: 'string', value: 'gpt2' });
  meta.set('tokenizer.ggml.pre', { type: 'string', value: pre });
  meta.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens });
  meta.set('tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types });
  meta.set('tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges });
  const ids: [string, 'bos' | 'eos' | 'pad'][] = [
    ['tokenizer.ggml.bos_token_id', 'bos'],
    ['tokenizer.ggml.eos_token_id', 'eos'],
    ['tokenizer.ggml.padding_token_id', 'pad'],
  ];
  for (const [key, which] of ids) {
    const id = specialIds[which];
    if (id !== undefined) meta.set(key, { type: 'u32', value: id });
  }
  meta.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos });
  meta.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: addEos });
  if (chatTemplate !== undefined) meta.set('tokenizer.chat_template', { type: 'string', value: chatTemplate });
  if (canonicalNormalizer(pipeline.normalizer) !== canonicalNormalizer(PRE_FAMILIES[pre].normalizer)) {
    meta.set(NORMALIZER_KEY, { type: 'string', value: JSON.stringify(pipeline.normalizer) });
  }
  return meta;
}

/**
 * The tokenizer a GGUF file's metadata describes, as the tokenizer.json/tokenizer_config.json pair
 * of the model's Hugging Face files would build it. Errors start with `source` and name the key.
 *
 * What GGUF does not record is filled in from the family: the normalizer (NFC for the Qwen names,
 * unless NORMALIZER_KEY says otherwise), and added tokens' flags: CONTROL tokens come back flagged
 * `special` (so decode({skipSpecial}) drops them, as llama.cpp does not render them either),
 * USER_DEFINED ones not; none strips whitespace. DeepSeek's `<｜User｜>`/`<｜Assistant｜>`, which
 * Hugging Face does not flag special, are CONTROL in GGUF and so come back special: only
 * decode({skipSpecial}) sees the difference. UNUSED padding entries are no tokens at all: never
 * produced by encode, skipped by decode.
 */
export function tokenizerFromGguf(meta: GgufMetadata, source: string): GgufTokenizer {
  const r: MetadataReader = new MetadataReader(meta, source);

  const modelName = r.string('tokenizer.ggml.model');
  if (modelName === undefined) r.fail('tokenizer.ggml.model', 'is missing');
  if (modelName !== 'gpt2') r.fail('tokenizer.ggml.model', `is "${modelName}": only "gpt2" (byte-level BPE) is supported`);
  const preRaw = r.string('tokenizer.ggml.pre');
  if (preRaw === undefined) r.fail('tokenizer.ggml.pre', `is missing (supported: ${PRE_PREFERENCE.join(', ')})`);
  const pre: GgufPreName | undefined = preRaw in PRE_FAMILIES ? (preRaw as GgufPreName) : PRE_ALIASES[preRaw];
  if (pre === undefined) r.fail('tokenizer.ggml.pre', `"${preRaw}" is not a supported pre-tokenizer (supported: ${[...PRE_PREFERENCE, ...Object.keys(PRE_ALIASES)].join(', ')})`);
  const family = PRE_FAMILIES[pre];

  const tokens = r.array('tokenizer.ggml.tokens', ['string']) as string[] | undefined;
  if (tokens === undefined) r.fail('tokenizer.ggml.tokens', 'is missing');
  const n = tokens.length;
  if (n === 0) r.fail('tokenizer.ggml.tokens', 'is empty');
  const types = r.array('tokenizer.ggml.token_type', ['i32']);
  if (types !== undefined && types.length !== n) r.fail('tokenizer.ggml.token_type', `has ${types.length} entries for ${n} tokens`);
  const arch = r.string('general.architecture');
  if (arch !== undefined) {
    const declared = r.integer(`${arch}.vocab_size`);
    if (declared !== undefined && declared !== n) r.fail(`${arch}.vocab_size`, `is ${declared} but tokenizer.ggml.tokens has ${n} entries`);
  }

  const vocab: Record<string, number> = Object.create(null);
  const added: Json[] = [];
  // Unused padding entries stay out of the vocabulary but may not repeat a token either.
  const unusedNames = new Map<string, number>();
  const unused = new Uint8Array(n);
  for (let id = 0; id < n; id++) {
    const text = tokens[id];
    if (text === '') r.fail('tokenizer.ggml.tokens', `has an empty token at id ${id}`);
    const other = vocab[text] ?? unusedNames.get(text);
    if (other !== undefined) r.fail('tokenizer.ggml.tokens', `has the token ${JSON.stringify(text)} twice (ids ${other} and ${id})`);
    const type = types === undefined ? GGUF_TOKEN_TYPE.normal : (types[id] as number);
    switch (type) {
      case GGUF_TOKEN_TYPE.unused:
        unused[id] = 1;
        unusedNames.set(text, id);
        continue;
      case GGUF_TOKEN_TYPE.control:
      case GGUF_TOKEN_TYPE.userDefined: {
        const special = type === GGUF_TOKEN_TYPE.control;
        added.push({ id, content: text, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
        break;
      }
      case GGUF_TOKEN_TYPE.normal:
        break;
      default:
        r.fail('tokenizer.ggml.token_type', `has type ${String(type)} at id ${id} (a byte-level BPE vocabulary has 1 normal, 3 control, 4 user-defined, 5 unused)`);
    }
    vocab[text] = id;
  }

  // Byte-level BPE spells every byte with one token: without all 256, some text has no encoding.
  for (let b = 0; b < 256; b++) {
    if (vocab[BYTE_TO_CHAR[b]] === undefined) {
      r.fail('tokenizer.ggml.tokens', `has no token for byte 0x${b.toString(16).padStart(2, '0')} (${JSON.stringify(BYTE_TO_CHAR[b])})`);
    }
  }

  const mergeStrings = r.array('tokenizer.ggml.merges', ['string']) as string[] | undefined;
  if (mergeStrings === undefined) r.fail('tokenizer.ggml.merges', 'is missing');
  const merges = mergeStrings.map((m, rank): [string, string] => {
    // llama.cpp's rule: the first space after the first character separates the two tokens.
    const at = m.indexOf(' ', 1);
    const a = at < 0 ? '' : m.slice(0, at);
    const b = at < 0 ? '' : m.slice(at + 1);
    for (const part of [a, b, a + b]) {
      if (vocab[part] === undefined) {
        r.fail('tokenizer.ggml.merges', `[${rank}] ${JSON.stringify(m)} needs the token ${JSON.stringify(part)}, which tokenizer.ggml.tokens does not have`);
      }
    }
    return [a, b];
  });

  const specialId = (key: string): number | undefined => {
    const id = r.integer(key);
    if (id === undefined) return undefined;
    if (id < 0 || id >= n) r.fail(key, `is ${id}, outside the ${n} tokens`);
    if (unused[id]) r.fail(key, `is ${id}, an unused padding entry`);
    return id;
  };
  const bosId = specialId('tokenizer.ggml.bos_token_id');
  const eosId = specialId('tokenizer.ggml.eos_token_id');
  const padId = specialId('tokenizer.ggml.padding_token_id');
  const addBos = r.bool('tokenizer.ggml.add_bos_token') ?? family.addBosDefault;
  const addEos = r.bool('tokenizer.ggml.add_eos_token') ?? false;
  if (addBos && bosId === undefined) r.fail('tokenizer.ggml.add_bos_token', 'is true but tokenizer.ggml.bos_token_id is not set');
  if (addEos && eosId === undefined) r.fail('tokenizer.ggml.add_eos_token', 'is true but tokenizer.ggml.eos_token_id is not set');
  const chatTemplate = r.string('tokenizer.chat_template');

  let normalizer: unknown = family.normalizer;
  const normalizerText = r.string(NORMALIZER_KEY);
  if (normalizerText !== undefined) {
    try {
      normalizer = JSON.parse(normalizerText);
      buildNormalizer(normalizer);
    } catch (err) {
      r.fail(NORMALIZER_KEY, `is not a supported normalizer (${(err as Error).message})`);
    }
  }

  const text = (id: number | undefined) => (id === undefined ? null : tokens[id]);
  const bosText = text(bosId);
  const eosText = text(eosId);
  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer,
    pre_tokenizer: preTokenizerJson(pre),
    post_processor: postProcessor(addBos ? bosText : null, addEos ? eosText : null, bosId, eosId, family.trimOffsets),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family.ignoreMerges,
      vocab,
      merges,
    },
  };
  const tokenizerConfig: Json = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: bosText,
    eos_token: eosText,
    pad_token: text(padId),
    unk_token: null,
    clean_up_tokenization_spaces: false,
  };
  if (chatTemplate !== undefined) tokenizerConfig.chat_template = chatTemplate;

  let tokenizer: ByteLevelBpeTokenizer;
  try {
    tokenizer = new ByteLevelBpeTokenizer(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new Error(`${source}: tokenizer.ggml.tokens/merges do not make a byte-level BPE vocabulary: ${(err as Error).message}`);
  }
  return { tokenizer, tokenizerJson, tokenizerConfig, pre, vocabSize: n, addBos, addEos, bosId, eosId, padId, chatTemplate };
}

/**
 * The post-processor Hugging Face needs to add BOS/EOS by default, as the model's files do; a plain
 * ByteLevel one otherwise. (nanoseek never applies post-processors: callers ask for BOS themselves.)
 */
function postProcessor(bos: string | null, eos: string | null, bosId: number | undefined, eosId: number | undefined, trimOffsets: boolean): Json {
  const plain = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false };
  if (bos === null && eos === null) return plain;
  const specialTokens: Json = {};
  const piece = (token: string | null): Json[] => (token === null ? [] : [{ SpecialToken: { id: token, type_id: 0 } }]);
  if (bos !== null) specialTokens[bos] = { id: bos, ids: [bosId], tokens: [bos] };
  if (eos !== null) specialTokens[eos] = { id: eos, ids: [eosId], tokens: [eos] };
  const seq = (id: 'A' | 'B', typeId: number): Json => ({ Sequence: { id, type_id: typeId } });
  return {
    type: 'Sequence',
    processors: [
      plain,
      {
        type: 'TemplateProcessing',
        single: [...piece(bos), seq('A', 0), ...piece(eos)],
        pair: [...piece(bos), seq('A', 0), ...piece(eos), ...piece(bos), seq('B', 1), ...piece(eos)],
        special_tokens: specialTokens,
      },
    ],
  };
}
