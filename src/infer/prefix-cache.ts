// Prompt-prefix reuse: the KV rows of recently prefilled prompts, kept so that a later prompt starting
// with the same tokens (a shared system prompt, a chat's earlier turns, the G samples of one GRPO
// prompt) copies those rows instead of computing them again. A row at position p depends only on
// tokens 0..p, so the rows of a common prefix are the same whichever prompt computed them (up to the
// summation order of batched kernels, i.e. the last bits).
//
// Entries are kept least recently used first within a byte budget. Lookups scan every entry: there are
// few (each holds a whole prompt's rows for every layer), and a comparison stops at the first token
// that differs.
import type { KVSnapshot } from '../model/cache.js';

interface Entry {
  tokens: readonly number[];
  snapshot: KVSnapshot;
}

/** How many leading tokens a and b share. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class PrefixCache {
  /** Least recently used first. */
  private readonly entries: Entry[] = [];
  private held = 0;

  /**
   * maxBytes: budget for all entries (0 keeps nothing). minTokens: shorter reuses are not worth a
   * lookup's copy, and shorter prompts are not kept.
   */
  constructor(readonly maxBytes: number, readonly minTokens: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The entry sharing the longest prefix with `prompt` and how many of its rows to reuse, or null
   * when fewer than minTokens would be. At most prompt.length - 1 rows: the last prompt token must go
   * through the model to give the logits of the first generated token.
   */
  lookup(prompt: readonly number[]): { snapshot: KVSnapshot; rows: number } | null {
    const { index, rows } = this.best(prompt);
    if (index < 0) return null;
    const e = this.entries[index];
    this.touch(index);
    return { snapshot: e.snapshot, rows };
  }

  /** How many rows lookup(prompt) would reuse (0 for none), without marking anything used. */
  reusable(prompt: readonly number[]): number {
    return this.best(prompt).rows;
  }

  /** Whether store() would keep a prompt of `tokens` tokens taking `bytes`. */
  keeps(tokens: number, bytes: number): boolean {
    return tokens >= this.minTokens && bytes <= this.maxBytes;
  }

  /**
   * Keeps the rows of a prompt's `tokens`, which `take` copies (called only when they are stored):
   * `bytes` is what the copy will hold. Evicts least recently used entries to stay within the budget;
   * a prompt that alone exceeds it is not kept.
   */
  store(tokens: readonly number[], bytes: number, take: () => KVSnapshot): void {
    if (!this.keeps(tokens.length, bytes)) return;
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.tokens.length >= tokens.length && commonPrefix(e.tokens, tokens) === tokens.length) {
        this.touch(i); // already covered (the same prompt again, or an earlier part of a longer one)
        return;
      }
    }
    // Entries this prompt extends (a chat's earlier turns) can serve no lookup better than it will.
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (commonPrefix(e.tokens, tokens) === e.tokens.length) this.remove(i);
    }
    while (this.held + bytes > this.maxBytes) this.remove(0);
    const snapshot = take();
    this.entries.push({ tokens: [...tokens], snapshot });
    this.held += snapshot.bytes;
  }

  clear(): void {
    this.entries.length = 0;
    this.held = 0;
  }

  private best(prompt: readonly number[]): { index: number; rows: number } {
    let index = -1;
    let shared = 0;
    this.entries.forEach((e, i) => {
      const n = commonPrefix(e.tokens, prompt);
      if (n > shared) [index, shared] = [i, n];
    });
    const rows = Math.min(shared, prompt.length - 1);
    return rows >= this.minTokens ? { index, rows } : { index: -1, rows: 0 };
  }

  private touch(i: number): void {
    this.entries.push(...this.entries.splice(i, 1));
  }

  private remove(i: number): void {
    const [e] = this.entries.splice(i, 1);
    this.held -= e.snapshot.bytes;
  }
}
