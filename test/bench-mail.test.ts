// `nanoseek bench mail` end to end on the shipped nano-mail: the three timed runs, and the replay of
// the model's own answers through the engine's teacher forcing (what --r1-distill does on the stand-in).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { benchMail } from '../bench/mail.js';
import { packageRoot } from '../src/infer/index.js';
import { DEFAULT_MAIL_MODEL } from '../src/mail/index.js';

test('bench mail: every message triaged in each run; replayed answers go through the grammar without review', async () => {
  const r = await benchMail({ model: join(await packageRoot(), DEFAULT_MAIL_MODEL), messages: 6, concurrency: 2, replay: true });
  assert.deepEqual(
    r.runs.map((x) => x.mode),
    ['rules then model', 'model for every message', 'the same, unconstrained', "nano-mail's answers, replayed"],
  );
  for (const x of r.runs) {
    assert.equal(x.messages, 6, x.mode);
    assert.ok(x.messages_per_min > 0 && x.prompt_tokens_per_model_message > 0, x.mode);
  }
  const replayed = r.runs[3];
  assert.equal(replayed.by_model, 6);
  assert.equal(replayed.needs_review, 0);
  assert.equal(replayed.replayed_answers, 6, 'nano-mail answered every message, so every answer is replayed');
  // The replay emits nano-mail's own greedy answers: as many tokens as generating them took, give or
  // take a token where re-encoding the text splits it differently.
  const own = r.runs[1].tokens_per_model_message;
  assert.ok(Math.abs(replayed.tokens_per_model_message - own) <= 2, `${replayed.tokens_per_model_message} vs ${own} tokens a message`);
});
