// Matrix products: every projection in the model is one GEMM call here.
import { gemmArgs } from '../../kernels/backend.js';
import { allocF32, freeF32 } from '../../kernels/memory.js';
import { PackedMatrix, type Weight } from '../packed.js';
import { Tensor, empty, gradFor, isGradEnabled, kernels, opError, record, sameDType } from '../tensor.js';
import { add } from './elementwise.js';

/**
 * op(a) · op(b) over the last two dimensions.
 * - b of rank 2: a's leading dimensions are folded into rows (a must not be transposed then, unless rank 2).
 * - b of rank > 2: a batched product; a and b must share the same leading (batch) dimensions.
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  sameDType('matmul', a, b);
  if (a.rank < 2 || b.rank < 2) throw opError('matmul', 'operands need at least 2 dimensions', a, b);
  const ar = a.shape[a.rank - 2], ac = a.shape[a.rank - 1];
  const br = b.shape[b.rank - 2], bc = b.shape[b.rank - 1];
  let batch = 1;
  let m: number;
  let strideA = 0, strideB = 0;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) throw opError('matmul', `inner dimensions differ (${k} vs ${kb}${transA ? ', a transposed' : ''}${transB ? ', b transposed' : ''})`, a, b);
  let outShape: number[];
  if (b.rank === 2) {
    if (transA && a.rank > 2) throw opError('matmul', 'a transposed needs a batched b', a, b);
    m = transA ? ac : a.size / ac;
    outShape = transA ? [ac, n] : [...a.shape.slice(0, -1), n];
  } else {
    if (a.rank !== b.rank || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
      throw opError('matmul', 'batch dimensions differ', a, b);
    }
    m = transA ? ac : ar;
    batch = a.size / (ar * ac);
    strideA = ar * ac;
    strideB = br * bc;
    outShape = [...a.shape.slice(0, -2), m, n];
  }
  const out = empty(outShape, a.dtype);
  const be = kernels(a);
  const lda = ac, ldb = bc;
  be.gemm(gemmArgs({ m, n, k, a: a.data, lda, transA, b: b.data, ldb, transB, c: out.data, batch, strideA, strideB, strideC: m * n }));
  return record('matmul', [a, b], out, (g) => {
    if (a.requiresGrad) {
      // d op(A) = dC · op(B)ᵀ ; when A is stored transposed, dA = op(B) · dCᵀ.
      // A fresh gradient buffer is written (beta = 0), an existing one added to.
      const { data: ga, fresh } = gradFor(a);
      const beta = fresh ? 0 : 1;
      if (!transA) {
        be.gemm(gemmArgs({ m, n: k, k: n, a: g, lda: n, b: b.data, ldb, transB: !transB, c: ga, ldc: lda, beta, batch, strideA: m * n, strideB, strideC: strideA }));
      } else {
        be.gemm(gemmArgs({ m: k, n: m, k: n, a: b.data, lda: ldb, transA: transB, b: g, ldb: n, transB: true, c: ga, ldc: lda, beta, batch, strideA: strideB, strideB: m * n, strideC: strideA }));
      }
    }
    if (b.requiresGrad) {
      // d op(B) = op(A)ᵀ · dC ; when B is stored transposed, dB = dCᵀ · op(A).
      const { data: gb, fresh } = gradFor(b);
      const beta = fresh ? 0 : 1;
      if (!transB) {
        be.gemm(gemmArgs({ m: k, n, k: m, a: a.data, lda, transA: !transA, b: g, ldb: n, c: gb, ldc: ldb, beta, batch, strideA, strideB: m * n, strideC: strideB }));
      } else {
        be.gemm(gemmArgs({ m: n, n: k, k: m, a: g, lda: n, transA: true, b: a.data, ldb: lda, transB: transA, c: gb, ldc: ldb, beta, batch, strideA: m * n, strideB: strideA, strideC: strideB }));
      }
    }
  });
}

/** A linear layer in the PyTorch convention: x · Wᵀ (+ bias), W stored [out, in] (float or packed). */
export function linear(x: Tensor, weight: Weight, bias?: Tensor | null): Tensor {
  if (weight instanceof PackedMatrix) {
    const y = packedLinear(x, weight);
    return bias ? add(y, bias) : y;
  }
  if (weight.rank !== 2) throw opError('linear', 'weight must be 2-D [out, in]', x, weight);
  if (x.shape[x.rank - 1] !== weight.shape[1]) throw opError('linear', `input width ${x.shape[x.rank - 1]} != weight in-features ${weight.shape[1]}`, x, weight);
  const y = matmul(x, weight, false, true);
  return bias ? add(y, bias) : y;
}

/** Floats of decoded weight rows per GEMM call: big enough for an efficient GEMM, small beside the heap. */
const PACKED_CHUNK_FLOATS = 1 << 20;

/**
 * x · Wᵀ with W packed: W's rows are decoded a band at a time into a scratch buffer on the heap and
 * multiplied into the matching output columns, so the float32 copy of W never exists whole.
 */
function packedLinear(x: Tensor, w: PackedMatrix): Tensor {
  const [N, K] = w.shape;
  if (x.shape[x.rank - 1] !== K) throw opError('linear', `input width ${x.shape[x.rank - 1]} != weight in-features ${K} (${w})`, x);
  if (x.dtype !== 'f32') throw opError('linear', `packed weight ${w.name} needs float32 input`, x);
  if (isGradEnabled() && x.requiresGrad) {
    throw opError('linear', `weight ${w.name} is kept packed as ${w.type} for inference and has no gradient: load the model with float32 weights to train`, x);
  }
  const M = x.size / K;
  const out = empty([...x.shape.slice(0, -1), N], 'f32');
  const be = kernels(x);
  if (be.packedMatmul?.(w.type, w.bytes, N, K, x.data as Float32Array, 0, M, out.data as Float32Array, 0, N)) return out;
  const band = Math.max(1, Math.min(N, Math.floor(PACKED_CHUNK_FLOATS / K)));
  const scratch = allocF32(band * K);
  try {
    for (let r0 = 0; r0 < N; r0 += band) {
      const rows = Math.min(band, N - r0);
      w.dequantizeRows(r0, r0 + rows, scratch);
      be.gemm(gemmArgs({ m: M, n: rows, k: K, a: x.data, b: scratch, ldb: K, transB: true, c: out.data, cOff: r0, ldc: N }));
    }
  } finally {
    freeF32(scratch);
  }
  return out;
}
