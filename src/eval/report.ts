// Self-contained HTML for GRPO runs: the training curves of a run (`nanoseek grpo plot`) and the
// R1-Zero reproduction report (before/after table, curves, sample completions), and the distillation
// recipe's report (students against teacher and the RL-only control). Inline SVG only: no
// scripts, fonts or other external assets, so the file reads offline and attaches to an issue.
import { COLORS, escapeHtml, htmlPage, lineChart, metricPoints, type MetricsRecord, type Series } from '../report/index.js';
import type { EvalReport } from './evaluate.js';

function series(records: readonly MetricsRecord[], field: string, name: string, color: string, markers = false): Series {
  return { name, points: metricPoints(records, field), color, markers };
}

/** The GRPO training charts: reward, accuracy and format; lengths; held-out accuracy; KL, clipping, gradients. */
export function grpoCharts(records: readonly MetricsRecord[]): string[] {
  const x = { xLabel: 'GRPO step' };
  const charts = [
    lineChart('Reward, accuracy and format (training rollouts)', [
      series(records, 'reward', 'reward', COLORS[0]),
      series(records, 'accuracy', 'accuracy', COLORS[2]),
      series(records, 'format_rate', 'strict format', COLORS[4]),
    ], x),
    lineChart('Response length (tokens, training rollouts)', [
      series(records, 'response_tokens', 'response', COLORS[0]),
      series(records, 'think_tokens', 'inside <think>', COLORS[3]),
    ], { ...x, yLabel: 'tokens' }),
  ];
  const held = [series(records, 'eval_accuracy', 'held-out pass@1 (greedy)', COLORS[1], true), series(records, 'eval_response_tokens', 'held-out tokens / 100', COLORS[5], true)];
  held[1].points = held[1].points.map(([s, v]) => [s, v / 100]);
  if (held[0].points.length > 0) charts.push(lineChart('Held-out greedy accuracy and response length', held, x));
  charts.push(
    lineChart('KL to the reference (k3, per token)', [series(records, 'kl', 'KL', COLORS[3])], x),
    lineChart('Clip fraction and informative groups', [series(records, 'clip_fraction', 'clip fraction', COLORS[1]), series(records, 'informative', 'groups with unequal rewards', COLORS[2])], x),
    lineChart('Gradient norm (before clipping)', [series(records, 'grad_norm', 'grad norm', COLORS[5])], x),
  );
  return charts;
}

const STYLE =
  'body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}svg{display:block;margin:12px 0;background:#fff}' +
  'pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px;white-space:pre-wrap}table{border-collapse:collapse;margin:12px 0}' +
  'td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f0f0f0}td.l,th.l{text-align:left}.up{color:#2a7d2a}.down{color:#b22}' +
  '.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.ok{color:#2a7d2a}.bad{color:#b22}';

/** `nanoseek grpo plot`: a GRPO run's metrics as one HTML page. */
export function renderGrpoRun(records: readonly MetricsRecord[], opts: { title: string; details?: string }): string {
  const last = records[records.length - 1];
  const summary = last === undefined ? 'no records' : `${records.length} records, last step ${last.step}`;
  return htmlPage(opts.title, STYLE, [
    `<p>${escapeHtml(summary)}</p>`,
    ...grpoCharts(records),
    opts.details ? `<details><summary>configuration</summary><pre>${escapeHtml(opts.details)}</pre></details>` : '',
  ]);
}

export interface TaskComparison {
  task: string;
  before: EvalReport;
  after: EvalReport;
}

export interface R1ZeroReportInput {
  title: string;
  /** One paragraph each, plain text. */
  intro: string[];
  comparisons: TaskComparison[];
  grpoRecords: readonly MetricsRecord[];
  pretrainRecords: readonly MetricsRecord[];
  /** Wall-clock seconds per phase. */
  timings: readonly { phase: string; seconds: number }[];
  /** The configuration, as JSON text. */
  details: string;
}

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
const tok = (x: number | null) => (x === null ? '–' : x.toFixed(1));

function delta(before: number | null, after: number | null, percent: boolean): string {
  if (before === null || after === null) return '<td>–</td>';
  const d = after - before;
  const text = percent ? `${d >= 0 ? '+' : ''}${(100 * d).toFixed(1)} pts` : `${d >= 0 ? '+' : ''}${d.toFixed(1)}`;
  return `<td class="${d > 0 ? 'up' : d < 0 ? 'down' : ''}">${text}</td>`;
}

function comparisonTable(c: TaskComparison): string {
  const k = c.after.k ?? c.before.k;
  const rows: [string, (r: EvalReport) => number | null, boolean][] = [
    ['pass@1 (greedy)', (r) => r['pass@1'], true],
    [`pass@${k} (T = 1)`, (r) => r['pass@k'], true],
    [`maj@${k}`, (r) => r['maj@k'], true],
    ['sampled accuracy', (r) => r.sampled_accuracy, true],
    ['strict format (greedy)', (r) => r.format_rate, true],
    ['response tokens (greedy)', (r) => r.mean_response_tokens, false],
    ['tokens inside &lt;think&gt; (greedy)', (r) => r.mean_think_tokens, false],
  ];
  const body = rows.map(([name, get, isPct]) => {
    const b = get(c.before), a = get(c.after);
    const f = isPct ? pct : tok;
    return `<tr><td class="l">${name}</td><td>${f(b)}</td><td>${f(a)}</td>${delta(b, a, isPct)}</tr>`;
  });
  return [
    `<h3>${escapeHtml(c.task)} — ${c.after.problems} held-out problems</h3>`,
    '<table><tr><th class="l">metric</th><th>base model</th><th>after GRPO</th><th>change</th></tr>',
    ...body,
    '</table>',
  ].join('\n');
}

function examples(c: TaskComparison): string {
  const n = Math.min(c.before.examples.length, c.after.examples.length);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const b = c.before.examples[i], a = c.after.examples[i];
    const cell = (label: string, e: EvalReport['examples'][number]) =>
      `<div><b>${label}</b> <span class="${e.accuracy ? 'ok' : 'bad'}">${e.accuracy ? 'correct' : 'wrong'}</span>, format ${e.format}<pre>${escapeHtml(e.completion)}</pre></div>`;
    out.push(`<p><b>Q:</b> ${escapeHtml(b.question)}</p><div class="pair">${cell('base model', b)}${cell('after GRPO', a)}</div>`);
  }
  return out.join('\n');
}

/** The R1-Zero reproduction as one self-contained HTML page. */
export function renderR1ZeroReport(r: R1ZeroReportInput): string {
  const total = r.timings.reduce((s, t) => s + t.seconds, 0);
  const timing = [
    '<table><tr><th class="l">phase</th><th>wall time</th></tr>',
    ...r.timings.map((t) => `<tr><td class="l">${escapeHtml(t.phase)}</td><td>${(t.seconds / 60).toFixed(1)} min</td></tr>`),
    `<tr><td class="l"><b>total</b></td><td><b>${(total / 60).toFixed(1)} min</b></td></tr></table>`,
  ].join('\n');
  const body = [
    ...r.intro.map((p) => `<p>${escapeHtml(p)}</p>`),
    '<h2>Held-out evaluation, before and after GRPO</h2>',
    ...r.comparisons.map(comparisonTable),
    '<h2>GRPO training</h2>',
    ...grpoCharts(r.grpoRecords),
  ];
  if (r.pretrainRecords.length > 0) {
    body.push(
      '<h2>Pretraining of the base model</h2>',
      lineChart('Pretraining loss', [series(r.pretrainRecords, 'loss', 'train loss', COLORS[0]), series(r.pretrainRecords, 'val_loss', 'validation loss', COLORS[1], true)], { xLabel: 'step', yLabel: 'nats / token' }),
    );
  }
  body.push('<h2>Sample completions (greedy, held-out)</h2>', ...r.comparisons.map((c) => `<h3>${escapeHtml(c.task)}</h3>${examples(c)}`));
  body.push('<h2>Wall time</h2>', timing, `<details><summary>configuration</summary><pre>${escapeHtml(r.details)}</pre></details>`);
  return htmlPage(r.title, STYLE, body);
}

/** One model of the distillation report: what it is and its held-out evaluation (one report per task). */
export interface DistillRow {
  name: string;
  label: string;
  architecture: string;
  params: number;
  active: number;
  /** Student tokens trained on with a gradient (null: not trained here). */
  tokens: number | null;
  reports: EvalReport[];
}

export interface DistillReportInput {
  title: string;
  intro: string[];
  /** The teacher first, then the base, then the students. */
  rows: DistillRow[];
  /** The name of the best distilled student. */
  best: string;
  /** Training metrics per student run (sft, kd, onpolicy: trainer records; grpo: GRPO records). */
  curves: Record<string, readonly MetricsRecord[]>;
  pretrainRecords: readonly MetricsRecord[];
  timings: readonly { phase: string; seconds: number }[];
  details: string;
}

/** The distillation recipe's report: the held-out table (with each model's share of the teacher's pass@1), curves, examples, wall time. */
export function renderDistillReport(r: DistillReportInput): string {
  const teacher = r.rows[0];
  const tasks = teacher.reports.length;
  const body = r.intro.map((p) => `<p>${escapeHtml(p)}</p>`);
  for (let t = 0; t < tasks; t++) {
    const k = teacher.reports[t].k;
    body.push(
      `<h2>Held-out evaluation${tasks > 1 ? ` (task ${t + 1})` : ''}: ${teacher.reports[t].problems} problems</h2>`,
      `<table><tr><th class="l">model</th><th class="l">architecture</th><th>parameters (active)</th><th>student tokens trained</th><th>pass@1 (greedy)</th><th>of the teacher's</th>${k === null ? '' : `<th>pass@${k}</th>`}<th>strict format</th><th>response tokens</th></tr>`,
      ...r.rows.map((row) => {
        const e = row.reports[t];
        const share = e['pass@1'] / Math.max(teacher.reports[t]['pass@1'], 1e-9);
        const name = row.name === r.best ? `<b>${escapeHtml(row.label)}</b> (best student)` : escapeHtml(row.label);
        return `<tr><td class="l">${name}</td><td class="l">${escapeHtml(row.architecture)}</td><td>${(row.params / 1e3).toFixed(0)}K (${(row.active / 1e3).toFixed(0)}K)</td>` +
          `<td>${row.tokens === null ? '–' : row.tokens.toLocaleString('en-US')}</td><td>${pct(e['pass@1'])}</td><td>${row === teacher ? '–' : `${(100 * share).toFixed(0)}%`}</td>` +
          `${k === null ? '' : `<td>${pct(e['pass@k'])}</td>`}<td>${pct(e.format_rate)}</td><td>${tok(e.mean_response_tokens)}</td></tr>`;
      }),
      '</table>',
    );
  }
  const x = { xLabel: 'step' };
  const c = r.curves;
  const distilled = ['sft', 'kd', 'onpolicy'].filter((n) => (c[n] ?? []).length > 0);
  body.push(
    '<h2>Training curves</h2>',
    lineChart('Cross-entropy on the reply tokens (training batches)', distilled.map((n, i) => series(c[n], 'ce', n, COLORS[i])), { ...x, yLabel: 'nats / token' }),
    lineChart('Validation cross-entropy on held-back traces', distilled.map((n, i) => series(c[n], 'val_loss', n, COLORS[i], true)), { ...x, yLabel: 'nats / token' }),
    lineChart('Distillation loss τ²·D(teacher ‖ student)', distilled.filter((n) => n !== 'sft').map((n, i) => series(c[n], 'kd', n, COLORS[i + 1])), { ...x, yLabel: 'nats / token' }),
  );
  if ((c.grpo ?? []).length > 0) body.push('<h3>(d) GRPO control</h3>', ...grpoCharts(c.grpo).slice(0, 3));
  if (r.pretrainRecords.length > 0) {
    body.push('<h2>Pretraining of the student base</h2>', lineChart('Pretraining loss', [series(r.pretrainRecords, 'loss', 'train loss', COLORS[0]), series(r.pretrainRecords, 'val_loss', 'validation loss', COLORS[1], true)], { ...x, yLabel: 'nats / token' }));
  }
  body.push('<h2>Sample completions (greedy, held-out)</h2>');
  for (const row of r.rows) {
    const e = row.reports[0].examples[0];
    if (e === undefined) continue;
    body.push(`<p><b>${escapeHtml(row.label)}</b> — ${escapeHtml(e.question)} <span class="${e.accuracy ? 'ok' : 'bad'}">${e.accuracy ? 'correct' : 'wrong'}</span></p><pre>${escapeHtml(e.completion)}</pre>`);
  }
  const total = r.timings.reduce((s, t) => s + t.seconds, 0);
  body.push(
    '<h2>Wall time</h2>',
    ['<table><tr><th class="l">phase</th><th>wall time</th></tr>', ...r.timings.map((t) => `<tr><td class="l">${escapeHtml(t.phase)}</td><td>${(t.seconds / 60).toFixed(1)} min</td></tr>`), `<tr><td class="l"><b>total</b></td><td><b>${(total / 60).toFixed(1)} min</b></td></tr></table>`].join('\n'),
    `<details><summary>configuration</summary><pre>${escapeHtml(r.details)}</pre></details>`,
  );
  return htmlPage(r.title, STYLE, body);
}
