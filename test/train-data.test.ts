// Training data: SFT loss masks and padding, document packing, and streams that resume exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IGNORE_INDEX } from '../src/tensor/index.js';
import { corpusDocuments, ZERO_TEMPLATE } from '../src/tasks/index.js';
import { applyChatTemplate, SPECIAL_TOKENS, trainTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import {
  collateSft,
  CorpusStream,
  encodeDocument,
  encodeSftExample,
  ListStream,
  PackedBatcher,
  paddedLength,
  SftBatcher,
  TaskSftStream,
  type Batch,
  type SftExample,
} from '../src/train/index.js';

const texts: string[] = [];
for (const d of corpusDocuments({ seed: 5 })) if (texts.push(d.text) >= 200) break;
const tokenizerPromise = trainTokenizer(texts, { vocabSize: 350 });

/** The trained-on tokens of row b, as text, and the positions that carry a target. */
function learned(tok: Tokenizer, batch: Batch, b: number): { text: string; positions: number[] } {
  const positions: number[] = [];
  const ids: number[] = [];
  for (let t = 0; t < batch.T; t++) {
    const y = batch.targets[b * batch.T + t];
    if (y !== IGNORE_INDEX) {
      positions.push(t);
      ids.push(y);
    }
  }
  return { text: tok.decode(ids), positions };
}

const reply = '<think>\n12 + 30 = 42\n</think>\n<answer>42</answer>';

test('SFT, R1 format: loss only on the reply after the template\'s <think>, and on its EOS', async () => {
  const tok = await tokenizerPromise;
  const e = encodeSftExample(tok, { prompt: 'What is 12 + 30?', completion: reply }, 'r1');
  const prompt = tok.decode(e.tokens.slice(0, e.promptLength));
  assert.equal(prompt, applyChatTemplate(tok, [{ role: 'user', content: 'What is 12 + 30?' }]));
  assert.ok(prompt.startsWith(SPECIAL_TOKENS.bos) && prompt.endsWith(`${SPECIAL_TOKENS.assistant}${SPECIAL_TOKENS.think}\n`), prompt);
  const batch = collateSft([e], 256, tok.special.pad!);
  const { text, positions } = learned(tok, batch, 0);
  assert.equal(text, `12 + 30 = 42\n</think>\n<answer>42</answer>${SPECIAL_TOKENS.eos}`);
  // Targets start at the last prompt position (it predicts the first reply token) and run to the end.
  assert.equal(positions[0], e.promptLength - 1);
  assert.equal(positions.length, e.tokens.length - e.promptLength);
  assert.deepEqual(positions, positions.map((_, i) => e.promptLength - 1 + i));
});

test('SFT, R1 format under a chat template that ends in " <think>" (a model exported with the R1-Zero prompt): the reply continues the open think block', async () => {
  const tok = await tokenizerPromise;
  const { r1ZeroChatTemplate } = await import('../src/tokenizer/index.js');
  const zeroTok: Tokenizer = Object.create(tok, { chatTemplate: { value: r1ZeroChatTemplate(true) } });
  const e = encodeSftExample(zeroTok, { prompt: 'What is 12 + 30?', completion: reply }, 'r1');
  assert.ok(tok.decode(e.tokens.slice(0, e.promptLength)).endsWith(`Assistant: ${SPECIAL_TOKENS.think}`));
  assert.equal(learned(tok, collateSft([e], 256, tok.special.pad!), 0).text, `\n12 + 30 = 42\n</think>\n<answer>42</answer>${SPECIAL_TOKENS.eos}`);
});

test('SFT, R1 format with a conversation: earlier turns are context only', async () => {
  const tok = await tokenizerPromise;
  const ex: SftExample = {
    messages: [
      { role: 'user', content: 'What is 1 + 1?' },
      { role: 'assistant', content: '<think>\nadd\n</think>\n<answer>2</answer>' },
      { role: 'user', content: 'What is 12 + 30?' },
    ],
    completion: reply,
  };
  const e = encodeSftExample(tok, ex, 'r1');
  const { text } = learned(tok, collateSft([e], 256, tok.special.pad!), 0);
  assert.equal(text, `12 + 30 = 42\n</think>\n<answer>42</answer>${SPECIAL_TOKENS.eos}`);
  assert.ok(tok.decode(e.tokens.slice(0, e.promptLength)).includes('<answer>2</answer>'));
});

test('SFT, R1-Zero format: BOS + the plain prompt as context, " " + reply + EOS learned', async () => {
  const tok = await tokenizerPromise;
  const e = encodeSftExample(tok, { prompt: 'What is 12 + 30?', completion: reply }, 'r1-zero');
  assert.equal(tok.decode(e.tokens.slice(0, e.promptLength)), SPECIAL_TOKENS.bos + ZERO_TEMPLATE.replace('{question}', 'What is 12 + 30?'));
  assert.equal(learned(tok, collateSft([e], 256, tok.special.pad!), 0).text, ` ${reply}${SPECIAL_TOKENS.eos}`);
});

test('SFT padding: rows padded with the pad token, no targets there; long replies truncated', async () => {
  const tok = await tokenizerPromise;
  const short = encodeSftExample(tok, { prompt: 'What is 1 + 1?', completion: '<think>\n1 + 1 = 2\n</think>\n<answer>2</answer>' }, 'r1');
  const long = encodeSftExample(tok, { prompt: 'What is 12 + 30?', completion: `<think>\n${'12 + 30 = 42\n'.repeat(3)}</think>\n<answer>42</answer>` }, 'r1');
  const pad = tok.special.pad!;
  const batch = collateSft([short, long], 256, pad);
  assert.equal(batch.T, paddedLength(long.tokens.length - 1, 256));
  assert.ok(batch.T >= long.tokens.length - 1 && batch.T < 2 * (long.tokens.length - 1));
  for (let t = short.tokens.length - 1; t < batch.T; t++) {
    assert.equal(batch.ids[t], pad);
    assert.equal(batch.targets[t], IGNORE_INDEX);
  }
  const stats = { truncated: 0, skipped: 0 };
  const cut = collateSft([long], long.promptLength + 3, pad, stats);
  assert.equal(stats.truncated, 1);
  assert.equal(cut.T, long.promptLength + 3);
  assert.equal(learned(tok, cut, 0).positions.length, 4);
});

test('packing: <bos> doc <eos> end to end, rows overlapping by one token', async () => {
  const tok = await tokenizerPromise;
  const docs = texts.slice(0, 20);
  const stream = docs.flatMap((d) => encodeDocument(tok, d));
  assert.equal(stream[0], tok.special.bos);
  const T = 24;
  const packer = new PackedBatcher((s) => new ListStream(docs, 0, false, s), (t) => encodeDocument(tok, t), 3, T);
  for (let k = 0; k < 4; k++) {
    const b = packer.next();
    for (let r = 0; r < 3; r++) {
      const start = (k * 3 + r) * T;
      assert.deepEqual(Array.from(b.ids.subarray(r * T, (r + 1) * T)), stream.slice(start, start + T));
      assert.deepEqual(Array.from(b.targets.subarray(r * T, (r + 1) * T)), stream.slice(start + 1, start + T + 1));
    }
  }
});

function sameBatches(a: Batch[], b: Batch[]): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    assert.deepEqual(Array.from(x.ids), Array.from(b[i].ids), `batch ${i} ids`);
    assert.deepEqual(Array.from(x.targets), Array.from(b[i].targets), `batch ${i} targets`);
  });
}

test('every batcher reopened from its state() continues with the same batches', async () => {
  const tok = await tokenizerPromise;
  const encode = (t: string) => encodeDocument(tok, t);
  const sft = (ex: SftExample) => encodeSftExample(tok, ex, 'r1');
  const tasks = [
    { task: 'arithmetic' as const, digits: [2, 2] as [number, number], ops: ['+' as const] },
    { task: 'countdown' as const, count: [3, 3] as [number, number], numberMax: 20, targetMax: 60 },
  ];
  const makers = {
    corpus: (s?: unknown) => new PackedBatcher((x) => new CorpusStream({ seed: 3 }, x), encode, 2, 40, s as never),
    // 7 documents, rows of 41 tokens: several epochs (each in a new shuffled order) within a few batches.
    file: (s?: unknown) => new PackedBatcher((x) => new ListStream(texts.slice(0, 7), 9, true, x), encode, 2, 40, s as never),
    sftTasks: (s?: unknown) => new SftBatcher((x) => new TaskSftStream(tasks, 4, x), sft, 3, 200, tok.special.pad!, s),
    sftFile: (s?: unknown) => new SftBatcher((x) => new ListStream([{ prompt: 'a', completion: 'b' }, { prompt: 'What is 2 + 2?', completion: '4' }, { prompt: 'c', completion: 'd' }], 2, true, x), sft, 2, 64, tok.special.pad!, s),
  };
  for (const [name, make] of Object.entries(makers)) {
    const first = make();
    for (let i = 0; i < 5; i++) first.next();
    const state = JSON.parse(JSON.stringify(first.state()));
    const rest = Array.from({ length: 6 }, () => first.next());
    const reopened = make(state);
    const again = Array.from({ length: 6 }, () => reopened.next());
    try {
      sameBatches(rest, again);
    } catch (err) {
      assert.fail(`${name}: ${(err as Error).message}`);
    }
  }
});

test('the SFT task stream mixes its tasks', () => {
  const s = new TaskSftStream([{ task: 'arithmetic', digits: [1, 1], ops: ['+'] }, { task: 'countdown', count: [3, 3], numberMax: 20, targetMax: 60 }], 1);
  const prompts = Array.from({ length: 40 }, () => s.next().prompt ?? '');
  const arithmetic = prompts.filter((p) => p.startsWith('What is')).length;
  assert.ok(arithmetic > 5 && arithmetic < 35, `${arithmetic} of 40 arithmetic`);
});
