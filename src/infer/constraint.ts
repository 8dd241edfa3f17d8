// Constrained decoding: which tokens of a vocabulary may come next so that the output stays inside a
// JSON grammar (json-schema.ts).
//
// A token is allowed when the matcher accepts all of its bytes. Walking the vocabulary as a byte
// trie shares the work between tokens with a common prefix and abandons a whole subtree at the first
// refused byte. Masks are cached by the matcher's state key: inside a long string or between fields
// the same state recurs at every token, so most steps cost one map lookup. The key looks only as far
// ahead as a token can reach, so the trie holds the tokens of up to SHORT bytes (99% of a 152k
// vocabulary) under a short key that stays the same while a string's length limit is still far
// off; the few longer tokens are checked one by one under a key of their own. For greedy decoding
// the engine first checks the unconstrained choice alone (`allows`), which is usually allowed.
import type { Tokenizer } from '../tokenizer/index.js';
import { JsonMatcher, type JsonGrammar } from './json-schema.js';

interface TrieNode {
  /** Child per next byte (sparse: bytes and nodes in parallel). */
  bytes: number[];
  next: TrieNode[];
  /** Tokens whose bytes end here. */
  ids: number[];
}

/** Tokens of at most this many bytes are in the trie; longer ones are checked one by one. */
export const SHORT = 16;

/** The ordinary tokens of a vocabulary: the short ones as a byte trie, the long ones listed. */
export class TokenTrie {
  readonly root: TrieNode = { bytes: [], next: [], ids: [] };
  readonly size: number;
  /** The longest token in bytes: how far ahead a mask can look. */
  readonly maxBytes: number;
  readonly bytesOf: (Uint8Array | null)[];
  /** Tokens longer than SHORT bytes. */
  readonly long: number[] = [];

  constructor(tokenizer: Tokenizer, size: number) {
    this.size = size;
    this.bytesOf = [];
    let maxBytes = 1;
    for (let id = 0; id < size; id++) {
      const b = id < tokenizer.vocabSize ? tokenizer.tokenBytes(id) : null;
      this.bytesOf.push(b !== null && b.length > 0 ? b : null);
      if (b === null || b.length === 0) continue;
      maxBytes = Math.max(maxBytes, b.length);
      if (b.length > SHORT) {
        this.long.push(id);
        continue;
      }
      let n = this.root;
      for (const byte of b) {
        let i = n.bytes.indexOf(byte);
        if (i < 0) {
          i = n.bytes.length;
          n.bytes.push(byte);
          n.next.push({ bytes: [], next: [], ids: [] });
        }
        n = n.next[i];
      }
      n.ids.push(id);
    }
    this.maxBytes = maxBytes;
  }
}

const tries = new WeakMap<Tokenizer, Map<number, TokenTrie>>();

/** One trie per tokenizer and vocabulary size, built on first use. */
export function tokenTrie(tokenizer: Tokenizer, size: number): TokenTrie {
  let bySize = tries.get(tokenizer);
  if (bySize === undefined) tries.set(tokenizer, (bySize = new Map()));
  let t = bySize.get(size);
  if (t === undefined) bySize.set(size, (t = new TokenTrie(tokenizer, size)));
  return t;
}

const MASK_CACHE = 1024;

/** A bitset over token ids: bit id set = allowed. */
export type TokenMask = Uint32Array;

export function maskHas(mask: TokenMask, id: number): boolean {
  return (mask[id >>> 5] & (1 << (id & 31))) !== 0;
}

/** Masks of one grammar over one vocabulary, cached by matcher state. */
export class GrammarMasks {
  /** Short-token masks and long-token id lists, by state key. */
  private readonly cache = new Map<string, TokenMask>();

  constructor(
    readonly grammar: JsonGrammar,
    readonly trie: TokenTrie,
  ) {}

  private cached<T>(key: string, make: () => T): T {
    const hit = this.cache.get(key) as T | undefined;
    if (hit !== undefined) {
      // Refresh its place: the map's order is the eviction order.
      this.cache.delete(key);
      this.cache.set(key, hit as TokenMask);
      return hit;
    }
    const v = make();
    if (this.cache.size >= MASK_CACHE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, v as TokenMask);
    return v;
  }

  /** The tokens the matcher accepts in full. */
  mask(m: JsonMatcher): TokenMask {
    const short = this.cached(`s${m.key(SHORT)}`, () => this.walk(m));
    if (this.trie.long.length === 0) return short;
    const long = this.cached(`l${m.key(this.trie.maxBytes)}`, () => Uint32Array.from(this.trie.long.filter((id) => m.feed(this.trie.bytesOf[id]!) !== null)));
    if (long.length === 0) return short;
    const mask = short.slice();
    for (const id of long) mask[id >>> 5] |= 1 << (id & 31);
    return mask;
  }

  /** The trie's tokens the matcher accepts. */
  private walk(m: JsonMatcher): TokenMask {
    const mask = new Uint32Array((this.trie.size + 31) >>> 5);
    const walk = (node: TrieNode, state: JsonMatcher): void => {
      for (let i = 0; i < node.bytes.length; i++) {
        const s = state.feedByte(node.bytes[i]);
        if (s === null) continue;
        const child = node.next[i];
        for (const id of child.ids) mask[id >>> 5] |= 1 << (id & 31);
        walk(child, s);
      }
    };
    walk(this.trie.root, m);
    return mask;
  }

  /** Whether one token is allowed (cheaper than a mask when only the likeliest token is in question). */
  allows(m: JsonMatcher, id: number): boolean {
    const b = id < this.trie.size ? this.trie.bytesOf[id] : null;
    return b !== null && m.feed(b) !== null;
  }
}

const masksByGrammar = new WeakMap<JsonGrammar, Map<TokenTrie, GrammarMasks>>();

/** The shared mask cache of a grammar over a vocabulary (requests with one schema share masks). */
export function grammarMasks(grammar: JsonGrammar, tokenizer: Tokenizer, vocabSize: number): GrammarMasks {
  const trie = tokenTrie(tokenizer, vocabSize);
  let byTrie = masksByGrammar.get(grammar);
  if (byTrie === undefined) masksByGrammar.set(grammar, (byTrie = new Map()));
  let g = byTrie.get(trie);
  if (g === undefined) byTrie.set(trie, (g = new GrammarMasks(grammar, trie)));
  return g;
}
