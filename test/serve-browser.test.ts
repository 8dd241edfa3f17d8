// The chat page in headless Chromium: it shows the model, streams the reasoning into the thinking
// section and then the answer below it; with the shipped model, it says what the model knows and
// offers questions that, clicked, get the right answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { InferenceServer } from '../src/serve/server.js';
import { fixtureTokenizer, SCRIPT, scriptedModel } from './serve-fixture.js';

const CHROMIUM = '/usr/bin/chromium';

/** A page in headless Chromium (a throwaway profile) that collects the page's errors. */
async function openPage(): Promise<{ page: Page; failures: string[]; close: () => Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'nanoseek-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  const close = async () => {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { page, failures, close };
}

test('chat page: streamed thinking, then the answer', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)` }, async () => {
  const tok = await fixtureTokenizer();
  const server = new InferenceServer({ model: scriptedModel(tok), tokenizer: tok, modelId: 'nano-test' });
  const { port } = await server.listen(0);
  const { page, failures, close } = await openPage();
  try {
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
    await close();
    await server.close();
  }
});

test('chat page with the shipped model: it says what the model knows, and clicking an example streams the right answer', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)` }, async () => {
  // As `nanoseek serve` (and so `npm start`) serves it: the model's card and generation defaults.
  const ck = await loadForInference(join(await packageRoot(), 'models', 'nano-r1zero'));
  const server = new InferenceServer({ model: ck.model, tokenizer: ck.tokenizer, modelId: ck.name, samplingDefaults: ck.samplingDefaults, card: ck.card });
  const { port } = await server.listen(0);
  const { page, failures, close } = await openPage();
  try {
    const bodies: Record<string, unknown>[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/v1/chat/completions')) bodies.push(JSON.parse(r.postData() ?? '{}'));
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const card = ck.card!;
    await page.waitForSelector('#intro:not([hidden])');
    assert.equal(await page.textContent('#about'), card.description);
    assert.deepEqual(await page.$$eval('#examples button', (bs) => bs.map((b) => b.textContent)), card.examples);
    assert.match((await page.getAttribute('#temperature', 'placeholder')) ?? '', /^model: 0 \(greedy\)$/);

    const question = card.examples[1];
    const expected = question.slice('What is '.length, -1).split('+').reduce((s, x) => s + Number(x), 0);
    await page.click(`#examples button:nth-child(2)`);
    await page.waitForFunction(() => document.querySelector('.msg.assistant .stats')?.textContent?.includes('tokens'));
    assert.equal(await page.textContent('.msg.user'), question);
    assert.ok(await page.isHidden('#intro'), 'the introduction gives way to the conversation');
    assert.match((await page.textContent('.msg.assistant .reasoning')) ?? '', /= \d+/, 'the sum worked out in the thinking section');
    assert.equal(await page.textContent('.msg.assistant .answer'), String(expected));
    // The page left sampling to the model (greedy): Settings were untouched.
    assert.equal(bodies.length, 1);
    assert.equal('temperature' in bodies[0] || 'top_p' in bodies[0], false, JSON.stringify(bodies[0]));
    assert.deepEqual(failures, []);
  } finally {
    await close();
    await server.close();
  }
});
