// Expert-parallel decoding against the plain path, in one process, alternating: a trained MoE model
// with its routing skewed on purpose (see `experts report`), one calibration workload recorded and
// planned with EPLB, then rounds of the same fresh workload decoded three ways — plain, expert
// parallelism with SGLang's trivial placement, expert parallelism with the plan. Reported per way:
// median tokens/s and tokens per CPU-second, the ratio to the plain path in the same round, whether
// every token matched the plain path, and what each device did (rows, busy time, imbalance).
//
// With --preset, a random-weight model of that MoE preset (with the shipped model's tokenizer) instead:
// its answers are noise, but its experts are as wide as the preset's.
//
//   nanoseek bench experts [--json] [--model dir | --preset small] [--devices 2] [--skew 0.1] [--problems 64] [--max-tokens 96] [--repeats 5]
import os from 'node:os';
import {
  ExpertLoadRecorder, ExpertParallel, gpuLoads, maxOverMean, planFromLoad, runWorkload, skewRouting, stepImbalance, totalImbalance, trivialPlacement, workloadProblems,
  type DeviceStats, type Placement,
} from '../src/experts/index.js';
import { loadForInference, resolveModelDir } from '../src/infer/index.js';
import { backend } from '../src/kernels/index.js';
import { presetConfig, type PresetName } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';

export interface ExpertBenchOptions {
  model?: string;
  /** A random-weight MoE preset instead of a checkpoint. */
  preset?: PresetName;
  devices?: number;
  skew?: number;
  problems?: number;
  maxTokens?: number;
  repeats?: number;
  progress?: (line: string) => void;
}

export interface ExpertBenchRow {
  run: 'plain' | 'trivial' | 'planned';
  tokensPerSec: number[];
  medianTokensPerSec: number;
  /** Median over rounds of this run's tokens/s ÷ the plain path's in the same round. */
  ratioToPlain: number;
  medianTokensPerCpuSec: number;
  identical: boolean;
  /** Last round's device measurements (expert parallelism only). */
  devices?: { stepImbalance: number; totalImbalance: number[]; rows: number[][]; busySeconds: number[]; phaseSeconds: number };
}

export interface ExpertBenchResult {
  model: string;
  devices: number;
  skew: number;
  problems: number;
  maxTokens: number;
  generatedTokens: number;
  repeats: number;
  /** The plan's slots, and per MoE layer the device max ÷ mean the calibration recording predicts for each placement. */
  plan: { replicas: number; predicted: { trivial: number[]; planned: number[] } };
  rows: ExpertBenchRow[];
  machine: { cpus: number; backend: string; threads: number; loadavgBefore: number[]; loadavgAfter: number[]; node: string; date: string };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function runExpertBench(o: ExpertBenchOptions = {}): Promise<ExpertBenchResult> {
  const log = o.progress ?? (() => {});
  const devices = o.devices ?? 2;
  const skew = o.skew ?? 0.1;
  const n = o.problems ?? 64;
  const maxTokens = o.maxTokens ?? 96;
  const repeats = o.repeats ?? 5;
  const loadavgBefore = os.loadavg();
  const ck = await loadForInference(await resolveModelDir(o.model));
  if (o.preset !== undefined) {
    ck.model = new CausalLM(presetConfig(o.preset, { vocabSize: ck.model.config.vocab_size }), { seed: 1 });
    ck.name = `${o.preset} (random weights)`;
  }
  const model = ck.model;
  const moe = model.moeLayers();
  if (moe.length === 0) throw new Error(`${ck.name}: not a MoE model`);
  const E = moe[0].E;
  skewRouting(model, trivialPlacement(1, E, devices).phy2log[0].slice(0, E / devices), skew);

  const recorder = new ExpertLoadRecorder(model, { label: ck.name, source: 'bench experts' }).attach();
  await runWorkload(model, ck.tokenizer, workloadProblems(n), { maxTokens });
  recorder.detach();
  const rec = recorder.snapshot();
  const plan = planFromLoad(rec, { replicas: E + 2 * devices, groups: rec.groups, nodes: 1, gpus: devices }, 'calibration');
  const placements: Record<'trivial' | 'planned', Placement> = { trivial: trivialPlacement(moe.length, E, devices), planned: { devices, phy2log: plan.phy2log } };

  const predict = (p: Placement): number[] => gpuLoads(rec.load, p.phy2log, devices).map(maxOverMean);
  const fresh = workloadProblems(n, n);
  const runs = ['plain', 'trivial', 'planned'] as const;
  const speed: Record<string, number[]> = { plain: [], trivial: [], planned: [] };
  const perCpu: Record<string, number[]> = { plain: [], trivial: [], planned: [] };
  const ratios: Record<string, number[]> = { trivial: [], planned: [] };
  const identical: Record<string, boolean> = { plain: true, trivial: true, planned: true };
  const stats: Record<string, DeviceStats> = {};
  let reference: number[][] | null = null;
  let generated = 0;
  for (let round = 0; round < repeats; round++) {
    // Rotate the order so that no way always runs first (warm caches) or last.
    const order = runs.map((_, i) => runs[(i + round) % runs.length]);
    const thisRound: Record<string, number> = {};
    for (const run of order) {
      const ep = run === 'plain' ? null : new ExpertParallel(model, placements[run]).attach();
      const cpu0 = process.cpuUsage();
      const w = await runWorkload(model, ck.tokenizer, fresh, { maxTokens }).finally(() => ep?.detach());
      const cpu = process.cpuUsage(cpu0);
      reference ??= w.tokens;
      generated = w.generated;
      identical[run] &&= w.tokens.length === reference.length && w.tokens.every((t, i) => t.length === reference![i].length && t.every((x, j) => x === reference![i][j]));
      speed[run].push(w.generated / w.seconds);
      perCpu[run].push(w.generated / ((cpu.user + cpu.system) / 1e6));
      thisRound[run] = w.generated / w.seconds;
      if (ep !== null) stats[run] = ep.stats();
    }
    for (const r of ['trivial', 'planned']) ratios[r].push(thisRound[r] / thisRound.plain);
    log(`round ${round + 1}/${repeats}: ${runs.map((r) => `${r} ${thisRound[r].toFixed(0)}`).join(', ')} tokens/s`);
  }
  const rows: ExpertBenchRow[] = runs.map((run) => {
    const s = stats[run];
    return {
      run, tokensPerSec: speed[run], medianTokensPerSec: median(speed[run]), ratioToPlain: run === 'plain' ? 1 : median(ratios[run]),
      medianTokensPerCpuSec: median(perCpu[run]), identical: identical[run],
      ...(s === undefined ? {} : { devices: { stepImbalance: stepImbalance(s), totalImbalance: totalImbalance(s), rows: s.rows, busySeconds: s.busy, phaseSeconds: s.phase } }),
    };
  });
  return {
    model: ck.name, devices, skew, problems: n, maxTokens, generatedTokens: generated, repeats,
    plan: { replicas: plan.replicas, predicted: { trivial: predict(placements.trivial), planned: predict(placements.planned) } }, rows,
    machine: { cpus: os.availableParallelism(), backend: backend().name, threads: backend().threads, loadavgBefore, loadavgAfter: os.loadavg(), node: process.version, date: new Date().toISOString().slice(0, 10) },
  };
}

export function formatExpertBench(r: ExpertBenchResult): string {
  const lines = [
    `${r.model}, routing skewed (+${r.skew}), ${r.problems} sequences × up to ${r.maxTokens} tokens (${r.generatedTokens} generated), ${r.repeats} rounds; ${r.machine.backend} backend, ${r.machine.threads} threads, EP over ${r.devices} devices`,
    `plan: ${r.plan.replicas} slots; predicted per-device max/mean ${r.plan.predicted.trivial.map((x) => x.toFixed(3)).join(' ')} (trivial) → ${r.plan.predicted.planned.map((x) => x.toFixed(3)).join(' ')}`,
    'run       tokens/s (median)  ratio to plain  tokens/CPU-s  identical  device max/mean per step  over the run          busy s per device',
  ];
  for (const x of r.rows) {
    lines.push(
      `${x.run.padEnd(9)} ${x.medianTokensPerSec.toFixed(0).padEnd(18)} ${x.ratioToPlain.toFixed(2).padEnd(15)} ${x.medianTokensPerCpuSec.toFixed(0).padEnd(13)} ${String(x.identical).padEnd(10)} ` +
        (x.devices ? `${x.devices.stepImbalance.toFixed(3).padEnd(25)} ${x.devices.totalImbalance.map((v) => v.toFixed(3)).join(' ').padEnd(21)} ${x.devices.busySeconds.map((v) => v.toFixed(3)).join(' / ')}` : '—'),
    );
  }
  lines.push(`machine: ${r.machine.cpus} cpus, load average ${r.machine.loadavgBefore[0].toFixed(2)} before / ${r.machine.loadavgAfter[0].toFixed(2)} after, node ${r.machine.node}, ${r.machine.date}`);
  return lines.join('\n');
}
