// Losses over logits [N, V]. Both ops keep only one log-sum-exp per row for the backward pass and
// recompute the softmax there, so a large vocabulary costs no extra [N, V] buffer. The row loops run
// in the backend's kernels (logSumExpRows, softmaxXentBackward): across threads, in SIMD.
import { allocI32, freeI32 } from '../../kernels/memory.js';
import type { FloatArray } from '../tensor.js';
import { Tensor, checkFinite, checkIndices, empty, gradOf, kernels, opError, record } from '../tensor.js';

export const IGNORE_INDEX = -100;

/**
 * Runs the softmax cross-entropy backward kernel with per-row targets and weights (rows of weight 0
 * skipped). The targets go to the WASM heap as int32, where the kernel takes them by pointer.
 */
function xentBackward(logits: Tensor, lse: Tensor, fill: (target: Int32Array, weight: FloatArray) => void): void {
  const [N, V] = logits.shape;
  const target = allocI32(N);
  const weight = empty([N], logits.dtype);
  try {
    fill(target, weight.data);
    kernels(logits).softmaxXentBackward(logits.data, lse.data, target, weight.data, gradOf(logits), N, V);
  } finally {
    freeI32(target);
    weight.dispose();
  }
}

/** Mean cross-entropy over the rows whose target is not `ignoreIndex`. Returns a scalar. */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number>, ignoreIndex = IGNORE_INDEX): Tensor {
  const op = 'crossEntropy';
  if (logits.rank !== 2) throw opError(op, 'logits must be [N, V]', logits);
  const [N, V] = logits.shape;
  if (targets.length !== N) throw opError(op, `${targets.length} targets for ${N} rows`, logits);
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t !== ignoreIndex && !(Number.isInteger(t) && t >= 0 && t < V)) throw opError(op, `target ${t} at row ${r} is outside [0, ${V})`, logits);
  }
  const be = kernels(logits);
  const x = logits.data;
  const lse = empty([N], logits.dtype);
  be.logSumExpRows(x, lse.data, N, V);
  const l = lse.data;
  let count = 0;
  let total = 0;
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t === ignoreIndex) continue;
    total += l[r] - x[r * V + t];
    count++;
  }
  if (!Number.isFinite(total)) checkFinite(op, logits);
  const out = empty([], logits.dtype);
  out.data[0] = count > 0 ? total / count : 0;
  const recorded = record('crossEntropy', [logits], out, (g) => {
    if (count === 0) return;
    // d(mean CE)/dx[r] = (softmax(x[r]) − onehot(t[r])) / count for every counted row.
    const s = g[0] / count;
    xentBackward(logits, lse, (target, weight) => {
      for (let r = 0; r < N; r++) {
        const t = targets[r];
        target[r] = t === ignoreIndex ? 0 : t;
        weight[r] = t === ignoreIndex ? 0 : s;
      }
    });
  });
  if (!recorded.requiresGrad) lse.dispose();
  return recorded;
}

/** log p(ids[r] | row r) for each row: [N]. The per-token log-probs GRPO and distillation work with. */
export function tokenLogProbs(logits: Tensor, ids: ArrayLike<number>): Tensor {
  const op = 'tokenLogProbs';
  if (logits.rank !== 2) throw opError(op, 'logits must be [N, V]', logits);
  const [N, V] = logits.shape;
  if (ids.length !== N) throw opError(op, `${ids.length} ids for ${N} rows`, logits);
  checkIndices(op, ids, V);
  const be = kernels(logits);
  const x = logits.data;
  const lse = empty([N], logits.dtype);
  be.logSumExpRows(x, lse.data, N, V);
  const l = lse.data;
  const out = empty([N], logits.dtype);
  const o = out.data;
  for (let r = 0; r < N; r++) o[r] = x[r * V + ids[r]] - l[r];
  const recorded = record('tokenLogProbs', [logits], out, (g) => {
    // d log p(id)/dx = onehot(id) − softmax(x): the cross-entropy gradient with weight −g[r].
    xentBackward(logits, lse, (target, weight) => {
      for (let r = 0; r < N; r++) {
        target[r] = ids[r];
        weight[r] = -g[r];
      }
    });
  });
  if (!recorded.requiresGrad) lse.dispose();
  return recorded;
}
