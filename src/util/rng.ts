// Seedable pseudo-random numbers for everything that must replay exactly: data order, sampling,
// initialisation. sfc32 is small, fast in plain 32-bit integer arithmetic and passes PractRand; its
// whole state is four words (plus the cached Box–Muller spare), so a training checkpoint can store it
// and a resumed run draws the very same numbers. Not for cryptography.

/** Everything needed to resume a generator exactly; plain JSON. */
export interface RngState {
  s: [number, number, number, number];
  /** The second Box–Muller value, kept so that resuming between two normal() calls stays exact. */
  spare: number | null;
}

const TWO_32 = 0x1_0000_0000;

// splitmix32 spreads a seed over the whole state; sfc32 started from a weak state (say seed 0) would
// give correlated first outputs otherwise.
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private spare: number | null = null;

  /** `seed`: any safe integer; the same seed always gives the same stream. */
  constructor(seed = 0) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_32) | 0;
    this.a = splitmix32(lo);
    this.b = splitmix32(this.a ^ hi);
    this.c = splitmix32(this.b ^ 0x6a09e667);
    this.d = splitmix32(this.c ^ hi ^ 0xbb67ae85);
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits, so every double of the form k·2⁻⁵³ is reachable. */
  next(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 0x4000000 + lo) / 0x20000000000000;
  }

  /** Uniform integer in [lo, hi], both ends included, without modulo bias. */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new Error(`int(lo, hi) needs safe integers with lo <= hi, got ${lo}, ${hi}`);
    }
    const span = hi - lo + 1;
    if (span <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % span);
      let x = this.nextU32();
      while (x >= limit) x = this.nextU32();
      return lo + (x % span);
    }
    if (!Number.isSafeInteger(span)) throw new Error(`int(lo, hi): range ${lo}..${hi} is wider than 2^53`);
    const TWO_53 = 0x20000000000000;
    const limit = TWO_53 - (TWO_53 % span);
    for (;;) {
      const x = (this.nextU32() >>> 11) * TWO_32 + this.nextU32();
      if (x < limit) return lo + (x % span);
    }
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick() from an empty array');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Fisher–Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }

  /** Gaussian sample (Box–Muller; the pair's second value is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    const u = 1 - this.next(); // (0, 1], so the log is finite
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  getState(): RngState {
    return { s: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0], spare: this.spare };
  }

  setState(state: RngState): void {
    const s = state?.s;
    const ok =
      Array.isArray(s) &&
      s.length === 4 &&
      s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_32) &&
      (state.spare === null || Number.isFinite(state.spare));
    if (!ok) throw new Error('invalid RngState: expected {s: four 32-bit unsigned integers, spare: number | null}');
    [this.a, this.b, this.c, this.d] = [s[0] | 0, s[1] | 0, s[2] | 0, s[3] | 0];
    this.spare = state.spare;
  }
}
