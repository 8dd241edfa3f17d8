// Indexing ops: embedding lookup, and the gather / scatter-add pair that routes tokens to experts and
// back. Indices are plain integer arrays (they carry no gradient).
import { allocI32, freeI32 } from '../../kernels/memory.js';
import { PackedMatrix, type Weight } from '../packed.js';
import { Tensor, checkIndices, empty, gradFor, gradOf, kernels, opError, record, sameDType, zeros } from '../tensor.js';

/** Rows of a table: weight [V, D], ids [N] → [N, D]. */
export function embedding(weight: Weight, ids: ArrayLike<number>): Tensor {
  if (weight instanceof PackedMatrix) {
    checkIndices('embedding', ids, weight.rows);
    const out = empty([ids.length, weight.cols], 'f32');
    for (let m = 0; m < ids.length; m++) weight.dequantizeRows(ids[m], ids[m] + 1, out.data as Float32Array, m * weight.cols);
    return out;
  }
  if (weight.rank !== 2) throw opError('embedding', 'weight must be [V, D]', weight);
  checkIndices('embedding', ids, weight.shape[0]);
  return gatherRows(weight, ids);
}

/** A copy of an index list on the WASM heap, for the duration of fn (kernels take it by pointer). */
function withIndex<R>(idx: ArrayLike<number>, fn: (index: Int32Array) => R): R {
  const index = allocI32(idx.length);
  try {
    for (let i = 0; i < idx.length; i++) index[i] = idx[i];
    return fn(index);
  } finally {
    freeI32(index);
  }
}

/** x [N, D], idx [M] → [M, D] with out[m] = x[idx[m]]. */
export function gatherRows(x: Tensor, idx: ArrayLike<number>): Tensor {
  if (x.rank !== 2) throw opError('gatherRows', 'x must be [N, D]', x);
  const [N, D] = x.shape;
  checkIndices('gatherRows', idx, N);
  const M = idx.length;
  const out = empty([M, D], x.dtype);
  const be = kernels(x);
  withIndex(idx, (index) => be.gatherRows(x.data, N, index, null, out.data, M, D, false));
  // Rows gathered more than once (a token sent to several experts) sum their gradients.
  return record('gatherRows', [x], out, (g) => withIndex(idx, (index) => be.scatterAddRows(g, index, null, gradOf(x), N, M, D)));
}

/**
 * src [M, D] → [N, D] with out[idx[m]] += w[m] · src[m]: the weighted combine of expert outputs.
 * Weights are optional and differentiable (they are the router's gate values).
 */
export function scatterAddRows(src: Tensor, idx: ArrayLike<number>, n: number, weights?: Tensor): Tensor {
  const op = 'scatterAddRows';
  if (src.rank !== 2) throw opError(op, 'src must be [M, D]', src);
  const [M, D] = src.shape;
  if (idx.length !== M) throw opError(op, `${idx.length} indices for ${M} rows`, src);
  checkIndices(op, idx, n);
  if (weights !== undefined) {
    sameDType(op, src, weights);
    if (weights.size !== M) throw opError(op, 'one weight per row needed', src, weights);
  }
  const out = zeros([n, D], src.dtype);
  const be = kernels(src);
  const w = weights?.data ?? null;
  withIndex(idx, (index) => be.scatterAddRows(src.data, index, w, out.data, n, M, D));
  return record('scatterAddRows', weights ? [src, weights] : [src], out, (g) => {
    withIndex(idx, (index) => {
      // d src[m] = w[m] · g[idx[m]];  d w[m] = g[idx[m]] · src[m]
      if (src.requiresGrad) {
        const gs = gradFor(src);
        be.gatherRows(g, n, index, w, gs.data, M, D, !gs.fresh);
      }
      if (weights?.requiresGrad) be.rowDots(g, n, index, src.data, gradOf(weights), M, D);
    });
  });
}

/** x [N, E], idx [N, K] (flat) → [N, K] with out[n, j] = x[n, idx[n, j]]: picks the chosen experts' scores. */
export function gatherCols(x: Tensor, idx: ArrayLike<number>, k: number): Tensor {
  if (x.rank !== 2) throw opError('gatherCols', 'x must be [N, E]', x);
  const [N, E] = x.shape;
  if (idx.length !== N * k) throw opError('gatherCols', `expected ${N * k} indices, got ${idx.length}`, x);
  checkIndices('gatherCols', idx, E);
  const out = empty([N, k], x.dtype);
  const xd = x.data, o = out.data;
  for (let n = 0; n < N; n++) for (let j = 0; j < k; j++) o[n * k + j] = xd[n * E + idx[n * k + j]];
  return record('gatherCols', [x], out, (g) => {
    const gx = gradOf(x);
    for (let n = 0; n < N; n++) for (let j = 0; j < k; j++) gx[n * E + idx[n * k + j]] += g[n * k + j];
  });
}

/** Each row divided by its sum (+eps): y_i = x_i / (Σx + eps). Normalises the top-k gate weights. */
export function normalizeRows(x: Tensor, eps = 1e-20): Tensor {
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const out = empty(x.shape, x.dtype);
  const xd = x.data, o = out.data;
  const sums = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = eps;
    for (let i = 0; i < n; i++) s += xd[r * n + i];
    sums[r] = s;
    for (let i = 0; i < n; i++) o[r * n + i] = xd[r * n + i] / s;
  }
  return record('normalizeRows', [x], out, (g) => {
    const gx = gradOf(x);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += g[r * n + i] * o[r * n + i];
      for (let i = 0; i < n; i++) gx[r * n + i] += (g[r * n + i] - dot) / sums[r];
    }
  });
}

export interface TopK {
  /** [rows, k] values, largest first. */
  values: Float64Array;
  /** [rows, k] column indices. */
  indices: Int32Array;
}

/**
 * The k largest entries of each row of a [rows, n] array (ties: lower index first). Not differentiable:
 * routing picks indices here, and the gradient flows through gatherCols on the raw scores.
 */
export function topk(data: ArrayLike<number>, rows: number, n: number, k: number): TopK {
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`topk: k=${k} must be in [1, ${n}]`);
  if (data.length !== rows * n) throw new Error(`topk: ${data.length} values do not form [${rows}, ${n}]`);
  const values = new Float64Array(rows * k);
  const indices = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * n, ob = r * k;
    let filled = 0;
    for (let i = 0; i < n; i++) {
      const v = data[base + i];
      if (Number.isNaN(v)) throw new Error(`topk: NaN at row ${r}, column ${i}`);
      if (filled === k && v <= values[ob + k - 1]) continue;
      // insertion into the sorted prefix; k is small (experts per token)
      let j = filled < k ? filled++ : k - 1;
      while (j > 0 && values[ob + j - 1] < v) {
        values[ob + j] = values[ob + j - 1];
        indices[ob + j] = indices[ob + j - 1];
        j--;
      }
      values[ob + j] = v;
      indices[ob + j] = i;
    }
  }
  return { values, indices };
}
