// Charts for the HTML reports of training runs, evaluations and whatever reports come next: line
// charts and heatmaps as inline SVG, and the page around them. No scripts, fonts or other external
// assets, so a page reads offline and attaches to an issue.

const WIDTH = 720;
const HEIGHT = 260;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 36 };
/** The series colors every report draws with, in order. */
export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
  /** Dots at each point (sparse series such as validation loss). */
  markers?: boolean;
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** A line chart with axes, ticks and a legend, as an <svg> element. */
export function lineChart(title: string, series: readonly Series[], opts: { xLabel?: string; yLabel?: string } = {}): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">`;
  const titleEl = `<text x="${MARGIN.left}" y="18" font-size="14" font-weight="bold">${escapeHtml(title)}</text>`;
  if (all.length === 0) return `${head}${titleEl}<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" fill="#888">no data</text></svg>`;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0) * 0.1 - 1e-9, y1 + Math.abs(y1) * 0.1 + 1e-9];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const pw = WIDTH - MARGIN.left - MARGIN.right;
  const ph = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => MARGIN.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts = [head, titleEl];
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`);
  for (const t of niceTicks(y0, y1)) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 8)) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${MARGIN.top + ph}" y2="${MARGIN.top + ph + 4}" stroke="#888"/>`);
    parts.push(`<text x="${x}" y="${MARGIN.top + ph + 16}" font-size="11" text-anchor="middle">${fmt(t)}</text>`);
  }
  if (opts.xLabel) parts.push(`<text x="${MARGIN.left + pw / 2}" y="${HEIGHT - 4}" font-size="11" text-anchor="middle" fill="#555">${escapeHtml(opts.xLabel)}</text>`);
  if (opts.yLabel) parts.push(`<text transform="translate(12 ${MARGIN.top + ph / 2}) rotate(-90)" font-size="11" text-anchor="middle" fill="#555">${escapeHtml(opts.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const d = pts.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"><title>${escapeHtml(s.name)}</title></path>`);
    if (s.markers) for (const [x, y] of pts) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"><title>${escapeHtml(`${s.name} @ ${x}: ${fmt(y)}`)}</title></circle>`);
    const lx = MARGIN.left + pw - 150;
    const ly = MARGIN.top + 12 + i * 14;
    parts.push(`<line x1="${lx}" x2="${lx + 16}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 20}" y="${ly}" font-size="11" dominant-baseline="middle">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Blue (under-used) through white (its fair share) to red (over-used), for load ÷ fair share in [0, 2+]. */
function loadColor(ratio: number): string {
  const t = Math.max(-1, Math.min(1, ratio - 1));
  const c = (a: number, b: number) => Math.round(a + (b - a) * Math.abs(t));
  return t < 0 ? `rgb(${c(255, 33)},${c(255, 102)},${c(255, 172)})` : `rgb(${c(255, 178)},${c(255, 24)},${c(255, 43)})`;
}

/** One MoE layer's expert shares over time as a heatmap (rows: experts, columns: logged steps). */
export function loadHeatmap(title: string, steps: readonly number[], shares: readonly (readonly number[])[]): string {
  const E = shares[0]?.length ?? 0;
  const cellH = Math.max(4, Math.min(12, Math.floor(180 / Math.max(1, E))));
  const ph = cellH * E;
  const pw = WIDTH - MARGIN.left - MARGIN.right;
  const height = MARGIN.top + ph + MARGIN.bottom;
  const cw = pw / Math.max(1, steps.length);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(title)}">`];
  parts.push(`<text x="${MARGIN.left}" y="18" font-size="14" font-weight="bold">${escapeHtml(title)}</text>`);
  shares.forEach((col, j) => {
    col.forEach((share, e) => {
      const ratio = share * E;
      parts.push(
        `<rect x="${(MARGIN.left + j * cw).toFixed(2)}" y="${MARGIN.top + e * cellH}" width="${(cw + 0.5).toFixed(2)}" height="${cellH}" fill="${loadColor(ratio)}">` +
          `<title>step ${steps[j]}, expert ${e}: ${(ratio).toFixed(2)}× fair share</title></rect>`,
      );
    });
  });
  for (let e = 0; e < E; e += Math.max(1, Math.ceil(E / 8))) {
    parts.push(`<text x="${MARGIN.left - 6}" y="${MARGIN.top + (e + 0.5) * cellH}" font-size="10" text-anchor="end" dominant-baseline="middle">e${e}</text>`);
  }
  if (steps.length > 0) {
    const columns = new Set<number>();
    for (const t of niceTicks(steps[0], steps[steps.length - 1], 8)) {
      const j = steps.findIndex((s) => s >= t);
      if (j < 0 || columns.has(j)) continue;
      columns.add(j);
      parts.push(`<text x="${(MARGIN.left + (j + 0.5) * cw).toFixed(1)}" y="${MARGIN.top + ph + 16}" font-size="11" text-anchor="middle">${steps[j]}</text>`);
    }
  }
  parts.push(`<text x="${MARGIN.left + pw}" y="${MARGIN.top + ph + 30}" font-size="10" text-anchor="end" fill="#555">blue: under-used, white: fair share, red: 2× or more</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/**
 * A grid of values relative to a fair share (1 = fair) as a heatmap: rows × columns cells colored like
 * loadHeatmap, each cell's value printed in it when it fits and in its tooltip always.
 */
export function ratioHeatmap(title: string, rowLabels: readonly string[], colLabels: readonly string[], ratios: readonly (readonly number[])[], describe: (row: number, col: number) => string = (r, c) => `${rowLabels[r]}, ${colLabels[c]}`): string {
  const left = 72;
  const cw = Math.max(6, Math.min(40, Math.floor((WIDTH - left - MARGIN.right) / Math.max(1, colLabels.length))));
  const ch = Math.max(10, Math.min(28, Math.floor(360 / Math.max(1, rowLabels.length))));
  const width = Math.max(WIDTH, left + cw * colLabels.length + MARGIN.right);
  const height = MARGIN.top + ch * rowLabels.length + 40;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`];
  parts.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">${escapeHtml(title)}</text>`);
  const labelEvery = Math.max(1, Math.ceil(24 / cw));
  ratios.forEach((row, r) => {
    parts.push(`<text x="${left - 6}" y="${MARGIN.top + (r + 0.5) * ch}" font-size="11" text-anchor="end" dominant-baseline="middle">${escapeHtml(rowLabels[r])}</text>`);
    row.forEach((v, c) => {
      const x = left + c * cw, y = MARGIN.top + r * ch;
      parts.push(`<rect class="cell" data-row="${r}" data-col="${c}" data-value="${v.toFixed(4)}" x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${loadColor(v)}" stroke="#fff" stroke-width="0.5"><title>${escapeHtml(`${describe(r, c)}: ${v.toFixed(2)}× fair share`)}</title></rect>`);
      if (cw >= 30 && ch >= 14) parts.push(`<text x="${x + cw / 2}" y="${y + ch / 2}" font-size="10" text-anchor="middle" dominant-baseline="middle" pointer-events="none">${v.toFixed(1)}</text>`);
    });
  });
  colLabels.forEach((label, c) => {
    if (c % labelEvery === 0) parts.push(`<text x="${left + (c + 0.5) * cw}" y="${MARGIN.top + ch * rowLabels.length + 14}" font-size="10" text-anchor="middle">${escapeHtml(label)}</text>`);
  });
  parts.push(`<text x="${left + cw * colLabels.length}" y="${height - 6}" font-size="10" text-anchor="end" fill="#555">blue: under-used, white: fair share, red: 2× or more</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** A whole HTML page: the title as <title> and <h1>, the page's CSS, then `body` (HTML), one line each. */
export function htmlPage(title: string, style: string, body: readonly string[]): string {
  return ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">', `<title>${escapeHtml(title)}</title>`, `<style>${style}</style>`, '</head><body>', `<h1>${escapeHtml(title)}</h1>`, ...body, '</body></html>', ''].join('\n');
}
