// What the finite-weights check costs when loading a large model: a random model with the shape of
// DeepSeek-R1-Distill-Qwen-1.5B (BF16, sharded as transformers writes it; bench/open-weights.ts) is
// loaded as `serve` loads it (matrices kept packed), with the check and without it (the peer), in
// alternation, best of a few by this process's CPU time (the machine is shared; wall time counts
// the others' load too) and, for reference, by wall time.
//   node dist/bench/load-check.js [--layers 28] [--reps 3] [--dir /tmp/nanoseek-load-check]
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadModel } from '../src/io/model-file.js';
import { countParameters } from '../src/model/config.js';
import { r1DistillQwen15B, r1DistillTokenizerFiles, writeRandomCheckpoint } from './open-weights.js';

export interface LoadCheckResult {
  parameters: number;
  weights: string;
  /** Best load CPU time (user + system) with the check (the default) and without it, seconds. */
  checkedCpuS: number;
  uncheckedCpuS: number;
  /** checked / unchecked CPU time. */
  ratio: number;
  /** Best wall times, seconds. */
  checkedWallS: number;
  uncheckedWallS: number;
}

export async function benchLoadCheck(dir: string, layers: number, reps: number): Promise<LoadCheckResult> {
  const config = r1DistillQwen15B(layers);
  if (!(await stat(join(dir, 'config.json')).then(() => true, () => false))) {
    await writeRandomCheckpoint(dir, { config, tokenizer: await r1DistillTokenizerFiles() });
  }
  const cpu = { checked: Infinity, unchecked: Infinity };
  const wall = { checked: Infinity, unchecked: Infinity };
  let weights = '';
  for (let r = 0; r < reps; r++) {
    for (const mode of ['checked', 'unchecked'] as const) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const { model } = await loadModel(dir, { checkFinite: mode === 'checked' });
      const c = process.cpuUsage(c0);
      cpu[mode] = Math.min(cpu[mode], (c.user + c.system) / 1e6);
      wall[mode] = Math.min(wall[mode], (performance.now() - t0) / 1000);
      weights = model.params.packed.size > 0 ? 'packed' : 'f32';
    }
  }
  return {
    parameters: countParameters(config).total, weights, checkedCpuS: cpu.checked, uncheckedCpuS: cpu.unchecked, ratio: cpu.checked / cpu.unchecked,
    checkedWallS: wall.checked, uncheckedWallS: wall.unchecked,
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const layers = Number(arg('layers') ?? 28);
  const r = await benchLoadCheck(arg('dir') ?? join(tmpdir(), `nanoseek-load-check-${layers}`), layers, Number(arg('reps') ?? 3));
  console.log(JSON.stringify(r));
}
