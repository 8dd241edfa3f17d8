// Teacher forcing in the engine (GenerationOptions.forceTokens): the sequence emits the given tokens
// through ordinary decode steps, with the log-probs the model gives them, inside a JSON grammar when
// one is engaged. Benchmarks use it to time answers of a known length (bench mail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { compileJsonSchema, Engine } from '../src/infer/index.js';
import { fixtureTokenizer } from './serve-fixture.js';

test('forceTokens: emits exactly the tokens with the log-probs greedy decoding gives them, then stops', async () => {
  const tok = await fixtureTokenizer();
  const m = new CausalLM(presetConfig('nano-dense', { vocabSize: tok.vocabSize }), { seed: 3 });
  const engine = new Engine(m, tok, { prefixCache: { maxBytes: 0 } });
  const prompt = tok.encode('Once upon a time');
  const greedy = await engine.submit(prompt, { temperature: 0, maxTokens: 8, stopTokenIds: [] }).result;
  const forced = await engine.submit(prompt, { temperature: 0.9, maxTokens: 100, forceTokens: greedy.tokens }).result;
  assert.deepEqual(forced.tokens, greedy.tokens);
  forced.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - greedy.logprobs[i]) < 1e-5, `token ${i}: ${lp} vs ${greedy.logprobs[i]}`));
  assert.equal(forced.finishReason, 'stop');
  assert.equal(forced.text, greedy.text);

  // Any tokens, even unlikely ones; maxTokens still cuts.
  const odd = [tok.encode(' zebra')[0], tok.encode('!')[0], tok.encode(' 42')[0]];
  assert.deepEqual((await engine.submit(prompt, { forceTokens: odd }).result).tokens, odd);
  const cut = await engine.submit(prompt, { forceTokens: odd, maxTokens: 2 }).result;
  assert.deepEqual([cut.tokens, cut.finishReason], [odd.slice(0, 2), 'length']);

  const V = m.config.vocab_size;
  assert.throws(() => engine.submit(prompt, { forceTokens: [] }), /at least one token/);
  assert.throws(() => engine.submit(prompt, { forceTokens: [1, V] }), new RegExp(`forceTokens\\[1\\] = ${V} is not a token id`));
  await engine.close();
});

test('forceTokens under a JSON constraint: a valid answer goes through, a token outside the grammar fails the request', async () => {
  const tok = await fixtureTokenizer();
  const m = new CausalLM(presetConfig('nano-dense', { vocabSize: tok.vocabSize }), { seed: 4 });
  const engine = new Engine(m, tok, { prefixCache: { maxBytes: 0 } });
  const grammar = compileJsonSchema({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false });
  const prompt = tok.encode('Answer:');
  const answer = '{"n": 42}';
  const ok = await engine.submit(prompt, { json: { grammar }, forceTokens: tok.encode(answer) }).result;
  assert.equal(ok.text, answer);
  assert.equal(ok.finishReason, 'stop');
  await assert.rejects(engine.submit(prompt, { json: { grammar }, forceTokens: tok.encode('{"m": 1}') }).result, /leaves the JSON grammar/);
  await engine.close();
});
