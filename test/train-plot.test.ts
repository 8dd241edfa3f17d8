// metrics.jsonl handling and `nanoseek plot`: a self-contained HTML page of well-formed SVG charts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLog, plotRun, Progress, readMetrics, renderReport, type TrainRecord } from '../src/train/index.js';
import { logInterval } from '../src/train/metrics.js';

function record(step: number, withVal: boolean): TrainRecord {
  const r: TrainRecord = {
    step,
    loss: 5 / step,
    ce: 4 / step,
    mtp: 4.5 / step,
    balance: 0.001,
    lr: 0.001 * Math.min(1, step / 3),
    grad_norm: 1,
    tokens: 100 * step,
    tokens_per_s: 1000,
    elapsed_s: step,
    expert_load: [[0.5, 0.25, 0.125, 0.125], [0.25, 0.25, 0.25, 0.25]],
    expert_imbalance: [2, 1],
  };
  if (withVal) r.val_loss = 4.2 / step;
  return r;
}

/** Checks that every tag in `markup` is closed in order (void HTML elements excepted). */
function assertBalanced(markup: string): void {
  const voids = new Set(['meta', '!doctype']);
  const stack: string[] = [];
  for (const m of markup.matchAll(/<(\/?)([!a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    const tag = name.toLowerCase();
    if (voids.has(tag) || selfClose) continue;
    if (close) assert.equal(stack.pop(), tag, `</${tag}> closes the wrong element`);
    else stack.push(tag);
  }
  assert.deepEqual(stack, [], 'unclosed elements');
}

test('resuming cuts metrics.jsonl back to the checkpoint, torn lines included', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'nanoseek-metrics-')), 'metrics.jsonl');
  const log = await MetricsLog.open(path, 0);
  for (const s of [1, 2, 3, 4]) await log.append(record(s, false));
  appendFileSync(path, '{"step": 5, "loss"');
  await MetricsLog.open(path, 2);
  assert.deepEqual((await readMetrics(path)).map((r) => r.step), [1, 2]);
  await MetricsLog.open(path, 0);
  assert.deepEqual(await readMetrics(path), []);
});

test('plot: one HTML file, inline SVG charts for loss, lr, validation loss and expert load', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-plot-'));
  writeFileSync(join(dir, 'metrics.jsonl'), [1, 2, 3, 4, 5, 6].map((s) => JSON.stringify(record(s, s % 3 === 0))).join('\n') + '\n');
  const path = await plotRun(dir, join(dir, 'report.html'));
  const html = readFileSync(path, 'utf8');
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assertBalanced(html);
  for (const title of ['Loss', 'Learning rate', 'Expert load imbalance', 'Expert load, MoE layer 0', 'Expert load, MoE layer 1']) {
    assert.ok(html.includes(`aria-label="${title}`), `no chart "${title}"`);
  }
  assert.ok(html.includes('validation loss'));
  assert.equal((html.match(/<svg /g) ?? []).length, 7);
  // Self-contained: no scripts, stylesheets, images or fonts fetched from anywhere.
  assert.doesNotMatch(html, /<script|<link|<img|src=|href=|url\(/);
  assert.deepEqual([...new Set(html.match(/https?:\/\/[^"]+/g))], ['http://www.w3.org/2000/svg']);
  // The heatmap colours the over-used expert red and the under-used ones blue.
  assert.match(html, /expert 0: 2\.00× fair share/);
  assert.match(renderReport([], { title: 'empty' }), /no data/);
});

test('progress: a redrawn status line on a terminal (its loss labelled as one step\'s), plain lines elsewhere', () => {
  let tty = '';
  const bar = new Progress({ total: 10, stream: { write: (s: string) => (tty += s), isTTY: true, columns: 100 } });
  bar.update(5, { loss: 1.5, tokensPerS: 1234 });
  bar.log('step 5');
  bar.done();
  assert.match(tty, /\r\x1b\[2K\[#+\.+\]  5\/10  step loss 1\.5000  1234 tok\/s  eta /);
  assert.match(tty, /step 5\n/);
  let plain = '';
  const lines = new Progress({ total: 10, stream: { write: (s: string) => (plain += s) } });
  lines.update(5, { loss: 1.5 });
  lines.log('step 5');
  lines.done();
  assert.equal(plain, 'step 5\n');
});

test('plot refuses, in one line naming the path, a missing directory, a directory that is no run, a run with nothing logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-plot-'));
  await assert.rejects(plotRun(join(dir, 'nope')), /^Error: .*nope: no such directory \(give the run directory, the --out of nanoseek train\)$/);
  await assert.rejects(plotRun(dir), new RegExp(`^Error: ${dir} has no metrics.jsonl: not a training run directory`));
  writeFileSync(join(dir, 'metrics.jsonl'), '');
  await assert.rejects(plotRun(dir), /metrics\.jsonl holds no records yet: the run has not logged a step/);
});

test('short runs log often enough to plot: at least 20 points, never more often than every step', () => {
  assert.equal(logInterval(20, 17), 1);
  assert.equal(logInterval(10, 30), 1);
  assert.equal(logInterval(10, 60), 3);
  assert.equal(logInterval(10, 500), 10);
  assert.equal(logInterval(100, 3600), 100);
});
