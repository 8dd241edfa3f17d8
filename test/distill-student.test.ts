// The shipped distilled student (models/nano-distill-llama, written by `nanoseek distill run
// --export models`): its GGUF runs in llama.cpp with the same greedy answers as in nanoseek on 20
// held-out problems, token for token; the server serves it from the GGUF with --model (what
// `npm start -- --model …` runs) and answers a held-out question as nanoseek's engine does.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { loadForInference, packageRoot, sampleCompletions } from '../src/infer/index.js';
import { grade, heldOutSet, questionText, renderPrompt, type TaskSpec } from '../src/tasks/index.js';
import { startServe } from './serve-fixture.js';

const SIX: TaskSpec = { task: 'arithmetic', digits: [1, 1, 1, 1, 1, 1], ops: ['+'] };
const MAX_TOKENS = 160;
let llama: Llama;
let dir: string;

before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  dir = join(await packageRoot(), 'models', 'nano-distill-llama');
});

after(async () => {
  await llama?.dispose();
});

test('nano-distill-llama: llama.cpp gives the same greedy answers as nanoseek on 20 held-out problems', { timeout: 120_000 }, async () => {
  const gguf = join(dir, 'nano-distill-llama-f32.gguf');
  const ck = await loadForInference(gguf);
  assert.equal(ck.model.config.architectures[0], 'LlamaForCausalLM');
  const problems = heldOutSet(SIX, 20);
  const prompts = problems.map((p) => renderPrompt(ck.tokenizer, p, 'r1'));
  const ours = await sampleCompletions(ck.model, ck.tokenizer, prompts.map((p) => p.ids), { samples: 1, maxNewTokens: MAX_TOKENS, temperature: 0, seed: 0 });
  const stops = new Set([ck.tokenizer.special.eos, ck.tokenizer.special.answerEnd]);
  const model = await llama.loadModel({ modelPath: gguf });
  let correct = 0;
  try {
    // One problem at a time, each in a fresh context of its own, on one thread (two spin-waiting
    // threads on this shared machine took 100× longer for a model this small). Decoding the 20 as
    // sequences of one context gave llama.cpp's batched path a chance to differ between runs.
    const theirs: number[][] = [];
    for (const p of prompts) {
      const ctx = await model.createContext({ contextSize: 256, sequences: 1, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
      try {
        const out: number[] = [];
        for await (const t of ctx.getSequence().evaluate(p.ids as Token[], { temperature: 0 })) {
          out.push(t);
          if (stops.has(t) || out.length >= MAX_TOKENS) break;
        }
        theirs.push(out);
      } finally {
        await ctx.dispose();
      }
    }
    for (let i = 0; i < problems.length; i++) {
      // node-llama-cpp ends on the end-of-sequence token without yielding it.
      const mine = ours[i].tokens.at(-1) === ck.tokenizer.special.eos ? ours[i].tokens.slice(0, -1) : ours[i].tokens;
      assert.deepEqual(theirs[i], mine, `${questionText(problems[i])}\nllama.cpp: ${ck.tokenizer.decode(theirs[i])}\nnanoseek: ${ck.tokenizer.decode(mine)}`);
      correct += grade(problems[i], ck.tokenizer.decode(theirs[i], { skipSpecial: true }), { promptOpensThink: prompts[i].opensThink }).accuracy;
    }
  } finally {
    await model.dispose();
  }
  // The README's claim for the shipped student (greedy pass@1 on the held-out sums) holds here too.
  assert.ok(correct >= 15, `${correct} of 20 correct`);
});

test('nano-distill-llama: nanoseek serve --model <its GGUF> answers as the engine does', { timeout: 60_000 }, async () => {
  const gguf = join(dir, 'nano-distill-llama-f32.gguf');
  const ck = await loadForInference(dir);
  const p = heldOutSet(SIX, 1)[0];
  const [mine] = await sampleCompletions(ck.model, ck.tokenizer, [renderPrompt(ck.tokenizer, p, 'r1').ids], { samples: 1, maxNewTokens: MAX_TOKENS, temperature: 0, seed: 0 });
  const server = await startServe(gguf);
  try {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: questionText(p) }], max_tokens: MAX_TOKENS }),
    });
    const body = (await res.json()) as { choices: { message: { content: string; reasoning_content: string } }[] };
    const m = body.choices[0].message;
    assert.equal(m.content, /<answer>(.*)<\/answer>/.exec(mine.text)![1], `served: ${JSON.stringify(m)}\nengine: ${mine.text}`);
    assert.ok(m.reasoning_content.length > 10, 'it reasons before answering');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
