// What a recording says: how unevenly each layer's experts are used, overall and step by step, and a
// page that shows it at a glance (a layers × experts heatmap, each layer's load over time, the
// imbalance per step).
import { COLORS, escapeHtml, htmlPage, lineChart, loadHeatmap, ratioHeatmap, type Series } from '../report/index.js';
import type { ExpertLoad } from './load.js';
import { gpuLoads, maxOverMean, trivialPlacement } from './placement.js';

export interface LayerStats {
  /** Decoder-layer index. */
  layer: number;
  rows: number;
  /** Busiest expert's load ÷ the mean (1 = perfectly balanced). */
  maxOverMean: number;
  minOverMean: number;
  /** Coefficient of variation of the experts' loads. */
  cv: number;
  hottest: { expert: number; share: number };
  coldest: { expert: number; share: number };
  /** Σ over series entries of the busiest expert ÷ Σ of the mean: the imbalance step by step. */
  stepMaxOverMean: number;
  /** max ÷ mean per device with SGLang's trivial placement on `devices` devices (when asked). */
  devicesMaxOverMean?: number;
}

export interface LoadStats {
  model: string;
  source: string;
  experts: number;
  topk: number;
  tokens: number;
  steps: number;
  devices?: number;
  layers: LayerStats[];
}

export function loadStats(rec: ExpertLoad, devices?: number): LoadStats {
  const trivial = devices === undefined ? null : gpuLoads(rec.load, trivialPlacement(rec.layers.length, rec.experts, devices).phy2log, devices);
  const layers = rec.load.map((load, l): LayerStats => {
    const total = load.reduce((a, b) => a + b, 0);
    const mean = total / load.length;
    const sd = Math.sqrt(load.reduce((a, v) => a + (v - mean) ** 2, 0) / load.length);
    const hot = load.indexOf(Math.max(...load));
    const cold = load.indexOf(Math.min(...load));
    let sumMax = 0, sumMean = 0;
    for (const entry of rec.series.counts) {
      const row = entry[l];
      sumMax += Math.max(...row);
      sumMean += row.reduce((a, b) => a + b, 0) / row.length;
    }
    return {
      layer: rec.layers[l], rows: total,
      maxOverMean: mean > 0 ? load[hot] / mean : 1, minOverMean: mean > 0 ? load[cold] / mean : 1, cv: mean > 0 ? sd / mean : 0,
      hottest: { expert: hot, share: total > 0 ? load[hot] / total : 0 }, coldest: { expert: cold, share: total > 0 ? load[cold] / total : 0 },
      stepMaxOverMean: sumMean > 0 ? sumMax / sumMean : 1,
      ...(trivial === null ? {} : { devicesMaxOverMean: maxOverMean(trivial[l]) }),
    };
  });
  return { model: rec.model, source: rec.source, experts: rec.experts, topk: rec.topk, tokens: rec.tokens, steps: rec.steps, ...(devices === undefined ? {} : { devices }), layers };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function formatStats(s: LoadStats): string {
  const lines = [
    `${s.model} (${s.source}): ${s.layers.length} MoE layers × ${s.experts} experts, top-${s.topk}; ${s.tokens} tokens over ${s.steps} steps`,
    `layer  rows      max/mean  min/mean  cv     hottest        coldest        per-step max/mean${s.devices === undefined ? '' : `  ${s.devices} devices max/mean`}`,
  ];
  for (const l of s.layers) {
    lines.push(
      `${String(l.layer).padEnd(6)} ${String(Math.round(l.rows)).padEnd(9)} ${l.maxOverMean.toFixed(2).padEnd(9)} ${l.minOverMean.toFixed(2).padEnd(9)} ${l.cv.toFixed(2).padEnd(6)} ` +
        `${`e${l.hottest.expert} ${pct(l.hottest.share)}`.padEnd(14)} ${`e${l.coldest.expert} ${pct(l.coldest.share)}`.padEnd(14)} ${l.stepMaxOverMean.toFixed(2)}` +
        (l.devicesMaxOverMean === undefined ? '' : `               ${l.devicesMaxOverMean.toFixed(3)}`),
    );
  }
  return lines.join('\n');
}

export const PAGE_STYLE =
  'body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}svg{display:block;margin:12px 0;background:#fff}' +
  'table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}' +
  'pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}code{background:#f4f4f4;padding:0 3px}';

/** An HTML table from a header row and rows of cells (already formatted; escaped here). */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[], id?: string): string {
  const cell = (tag: string, v: string | number): string => `<${tag}>${escapeHtml(String(v))}</${tag}>`;
  return `<table${id ? ` id="${id}"` : ''}><tr>${head.map((h) => cell('th', h)).join('')}</tr>${rows.map((r) => `<tr>${r.map((v) => cell('td', v)).join('')}</tr>`).join('')}</table>`;
}

/** The layers × experts heatmap of a recording (each cell: the expert's load ÷ its layer's mean). */
export function overviewHeatmap(rec: ExpertLoad, title = 'Expert load ÷ fair share, per MoE layer'): string {
  const ratios = rec.load.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    return row.map((v) => (mean > 0 ? v / mean : 0));
  });
  return ratioHeatmap(title, rec.layers.map((l) => `layer ${l}`), Array.from({ length: rec.experts }, (_, e) => `e${e}`), ratios,
    (r, c) => `layer ${rec.layers[r]}, expert ${c}: ${Math.round(rec.load[r][c])} rows`);
}

/** The page `experts stats` writes. */
export function statsPage(rec: ExpertLoad, s: LoadStats): string {
  const steps = rec.series.counts.map((_, i) => (i + 1) * rec.series.every);
  const perStep: Series[] = rec.layers.map((layer, l) => ({
    name: `layer ${layer}`,
    points: rec.series.counts.map((entry, i) => [steps[i], maxOverMean(entry[l])] as [number, number]),
    color: COLORS[l % COLORS.length],
  }));
  const body = [
    `<p id="summary">${escapeHtml(`${s.model}, recorded by ${s.source}: ${s.layers.length} MoE layers × ${s.experts} experts (top-${s.topk}), ${s.tokens} tokens over ${s.steps} steps${rec.series.every > 1 ? ` (the series sums ${rec.series.every} steps a column)` : ''}.`)}</p>`,
    table(
      ['layer', 'rows', 'max ÷ mean', 'min ÷ mean', 'cv', 'hottest', 'coldest', 'per-step max ÷ mean', ...(s.devices === undefined ? [] : [`${s.devices} devices, max ÷ mean`])],
      s.layers.map((l) => [
        l.layer, Math.round(l.rows), l.maxOverMean.toFixed(2), l.minOverMean.toFixed(2), l.cv.toFixed(2), `e${l.hottest.expert} (${pct(l.hottest.share)})`,
        `e${l.coldest.expert} (${pct(l.coldest.share)})`, l.stepMaxOverMean.toFixed(2), ...(l.devicesMaxOverMean === undefined ? [] : [l.devicesMaxOverMean.toFixed(3)]),
      ]),
      'imbalance',
    ),
    overviewHeatmap(rec),
    lineChart('Busiest expert ÷ mean, per step', perStep, { xLabel: 'step' }),
    ...rec.layers.map((layer, l) => loadHeatmap(`Expert load over time, layer ${layer}`, steps, rec.series.counts.map((entry) => {
      const total = entry[l].reduce((a, b) => a + b, 0);
      return entry[l].map((v) => (total > 0 ? v / total : 0));
    }))),
  ];
  return htmlPage(`Expert load: ${rec.model}`, PAGE_STYLE, body);
}
