// The phases of a recipe (`nanoseek r1zero`, `nanoseek distill run`): each phase's wall time, kept in
// `<run>/timings.json` across resumes so a report adds up the whole run, however often it stopped.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';

export interface PhaseTiming {
  phase: string;
  seconds: number;
}

export interface Phases {
  timings: PhaseTiming[];
  /** Runs `fn` as the named phase (announced through `log`), adding its wall time to the file. */
  timed<T>(phase: string, fn: () => Promise<T>): Promise<T>;
}

export async function openPhases(out: string, log: (line: string) => void): Promise<Phases> {
  const file = join(out, 'timings.json');
  const timings: PhaseTiming[] = (await stat(file).then(() => true, () => false)) ? JSON.parse(await readFile(file, 'utf8')) : [];
  return {
    timings,
    async timed(phase, fn) {
      const t0 = performance.now();
      log(`== ${phase}`);
      const r = await fn();
      const entry = timings.find((t) => t.phase === phase) ?? timings[timings.push({ phase, seconds: 0 }) - 1];
      entry.seconds += (performance.now() - t0) / 1000;
      await writeJsonAtomic(file, timings);
      return r;
    },
  };
}
