// `nanoseek serve` as a child process: it prints where it listens, and on SIGTERM stops accepting
// connections, lets the running stream finish and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { fixtureTokenizer, randomModel, saveFixture, startServe } from './serve-fixture.js';

/** A connection attempt on a fresh socket: 'refused' once the server has stopped listening. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ port, host: '127.0.0.1', path: '/health', agent: false }, (res) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : err.code ?? err.message));
    req.end();
  });
}

test('SIGTERM: the server stops accepting, finishes the running stream and exits 0', async () => {
  const tok = await fixtureTokenizer();
  const fixture = await saveFixture(randomModel(tok, 11), tok);
  const { child, url, exited, stderr } = await startServe(fixture.dir);
  try {
    const port = Number(new URL(url).port);
    assert.equal(await probe(port), '200');

    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Count slowly.' }], stream: true, ignore_eos: true, max_tokens: 300 }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });

    child.kill('SIGTERM');
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      refused = (await probe(port)) === 'refused';
      if (!refused) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(refused, 'new connections are refused after SIGTERM');

    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.match(text, /"finish_reason":"length"/, 'the in-flight stream ran to its end');
    assert.match(text, /"completion_tokens":300/);
    assert.match(text, /data: \[DONE\]\n\n$/);
    assert.equal(await exited, 0, stderr());
    assert.match(stderr(), /SIGTERM: no new requests; finishing 1 in flight/);
  } finally {
    child.kill('SIGKILL');
    await fixture.remove();
  }
});
