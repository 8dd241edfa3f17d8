// The byte-level BPE model: turns one pre-tokenized piece into token ids.
//
// Merges are looked up by integer pair in an open-addressing table (no string keys, no string
// concatenation while merging), and results are cached per piece because natural text repeats its
// words heavily. Among the applicable merges the lowest rank wins and, on equal rank, the leftmost
// pair: the rule of the reference implementations, which both paths below follow.

import { Utf8Scratch, bytesToTokenString } from './bytes.js';

const NO_RANK = 0x7fffffff;
// Pieces at least this long (in bytes) use the heap path: the rescanning path is quadratic.
const LONG_PIECE = 96;
// Pieces longer than this (in UTF-16 units) are not cached: they rarely repeat.
const MAX_CACHED_PIECE = 128;
const CACHE_SLOTS = 1 << 16;

/**
 * (left id, right id) → merge rank, by open addressing. Each slot is [left, right, rank, unused] in
 * one Int32Array, so a probe touches a single cache line.
 */
class PairRanks {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(lefts: Int32Array, rights: Int32Array) {
    let cap = 16;
    while (cap < lefts.length * 2) cap *= 2;
    this.mask = cap - 1;
    const slots = new Int32Array(cap * 4).fill(-1);
    this.slots = slots;
    for (let r = 0; r < lefts.length; r++) {
      const a = lefts[r];
      const b = rights[r];
      let slot = this.hash(a, b);
      while (slots[slot * 4] !== -1 && !(slots[slot * 4] === a && slots[slot * 4 + 1] === b)) slot = (slot + 1) & this.mask;
      // A duplicated merge keeps its first (best) rank.
      if (slots[slot * 4] === -1) {
        slots[slot * 4] = a;
        slots[slot * 4 + 1] = b;
        slots[slot * 4 + 2] = r;
      }
    }
  }

  private hash(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0 & this.mask;
  }

  /** The rank of merging (a, b), or NO_RANK. */
  get(a: number, b: number): number {
    const slots = this.slots;
    let slot = this.hash(a, b);
    for (;;) {
      const at = slot * 4;
      const l = slots[at];
      if (l === -1) return NO_RANK;
      if (l === a && slots[at + 1] === b) return slots[at + 2];
      slot = (slot + 1) & this.mask;
    }
  }
}

export interface BpeModelSpec {
  /** id → token string; holes allowed. */
  vocab: (string | undefined)[];
  /** Merges in rank order, as token strings. */
  merges: [string, string][];
  /** Whole pieces found in the vocabulary skip merging (the `ignore_merges` flag). */
  ignoreMerges: boolean;
}

export class BpeModel {
  readonly vocab: (string | undefined)[];
  readonly tokenIds = new Map<string, number>();
  /** Per rank: the two ids merged and the id they make. */
  readonly mergeLeft: Int32Array;
  readonly mergeRight: Int32Array;
  readonly mergeResult: Int32Array;
  readonly ignoreMerges: boolean;
  private readonly ranks: PairRanks;
  private readonly byteIds = new Int32Array(256);
  // Direct-mapped piece → ids cache: a colliding piece just replaces the old one, which keeps
  // memory bounded and lookups cheaper than a Map that must be cleared when it grows too big.
  private readonly cacheKeys: (string | undefined)[] = new Array(CACHE_SLOTS);
  private readonly cacheIds: (Int32Array | undefined)[] = new Array(CACHE_SLOTS);
  private readonly utf8 = new Utf8Scratch();
  private syms = new Int32Array(64);
  private pairRanks = new Int32Array(64);

  constructor(spec: BpeModelSpec) {
    this.vocab = spec.vocab;
    this.ignoreMerges = spec.ignoreMerges;
    spec.vocab.forEach((token, id) => {
      if (token !== undefined) this.tokenIds.set(token, id);
    });
    for (let b = 0; b < 256; b++) {
      const id = this.tokenIds.get(bytesToTokenString(Uint8Array.of(b)));
      if (id === undefined) throw new Error(`vocab has no token for byte 0x${b.toString(16).padStart(2, '0')}`);
      this.byteIds[b] = id;
    }
    const n = spec.merges.length;
    this.mergeLeft = new Int32Array(n);
    this.mergeRight = new Int32Array(n);
    this.mergeResult = new Int32Array(n);
    spec.merges.forEach(([a, b], r) => {
      const ia = this.tokenIds.get(a);
      const ib = this.tokenIds.get(b);
      const ic = this.tokenIds.get(a + b);
      if (ia === undefined || ib === undefined || ic === undefined) {
        throw new Error(`merge #${r} "${a} ${b}" uses a token missing from the vocab`);
      }
      this.mergeLeft[r] = ia;
      this.mergeRight[r] = ib;
      this.mergeResult[r] = ic;
    });
    this.ranks = new PairRanks(this.mergeLeft, this.mergeRight);
  }

  /** Appends the ids of one pre-tokenized piece to `out`. */
  encodePiece(piece: string, out: number[]): void {
    const n = piece.length;
    let slot = -1;
    if (n <= MAX_CACHED_PIECE) {
      let h = 0x811c9dc5;
      for (let i = 0; i < n; i++) h = Math.imul(h ^ piece.charCodeAt(i), 0x01000193);
      slot = (h >>> 0) & (CACHE_SLOTS - 1);
      if (this.cacheKeys[slot] === piece) {
        const cached = this.cacheIds[slot]!;
        for (let i = 0; i < cached.length; i++) out.push(cached[i]);
        return;
      }
    }
    const len = this.utf8.encode(piece);
    const bytes = this.utf8.buf;
    let ids: Int32Array | undefined;
    if (this.ignoreMerges) {
      const whole = this.tokenIds.get(bytesToTokenString(bytes, 0, len));
      if (whole !== undefined) ids = Int32Array.of(whole);
    }
    if (ids === undefined) {
      if (this.syms.length < len) {
        this.syms = new Int32Array(len * 2);
        this.pairRanks = new Int32Array(len * 2);
      }
      const syms = this.syms;
      for (let i = 0; i < len; i++) syms[i] = this.byteIds[bytes[i]];
      ids = len < LONG_PIECE ? this.mergeShort(syms, len) : this.mergeLong(syms, len);
    }
    if (slot >= 0) {
      this.cacheKeys[slot] = piece;
      this.cacheIds[slot] = ids;
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** Rescans the pair ranks after each merge: fastest for the short pieces that dominate text. */
  private mergeShort(syms: Int32Array, len: number): Int32Array {
    const ranks = this.pairRanks;
    let n = len;
    for (let i = 0; i + 1 < n; i++) ranks[i] = this.ranks.get(syms[i], syms[i + 1]);
    while (n > 1) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      syms[at] = this.mergeResult[best];
      for (let i = at + 1; i + 1 < n; i++) syms[i] = syms[i + 1];
      for (let i = at + 1; i + 2 < n; i++) ranks[i] = ranks[i + 1];
      n--;
      if (at > 0) ranks[at - 1] = this.ranks.get(syms[at - 1], syms[at]);
      if (at + 1 < n) ranks[at] = this.ranks.get(syms[at], syms[at + 1]);
    }
    return syms.slice(0, n);
  }

  /** Linked list plus a min-heap keyed by rank·len + position: n log n for very long pieces. */
  private mergeLong(syms: Int32Array, len: number): Int32Array {
    const next = new Int32Array(len);
    const prev = new Int32Array(len);
    for (let i = 0; i < len; i++) {
      next[i] = i + 1 < len ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap: number[] = [];
    const push = (key: number) => {
      let i = heap.length;
      heap.push(key);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= key) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= heap.length) break;
          if (c + 1 < heap.length && heap[c + 1] < heap[c]) c++;
          if (heap[c] >= last) break;
          heap[i] = heap[c];
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const consider = (i: number) => {
      const j = next[i];
      if (j < 0) return;
      const r = this.ranks.get(syms[i], syms[j]);
      if (r !== NO_RANK) push(r * len + i);
    };
    for (let i = 0; i + 1 < len; i++) consider(i);
    let remaining = len;
    while (heap.length > 0) {
      const key = pop();
      const r = Math.floor(key / len);
      const i = key - r * len;
      const j = next[i];
      // Stale entries: the left symbol died, or the pair there has changed since it was queued.
      if (syms[i] < 0 || j < 0 || this.ranks.get(syms[i], syms[j]) !== r) continue;
      syms[i] = this.mergeResult[r];
      syms[j] = -1;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      remaining--;
      if (prev[i] >= 0) consider(prev[i]);
      consider(i);
    }
    const out = new Int32Array(remaining);
    for (let i = 0, k = 0; i >= 0; i = next[i]) out[k++] = syms[i];
    return out;
  }
}
