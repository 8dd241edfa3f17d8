// Rotary position embedding applied to the last dimension of x [..., T, H, d] (or [..., T, d]).
// Two pairings exist in the wild: DeepSeek rotates interleaved pairs (x[2i], x[2i+1]); Llama/Qwen rotate
// halves (x[i], x[i+d/2]). Both rotate pair i by angle pos·invFreq[i].
import { Tensor, empty, gradFor, opError, record } from '../tensor.js';

export type RopeStyle = 'interleaved' | 'half';

export interface RopeTable {
  /** cos/sin of pos·invFreq[i], [positions.length, d/2] row-major. */
  cos: Float64Array;
  sin: Float64Array;
  half: number;
}

export function ropeTable(positions: ArrayLike<number>, invFreq: ArrayLike<number>): RopeTable {
  const half = invFreq.length;
  const cos = new Float64Array(positions.length * half);
  const sin = new Float64Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const a = positions[t] * invFreq[i];
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { cos, sin, half };
}

/**
 * x: [B, T, H, d] or [B, T, d]; the table has one row per position t (shared over B and H).
 * `tAxis` is where T sits: the dimension just before H (rank 4) or before d (rank 3).
 */
export function rope(x: Tensor, table: RopeTable, style: RopeStyle): Tensor {
  const d = x.shape[x.rank - 1];
  const heads = x.rank >= 4 ? x.shape[x.rank - 2] : 1;
  const T = x.shape[x.rank - (x.rank >= 4 ? 3 : 2)];
  if (x.rank < 3) throw opError('rope', 'expects [B, T, H, d] or [B, T, d]', x);
  if (d !== 2 * table.half) throw opError('rope', `last dimension ${d} != 2 × table width ${table.half}`, x);
  if (table.cos.length !== T * table.half) throw opError('rope', `table has ${table.cos.length / table.half} positions, tensor has T=${T}`, x);
  const out = empty(x.shape, x.dtype);
  apply(x.data, out.data, x.size, T, heads, d, table, style, 1);
  return record('rope', [x], out, (g) => {
    const gx = gradFor(x);
    apply(g, gx.data, x.size, T, heads, d, table, style, -1, !gx.fresh);
  });
}

function apply(
  src: ArrayLike<number>, dst: { [i: number]: number }, size: number, T: number, heads: number, d: number,
  table: RopeTable, style: RopeStyle, sign: 1 | -1, accumulate = false,
): void {
  const { cos, sin, half } = table;
  const perT = heads * d;
  const rowsPerBatch = T * perT;
  for (let base = 0; base < size; base += d) {
    const t = Math.floor((base % rowsPerBatch) / perT);
    const tb = t * half;
    for (let i = 0; i < half; i++) {
      const ia = style === 'interleaved' ? base + 2 * i : base + i;
      const ib = style === 'interleaved' ? ia + 1 : ia + half;
      const c = cos[tb + i], s = sign * sin[tb + i];
      const a = src[ia], b = src[ib];
      const ra = a * c - b * s, rb = a * s + b * c;
      if (accumulate) {
        dst[ia] += ra;
        dst[ib] += rb;
      } else {
        dst[ia] = ra;
        dst[ib] = rb;
      }
    }
  }
}
