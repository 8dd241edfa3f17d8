// Normalizers and pre-tokenizers described by the `normalizer` / `pre_tokenizer` sections of a
// tokenizer.json, with the semantics of the Rust `tokenizers` library (the reference that Hugging
// Face transformers runs). Pre-tokenizers here only cut text into pieces; the byte mapping of the
// final ByteLevel step happens inside the BPE model, which works on UTF-8 bytes directly.

import { compileOnigPattern, literalPattern } from './regex.js';

export type Normalizer = (text: string) => string;
/** Hands the pieces of `text` to `emit` in order; empty pieces are never produced. */
export type PreTokenizer = (text: string, emit: (piece: string) => void) => void;

type Json = Record<string, unknown>;

function asObject(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value as Json;
}

function typeOf(config: Json, what: string): string {
  if (typeof config.type !== 'string') throw new Error(`${what} has no "type"`);
  return config.type;
}

export function buildNormalizer(config: unknown): Normalizer | null {
  if (config === null || config === undefined) return null;
  const c = asObject(config, 'normalizer');
  const type = typeOf(c, 'normalizer');
  switch (type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (text) => text.normalize(type);
    case 'Sequence': {
      if (!Array.isArray(c.normalizers)) throw new Error('Sequence normalizer has no "normalizers" array');
      const steps = c.normalizers.map(buildNormalizer).filter((n): n is Normalizer => n !== null);
      if (steps.length === 0) return null;
      if (steps.length === 1) return steps[0];
      return (text) => steps.reduce((t, step) => step(t), text);
    }
    default:
      throw new Error(`unsupported normalizer type "${type}"`);
  }
}

// The pattern the ByteLevel pre-tokenizer applies when `use_regex` is set (GPT-2's word splitter).
const BYTE_LEVEL_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: readonly string[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** Start of the code point after the one at `i` (regex matches never split a surrogate pair). */
function nextCodePoint(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return i + 2;
  }
  return i + 1;
}

/**
 * Cuts at every match, keeping matches and the text between them as separate pieces. A sticky
 * test at the current position finds back-to-back matches without allocating a match array (the
 * common case for word-splitting patterns); only a failure there needs a searching exec.
 */
function splitIsolated(re: RegExp): PreTokenizer {
  const sticky = new RegExp(re.source, 'uy');
  return (text, emit) => {
    const n = text.length;
    let p = 0;
    while (p < n) {
      sticky.lastIndex = p;
      if (sticky.test(text) && sticky.lastIndex > p) {
        const end = sticky.lastIndex;
        emit(p === 0 && end === n ? text : text.slice(p, end));
        p = end;
        continue;
      }
      re.lastIndex = p;
      let m = re.exec(text);
      while (m !== null && m[0].length === 0) {
        re.lastIndex = nextCodePoint(text, m.index);
        m = re.exec(text);
      }
      if (m === null) {
        emit(p === 0 ? text : text.slice(p));
        return;
      }
      emit(text.slice(p, m.index));
      emit(m[0]);
      p = m.index + m[0].length;
    }
  };
}

/** The other behaviours, on spans that cover the text and say whether each one is a delimiter. */
function splitWithBehavior(re: RegExp, behavior: Exclude<Behavior, 'Isolated'>, invert: boolean): PreTokenizer {
  return (text, emit) => {
    const starts: number[] = [];
    const ends: number[] = [];
    const delim: boolean[] = [];
    const span = (s: number, e: number, isMatch: boolean) => {
      starts.push(s);
      ends.push(e);
      delim.push(isMatch !== invert);
    };
    re.lastIndex = 0;
    let prev = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const start = m.index;
      const end = start + m[0].length;
      if (end === start) {
        re.lastIndex = nextCodePoint(text, start);
        continue;
      }
      if (start > prev) span(prev, start, false);
      span(start, end, true);
      prev = end;
    }
    if (prev < text.length) span(prev, text.length, false);

    const n = starts.length;
    if (behavior === 'Removed') {
      for (let k = 0; k < n; k++) if (!delim[k]) emit(text.slice(starts[k], ends[k]));
      return;
    }
    // Merged pieces as [start, end) pairs, built in text order.
    const ps: number[] = [];
    const pe: number[] = [];
    if (behavior === 'MergedWithNext') {
      // A delimiter joins the piece after it unless that piece is itself a delimiter.
      for (let k = n - 1; k >= 0; k--) {
        const followedByDelim = k + 1 < n && delim[k + 1];
        if (delim[k] && !followedByDelim && ps.length > 0) ps[ps.length - 1] = starts[k];
        else {
          ps.push(starts[k]);
          pe.push(ends[k]);
        }
      }
      ps.reverse();
      pe.reverse();
    } else {
      for (let k = 0; k < n; k++) {
        const prevDelim = k > 0 && delim[k - 1];
        // MergedWithPrevious: a delimiter joins a preceding non-delimiter piece.
        // Contiguous: runs of pieces of the same kind join.
        const join = behavior === 'MergedWithPrevious' ? delim[k] && !prevDelim : k > 0 && delim[k] === prevDelim;
        if (join && pe.length > 0) pe[pe.length - 1] = ends[k];
        else {
          ps.push(starts[k]);
          pe.push(ends[k]);
        }
      }
    }
    for (let k = 0; k < ps.length; k++) emit(text.slice(ps[k], pe[k]));
  };
}

function buildSplit(c: Json): PreTokenizer {
  const pattern = asObject(c.pattern, 'Split pattern');
  let re: RegExp;
  if (typeof pattern.Regex === 'string') re = compileOnigPattern(pattern.Regex);
  else if (typeof pattern.String === 'string') re = literalPattern(pattern.String);
  else throw new Error('Split pattern needs "Regex" or "String"');
  const behavior = c.behavior;
  if (typeof behavior !== 'string' || !BEHAVIORS.includes(behavior)) {
    throw new Error(`unsupported Split behavior ${JSON.stringify(behavior)}`);
  }
  if (behavior === 'Isolated') return splitIsolated(re);
  return splitWithBehavior(re, behavior as Exclude<Behavior, 'Isolated'>, c.invert === true);
}

function buildStep(config: unknown): PreTokenizer {
  const c = asObject(config, 'pre_tokenizer');
  const type = typeOf(c, 'pre_tokenizer');
  switch (type) {
    case 'Split':
      return buildSplit(c);
    case 'Digits':
      return splitIsolated(new RegExp(c.individual_digits === true ? '\\p{N}' : '\\p{N}+', 'gu'));
    case 'ByteLevel': {
      const split = c.use_regex === false ? null : splitIsolated(compileOnigPattern(BYTE_LEVEL_PATTERN));
      const prefix = c.add_prefix_space === true;
      return (text, emit) => {
        const t = prefix && !text.startsWith(' ') ? ` ${text}` : text;
        if (split) split(t, emit);
        else if (t.length > 0) emit(t);
      };
    }
    case 'Sequence':
      throw new Error('nested Sequence pre-tokenizers are not supported');
    default:
      throw new Error(`unsupported pre_tokenizer type "${type}"`);
  }
}

/**
 * Builds the pre-tokenizer of a byte-level BPE: a ByteLevel step, alone or last in a Sequence.
 * A ByteLevel step anywhere else would hand byte-mapped text to the later steps, which this
 * implementation (mapping bytes only inside the model) does not reproduce, so it is refused.
 */
export function buildPreTokenizer(config: unknown): PreTokenizer {
  const c = asObject(config, 'pre_tokenizer');
  const stepsConfig = typeOf(c, 'pre_tokenizer') === 'Sequence' ? c.pretokenizers : [c];
  if (!Array.isArray(stepsConfig)) throw new Error('Sequence pre_tokenizer has no "pretokenizers" array');
  const isByteLevel = (s: unknown) => asObject(s, 'pre_tokenizer').type === 'ByteLevel';
  const last = stepsConfig.length - 1;
  if (last < 0 || !isByteLevel(stepsConfig[last]) || stepsConfig.slice(0, last).some(isByteLevel)) {
    throw new Error('byte-level BPE needs a pre_tokenizer whose last (and only) ByteLevel step comes at the end');
  }
  const steps = stepsConfig.map(buildStep);
  if (steps.length === 1) return steps[0];
  return (text, emit) => {
    // Each step feeds the next one piece at a time, so no list of all pieces is ever built.
    let feed = emit;
    for (let s = steps.length - 1; s > 0; s--) {
      const step = steps[s];
      const into = feed;
      feed = (piece) => step(piece, into);
    }
    steps[0](text, feed);
  };
}
