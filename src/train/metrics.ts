// What the pretraining and SFT trainer writes to metrics.jsonl (the log itself: report/metrics.ts).
import type { MetricsRecord } from '../report/index.js';

/** What the pretraining and SFT trainer logs (averages over the steps since the previous line). */
export interface TrainRecord extends MetricsRecord {
  /** Total loss that was minimised (CE + MTP + balance). */
  loss: number;
  ce: number;
  mtp: number | null;
  balance: number | null;
  /** Distillation: τ²·D(teacher ‖ student) on the reply tokens. */
  kd?: number;
  /** Distillation: share of the interval's steps trained on the student's own samples. */
  on_policy?: number;
  lr: number;
  grad_norm: number;
  /** Target tokens trained on so far. */
  tokens: number;
  /** Positions (padding included) processed per second of training step (batching, forward, backward, update). */
  tokens_per_s: number;
  elapsed_s: number;
  /** Per MoE layer: each expert's share of the routed slots over the interval (sums to 1). */
  expert_load?: number[][];
  /** Per MoE layer: max / mean expert load over the interval (1 = perfectly balanced). */
  expert_imbalance?: number[];
  val_loss?: number;
}

/** Expert shares and max/mean imbalance per layer from summed routing counts. */
export function expertStats(load: readonly (readonly number[])[]): { shares: number[][]; imbalance: number[] } {
  const shares = load.map((layer) => {
    const total = layer.reduce((s, v) => s + v, 0);
    return layer.map((v) => (total > 0 ? Math.round((v / total) * 1e5) / 1e5 : 0));
  });
  const imbalance = load.map((layer) => {
    const mean = layer.reduce((s, v) => s + v, 0) / layer.length;
    return mean > 0 ? Math.round((Math.max(...layer) / mean) * 1e4) / 1e4 : 0;
  });
  return { shares, imbalance };
}

/** Points a run's metrics should have at least, so that its plot shows a curve. */
const MIN_LOG_POINTS = 20;

/**
 * Steps between metrics lines: `logEvery`, or fewer when that would give a run of `steps` fewer than
 * MIN_LOG_POINTS lines (a 17-step run with log_every 20 logs every step).
 */
export function logInterval(logEvery: number, steps: number): number {
  return Math.max(1, Math.min(logEvery, Math.floor(steps / MIN_LOG_POINTS)));
}
