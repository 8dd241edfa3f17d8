// Reporting: the metrics.jsonl log that trainers write and reports read, and the inline-SVG charts and
// page of the HTML reports (training runs, GRPO, R1-Zero, evaluations).
export { COLORS, escapeHtml, htmlPage, lineChart, loadHeatmap, niceTicks, ratioHeatmap, type Series } from './chart.js';
export { METRICS_FILE, MetricsLog, metricPoints, readMetrics, readRunMetrics, type MetricsRecord } from './metrics.js';
