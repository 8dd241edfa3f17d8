// The chat page in headless Chromium: it shows the model, streams the reasoning into the thinking
// section and then the answer below it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { InferenceServer } from '../src/serve/server.js';
import { fixtureTokenizer, SCRIPT, scriptedModel } from './serve-fixture.js';

const CHROMIUM = '/usr/bin/chromium';

test('chat page: streamed thinking, then the answer', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)` }, async () => {
  const tok = await fixtureTokenizer();
  const server = new InferenceServer({ model: scriptedModel(tok), tokenizer: tok, modelId: 'nano-test' });
  const { port } = await server.listen(0);
  const profile = await mkdtemp(join(tmpdir(), 'nanoseek-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(err.message));
    page.on('requestfailed', (r) => failures.push(`${r.url()}: ${r.failure()?.errorText}`));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.getElementById('model-info')?.textContent?.includes('DeepseekV3ForCausalLM'));

    // Record every value the reasoning and answer take (each update replaces their text node).
    await page.evaluate(() => {
      const seen: { kind: string; text: string }[] = [];
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target as HTMLElement;
          const kind = el.classList?.contains('reasoning') ? 'reasoning' : el.classList?.contains('answer') ? 'answer' : null;
          if (kind !== null) for (const n of r.addedNodes) seen.push({ kind, text: n.textContent ?? '' });
        }
      }).observe(document.getElementById('thread')!, { childList: true, subtree: true });
    });
    await page.fill('#prompt', 'What is 2+2?');
    await page.press('#prompt', 'Enter');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .stats')?.textContent?.includes('tokens'));

    assert.equal(await page.textContent('.msg.user'), 'What is 2+2?');
    assert.equal(await page.textContent('.msg.assistant .reasoning'), SCRIPT.reasoning);
    assert.equal(await page.textContent('.msg.assistant .answer'), SCRIPT.content);
    assert.match((await page.textContent('.msg.assistant summary')) ?? '', /^Thought for/);
    const seen = await page.evaluate(() => (window as unknown as { seen: { kind: string; text: string }[] }).seen);
    const reasoning = seen.filter((s) => s.kind === 'reasoning').map((s) => s.text);
    const firstAnswer = seen.findIndex((s) => s.kind === 'answer');
    assert.ok(reasoning.length >= 5, `the reasoning streamed in ${reasoning.length} updates`);
    reasoning.forEach((t, i) => i > 0 && assert.ok(t.startsWith(reasoning[i - 1]), 'each update extends the last'));
    assert.ok(firstAnswer > seen.map((s) => s.kind).lastIndexOf('reasoning'), 'the answer starts after the reasoning');
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
});
