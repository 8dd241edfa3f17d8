// The README says true things a newcomer checks first: the parameter counts of the presets and of
// the shipped models, and that the questions it suggests asking are ones the shipped model gets
// right (every one is among the examples its card offers, which test/model-card.test.ts answers).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../src/infer/index.js';
import { readModelConfig } from '../src/io/checkpoint.js';
import { countParameters, presetConfig, type PresetName } from '../src/model/config.js';

const root = await packageRoot();
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** 2.7M, 926K, 48M: a count as the README rounds it. */
function parseCount(text: string): number {
  const m = /^([\d.]+)([MK])$/.exec(text.trim());
  assert.ok(m, `not a count: ${text}`);
  return Number(m[1]) * (m[2] === 'M' ? 1e6 : 1e3);
}

/** Whether `actual` rounds to the `shown` figure (as many significant digits as it has). */
function rounds(shown: string, actual: number): boolean {
  const v = parseCount(shown);
  const unit = shown.endsWith('M') ? 1e6 : 1e3;
  const decimals = (shown.split('.')[1] ?? '').replace(/[MK]$/, '').length;
  return Math.abs(actual - v) <= (0.5 * unit) / 10 ** decimals;
}

test('the preset table gives the parameter counts of the presets at the vocabulary it names', () => {
  assert.match(readme, /\| preset \| architecture \| parameters at vocabulary 4096 \(total \/ active per token\)/);
  for (const name of ['nano', 'micro', 'small'] as PresetName[]) {
    const row = new RegExp(`\\| \`${name}\` \\|[^|]*\\| ([\\d.]+[MK]) / ([\\d.]+[MK]) \\|`).exec(readme);
    assert.ok(row, `a row for ${name}`);
    const p = countParameters(presetConfig(name, { vocabSize: 4096 }));
    assert.ok(rounds(row[1], p.total), `${name} total ${p.total} vs ${row[1]}`);
    assert.ok(rounds(row[2], p.active), `${name} active ${p.active} vs ${row[2]}`);
  }
});

test('the shipped models\' parameter counts are theirs', async () => {
  const p = countParameters(await readModelConfig(join(root, 'models', 'nano-r1zero')));
  for (const m of readme.matchAll(/([\d.]+M)-parameter DeepSeek-V3-architecture models \((\d+K) active|at vocabulary 517, ([\d.]+M) parameters \/ (\d+K) active/g)) {
    const [total, active] = m[1] ? [m[1], m[2]] : [m[3], m[4]];
    assert.ok(rounds(total, p.total), `${total} vs ${p.total}`);
    assert.ok(rounds(active, p.active), `${active} vs ${p.active}`);
  }
  assert.equal([...readme.matchAll(/(-parameter DeepSeek-V3-architecture models \(|at vocabulary 517, )/g)].length, 2);
});

test('every sum of one-digit numbers the README suggests asking is one the shipped model\'s card offers (and answers right)', () => {
  const card = JSON.parse(readFileSync(join(root, 'models', 'nano-r1zero', 'model_card.json'), 'utf8'));
  const asked = [...readme.matchAll(/What is (\d(?: \+ \d)+)\?/g)].map((m) => m[0]);
  assert.ok(asked.length >= 3, asked.join('; '));
  for (const q of asked) assert.ok(card.examples.includes(q), `${q} is not among the card's examples`);
  assert.doesNotMatch(readme, /content: 'What is 17\+25\?'/, 'the API example asks what the model knows');
});
