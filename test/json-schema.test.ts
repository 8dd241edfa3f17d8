// JSON-schema constrained decoding: the byte grammar against JSON.parse and ajv, the vocabulary masks
// against a token-by-token check, and the engine: whatever a model samples, the answer is in the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { compileJsonSchema, Engine, grammarMasks, JsonMatcher, maskHas, matchesGrammar, SchemaError, type JsonGrammar } from '../src/infer/index.js';
import { Rng } from '../src/util/rng.js';
import { applyChatTemplate, loadTokenizer } from '../src/tokenizer/index.js';
import { realTokenizerDir } from './tokenizer-helpers.js';
import { fixtureTokenizer, randomModel } from './serve-fixture.js';

const TRIAGE = {
  type: 'object',
  properties: {
    category: { enum: ['urgent', 'needs reply', 'FYI', 'spam'] },
    priority: { type: 'integer', minimum: 1, maximum: 5 },
    summary: { type: 'string', minLength: 1, maxLength: 40 },
    due: { type: ['string', 'null'], format: 'date' },
    score: { type: 'number' },
    flags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
    tags: { type: 'array', items: { type: 'object', properties: { k: { type: 'string', maxLength: 5 }, n: { type: 'integer' } }, required: ['k', 'n'], additionalProperties: false }, minItems: 1, maxItems: 2 },
  },
  required: ['category', 'priority', 'summary', 'due', 'score', 'flags', 'tags'],
  additionalProperties: false,
};

const ajv = new Ajv({ strict: false });
ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);
const enc = new TextEncoder();

/** A random walk through the grammar, byte by byte: every byte chosen among those allowed. */
function randomValue(g: JsonGrammar, rng: Rng, maxBytes = 4000): string | null {
  let m = JsonMatcher.start(g);
  const bytes: number[] = [];
  while (!m.finished && bytes.length < maxBytes) {
    const options: [number, JsonMatcher][] = [];
    for (let b = 0; b < 256; b++) {
      const next = m.feedByte(b);
      if (next !== null) options.push([b, next]);
    }
    assert.ok(options.length > 0, `stuck after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(bytes)))}`);
    // Prefer closing bytes now and then so that walks end.
    const closing = options.filter(([b]) => b === 0x22 || b === 0x7d || b === 0x5d || b === 0x2c);
    const pick = closing.length > 0 && rng.next() < 0.15 ? closing[rng.int(0, closing.length - 1)] : options[rng.int(0, options.length - 1)];
    bytes.push(pick[0]);
    m = pick[1];
  }
  return m.finished ? new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes)) : null;
}

test('grammar: every value a random byte walk completes parses and validates against the schema', () => {
  const g = compileJsonSchema(TRIAGE);
  const validate = ajv.compile(TRIAGE);
  const rng = new Rng(3);
  let complete = 0;
  for (let i = 0; i < 60; i++) {
    const text = randomValue(g, rng);
    if (text === null) continue;
    complete++;
    const value = JSON.parse(text);
    assert.ok(validate(value), `${text}: ${JSON.stringify(validate.errors)}`);
  }
  assert.ok(complete >= 30, `only ${complete} walks completed`);
  // json_object: any object, nested values included.
  const any = compileJsonSchema({ type: 'object' });
  for (let i = 0; i < 30; i++) {
    const text = randomValue(any, rng);
    if (text !== null) assert.equal(typeof JSON.parse(text), 'object');
  }
});

test('grammar: accepts valid documents in any spacing and refuses what the schema forbids', () => {
  const g = compileJsonSchema(TRIAGE);
  const ok = { category: 'FYI', priority: 3, summary: 'Ünïcode ✓ and "quotes"', due: '2002-08-23', score: -1.5e3, flags: [true], tags: [{ k: 'a\\n', n: -7 }] };
  assert.ok(matchesGrammar(g, JSON.stringify(ok)));
  assert.ok(matchesGrammar(g, JSON.stringify(ok, null, 2)));
  assert.ok(matchesGrammar(g, JSON.stringify({ ...ok, due: null })));
  const bad: [string, unknown][] = [
    ['category outside the enum', { ...ok, category: 'later' }],
    ['priority out of range', { ...ok, priority: 6 }],
    ['empty summary', { ...ok, summary: '' }],
    ['summary too long', { ...ok, summary: 'x'.repeat(41) }],
    ['date not YYYY-MM-DD', { ...ok, due: 'Friday' }],
    ['too many items', { ...ok, flags: [true, false, true, false] }],
    ['too few items', { ...ok, tags: [] }],
    ['extra property', { ...ok, extra: 1 }],
  ];
  for (const [what, v] of bad) assert.equal(matchesGrammar(g, JSON.stringify(v)), false, what);
  const { score: _score, ...missing } = ok;
  assert.equal(matchesGrammar(g, JSON.stringify(missing)), false, 'missing property');
  assert.equal(matchesGrammar(g, JSON.stringify(ok).replace('"summary"', '"summary"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n')), false, 'whitespace runs are bounded');
  // Raw control characters and invalid UTF-8 cannot appear inside a string.
  const m = JsonMatcher.start(g).feed(enc.encode('{"category":"FYI","priority":1,"summary":"a'));
  assert.ok(m !== null);
  assert.equal(m.feedByte(0x0a), null);
  assert.equal(m.feedByte(0xff), null);
  assert.equal(m.feed(Uint8Array.from([0xc3, 0x41])), null);
});

test('grammar: what it cannot guarantee is refused at compile time, naming the keyword', () => {
  const cases: [unknown, RegExp][] = [
    [{ type: 'string', pattern: '^a' }, /schema\.pattern: is not supported/],
    [{ type: 'object', properties: { a: { $ref: '#/x' } } }, /schema\.properties\.a\.\$ref/],
    [{ type: 'number', minimum: 0.5 }, /schema\.minimum/],
    [{ type: 'array' }, /schema\.items: is required/],
    [{ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }, /schema\.required: names "b"/],
    [{ type: 'strange' }, /schema\.type: unknown type "strange"/],
    [{ type: 'string', format: 'email' }, /schema\.format/],
  ];
  for (const [schema, re] of cases) {
    assert.throws(() => compileJsonSchema(schema), (e: unknown) => e instanceof SchemaError && re.test(e.message), JSON.stringify(schema));
  }
});

test('masks: the trie walk allows exactly the tokens whose bytes the grammar accepts', async () => {
  const tok = await fixtureTokenizer();
  const g = compileJsonSchema(TRIAGE);
  const masks = grammarMasks(g, tok, tok.vocabSize);
  const prefixes = ['', '{', '{"category":"', '{"category":"FYI","priority":', '{"category":"FYI","priority":2,"summary":"The quick', '{"category":"FYI","priority":2,"summary":"x","due":', '{"category":"FYI","priority":2,"summary":"x","due":null,"score":12'];
  for (const p of prefixes) {
    const m = JsonMatcher.start(g).feed(enc.encode(p))!;
    const mask = masks.mask(m);
    let allowed = 0;
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = tok.tokenBytes(id);
      const expect = b !== null && b.length > 0 && m.feed(b) !== null;
      assert.equal(maskHas(mask, id), expect, `after ${JSON.stringify(p)}: token ${id} ${JSON.stringify(tok.idToToken(id))}`);
      assert.equal(masks.allows(m, id), expect);
      if (expect) allowed++;
    }
    assert.ok(allowed > 0, `nothing allowed after ${JSON.stringify(p)}`);
  }
});

test("masks on DeepSeek-V3's 129k vocabulary: long tokens (checked one by one) and short ones agree with a token-by-token check", async () => {
  const tok = await loadTokenizer(realTokenizerDir('deepseek_v3'));
  const g = compileJsonSchema(TRIAGE);
  const masks = grammarMasks(g, tok, tok.vocabSize);
  assert.ok(masks.trie.long.length > 100, `${masks.trie.long.length} long tokens`);
  // Inside a string near its length limit (long tokens must not fit) and far from it (they may).
  for (const p of ['{"category":"FYI","priority":2,"summary":"', '{"category":"FYI","priority":2,"summary":"abcdefghijklmnopqrstuvwxyz0123', '{"category":"FYI","priority":2,"summary":"x","due":null,"score":1']) {
    const m = JsonMatcher.start(g).feed(enc.encode(p))!;
    const mask = masks.mask(m);
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = tok.tokenBytes(id);
      const expect = b !== null && b.length > 0 && m.feed(b) !== null;
      if (maskHas(mask, id) !== expect) assert.fail(`after ${JSON.stringify(p)}: token ${id} ${JSON.stringify(tok.idToToken(id))} ${expect ? 'refused' : 'allowed'}`);
    }
  }
});

test('engine: a random model sampling hot still answers inside the schema, after thinking freely when asked', async () => {
  const tok = await fixtureTokenizer();
  const model = randomModel(tok, 5);
  const engine = new Engine(model, tok, { seed: 1 });
  const g = compileJsonSchema(TRIAGE);
  const validate = ajv.compile(TRIAGE);
  const prompt = tok.encode(applyChatTemplate(tok, [{ role: 'user', content: 'Sort this email.' }]));
  const runs = await Promise.all(
    Array.from({ length: 6 }, (_, i) => engine.submit(prompt, { temperature: i % 2 === 0 ? 0 : 1.5, seed: i, maxTokens: 1000, json: { grammar: g } }).result),
  );
  for (const r of runs) {
    assert.equal(r.finishReason, 'stop', r.text);
    const v = JSON.parse(r.text);
    assert.ok(validate(v), `${r.text}: ${JSON.stringify(validate.errors)}`);
  }
  // Constrained after '</think>': the text before it is free, the rest is the value.
  const think = await engine.submit(prompt, { temperature: 1, seed: 9, maxTokens: 400, stopTokenIds: [], json: { grammar: g, after: 'the' } }).result;
  const at = think.text.indexOf('the');
  if (think.finishReason === 'stop') {
    assert.ok(at >= 0);
    // A token that ends 'the' may carry a few letters on: they stay free text, the value starts after.
    assert.ok(validate(JSON.parse(think.text.slice(think.text.indexOf('{', at)))), think.text);
  }
  await engine.close();
});
