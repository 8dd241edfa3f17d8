// Shape ops and reductions. Reshape is a view; the rest copy. Every copy along an axis is a strided
// copy of rows (the backend's copyRows: SIMD, split across threads), and so is its gradient.
import { Tensor, empty, gradFor, gradOf, kernels, opError, record, sameDType, zeros } from '../tensor.js';
import { passGrad } from './elementwise.js';

function axisOf(op: string, t: Tensor, axis: number): number {
  const a = axis < 0 ? t.rank + axis : axis;
  if (!Number.isInteger(a) || a < 0 || a >= t.rank) throw opError(op, `axis ${axis} out of range`, t);
  return a;
}

/** Sizes before, at and after an axis: the (outer, n, inner) view every axis op works on. */
function split3(t: Tensor, a: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < a; i++) outer *= t.shape[i];
  for (let i = a + 1; i < t.rank; i++) inner *= t.shape[i];
  return [outer, t.shape[a], inner];
}

/** Same data, new shape; one dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (shape.filter((d) => d === -1).length > 1 || resolved.reduce((a, b) => a * b, 1) !== x.size || resolved.some((d) => !Number.isInteger(d))) {
    throw opError('reshape', `cannot reshape to [${shape.join(', ')}]`, x);
  }
  const out = x.view(resolved);
  return record('reshape', [x], out, (g) => passGrad(x, out, g));
}

/** Permutes dimensions (a copy). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw opError('permute', `bad permutation [${perm.join(', ')}]`, x);
  const outShape = perm.map((p) => x.shape[p]);
  const out = empty(outShape, x.dtype);
  const inStrides = new Array<number>(x.rank);
  for (let i = x.rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= x.shape[i];
  }
  const strides = perm.map((p) => inStrides[p]); // input stride for each output dimension
  const map = new Int32Array(x.size); // output flat index → input flat index
  const idx = new Array<number>(x.rank).fill(0);
  let src = 0;
  for (let o = 0; o < x.size; o++) {
    map[o] = src;
    for (let d = x.rank - 1; d >= 0; d--) {
      idx[d]++;
      src += strides[d];
      if (idx[d] < outShape[d]) break;
      src -= strides[d] * outShape[d];
      idx[d] = 0;
    }
  }
  const xd = x.data, o = out.data;
  for (let i = 0; i < map.length; i++) o[i] = xd[map[i]];
  return record('permute', [x], out, (g) => {
    const gx = gradOf(x);
    for (let i = 0; i < map.length; i++) gx[map[i]] += g[i];
  });
}

/** Swaps two dimensions. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = [...x.shape.keys()];
  const i = axisOf('transpose', x, a), j = axisOf('transpose', x, b);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

export function concat(xs: readonly Tensor[], axis = -1): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  sameDType('concat', ...xs);
  const a = axisOf('concat', xs[0], axis);
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) throw opError('concat', `shapes differ outside axis ${axis}`, ...xs);
  }
  const total = xs.reduce((s, t) => s + t.shape[a], 0);
  const shape = [...xs[0].shape];
  shape[a] = total;
  const out = empty(shape, xs[0].dtype);
  const [outer, , inner] = split3(out, a);
  const o = out.data;
  const be = kernels(out);
  let at = 0;
  const starts: number[] = [];
  for (const t of xs) {
    starts.push(at);
    const w = t.shape[a] * inner;
    be.copyRows(t.data, 0, w, o, at * inner, total * inner, outer, w, false);
    at += t.shape[a];
  }
  return record('concat', xs, out, (g) => {
    xs.forEach((t, n) => {
      if (!t.requiresGrad) return;
      const w = t.shape[a] * inner;
      const gt = gradFor(t);
      be.copyRows(g, starts[n] * inner, total * inner, gt.data, 0, w, outer, w, !gt.fresh);
    });
  });
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis = -1): Tensor[] {
  const a = axisOf('split', x, axis);
  if (sizes.reduce((s, n) => s + n, 0) !== x.shape[a]) throw opError('split', `sizes [${sizes.join(', ')}] do not add up to ${x.shape[a]}`, x);
  const [outer, n, inner] = split3(x, a);
  const be = kernels(x);
  let at = 0;
  return sizes.map((size) => {
    const start = at;
    at += size;
    const shape = [...x.shape];
    shape[a] = size;
    const out = empty(shape, x.dtype);
    const w = size * inner;
    be.copyRows(x.data, start * inner, n * inner, out.data, 0, w, outer, w, false);
    return record('split', [x], out, (g) => be.copyRows(g, 0, w, gradOf(x), start * inner, n * inner, outer, w, true));
  });
}

/** Repeats a size-1 dimension n times (MLA's rope key, shared by every head). */
export function expand(x: Tensor, axis: number, n: number): Tensor {
  const a = axisOf('expand', x, axis);
  if (x.shape[a] !== 1) throw opError('expand', `axis ${axis} has size ${x.shape[a]}, not 1`, x);
  const shape = [...x.shape];
  shape[a] = n;
  const out = empty(shape, x.dtype);
  const [outer, , inner] = split3(x, a);
  const be = kernels(x);
  // Copy j of every row, for each j: n strided copies.
  for (let j = 0; j < n; j++) be.copyRows(x.data, 0, inner, out.data, j * inner, n * inner, outer, inner, false);
  return record('expand', [x], out, (g) => {
    const gx = gradFor(x);
    for (let j = 0; j < n; j++) be.copyRows(g, j * inner, n * inner, gx.data, 0, inner, outer, inner, j > 0 || !gx.fresh);
  });
}

/** Sum of all elements (axis undefined → scalar) or along one axis (that dimension removed). */
export function sum(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) {
    const out = zeros([], x.dtype);
    const xd = x.data;
    let s = 0;
    for (let i = 0; i < xd.length; i++) s += xd[i];
    out.data[0] = s;
    return record('sum', [x], out, (g) => {
      const gx = gradOf(x);
      for (let i = 0; i < gx.length; i++) gx[i] += g[0];
    });
  }
  const a = axisOf('sum', x, axis);
  const [outer, n, inner] = split3(x, a);
  const out = zeros(x.shape.filter((_, i) => i !== a), x.dtype);
  const xd = x.data, o = out.data;
  for (let r = 0; r < outer; r++) for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) o[r * inner + i] += xd[(r * n + j) * inner + i];
  return record('sum', [x], out, (g) => {
    const gx = gradOf(x);
    for (let r = 0; r < outer; r++) for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) gx[(r * n + j) * inner + i] += g[r * inner + i];
  });
}

export function mean(x: Tensor, axis?: number): Tensor {
  const n = axis === undefined ? x.size : x.shape[axisOf('mean', x, axis)];
  const s = sum(x, axis);
  const out = empty(s.shape, x.dtype);
  const sd = s.data, o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = sd[i] / n;
  return record('mean', [s], out, (g) => {
    const gs = gradOf(s);
    for (let i = 0; i < g.length; i++) gs[i] += g[i] / n;
  });
}
