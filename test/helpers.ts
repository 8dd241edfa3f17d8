// Shared test fixtures: deterministic pseudo-random data without depending on Math.random.
import { Tensor, fromArray, type DType } from '../src/tensor/index.js';

/** A deterministic value in (-1, 1) for index i under a seed (a hash, not a stream). */
export function noise(i: number, seed: number): number {
  let h = (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(seed + 7, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return (h / 4294967296) * 2 - 1;
}

export function randTensor(shape: number[], seed: number, dtype: DType = 'f64', scaleBy = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = noise(i, seed) * scaleBy;
  return fromArray(v, shape, dtype);
}
