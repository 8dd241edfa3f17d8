// metrics.jsonl: one JSON object per logged step, appended as training goes (each trainer defines its
// records' fields; reports read them back). A killed run may leave a torn last line and lines past its
// last checkpoint; resuming cuts the file back to the checkpoint's step, so the log of a resumed run
// reads as if it had never stopped.
import { appendFile, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';

export const METRICS_FILE = 'metrics.jsonl';

/** One line of metrics.jsonl. Trainers add their own fields; `step` is always there. */
export interface MetricsRecord {
  step: number;
  [field: string]: unknown;
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

/** (step, value) of every record where `field` is a number: one series of a chart. */
export function metricPoints(records: readonly MetricsRecord[], field: string): [number, number][] {
  return records.filter((r) => typeof r[field] === 'number').map((r) => [r.step, r[field] as number]);
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
