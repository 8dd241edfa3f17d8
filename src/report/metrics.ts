// metrics.jsonl: one JSON object per logged step, appended as training goes (each trainer defines its
// records' fields; reports read them back). A killed run may leave a torn last line and lines past its
// last checkpoint; resuming cuts the file back to the checkpoint's step, so the log of a resumed run
// reads as if it had never stopped.
import { appendFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
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

/**
 * The records of a run directory's metrics.jsonl, for plotting: a missing directory, a directory
 * that is no run and a run with nothing logged yet are each refused in one line saying which.
 */
export async function readRunMetrics(runDir: string, what = 'nanoseek train'): Promise<MetricsRecord[]> {
  const st = await stat(runDir).catch(() => null);
  if (st === null) throw new Error(`${runDir}: no such directory (give the run directory, the --out of ${what})`);
  if (!st.isDirectory()) throw new Error(`${runDir}: not a directory (give the run directory, the --out of ${what})`);
  const path = join(runDir, METRICS_FILE);
  if (!(await stat(path).then((s) => s.isFile(), () => false))) throw new Error(`${runDir} has no ${METRICS_FILE}: not a training run directory (the --out of ${what})`);
  const records = await readMetrics(path);
  if (records.length === 0) throw new Error(`${path} holds no records yet: the run has not logged a step`);
  return records;
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
