// Sampling, stop strings, the streaming reasoning split, and the continuous-batching engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heapStats } from '../src/kernels/memory.js';
import * as T from '../src/tensor/index.js';
import { Engine, EngineBusyError, generate, logSumExp, ReasoningSplitter, Sampler, splitCompletion, StopStrings, type GenerationResult } from '../src/infer/index.js';
import { applyChatTemplate } from '../src/tokenizer/index.js';
import { fixtureTokenizer, randomModel, SCRIPT, scriptedModel } from './serve-fixture.js';

function frequencies(sampler: Sampler, logits: number[], draws: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits).token]++;
  return counts.map((c) => c / draws);
}

test('sampler: greedy, temperature, top-k, top-p, penalties; log-probs always under the raw distribution', () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const logits = probs.map(Math.log);
  const greedy = new Sampler({ temperature: 0 });
  const s = greedy.sample(logits);
  assert.equal(s.token, 0);
  assert.ok(Math.abs(s.logprob - Math.log(0.5)) < 1e-12);

  const plain = frequencies(new Sampler({ seed: 1 }), logits, 20000);
  plain.forEach((f, i) => assert.ok(Math.abs(f - probs[i]) < 0.015, `token ${i}: ${f} vs ${probs[i]}`));

  // 0.5 + 0.3 is the smallest head reaching 0.75: the nucleus is the first two, renormalised.
  const nucleus = frequencies(new Sampler({ seed: 2, topP: 0.75 }), logits, 20000);
  assert.deepEqual([nucleus[2], nucleus[3]], [0, 0]);
  assert.ok(Math.abs(nucleus[0] - 0.625) < 0.015, `${nucleus[0]}`);

  const top2 = frequencies(new Sampler({ seed: 3, topK: 2 }), logits, 5000);
  assert.deepEqual([top2[2], top2[3]], [0, 0]);
  assert.equal(new Sampler({ seed: 4, topK: 1 }).sample(logits).token, 0);

  // Low temperature sharpens: token 0 dominates far beyond its 0.5.
  assert.ok(frequencies(new Sampler({ seed: 5, temperature: 0.2 }), logits, 2000)[0] > 0.9);

  // The log-prob ignores temperature, truncation and penalties.
  const twisted = new Sampler({ seed: 6, temperature: 0.3, topK: 3, topP: 0.9, repetitionPenalty: 2, presencePenalty: 1 });
  for (let i = 0; i < 50; i++) {
    const x = twisted.sample(logits);
    assert.ok(Math.abs(x.logprob - Math.log(probs[x.token])) < 1e-12);
  }

  // A repetition penalty moves greedy decoding off a token already in the prompt.
  const rep = new Sampler({ temperature: 0, repetitionPenalty: 3 });
  rep.observe([0]);
  assert.equal(rep.sample([2, 1.5, 0]).token, 1);
  const freq = new Sampler({ temperature: 0, frequencyPenalty: 1 });
  assert.deepEqual([0, 1, 2].map(() => freq.sample([2, 1.5, 0]).token), [0, 1, 0]);

  assert.throws(() => new Sampler({ topP: 0 }), /topP/);
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.ok(Math.abs(logSumExp([1000, 1000]) - (1000 + Math.log(2))) < 1e-9);
});

test('stop strings: matched across pieces, text held back only while it could still match', () => {
  const s = new StopStrings(['</answer>', 'STOP']);
  assert.equal(s.push('abc </ans'), 'abc ');
  assert.equal(s.push('wer'), '');
  assert.equal(s.push('x'), '</answerx');
  assert.equal(s.push(' ST'), ' ');
  assert.equal(s.push('OP and more'), '');
  assert.equal(s.matched, 'STOP');
  assert.equal(s.push('ignored'), '');
  assert.equal(s.flush(), '');
  const t = new StopStrings(['xyz']);
  assert.equal(t.push('axy'), 'a');
  assert.equal(t.flush(), 'xy');
  // The earliest match wins whichever string it is.
  const u = new StopStrings(['bbb', 'ab']);
  assert.equal(u.push('zabbb'), 'z');
  assert.equal(u.matched, 'ab');
});

test('streaming reasoning split agrees with parseCompletion on well-formed output, whatever the pieces', () => {
  const cases: [string, boolean][] = [
    ['Two and two.\n</think>\n\n<answer> 4 </answer>', true],
    ['\nstill thinking, cut off', true],
    ['<think>\nhmm</think>The answer is 4.', false],
    ['<think>again</think>ok', true],
    ['plain answer, no reasoning', false],
    ['  </think>  only an end tag', true],
    ['a <thi', false],
  ];
  for (const [text, opened] of cases) {
    const expected = splitCompletion(text, opened);
    for (const size of [1, 2, 3, 7, 100]) {
      const sp = new ReasoningSplitter(opened);
      let reasoning = '';
      let content = '';
      for (let i = 0; i < text.length; i += size) {
        const p = sp.push(text.slice(i, i + size));
        if (p.reasoning !== '') assert.equal(content, '', `${JSON.stringify(text)}: reasoning after content`);
        reasoning += p.reasoning;
        content += p.content;
      }
      const rest = sp.flush();
      reasoning += rest.reasoning;
      content += rest.content;
      assert.deepEqual({ reasoning, content }, expected, `${JSON.stringify(text)} in pieces of ${size}`);
    }
  }
});

async function collect(engine: Engine, prompt: number[], opts: Parameters<Engine['submit']>[1] = {}): Promise<{ result: GenerationResult; streamed: string }> {
  const gen = engine.submit(prompt, opts);
  let streamed = '';
  for await (const e of gen) streamed += e.text;
  return { result: await gen.result, streamed };
}

test('engine: batched decoding gives the same greedy tokens and log-probs as decoding each sequence alone', async () => {
  const tok = await fixtureTokenizer();
  const model = randomModel(tok, 3);
  const V = model.config.vocab_size;
  // Lengths straddle the 64-token prefill chunk and the 256-token step budget.
  const prompts = [5, 70, 1, 150, 33, 200].map((n, k) => Array.from({ length: n }, (_, i) => (i * 31 + k * 7 + 3) % V));
  const opts = { temperature: 0, maxTokens: 20, stopTokenIds: [] };
  // Without prefix reuse: the batched run must prefill its prompts, not copy the rows of the lone runs.
  const engine = new Engine(model, tok, { maxConcurrent: 8, prefixCache: { maxBytes: 0 } });
  const alone: GenerationResult[] = [];
  for (const p of prompts) alone.push((await collect(engine, p, opts)).result);
  const together = await Promise.all(prompts.map((p) => collect(engine, p, opts)));
  together.forEach(({ result }, i) => {
    assert.deepEqual(result.tokens, alone[i].tokens, `sequence ${i}`);
    assert.equal(result.finishReason, 'length');
    result.logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - alone[i].logprobs[t]) < 1e-4, `sequence ${i} token ${t}`));
  });

  // And the cached, batched log-probs are those of a plain full forward over prompt + completion.
  const seq = [...prompts[1], ...together[1].result.tokens];
  const full = T.noGrad(() => T.tidy(() => Array.from(model.forward(seq, 1, seq.length).logits.data)));
  together[1].result.tokens.forEach((token, t) => {
    const row = full.slice((prompts[1].length - 1 + t) * V, (prompts[1].length + t) * V);
    assert.ok(Math.abs(together[1].result.logprobs[t] - (row[token] - logSumExp(row))) < 1e-4);
  });
  await engine.close();
});

test('engine: seeds reproduce, alone or in a batch; different seeds differ', async () => {
  const tok = await fixtureTokenizer();
  const model = randomModel(tok, 4);
  const engine = new Engine(model, tok);
  const prompt = tok.encode('Hello, world! How are you');
  const opts = { temperature: 1, topP: 0.95, maxTokens: 24, stopTokenIds: [], seed: 42 };
  const a = (await collect(engine, prompt, opts)).result.tokens;
  const [b] = await Promise.all([collect(engine, prompt, opts), collect(engine, tok.encode('other'), { ...opts, seed: 1 }), collect(engine, prompt, { ...opts, seed: 7 })]);
  assert.deepEqual(b.result.tokens, a);
  const c = (await collect(engine, prompt, { ...opts, seed: 43 })).result.tokens;
  assert.notDeepEqual(c, a);
  // Skipping the log-probs changes nothing else, at temperature 1 (where the sampler reuses their
  // exponentials) as below it.
  for (const temperature of [1, 0.7]) {
    const withLp = (await collect(engine, prompt, { ...opts, temperature })).result;
    const without = (await collect(engine, prompt, { ...opts, temperature, logprobs: false })).result;
    assert.deepEqual(without.tokens, withLp.tokens);
    assert.ok(without.logprobs.every(Number.isNaN) && withLp.logprobs.every(Number.isFinite));
  }

  const batchA = await generate(model, tok, ['Two and', [5, 6, 7]], { samplesPerPrompt: 3, temperature: 1, maxTokens: 10, seed: 9, stopTokenIds: [] });
  const batchB = await generate(model, tok, ['Two and', [5, 6, 7]], { samplesPerPrompt: 3, temperature: 1, maxTokens: 10, seed: 9, stopTokenIds: [], maxBatch: 2 });
  assert.deepEqual(batchA.map((r) => [r.promptIndex, r.sampleIndex]), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
  assert.deepEqual(batchB.map((r) => r.tokens), batchA.map((r) => r.tokens));
  assert.ok(new Set(batchA.slice(0, 3).map((r) => r.tokens.join())).size > 1, 'the G samples of a prompt differ');
});

test('engine: EOS, stop strings, max tokens and the context window end a sequence', async () => {
  const tok = await fixtureTokenizer();
  const model = scriptedModel(tok);
  const engine = new Engine(model, tok);
  const prompt = tok.encode(applyChatTemplate(tok, [{ role: 'user', content: 'What is 2+2?' }]));

  const eos = await collect(engine, prompt, { temperature: 0 });
  assert.equal(eos.result.text, SCRIPT.completion);
  assert.equal(eos.streamed, SCRIPT.completion);
  assert.equal(eos.result.finishReason, 'stop');
  assert.equal(eos.result.stoppedBy, tok.special.eos);
  assert.equal(eos.result.tokens.at(-1), tok.special.eos);

  // "four" spans three tokens (" f", "ou", "r"): the first two are held back, then dropped.
  const stop = await collect(engine, prompt, { temperature: 0.7, seed: 1, stop: ['four', 'never'] });
  assert.equal(stop.result.text, 'Two and two make ');
  assert.equal(stop.streamed, stop.result.text);
  assert.equal(stop.result.stoppedBy, 'four');

  const short = await collect(engine, prompt, { maxTokens: 3 });
  assert.equal(short.result.tokens.length, 3);
  assert.equal(short.result.finishReason, 'length');
  assert.equal(short.result.text, 'Two and');

  const ctx = model.config.max_position_embeddings;
  const long = await collect(engine, Array.from({ length: ctx - 4 }, (_, i) => 10 + (i % 50)), { stopTokenIds: [] });
  assert.equal(long.result.tokens.length, 4);
  assert.equal(long.result.finishReason, 'length');
  assert.throws(() => engine.submit(Array.from({ length: ctx }, () => 10)), /context window/);
  assert.throws(() => engine.submit([]), /no tokens/);
  assert.throws(() => engine.submit([model.config.vocab_size]), /outside the vocabulary/);
});

test('engine: cancellation frees the cache, limits refuse work with a busy error, the queue drains in order', async () => {
  const tok = await fixtureTokenizer();
  const model = randomModel(tok, 5);
  const engine = new Engine(model, tok, { maxConcurrent: 2, maxQueue: 1 });
  const prompt = tok.encode('Streams of tokens flow');
  await collect(engine, prompt, { maxTokens: 4, stopTokenIds: [] }); // warm the allocator's free lists
  const before = heapStats().liveBytes;

  const abort = new AbortController();
  const long = engine.submit(prompt, { stopTokenIds: [], signal: abort.signal });
  let seen = 0;
  for await (const _ of long) if (++seen === 5) abort.abort();
  const r = await long.result;
  assert.equal(r.finishReason, 'cancelled');
  assert.equal(r.tokens.length, 5);
  assert.equal(engine.stats().running, 0);
  assert.equal(heapStats().liveBytes, before, 'the KV cache and step buffers are all freed');

  // Breaking out of the iterator cancels too.
  const broken = engine.submit(prompt, { stopTokenIds: [] });
  for await (const _ of broken) break;
  assert.equal((await broken.result).finishReason, 'cancelled');

  const a = engine.submit(prompt, { stopTokenIds: [], maxTokens: 30 });
  const b = engine.submit(prompt, { stopTokenIds: [], maxTokens: 30 });
  const c = engine.submit(prompt, { stopTokenIds: [], maxTokens: 5 });
  assert.deepEqual([engine.stats().running, engine.stats().queued], [2, 1]);
  assert.throws(() => engine.submit(prompt), (err: unknown) => err instanceof EngineBusyError && err.code === 'busy' && /2 of 2 sequences running and 1 of 1 queued/.test(err.message));
  const order: string[] = [];
  await Promise.all([a, b, c].map((g, i) => g.result.then(() => order.push('abc'[i]))));
  assert.equal(order.at(-1), 'c', 'the queued request starts after a slot frees');

  const d = engine.submit(prompt, { stopTokenIds: [] });
  const closing = engine.close({ cancel: true });
  assert.throws(() => engine.submit(prompt), /shutting down/);
  await closing;
  assert.equal((await d.result).finishReason, 'cancelled');
  assert.equal(heapStats().liveBytes, before);
});
