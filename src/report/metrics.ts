// metrics.jsonl: one JSON object per logged step, appended as training goes. A killed run may leave a
// torn last line and lines past its last checkpoint; resuming cuts the file back to the checkpoint's
// step, so the log of a resumed run reads as if it had never stopped.
import { appendFile, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';

export const METRICS_FILE = 'metrics.jsonl';

/** One line of metrics.jsonl. Trainers add their own fields; `step` is always there. */
export interface MetricsRecord {
  step: number;
  [field: string]: unknown;
}

/** What the pretraining and SFT trainer logs (averages over the steps since the previous line). */
export interface TrainRecord extends MetricsRecord {
  /** Total loss that was minimised (CE + MTP + balance). */
  loss: number;
  ce: number;
  mtp: number | null;
  balance: number | null;
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

function parseLines(text: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      continue; // a torn line from a killed writer
    }
    if (typeof rec === 'object' && rec !== null && Number.isFinite((rec as MetricsRecord).step)) out.push(rec as MetricsRecord);
  }
  return out;
}

/** All complete records of a metrics file ([] when it does not exist). */
export async function readMetrics(path: string): Promise<MetricsRecord[]> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return parseLines(text);
}

export class MetricsLog {
  private constructor(readonly path: string) {}

  /**
   * Opens the log for a run starting at `fromStep`: records after that step (and torn lines) are
   * dropped; 0 starts an empty log.
   */
  static async open(path: string, fromStep: number): Promise<MetricsLog> {
    const kept = fromStep === 0 ? [] : (await readMetrics(path)).filter((r) => r.step <= fromStep);
    await writeFileAtomic(path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return new MetricsLog(path);
  }

  async append(record: MetricsRecord): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(record)}\n`);
  }
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
