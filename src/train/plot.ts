// `nanoseek plot`: a run's metrics.jsonl as one self-contained HTML page of inline SVG charts (loss
// and validation loss, learning rate, gradient norm, per-expert load), readable offline and
// attachable to an issue.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { COLORS, escapeHtml, htmlPage, lineChart, loadHeatmap, metricPoints, readRunMetrics, type MetricsRecord, type Series } from '../report/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { TRAIN_CONFIG_FILE } from './config.js';

const STYLE = 'body{font-family:system-ui,sans-serif;margin:24px;color:#222}svg{display:block;margin:12px 0;background:#fff}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}';

/** The HTML report for a run's metrics. */
export function renderReport(records: readonly MetricsRecord[], opts: { title: string; details?: string } = { title: 'training run' }): string {
  const charts: string[] = [];
  const loss: Series[] = [
    { name: 'train loss', points: metricPoints(records, 'loss'), color: COLORS[0] },
    { name: 'train CE', points: metricPoints(records, 'ce'), color: COLORS[2] },
    { name: 'MTP CE', points: metricPoints(records, 'mtp'), color: COLORS[3] },
    { name: 'KD τ²·D (distillation)', points: metricPoints(records, 'kd'), color: COLORS[5] },
    { name: 'validation loss', points: metricPoints(records, 'val_loss'), color: COLORS[1], markers: true },
  ].filter((s) => s.points.length > 0);
  charts.push(lineChart('Loss', loss, { xLabel: 'step', yLabel: 'nats / token' }));
  const onPolicy = metricPoints(records, 'on_policy');
  if (onPolicy.length > 0) charts.push(lineChart('Distillation: share of steps on the student\'s own samples', [{ name: 'on-policy', points: onPolicy, color: COLORS[4] }], { xLabel: 'step' }));
  charts.push(lineChart('Learning rate', [{ name: 'lr', points: metricPoints(records, 'lr'), color: COLORS[4] }], { xLabel: 'step' }));
  charts.push(lineChart('Gradient norm (before clipping)', [{ name: 'grad norm', points: metricPoints(records, 'grad_norm'), color: COLORS[5] }], { xLabel: 'step' }));
  charts.push(lineChart('Throughput', [{ name: 'tokens/s', points: metricPoints(records, 'tokens_per_s'), color: COLORS[0] }], { xLabel: 'step', yLabel: 'tokens / s' }));

  const withLoad = records.filter((r) => Array.isArray(r.expert_load));
  if (withLoad.length > 0) {
    const layers = (withLoad[0].expert_load as number[][]).length;
    const imbalance: Series[] = Array.from({ length: layers }, (_, l) => ({
      name: `MoE layer ${l}`,
      points: withLoad.map((r) => [r.step, (r.expert_imbalance as number[] | undefined)?.[l] ?? NaN] as [number, number]),
      color: COLORS[l % COLORS.length],
    }));
    charts.push(lineChart('Expert load imbalance (max / mean)', imbalance, { xLabel: 'step' }));
    const steps = withLoad.map((r) => r.step);
    for (let l = 0; l < layers; l++) {
      charts.push(loadHeatmap(`Expert load, MoE layer ${l}`, steps, withLoad.map((r) => (r.expert_load as number[][])[l] ?? [])));
    }
  }

  const last = records[records.length - 1];
  const lastVal = [...records].reverse().find((r) => typeof r.val_loss === 'number');
  const summary = last
    ? `${records.length} records, last step ${last.step}` + (lastVal ? `, last validation loss ${(lastVal.val_loss as number).toFixed(4)} at step ${lastVal.step}` : '')
    : 'no records';
  return htmlPage(opts.title, STYLE, [
    `<p>${escapeHtml(summary)}</p>`,
    ...charts,
    opts.details ? `<details><summary>configuration</summary><pre>${escapeHtml(opts.details)}</pre></details>` : '',
  ]);
}

/** Writes `<runDir>/metrics.html` (or `outFile`) and returns its path. */
export async function plotRun(runDir: string, outFile?: string): Promise<string> {
  const records = await readRunMetrics(runDir);
  const details = await readFile(join(runDir, TRAIN_CONFIG_FILE), 'utf8').catch(() => undefined);
  const path = outFile ?? join(runDir, 'metrics.html');
  await writeFileAtomic(path, renderReport(records, { title: `nanoseek run ${basename(resolve(runDir))}`, details }));
  return path;
}
