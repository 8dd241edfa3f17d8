// Rotary frequencies, with DeepSeek's YaRN context extension and its attention-temperature correction.
import type { RopeTable } from '../tensor/index.js';
import { ropeTable } from '../tensor/index.js';

import type { Llama3RopeScaling, RopeScaling, YarnRopeScaling } from './config.js';

/** m(s, k) = 0.1·k·ln(s) + 1: YaRN's correction of attention temperature (1 when not extending). */
export function yarnMscale(factor: number, k: number): number {
  return factor <= 1 ? 1 : 0.1 * k * Math.log(factor) + 1;
}

/**
 * θ^(-2i/d) for the d/2 rotated pairs, slowed on the low-frequency side by the context extension:
 * YaRN (DeepSeek) or Llama 3.1's scaling (R1-Distill-Llama).
 */
export function inverseFrequencies(dim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const half = dim / 2;
  const freq = new Float64Array(half);
  for (let i = 0; i < half; i++) freq[i] = Math.pow(theta, (-2 * i) / dim);
  if (scaling === null) return freq;
  if (scaling.rope_type === 'llama3') return llama3Frequencies(freq, scaling);
  const yarn = scaling;
  if (yarn.factor <= 1) return freq;
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

/**
 * Llama 3.1: wavelengths shorter than original/high_freq_factor are kept, those longer than
 * original/low_freq_factor are divided by `factor`, and the band between is blended smoothly.
 * llama.cpp stores the resulting divisors as the `rope_freqs` tensor.
 */
function llama3Frequencies(freq: Float64Array, s: Llama3RopeScaling): Float64Array {
  const out = new Float64Array(freq.length);
  for (let i = 0; i < freq.length; i++) out[i] = freq[i] / llama3Divisor(freq[i], s);
  return out;
}

/** How much Llama 3.1's scaling slows a pair of frequency `f` (1 = unchanged, `factor` = fully). */
export function llama3Divisor(f: number, s: Llama3RopeScaling): number {
  const wavelen = (2 * Math.PI) / f;
  const orig = s.original_max_position_embeddings;
  if (wavelen < orig / s.high_freq_factor) return 1;
  if (wavelen > orig / s.low_freq_factor) return s.factor;
  const smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return 1 / ((1 - smooth) / s.factor + smooth);
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
