// The `experts stats` page in headless Chromium: it renders without errors, its table gives each
// layer's imbalance, and the heatmap shows the hot expert red and the cold ones blue, with the numbers
// in the tooltips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { addStep, emptyLoad, loadStats, statsPage } from '../src/experts/index.js';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';

const CHROMIUM = '/usr/bin/chromium';

test('experts stats page: imbalance table and a heatmap a person reads at a glance', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)` }, async () => {
  const rec = emptyLoad(new CausalLM(presetConfig('nano', { vocabSize: 64 }), { seed: 1 }), 'nano-test', 'test');
  // Layer l: expert 3 + l gets 4× the others' rows, expert 15 none; 40 steps.
  for (let s = 0; s < 40; s++) addStep(rec, rec.load.map((row, l) => row.map((_, e) => (e === 3 + l ? 40 : e === 15 ? 0 : 10))), 16);
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-experts-page-'));
  const path = join(dir, 'stats.html');
  await writeFile(path, statsPage(rec, loadStats(rec, 2)));
  const profile = await mkdtemp(join(tmpdir(), 'nanoseek-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(pathToFileURL(path).href);
    assert.equal(await page.title(), 'Expert load: nano-test');
    assert.match((await page.textContent('#summary')) ?? '', /3 MoE layers × 16 experts \(top-4\), 640 tokens over 40 steps/);

    const rows = await page.$$eval('#imbalance tr', (trs) => trs.map((tr) => Array.from(tr.children, (c) => c.textContent)));
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[0].slice(0, 3), ['layer', 'rows', 'max ÷ mean']);
    // 14 experts at 10, one at 40, one at 0: mean 180/16, max/mean 40/11.25.
    assert.deepEqual(rows.slice(1).map((r) => [r[0], r[2], r[5]]), [['1', '3.56', 'e3 (22.2%)'], ['2', '3.56', 'e4 (22.2%)'], ['3', '3.56', 'e5 (22.2%)']]);

    const cells = await page.$$eval('svg rect.cell', (rs) => rs.map((r) => ({ row: Number(r.getAttribute('data-row')), col: Number(r.getAttribute('data-col')), fill: getComputedStyle(r).fill, title: r.querySelector('title')?.textContent ?? '', w: r.getBoundingClientRect().width })));
    assert.equal(cells.length, 3 * 16, 'one cell per layer and expert');
    assert.ok(cells.every((c) => c.w > 5), 'cells are drawn at a readable size');
    const rgb = (fill: string) => fill.match(/\d+/g)!.map(Number);
    for (let l = 0; l < 3; l++) {
      const hot = cells.find((c) => c.row === l && c.col === 3 + l)!;
      const [r, g, b] = rgb(hot.fill);
      assert.ok(r > 150 && g < 60 && b < 80, `hot expert red, got ${hot.fill}`);
      assert.match(hot.title, new RegExp(`layer ${l + 1}, expert ${3 + l}: 1600 rows: 3\\.56× fair share`));
      const [r0, , b0] = rgb(cells.find((c) => c.row === l && c.col === 15)!.fill);
      assert.ok(b0 > r0 + 100, 'an unused expert is blue');
      const [r1, g1, b1] = rgb(cells.find((c) => c.row === l && c.col === 0)!.fill);
      assert.ok(r1 > 200 && g1 > 200 && b1 > 200, 'an expert near its fair share is near white');
    }
    // The overview, the per-step imbalance chart and one load-over-time heatmap per layer.
    assert.equal(await page.locator('svg').count(), 5);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
