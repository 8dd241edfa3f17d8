// The one tokenizer callers see, and the byte-level BPE that implements it for our own tokenizers
// and for Hugging Face tokenizer.json files (DeepSeek-V3/R1, Qwen2/2.5/3, Llama 3, GPT-2 style).
//
// Encoding follows the Rust `tokenizers` pipeline: added tokens are cut out first (leftmost match,
// longest at that position), each stretch between them is normalized, pre-tokenized into pieces and
// each piece BPE-encoded. Post-processors are kept in saved files but never applied: a BOS is added
// only when the caller asks for it, so the ids never depend on a template hidden in a config file.
//
// Strings: JavaScript strings are UTF-16 and may hold lone surrogates, which have no UTF-8 form;
// they are encoded as U+FFFD (EF BF BD), as TextEncoder does. decode(encode(s)) === s therefore
// holds for every well-formed string, and decoding any byte sequence the vocabulary spells gives
// those bytes back as UTF-8 (invalid sequences decode to U+FFFD).

import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { BpeModel } from './bpe.js';
import { tokenStringToBytes } from './bytes.js';
import { buildNormalizer, buildPreTokenizer, type Normalizer, type PreTokenizer } from './pretokenize.js';
import { SPECIAL_TOKENS, type SpecialTokenName } from './special.js';

export interface EncodeOptions {
  /** Prepend the BOS token (an error if the tokenizer has none). Default false. */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop added tokens flagged `special` (BOS, EOS, pad, …); role and think tags are not special. */
  skipSpecial?: boolean;
}

/** Incremental decoding for generation: text comes out as soon as its UTF-8 is complete. */
export interface DecodeStream {
  /** The text that token `id` completes; '' while a multi-byte character is still partial. */
  push(id: number): string;
  /** The rest at the end of generation: an unfinished character becomes U+FFFD. */
  flush(): string;
}

export type SpecialTokenIds = Partial<Record<SpecialTokenName, number>>;

export interface Tokenizer {
  /** One past the largest id: the embedding table size a model needs. */
  readonly vocabSize: number;
  /** Ids of the special tokens this vocabulary has. */
  readonly special: Readonly<SpecialTokenIds>;
  /** The Jinja chat template from tokenizer_config.json, if any. */
  readonly chatTemplate: string | undefined;
  encode(text: string, options?: EncodeOptions): number[];
  /** Ids without a token are skipped, as the reference implementation does. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  createDecodeStream(options?: DecodeOptions): DecodeStream;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /**
   * The bytes an ordinary (BPE) token stands for; null for added tokens (special, role and think
   * tags) and ids without a token. Constrained decoding matches these bytes against a grammar.
   */
  tokenBytes(id: number): Uint8Array | null;
  /** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed). */
  save(dir: string): Promise<void>;
}

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  singleWord: boolean;
}

type Json = Record<string, unknown>;

interface TrieNode {
  next: Map<number, TrieNode>;
  token: AddedToken | null;
}

/**
 * Finds added tokens in text: leftmost match, longest at that position. `lstrip`/`rstrip` eat the
 * whitespace beside a match; `single_word` is kept when saving but not enforced (nor is it by
 * @huggingface/tokenizers).
 */
class AddedTokenMatcher {
  private readonly root: TrieNode = { next: new Map(), token: null };
  // First UTF-16 unit of some token: the scan only walks the trie from these.
  private readonly starts = new Uint8Array(0x10000);
  readonly empty: boolean;

  constructor(tokens: { key: string; token: AddedToken }[]) {
    this.empty = tokens.length === 0;
    for (const { key, token } of tokens) {
      if (key.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < key.length; i++) {
        const c = key.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map(), token: null };
          node.next.set(c, child);
        }
        node = child;
      }
      node.token = token;
      this.starts[key.charCodeAt(0)] = 1;
    }
  }

  /** Cuts `text` into segments around tokens: segments.length === tokens.length + 1. */
  split(text: string): { segments: string[]; tokens: AddedToken[] } {
    const segments: string[] = [];
    const tokens: AddedToken[] = [];
    if (this.empty) return { segments: [text], tokens };
    let segStart = 0;
    let i = 0;
    const n = text.length;
    while (i < n) {
      if (this.starts[text.charCodeAt(i)] === 0) {
        i++;
        continue;
      }
      let node: TrieNode | undefined = this.root;
      let found: AddedToken | null = null;
      let foundEnd = -1;
      for (let j = i; j < n; j++) {
        node = node.next.get(text.charCodeAt(j));
        if (!node) break;
        if (node.token) {
          found = node.token;
          foundEnd = j + 1;
        }
      }
      if (!found) {
        i++;
        continue;
      }
      let before = text.slice(segStart, i);
      if (found.lstrip) before = before.trimEnd();
      segments.push(before);
      tokens.push(found);
      i = foundEnd;
      if (found.rstrip) while (i < n && /\s/.test(text[i])) i++;
      segStart = i;
    }
    segments.push(segStart === 0 ? text : text.slice(segStart));
    return { segments, tokens };
  }
}

function asObject(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value as Json;
}

function parseAddedTokens(value: unknown): AddedToken[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error('"added_tokens" must be an array');
  return value.map((raw, k) => {
    const t = asObject(raw, `added_tokens[${k}]`);
    if (!Number.isInteger(t.id) || (t.id as number) < 0) throw new Error(`added_tokens[${k}] has no valid "id"`);
    if (typeof t.content !== 'string' || t.content === '') throw new Error(`added_tokens[${k}] has no "content"`);
    const special = t.special === true;
    return {
      id: t.id as number,
      content: t.content,
      special,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: typeof t.normalized === 'boolean' ? t.normalized : !special,
      singleWord: t.single_word === true,
    };
  });
}

function parseVocab(value: unknown): (string | undefined)[] {
  const vocabObj = asObject(value, 'model.vocab');
  const vocab: (string | undefined)[] = [];
  // for…in rather than Object.entries: no array of 150k [token, id] pairs on the way.
  for (const token in vocabObj) {
    if (!Object.hasOwn(vocabObj, token)) continue;
    const id = vocabObj[token];
    if (!Number.isInteger(id) || (id as number) < 0) throw new Error(`model.vocab: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}`);
    if (vocab[id as number] !== undefined) throw new Error(`model.vocab: id ${id} is used twice`);
    vocab[id as number] = token;
  }
  return vocab;
}

function parseMerges(value: unknown): [string, string][] {
  if (!Array.isArray(value)) throw new Error('model.merges must be an array');
  return value.map((m, r) => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return m as [string, string];
    }
    throw new Error(`model.merges[${r}] is neither "a b" nor ["a", "b"]: ${JSON.stringify(m)}`);
  });
}

/** A token field of tokenizer_config.json: a string or an AddedToken-like object. */
function configTokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

function chatTemplateOf(config: Json): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => x && typeof x === 'object' && (x as Json).name === 'default') as Json | undefined;
    if (named && typeof named.template === 'string') return named.template;
  }
  return undefined;
}

/** Byte-level BPE with the Hugging Face tokenizer.json feature set that byte-level models use. */
export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: Readonly<SpecialTokenIds>;
  readonly chatTemplate: string | undefined;
  private readonly model: BpeModel;
  readonly addedTokens: readonly AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizer;
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly bytesCache: (Uint8Array | null | undefined)[] = [];
  // ignoreBOM: a leading U+FEFF is text like any other and must survive the round trip.
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  private decodeBuffer = new Uint8Array(1024);
  private readonly json: Json;
  private readonly modelJson: Json;
  private readonly config: Json;

  /**
   * @param json a parsed tokenizer.json
   * @param config a parsed tokenizer_config.json (special token names, chat template), if any
   */
  constructor(json: unknown, config?: unknown) {
    const full = asObject(json, 'tokenizer.json');
    this.config = config === undefined ? {} : asObject(config, 'tokenizer_config.json');
    const m = asObject(full.model, '"model"');
    // Kept without the vocabulary and merges (toJSON rebuilds them from the BPE model): a 150k-token
    // vocabulary held twice would cost about 20 MB for as long as the tokenizer lives.
    const { vocab: _vocab, merges: _merges, ...modelRest } = m;
    const { model: _model, ...rest } = full;
    this.json = rest;
    this.modelJson = modelRest;
    if (m.type !== 'BPE') throw new Error(`unsupported model type ${JSON.stringify(m.type)} (only byte-level BPE is supported)`);
    if (m.dropout !== undefined && m.dropout !== null && m.dropout !== 0) throw new Error('BPE dropout is not supported');
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
      if (m[key] !== undefined && m[key] !== null && m[key] !== '') throw new Error(`model.${key} is not supported by byte-level BPE`);
    }
    const decoder = asObject(full.decoder, '"decoder"');
    if (decoder.type !== 'ByteLevel') throw new Error(`unsupported decoder type ${JSON.stringify(decoder.type)} (byte-level BPE needs ByteLevel)`);

    this.model = new BpeModel({ vocab: parseVocab(m.vocab), merges: parseMerges(m.merges), ignoreMerges: m.ignore_merges === true });
    this.normalizer = buildNormalizer(this.json.normalizer);
    this.preTokenizer = buildPreTokenizer(this.json.pre_tokenizer);
    this.addedTokens = parseAddedTokens(this.json.added_tokens);

    const raw: { key: string; token: AddedToken }[] = [];
    const normalized: { key: string; token: AddedToken }[] = [];
    for (const t of this.addedTokens) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      // Tokens flagged `normalized` are looked for in the normalized text, in normalized form.
      if (t.normalized && this.normalizer) normalized.push({ key: this.normalizer(t.content), token: t });
      else raw.push({ key: t.content, token: t });
    }
    this.rawMatcher = new AddedTokenMatcher(raw);
    this.normalizedMatcher = new AddedTokenMatcher(normalized);

    let size = this.model.vocab.length;
    for (const t of this.addedTokens) size = Math.max(size, t.id + 1);
    this.vocabSize = size;

    const special: SpecialTokenIds = {};
    for (const name of Object.keys(SPECIAL_TOKENS) as SpecialTokenName[]) {
      const fromConfig = name === 'bos' || name === 'eos' || name === 'pad' ? this.config[`${name}_token`] : undefined;
      // An explicit null in the config (Qwen's bos_token) means "none", not "use the default".
      const text = fromConfig === undefined ? SPECIAL_TOKENS[name] : configTokenText(fromConfig);
      const id = text === undefined ? undefined : this.tokenToId(text);
      if (id !== undefined) special[name] = id;
    }
    this.special = special;
    this.chatTemplate = chatTemplateOf(this.config);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.addBos) {
      if (this.special.bos === undefined) throw new Error('this tokenizer has no BOS token');
      ids.push(this.special.bos);
    }
    const { segments, tokens } = this.rawMatcher.split(text);
    for (let k = 0; k < segments.length; k++) {
      if (segments[k].length > 0) this.encodeSection(segments[k], ids);
      if (k < tokens.length) ids.push(tokens[k].id);
    }
    return ids;
  }

  private encodeSection(section: string, ids: number[]): void {
    const normalized = this.normalizer ? this.normalizer(section) : section;
    const { segments, tokens } = this.normalizedMatcher.split(normalized);
    for (let k = 0; k < segments.length; k++) {
      if (segments[k].length > 0) this.encodeOrdinary(segments[k], ids);
      if (k < tokens.length) ids.push(tokens[k].id);
    }
  }

  private encodeOrdinary(text: string, ids: number[]): void {
    this.preTokenizer(text, (piece) => this.model.encodePiece(piece, ids));
  }

  /** The bytes of a non-added token, or null for ids with no token. */
  private bytesOf(id: number): Uint8Array | null {
    let b = this.bytesCache[id];
    if (b === undefined) {
      const token = Number.isInteger(id) && id >= 0 ? this.model.vocab[id] : undefined;
      b = token === undefined ? null : (tokenStringToBytes(token) ?? new TextEncoder().encode(token));
      if (Number.isInteger(id) && id >= 0 && id < this.vocabSize) this.bytesCache[id] = b;
    }
    return b;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    // Bytes are gathered and converted once per run between added tokens, not once per token.
    let text = '';
    let buf = this.decodeBuffer;
    let len = 0;
    for (let i = 0; i < ids.length; i++) {
      const added = this.addedById.get(ids[i]);
      if (added) {
        if (len > 0) text += this.utf8.decode(buf.subarray(0, len));
        len = 0;
        if (!(added.special && options.skipSpecial)) text += added.content;
        continue;
      }
      const bytes = this.bytesOf(ids[i]);
      if (bytes === null) continue;
      if (len + bytes.length > buf.length) {
        const bigger = new Uint8Array(Math.max(buf.length * 2, len + bytes.length));
        bigger.set(buf.subarray(0, len));
        buf = this.decodeBuffer = bigger;
      }
      buf.set(bytes, len);
      len += bytes.length;
    }
    if (len > 0) text += this.utf8.decode(buf.subarray(0, len));
    return text;
  }

  createDecodeStream(options: DecodeOptions = {}): DecodeStream {
    // A streaming TextDecoder holds back an incomplete UTF-8 sequence until its last byte arrives;
    // decode() without {stream} ends the run, turning anything left into U+FFFD.
    const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number): string => {
        const added = this.addedById.get(id);
        if (added) {
          const pending = utf8.decode();
          return added.special && options.skipSpecial ? pending : pending + added.content;
        }
        const bytes = this.bytesOf(id);
        return bytes === null ? '' : utf8.decode(bytes, { stream: true });
      },
      flush: (): string => utf8.decode(),
    };
  }

  tokenBytes(id: number): Uint8Array | null {
    return this.addedById.has(id) ? null : this.bytesOf(id);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.vocab[id];
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenIds.get(token);
  }

  /** The merges in rank order, as pairs of token strings. */
  mergePairs(): [string, string][] {
    const m = this.model;
    const pairs: [string, string][] = new Array(m.mergeLeft.length);
    for (let r = 0; r < m.mergeLeft.length; r++) pairs[r] = [m.vocab[m.mergeLeft[r]]!, m.vocab[m.mergeRight[r]]!];
    return pairs;
  }

  /** The tokenizer.json sections around the vocabulary, as loaded (toJSON without the vocabulary and merges). */
  pipelineJSON(): { normalizer: unknown; pre_tokenizer: unknown; post_processor: unknown; decoder: unknown; ignore_merges: boolean; byte_fallback: boolean } {
    return {
      normalizer: this.json.normalizer ?? null,
      pre_tokenizer: this.json.pre_tokenizer,
      post_processor: this.json.post_processor ?? null,
      decoder: this.json.decoder,
      ignore_merges: this.model.ignoreMerges,
      byte_fallback: this.modelJson.byte_fallback === true,
    };
  }

  /** The tokenizer.json this tokenizer would write (merges as "a b" when no token has a space). */
  toJSON(): Json {
    const m = this.model;
    const vocab = Object.fromEntries(m.vocab.flatMap((token, id) => (token === undefined ? [] : [[token, id]])));
    const pairs = this.mergePairs();
    const spaced = pairs.some(([a, b]) => a.includes(' ') || b.includes(' '));
    const mj = this.modelJson;
    return {
      version: '1.0',
      truncation: this.json.truncation ?? null,
      padding: this.json.padding ?? null,
      added_tokens: this.addedTokens.map((t) => ({
        id: t.id,
        content: t.content,
        single_word: t.singleWord,
        lstrip: t.lstrip,
        rstrip: t.rstrip,
        normalized: t.normalized,
        special: t.special,
      })),
      normalizer: this.json.normalizer ?? null,
      pre_tokenizer: this.json.pre_tokenizer,
      post_processor: this.json.post_processor ?? null,
      decoder: this.json.decoder,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: mj.unk_token ?? null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: mj.fuse_unk === true,
        byte_fallback: mj.byte_fallback === true,
        ignore_merges: m.ignoreMerges,
        vocab,
        merges: spaced ? pairs : pairs.map(([a, b]) => `${a} ${b}`),
      },
    };
  }

  /** tokenizer_config.json: the one loaded, or names of our special tokens for a fresh one. */
  configJSON(): Json {
    if (Object.keys(this.config).length > 0) return this.config;
    const name = (id: number | undefined) => (id === undefined ? null : this.idToToken(id));
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: name(this.special.bos),
      eos_token: name(this.special.eos),
      pad_token: name(this.special.pad),
      unk_token: null,
      clean_up_tokenization_spaces: false,
    };
  }

  async save(dir: string): Promise<void> {
    await writeFileAtomic(join(dir, 'tokenizer.json'), `${JSON.stringify(this.toJSON(), null, 2)}\n`);
    await writeFileAtomic(join(dir, 'tokenizer_config.json'), `${JSON.stringify(this.configJSON(), null, 2)}\n`);
  }
}

/** Sets the chat template in a saved tokenizer's tokenizer_config.json (in `dir`). */
export async function setChatTemplate(dir: string, template: string): Promise<void> {
  const path = join(dir, 'tokenizer_config.json');
  const cfg = (await readJson(path)) as Json;
  cfg.chat_template = template;
  await writeFileAtomic(path, `${JSON.stringify(cfg, null, 2)}\n`);
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${(err as Error).message})`}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: malformed JSON (${(err as Error).message})`);
  }
}

/**
 * Loads a tokenizer from a tokenizer.json file or a directory holding one; a tokenizer_config.json
 * beside it, when present, supplies the special token names and the chat template.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new Error(`${path}: no such file or directory`);
  }
  const file = isDir ? join(path, 'tokenizer.json') : path;
  const json = await readJson(file);
  const configFile = join(dirname(file), 'tokenizer_config.json');
  const hasConfig = await stat(configFile).then(
    () => true,
    () => false,
  );
  const config = hasConfig ? await readJson(configFile) : undefined;
  try {
    return new ByteLevelBpeTokenizer(json, config);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
