// Training a byte-level BPE vocabulary from raw text.
//
// The corpus is pre-tokenized once into a table of distinct pieces with their counts; merges then
// work on that table. Pair counts are kept up to date incrementally: a merge visits only the words
// that contain its pair (an index from pair to words) and adjusts the counts of the neighbouring
// pairs it destroys and creates, so the cost of a merge is proportional to its occurrences rather
// than to the corpus. The next merge comes from a max-heap with lazy deletion: every count change
// pushes a fresh entry, and entries whose count no longer matches are dropped when they surface.

import { createReadStream } from 'node:fs';
import { BYTE_TO_CHAR, Utf8Scratch } from './bytes.js';
import { buildPreTokenizer } from './pretokenize.js';
import { SPECIAL_TOKENS } from './special.js';
import { ByteLevelBpeTokenizer } from './tokenizer.js';
import { R1_CHAT_TEMPLATE } from './chat.js';

/**
 * Qwen2's word splitter: contractions, letter runs (with one leading non-letter such as a space),
 * single digits (so numbers are spelled digit by digit, which helps arithmetic), punctuation runs,
 * newline runs and space runs, the last space of a run going to the next word.
 */
export const PRE_TOKENIZER_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };

export const DEFAULT_PRE_TOKENIZER = {
  type: 'Sequence',
  pretokenizers: [{ type: 'Split', pattern: { Regex: PRE_TOKENIZER_PATTERN }, behavior: 'Isolated', invert: false }, BYTE_LEVEL],
};

// Special tokens come first in the vocabulary, in this order (BOS = 0, EOS = 1, pad = 2 as in
// DeepSeek-V3). Only these three are flagged `special`, so decode({skipSpecial}) keeps role and
// reasoning tags.
const SPECIAL_ORDER = ['bos', 'eos', 'pad', 'user', 'assistant', 'think', 'thinkEnd', 'answer', 'answerEnd'] as const;
const FLAGGED_SPECIAL = new Set<string>(['bos', 'eos', 'pad']);

export interface TrainOptions {
  /** Final vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Stop early when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Called now and then with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

// Pair keys pack two ids below 2^21 into one exact double.
const KEY_BASE = 2 ** 21;

/** Max-heap of (count, pair key); equal counts pop the smaller key first, for determinism. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and returns it as [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.keys.length) break;
      const c = l + 1 < this.keys.length && this.above(l + 1, l) ? l + 1 : l;
      if (!this.above(c, i)) break;
      this.swap(c, i);
      i = c;
    }
    return top;
  }
}

/** Counts the distinct pre-tokenized pieces of a corpus; special tokens are cut out first. */
async function countPieces(corpus: Iterable<string> | AsyncIterable<string>): Promise<Map<string, number>> {
  const preTokenize = buildPreTokenizer(DEFAULT_PRE_TOKENIZER);
  const specials = new RegExp(Object.values(SPECIAL_TOKENS).map((t) => t.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')).join('|'), 'u');
  const counts = new Map<string, number>();
  const add = (piece: string) => counts.set(piece, (counts.get(piece) ?? 0) + 1);
  for await (const text of corpus) {
    for (const part of text.split(specials)) if (part.length > 0) preTokenize(part, add);
  }
  return counts;
}

/**
 * Learns merges from `corpus` (a text, or texts that are independent of each other: no piece spans
 * two of them) and returns the tokenizer.
 */
export async function trainTokenizer(
  corpus: string | Iterable<string> | AsyncIterable<string>,
  options: TrainOptions,
): Promise<ByteLevelBpeTokenizer> {
  const specials = SPECIAL_ORDER.map((name) => SPECIAL_TOKENS[name]);
  const base = specials.length + 256;
  const { vocabSize, minFrequency = 2, onProgress } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < base) throw new Error(`vocab size must be an integer of at least ${base}`);
  if (vocabSize > KEY_BASE) throw new Error(`vocab size must be at most ${KEY_BASE}`);

  const tokens: string[] = [...specials, ...BYTE_TO_CHAR];
  // A string is iterable too, but character by character.
  const pieceCounts = await countPieces(typeof corpus === 'string' ? [corpus] : corpus);

  const words: Int32Array[] = [];
  const lens: number[] = [];
  const freq: number[] = [];
  const utf8 = new Utf8Scratch();
  for (const [piece, count] of pieceCounts) {
    const n = utf8.encode(piece);
    const w = new Int32Array(n);
    for (let i = 0; i < n; i++) w[i] = specials.length + utf8.buf[i];
    words.push(w);
    lens.push(n);
    freq.push(count);
  }
  pieceCounts.clear();

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const touched = new Set<number>();
  const bump = (a: number, b: number, delta: number, w: number) => {
    const key = a * KEY_BASE + b;
    const c = (pairCount.get(key) ?? 0) + delta;
    if (c === 0) pairCount.delete(key);
    else pairCount.set(key, c);
    if (delta > 0) {
      const list = pairWords.get(key);
      if (!list) pairWords.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
    touched.add(key);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < lens[w]; i++) bump(s[i], s[i + 1], freq[w], w);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);
  touched.clear();

  const merges: [string, string][] = [];
  const wanted = vocabSize - base;
  const lastVisit = new Int32Array(words.length).fill(-1);
  while (merges.length < wanted && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale entry
    if (count < minFrequency) break;
    const a = Math.floor(key / KEY_BASE);
    const b = key - a * KEY_BASE;
    const c = tokens.length;
    tokens.push(tokens[a] + tokens[b]);
    merges.push([tokens[a], tokens[b]]);

    for (const w of pairWords.get(key) ?? []) {
      if (lastVisit[w] === c) continue;
      lastVisit[w] = c;
      const s = words[w];
      const f = freq[w];
      let n = lens[w];
      for (let i = 0; i + 1 < n; i++) {
        if (s[i] !== a || s[i + 1] !== b) continue;
        if (i > 0) {
          bump(s[i - 1], a, -f, w);
          bump(s[i - 1], c, f, w);
        }
        if (i + 2 < n) {
          bump(b, s[i + 2], -f, w);
          bump(c, s[i + 2], f, w);
        }
        bump(a, b, -f, w);
        s[i] = c;
        s.copyWithin(i + 1, i + 2, n);
        n--;
      }
      lens[w] = n;
    }
    pairWords.delete(key);
    for (const k of touched) {
      const current = pairCount.get(k);
      if (current === undefined) pairWords.delete(k);
      else if (k !== key) heap.push(current, k);
    }
    touched.clear();
    if (onProgress && (merges.length % 1000 === 0 || merges.length === wanted)) onProgress(merges.length, wanted);
  }

  const vocab = Object.fromEntries(tokens.map((t, id) => [t, id]));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_ORDER.map((name, id) => ({
      id,
      content: SPECIAL_TOKENS[name],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: FLAGGED_SPECIAL.has(name),
    })),
    // No normalizer: normalizing would break the exact round trip (e.g. of combining marks).
    normalizer: null,
    pre_tokenizer: DEFAULT_PRE_TOKENIZER,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([x, y]) => `${x} ${y}`),
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: SPECIAL_TOKENS.bos,
    eos_token: SPECIAL_TOKENS.eos,
    pad_token: SPECIAL_TOKENS.pad,
    unk_token: null,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    chat_template: R1_CHAT_TEMPLATE,
  };
  return new ByteLevelBpeTokenizer(json, config);
}

/**
 * Streams a text file as chunks of about 1 MiB, each cut just after a newline that is followed by
 * a non-space character: the default pre-tokenizer never joins text across such a point, so the
 * pieces are the same as if the whole file were one string.
 */
export async function* readCorpusFile(path: string): AsyncGenerator<string> {
  let carry = '';
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = carry + chunk;
    let cut = -1;
    for (let i = text.lastIndexOf('\n'); i >= 0; i = i > 0 ? text.lastIndexOf('\n', i - 1) : -1) {
      const next = text[i + 1];
      if (next !== undefined && !/\p{White_Space}/u.test(next)) {
        cut = i + 1;
        break;
      }
    }
    if (cut < 0) {
      carry = text;
      continue;
    }
    yield text.slice(0, cut);
    carry = text.slice(cut);
  }
  if (carry.length > 0) yield carry;
}
