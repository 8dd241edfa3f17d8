// The /mail page of `nanoseek serve` in headless Chromium: it lists the triaged messages, filters them,
// opens one, and a correction made there is stored and becomes the sender's rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { MaildirSource, MailState, mailRoutes, parseMailConfig, runTriage, writeSampleMaildir } from '../src/mail/index.js';
import { InferenceServer } from '../src/serve/server.js';
import { fixtureTokenizer, randomModel } from './serve-fixture.js';

const CHROMIUM = '/usr/bin/chromium';

test('/mail page: list, filter, open, correct', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)` }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-mail-page-'));
  const md = join(dir, 'Maildir');
  await writeSampleMaildir(md, 12);
  const state = new MailState(join(dir, 'state.db'));
  // Rules settle everything here: spam-looking subjects one way, the rest another.
  const config = parseMailConfig({ rules: [{ name: 'spammy', subject: '[$!]|free|money|save|sale', category: 'spam' }, { name: 'rest', subject: '.', category: 'FYI' }] });
  await runTriage({ source: new MaildirSource(md), state, config, model: null });
  const records = state.records();
  const spam = records.filter((r) => r.category === 'spam').length;
  assert.ok(spam > 0 && spam < records.length);

  const tok = await fixtureTokenizer();
  const server = new InferenceServer({ model: randomModel(tok), tokenizer: tok, modelId: 'nano-test', routes: [mailRoutes(state, config.categories)] });
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
    await page.goto(`http://127.0.0.1:${port}/mail`);
    await page.waitForFunction((n) => document.querySelectorAll('#list li').length === n, records.length);
    assert.equal(await page.textContent('#count'), `${records.length} of ${records.length}`);

    // Filter by category, then by text.
    await page.selectOption('#cat', 'spam');
    assert.equal(await page.locator('#list li').count(), spam);
    await page.selectOption('#cat', '');
    const target = records.find((r) => r.category === 'FYI')!;
    await page.fill('#q', target.subject.slice(0, 12));
    await page.waitForFunction(() => document.querySelectorAll('#list li').length >= 1);
    assert.ok((await page.locator('#list li').count()) < records.length);

    // Open it: subject, sender, summary and the excerpt of the message.
    await page.locator('#list li', { hasText: target.subject.slice(0, 12) }).first().click();
    await page.waitForSelector('#view h2');
    assert.equal(await page.textContent('#view h2'), target.subject);
    assert.equal(await page.textContent('#summary'), target.summary);
    assert.ok((await page.textContent('.excerpt'))!.length > 0);

    // Correct its category: stored in the database and shown in the list.
    await page.selectOption('#correct', 'newsletter');
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('msg')?.textContent?.startsWith('Saved: newsletter'));
    const stored = state.get(target.source, target.folder, target.key)!;
    assert.equal(stored.category, 'newsletter');
    assert.equal(stored.decided_by, 'correction');
    assert.equal(state.senders().get(target.from.address), 'newsletter');
    await page.fill('#q', '');
    await page.selectOption('#cat', 'newsletter');
    assert.ok((await page.locator('#list li').count()) >= 1);
    assert.deepEqual(failures, []);

    // The API refuses what it must.
    const bad = await fetch(`http://127.0.0.1:${port}/mail/api/correct`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...target, category: 'later' }) });
    assert.equal(bad.status, 400);
    const form = await fetch(`http://127.0.0.1:${port}/mail/api/correct`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'category=spam' });
    assert.equal(form.status, 415);
  } finally {
    await browser.close();
    await server.close();
    state.close();
    await rm(profile, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
