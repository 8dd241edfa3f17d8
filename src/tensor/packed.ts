// A weight matrix kept in its file's encoding (BF16, F16, Q8_0, Q4_K, …) instead of float32: a
// 1.5B-parameter model is 7 GB as float32 but 1–3.5 GB as stored, and float32 tensors must all fit
// in the one 4 GiB wasm32 heap. The bytes live outside that heap (an ordinary buffer, or later a
// memory-mapped file); ops that take a weight (linear, embedding) decode rows on the fly.
// Packed weights are for inference: they have no gradient.
import { backend } from '../kernels/backend.js';
import { rowBytes, type GgmlType } from '../kernels/quant/types.js';
import type { Tensor } from './tensor.js';

export class PackedMatrix {
  /** Bytes per row of `cols` values. */
  readonly rowBytes: number;

  /**
   * @param shape [rows, cols] in the PyTorch [out, in] convention; each row is whole blocks of `type`
   * @param bytes rows · rowBytes bytes, row-major (not copied)
   */
  constructor(
    readonly type: GgmlType,
    readonly shape: readonly [number, number],
    readonly bytes: Uint8Array,
    readonly name = '',
  ) {
    this.rowBytes = rowBytes(type, shape[1]);
    if (bytes.length !== this.rowBytes * shape[0]) {
      throw new Error(`packed weight ${name}: ${bytes.length} bytes, but [${shape.join(', ')}] in ${type} takes ${this.rowBytes * shape[0]}`);
    }
  }

  get rows(): number {
    return this.shape[0];
  }

  get cols(): number {
    return this.shape[1];
  }

  /** Decodes rows [r0, r1) into dst starting at dstOff. */
  dequantizeRows(r0: number, r1: number, dst: Float32Array, dstOff = 0): void {
    const n = (r1 - r0) * this.cols;
    backend().dequantize(this.type, this.bytes.subarray(r0 * this.rowBytes, r1 * this.rowBytes), dst.subarray(dstOff, dstOff + n));
  }

  /** The whole matrix as float32 (for saving or converting; not for the forward pass). */
  toFloat32(): Float32Array {
    const out = new Float32Array(this.rows * this.cols);
    this.dequantizeRows(0, this.rows, out);
    return out;
  }

  toString(): string {
    return `PackedMatrix(${this.name}[${this.shape.join(', ')}] ${this.type})`;
  }
}

/** What a projection or an embedding lookup accepts: a float tensor, or a packed matrix. */
export type Weight = Tensor | PackedMatrix;
