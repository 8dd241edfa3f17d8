import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildPreTokenizer } from '../src/tokenizer/pretokenize.js';
import {
  ByteLevelBpeTokenizer,
  DEFAULT_PRE_TOKENIZER,
  loadTokenizer,
  SPECIAL_TOKENS,
  trainTokenizer,
  translateOnigPattern,
} from '../src/tokenizer/index.js';
import { BYTE_TO_CHAR, Utf8Scratch } from '../src/tokenizer/bytes.js';
import { Rng } from '../src/util/rng.js';
import { MIXED_CORPUS, naiveBpe, naiveTrain, randomText, wellFormed } from './tokenizer-helpers.js';

const SPECIALS = Object.values(SPECIAL_TOKENS);
const corpusText = readFileSync(MIXED_CORPUS, 'utf8');

function trainingCorpus(): string[] {
  const rng = new Rng(1);
  const texts = [corpusText, corpusText.toLowerCase()];
  for (let i = 0; i < 3000; i++) texts.push(randomText(rng, 30));
  return texts;
}

let tok: ByteLevelBpeTokenizer;
let tmp: string;

before(async () => {
  tok = await trainTokenizer(trainingCorpus(), { vocabSize: 1500 });
  tmp = await mkdtemp(join(tmpdir(), 'nanoseek-tokenizer-'));
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Ranks by "a b" as they appear in tokenizer.json, for the textbook encoder. */
function mergeRanks(t: ByteLevelBpeTokenizer): Map<string, number> {
  const merges = (t.toJSON().model as { merges: string[] }).merges;
  return new Map(merges.map((m, r) => [m, r]));
}

function pieceTokens(piece: string): string[] {
  const utf8 = new Utf8Scratch();
  const n = utf8.encode(piece);
  return Array.from(utf8.buf.subarray(0, n), (b) => BYTE_TO_CHAR[b]);
}

describe('training', () => {
  test('reaches the requested vocabulary size with special tokens first', () => {
    assert.equal(tok.vocabSize, 1500);
    assert.deepEqual(tok.special, { bos: 0, eos: 1, pad: 2, user: 3, assistant: 4, think: 5, thinkEnd: 6, answer: 7, answerEnd: 8 });
    assert.equal(tok.idToToken(0), '<｜begin▁of▁sentence｜>');
    assert.equal(tok.idToToken(2), '<｜▁pad▁｜>');
    assert.equal(tok.tokenToId('</answer>'), 8);
    assert.equal(tok.idToToken(9 + 0x41), 'A');
  });

  test('incremental pair counts learn the same merges as recounting from scratch', async () => {
    const texts = [corpusText, 'aaaa aaaa abab abab ababab', 'x'.repeat(40)];
    const pre = buildPreTokenizer(DEFAULT_PRE_TOKENIZER);
    const counts = new Map<string, number>();
    const specials = new RegExp(SPECIALS.map((s) => s.replace(/[|]/g, '\\|')).join('|'), 'u');
    for (const t of texts) {
      for (const part of t.split(specials)) if (part) pre(part, (p) => counts.set(p, (counts.get(p) ?? 0) + 1));
    }
    const utf8 = new Utf8Scratch();
    const words = [...counts].map(([piece, count]) => {
      const n = utf8.encode(piece);
      return { ids: Array.from(utf8.buf.subarray(0, n), (b) => 9 + b), count };
    });
    const expected = naiveTrain(words, 265, 300, 2);
    const trained = await trainTokenizer(texts, { vocabSize: 265 + 300 });
    const merges = (trained.toJSON().model as { merges: string[] }).merges;
    assert.equal(merges.length, expected.length);
    expected.forEach(([a, b], r) => assert.equal(merges[r], `${trained.idToToken(a)} ${trained.idToToken(b)}`, `merge #${r}`));
  });

  test('stops early when pairs become rarer than minFrequency', async () => {
    const small = await trainTokenizer('hello hello world', { vocabSize: 5000 });
    assert.ok(small.vocabSize < 5000);
    assert.equal(small.decode(small.encode('hello world')), 'hello world');
    await assert.rejects(trainTokenizer(['x'], { vocabSize: 100 }), /at least 265/);
  });
});

describe('encoding', () => {
  test('round-trips 10,000 random strings exactly', () => {
    const rng = new Rng(42);
    for (let i = 0; i < 10_000; i++) {
      const s = randomText(rng, i % 10 === 0 ? 60 : 20);
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s, `string #${i}: ${JSON.stringify(s)}`);
    }
  });

  test('lone surrogates are encoded as U+FFFD', () => {
    assert.equal(tok.decode(tok.encode('a\ud800b\udc00c\ud83d')), 'a\ufffdb\ufffdc\ufffd');
    const rng = new Rng(7);
    for (let i = 0; i < 200; i++) {
      const s = randomText(rng) + String.fromCharCode(rng.int(0xd800, 0xdfff)) + randomText(rng);
      assert.equal(tok.decode(tok.encode(s)), wellFormed(s));
    }
  });

  test('matches textbook BPE on short and very long pieces', () => {
    const ranks = mergeRanks(tok);
    const pre = buildPreTokenizer(DEFAULT_PRE_TOKENIZER);
    const rng = new Rng(3);
    const texts = ['a'.repeat(700), ' '.repeat(300) + 'x', 'ab'.repeat(400), '日本語'.repeat(90), corpusText.replace(/<[^>]*>/g, '')];
    for (let i = 0; i < 300; i++) texts.push(randomText(rng).replace(/[<>]/g, ''));
    for (let k = 0; k < 100; k++) {
      let s = '';
      for (let j = rng.int(100, 400); j > 0; j--) s += String.fromCharCode(rng.int(97, 100));
      texts.push(s);
    }
    for (const text of texts) {
      const expected: number[] = [];
      pre(text, (piece) => {
        for (const t of naiveBpe(pieceTokens(piece), ranks)) expected.push(tok.tokenToId(t)!);
      });
      assert.deepEqual(tok.encode(text), expected, JSON.stringify(text.slice(0, 80)));
    }
  });

  test('special tokens are matched before pre-tokenization and never split', () => {
    for (const s of SPECIALS) {
      const id = tok.tokenToId(s)!;
      assert.deepEqual(tok.encode(s), [id]);
      assert.deepEqual(tok.encode(s + s), [id, id]);
      const ids = tok.encode(`abc${s}def ${s}\n`);
      assert.equal(ids.filter((x) => x === id).length, 2, s);
      assert.equal(tok.decode(ids), `abc${s}def ${s}\n`);
    }
    // No learned token spells a special token, so BPE alone can never produce one.
    for (let id = 9; id < tok.vocabSize; id++) {
      const text = tok.decode([id]);
      for (const s of SPECIALS) assert.ok(!text.includes(s), `token ${id} contains ${s}`);
    }
    assert.ok(!tok.encode('<｜User| <think <<think>').includes(tok.special.user!));
  });

  test('adds BOS only when asked', () => {
    assert.notEqual(tok.encode('hi')[0], tok.special.bos);
    assert.deepEqual(tok.encode('hi', { addBos: true }), [0, ...tok.encode('hi')]);
  });
});

describe('decoding', () => {
  test('the streaming decoder yields the same text and never half a character', () => {
    const rng = new Rng(11);
    for (let i = 0; i < 500; i++) {
      const s = randomText(rng, 30);
      const ids = tok.encode(s);
      const stream = tok.createDecodeStream();
      let joined = '';
      for (const id of ids) {
        const piece = stream.push(id);
        assert.equal(wellFormed(piece), piece);
        if (!s.includes('\ufffd')) assert.ok(!piece.includes('\ufffd'), `partial character emitted for ${JSON.stringify(s)}`);
        joined += piece;
      }
      joined += stream.flush();
      assert.equal(joined, s);
    }
  });

  test('an unfinished character is flushed as U+FFFD', () => {
    const stream = tok.createDecodeStream();
    const emoji = tok.encode('🤗');
    assert.ok(emoji.length > 1);
    assert.equal(stream.push(emoji[0]), '');
    assert.equal(stream.flush(), '\ufffd');
  });

  test('skips unknown ids and can drop special tokens', () => {
    const hi = tok.encode('hi');
    const ids = [0, ...hi, 5, ...hi, 6, 1, 2];
    assert.equal(tok.decode(ids), '<｜begin▁of▁sentence｜>hi<think>hi</think><｜end▁of▁sentence｜><｜▁pad▁｜>');
    assert.equal(tok.decode(ids, { skipSpecial: true }), 'hi<think>hi</think>');
    assert.equal(tok.decode([...hi, 999_999, -1, 1.5]), 'hi');
  });
});

describe('files', () => {
  test('save → load gives the same tokenizer and the same files', async () => {
    const dir = join(tmp, 'saved');
    await tok.save(dir);
    const fromDir = await loadTokenizer(dir);
    const fromFile = await loadTokenizer(join(dir, 'tokenizer.json'));
    const rng = new Rng(5);
    for (let i = 0; i < 500; i++) {
      const s = randomText(rng, 30);
      const ids = tok.encode(s);
      assert.deepEqual(fromDir.encode(s), ids);
      assert.deepEqual(fromFile.encode(s), ids);
    }
    assert.deepEqual(fromDir.special, tok.special);
    assert.equal(fromDir.vocabSize, tok.vocabSize);
    assert.equal(fromDir.chatTemplate, tok.chatTemplate);
    const again = join(tmp, 'again');
    await fromDir.save(again);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      assert.equal(await readFile(join(again, f), 'utf8'), await readFile(join(dir, f), 'utf8'), f);
    }
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.bos_token, SPECIAL_TOKENS.bos);
    assert.equal(typeof config.chat_template, 'string');
  });

  test('reads merges both as "a b" strings and as ["a", "b"] pairs', () => {
    const json = tok.toJSON();
    const model = json.model as { merges: string[] };
    const pairs = { ...json, model: { ...model, merges: model.merges.map((m) => m.split(' ')) } };
    const other = new ByteLevelBpeTokenizer(pairs, tok.configJSON());
    for (const s of [corpusText, 'hello world 123', '🤗 日本語']) assert.deepEqual(other.encode(s), tok.encode(s));
  });

  test('writes ["a", "b"] pairs when a token contains a space', () => {
    const vocab: Record<string, number> = Object.fromEntries(BYTE_TO_CHAR.map((c, b) => [c, b]));
    vocab['x y'] = 256;
    vocab['x yz'] = 257;
    const json = {
      pre_tokenizer: DEFAULT_PRE_TOKENIZER,
      decoder: { type: 'ByteLevel' },
      model: { type: 'BPE', vocab, merges: [['x y', 'z']] },
    };
    const t = new ByteLevelBpeTokenizer(json);
    assert.deepEqual((t.toJSON().model as { merges: unknown[] }).merges, [['x y', 'z']]);
  });

  test('loading errors name the file and the problem', async () => {
    const write = async (name: string, content: string) => {
      const path = join(tmp, name);
      await writeFile(path, content);
      return path;
    };
    const good = tok.toJSON();
    const cases: [string, string, RegExp][] = [
      ['missing.json', '', /missing\.json: no such file or directory/],
      ['broken.json', '{"model": ', /broken\.json: malformed JSON/],
      ['wordpiece.json', JSON.stringify({ ...good, model: { type: 'WordPiece', vocab: {} } }), /wordpiece\.json: unsupported model type "WordPiece"/],
      ['metaspace.json', JSON.stringify({ ...good, decoder: { type: 'Metaspace' } }), /metaspace\.json: unsupported decoder type "Metaspace"/],
      [
        'pretok.json',
        JSON.stringify({ ...good, pre_tokenizer: { type: 'Whitespace' } }),
        /pretok\.json: byte-level BPE needs a pre_tokenizer whose last .*ByteLevel/,
      ],
      [
        'regex.json',
        JSON.stringify({ ...good, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '(?>a)' }, behavior: 'Isolated' }, { type: 'ByteLevel' }] } }),
        /regex\.json: cannot translate regex .*unsupported group/,
      ],
      [
        'merge.json',
        JSON.stringify({ ...good, model: { ...(good.model as object), merges: ['Ġ nonexistent'] } }),
        /merge\.json: merge #0 "Ġ nonexistent" uses a token missing from the vocab/,
      ],
    ];
    for (const [name, content, pattern] of cases) {
      const path = content ? await write(name, content) : join(tmp, name);
      await assert.rejects(loadTokenizer(path), pattern, name);
    }
  });
});

describe('pre-tokenizer pieces', () => {
  test('Oniguruma patterns translate to equivalent JavaScript', () => {
    assert.equal(translateOnigPattern('\\s+(?!\\S)'), '\\p{White_Space}+(?!\\P{White_Space})');
    assert.equal(translateOnigPattern("(?i:'s|'ll)"), "(?:'[sS]|'[lL][lL])");
    assert.equal(translateOnigPattern('[^\\r\\n\\p{L}\\p{N}]?\\p{Han}'), '[^\\r\\n\\p{L}\\p{N}]?\\p{Script=Han}');
    assert.equal(translateOnigPattern('.a{,3}'), '[^\\n]a{0,3}');
    assert.equal(translateOnigPattern('(?i:[a-c])x'), '(?:[a-cA-C])x');
    assert.equal(translateOnigPattern('\\!\\-'), '!-');
    for (const bad of ['(?>a)', 'a++', '[[:alpha:]]', '[a&&b]', '\\b', '(a']) assert.throws(() => translateOnigPattern(bad), /cannot translate/, bad);
  });

  test('Split behaviours follow the reference semantics', () => {
    const pieces = (behavior: string, invert = false) => {
      const pre = buildPreTokenizer({
        type: 'Sequence',
        pretokenizers: [{ type: 'Split', pattern: { String: '-' }, behavior, invert }, { type: 'ByteLevel', use_regex: false }],
      });
      const out: string[] = [];
      pre('the-final--countdown', (p) => out.push(p));
      return out;
    };
    assert.deepEqual(pieces('Removed'), ['the', 'final', 'countdown']);
    assert.deepEqual(pieces('Isolated'), ['the', '-', 'final', '-', '-', 'countdown']);
    assert.deepEqual(pieces('MergedWithPrevious'), ['the-', 'final-', '-', 'countdown']);
    assert.deepEqual(pieces('MergedWithNext'), ['the', '-final', '-', '-countdown']);
    assert.deepEqual(pieces('Contiguous'), ['the', '-', 'final', '--', 'countdown']);
    assert.deepEqual(pieces('Removed', true), ['-', '-', '-']);
  });
});
