// response_format in the chat API: json_schema and json_object answers through the official client,
// a reasoning model's thinking left free before '</think>', and schemas the server cannot honour refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { InferenceServer } from '../src/serve/server.js';
import { fixtureTokenizer, randomModel, SCRIPT, scriptedModel } from './serve-fixture.js';

const SCHEMA = {
  type: 'object',
  properties: { answer: { type: 'integer', minimum: 0, maximum: 9 }, sure: { type: 'boolean' } },
  required: ['answer', 'sure'],
  additionalProperties: false,
};

test('response_format: json_schema and json_object answers parse and follow the schema; reasoning stays free', async () => {
  const tok = await fixtureTokenizer();
  // The scripted model thinks its fixed reasoning, then '</think>': from there its bigram preferences
  // meet the schema. (A random model would rarely leave the think block the template opens.)
  {
    const model = scriptedModel(tok);
    const server = new InferenceServer({ model, tokenizer: tok, modelId: 'm' });
    const { port } = await server.listen(0);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
    try {
      for (const seed of [1, 2, 3]) {
        const r = await client.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: 'What is 2+2?' }],
          temperature: seed === 1 ? 0 : 1,
          seed,
          max_tokens: 300,
          response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: SCHEMA } },
        });
        const msg = r.choices[0].message as { content: string | null; reasoning_content?: string };
        assert.equal(r.choices[0].finish_reason, 'stop', JSON.stringify([seed, msg]));
        const v = JSON.parse(msg.content!);
        assert.deepEqual(Object.keys(v), ['answer', 'sure']);
        assert.ok(Number.isInteger(v.answer) && v.answer >= 0 && v.answer <= 9);
        assert.equal(typeof v.sure, 'boolean');
        // The scripted model reasons exactly as it does without a format.
        if (seed === 1) assert.equal(msg.reasoning_content, SCRIPT.reasoning);
      }
      const o = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 400, temperature: 0, response_format: { type: 'json_object' } });
      if (o.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(o.choices[0].message.content!), 'object');
      else assert.ok(o.choices[0].message.content!.trimStart().startsWith('{'));
    } finally {
      await server.close();
    }
  }
});

test('response_format: what the server cannot honour is a 400 naming the field', async () => {
  const tok = await fixtureTokenizer();
  const server = new InferenceServer({ model: randomModel(tok), tokenizer: tok, modelId: 'm' });
  const { port } = await server.listen(0);
  const post = async (rf: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 4, response_format: rf }),
    });
    return { status: res.status, body: (await res.json()) as { error: { param: string; message: string } } };
  };
  try {
    const cases: [unknown, string, RegExp][] = [
      [{ type: 'xml' }, 'response_format.type', /must be "text", "json_object" or "json_schema"/],
      [{ type: 'json_schema' }, 'response_format.json_schema', /is required/],
      [{ type: 'json_schema', json_schema: { name: 'bad name!', schema: SCHEMA } }, 'response_format.json_schema.name', /letters/],
      [{ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: 'a+' } } }, 'response_format.json_schema.schema.pattern', /not supported/],
      [{ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'wat' } } } } }, 'response_format.json_schema.schema.properties.a.type', /unknown type/],
    ];
    for (const [rf, param, re] of cases) {
      const r = await post(rf);
      assert.equal(r.status, 400, JSON.stringify(rf));
      assert.equal(r.body.error.param, param);
      assert.match(r.body.error.message, re);
    }
    assert.equal((await post({ type: 'text' })).status, 200);
  } finally {
    await server.close();
  }
});
