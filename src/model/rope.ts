// Rotary frequencies, with DeepSeek's YaRN context extension and its attention-temperature correction.
import type { RopeTable } from '../tensor/index.js';
import { ropeTable } from '../tensor/index.js';

import type { YarnRopeScaling } from './config.js';

/** m(s, k) = 0.1·k·ln(s) + 1: YaRN's correction of attention temperature (1 when not extending). */
export function yarnMscale(factor: number, k: number): number {
  return factor <= 1 ? 1 : 0.1 * k * Math.log(factor) + 1;
}

/** θ^(-2i/d) for the d/2 rotated pairs, blended towards θ^(-2i/d)/factor on the low-frequency side by YaRN. */
export function inverseFrequencies(dim: number, theta: number, yarn: YarnRopeScaling | null): Float64Array {
  const half = dim / 2;
  const freq = new Float64Array(half);
  for (let i = 0; i < half; i++) freq[i] = Math.pow(theta, (-2 * i) / dim);
  if (yarn === null || yarn.factor <= 1) return freq;
  // The pair index at which a wavelength completes `rotations` turns over the original context.
  const correction = (rotations: number): number =>
    (dim * Math.log(yarn.original_max_position_embeddings / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  const low = Math.max(Math.floor(correction(yarn.beta_fast)), 0);
  const high = Math.min(Math.ceil(correction(yarn.beta_slow)), dim - 1);
  const span = high === low ? 0.001 : high - low;
  for (let i = 0; i < half; i++) {
    const ramp = Math.min(1, Math.max(0, (i - low) / span));
    // ramp 0 (high frequency) keeps the original; ramp 1 (low frequency) interpolates by the factor.
    freq[i] = (freq[i] / yarn.factor) * ramp + freq[i] * (1 - ramp);
  }
  return freq;
}

/** The cos/sin table for given positions; YaRN also scales the rotation by mscale(mscale)/mscale(mscale_all_dim). */
export function positionTable(positions: ArrayLike<number>, invFreq: Float64Array, yarn: YarnRopeScaling | null): RopeTable {
  const table = ropeTable(positions, invFreq);
  if (yarn !== null && yarn.factor > 1) {
    const m = yarnMscale(yarn.factor, yarn.mscale) / yarnMscale(yarn.factor, yarn.mscale_all_dim);
    if (m !== 1) {
      for (let i = 0; i < table.cos.length; i++) {
        table.cos[i] *= m;
        table.sin[i] *= m;
      }
    }
  }
  return table;
}
