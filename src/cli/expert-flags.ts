// --expert-parallel, --placement and --record-experts, shared by the commands that run a model for
// inference (serve, eval, generate): expert parallelism over the backend's threads, and recording the
// experts tokens choose into a file that grows across runs.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { ExpertLoadRecorder, ExpertParallel, readLoad, readPlacement, stepImbalance, totalImbalance, trivialPlacement } from '../experts/index.js';
import type { CausalLM } from '../model/model.js';
import { intFlag } from './commands/generate.js';

export interface ExpertFlags {
  expertParallel?: number;
  placement?: string;
  recordExperts?: string;
}

export function withExpertFlags(cmd: Command): Command {
  return cmd
    .option('--expert-parallel <devices>', 'run the routed experts on this many worker threads as devices (expert parallelism)', intFlag('--expert-parallel'))
    .option('--placement <file>', 'with --expert-parallel: where the experts live (`experts plan --out`, or SGLang JSON with physical_to_logical_map); default: slot s holds expert s mod E')
    .option('--record-experts <file>', 'record which experts tokens choose into this file (an existing recording of the same model is continued)');
}

/** What --expert-parallel / --record-experts set up on a model; stop() writes the recording. */
export interface ExpertSession {
  parallel: ExpertParallel | null;
  recorder: ExpertLoadRecorder | null;
  /** Saves the recording so far (atomically). */
  save(): Promise<void>;
  /** Saves, stops the periodic saves and detaches. */
  stop(): Promise<void>;
  /** One line on what the devices did, or null without --expert-parallel. */
  summary(): string | null;
}

/** Sets up the flags on a loaded model. `saveEvery` seconds: periodic saves of the recording (long runs). */
export async function startExperts(model: CausalLM, flags: ExpertFlags, label: string, source: string, saveEvery?: number): Promise<ExpertSession> {
  if (flags.placement !== undefined && flags.expertParallel === undefined) throw new Error('--placement needs --expert-parallel <devices>');
  let parallel: ExpertParallel | null = null;
  if (flags.expertParallel !== undefined) {
    const moe = model.moeLayers();
    if (moe.length === 0) throw new Error(`--expert-parallel: ${label} has no MoE layers`);
    const devices = flags.expertParallel;
    const placement = flags.placement === undefined
      ? trivialPlacement(moe.length, moe[0].E, devices)
      : await readPlacement(flags.placement, { num_hidden_layers: model.config.num_hidden_layers, layers: model.moeLayerIds(), experts: moe[0].E }, devices);
    parallel = new ExpertParallel(model, placement).attach();
  }
  let recorder: ExpertLoadRecorder | null = null;
  const path = flags.recordExperts;
  if (path !== undefined) {
    const resume = existsSync(path) ? await readLoad(path) : undefined;
    recorder = new ExpertLoadRecorder(model, { label, source, resume }).attach();
    if (resume !== undefined) process.stderr.write(`--record-experts: continuing ${path} (${resume.steps} steps, ${resume.tokens} tokens so far)\n`);
  }
  const save = async (): Promise<void> => {
    if (recorder !== null && path !== undefined) await recorder.save(path);
  };
  let saving = Promise.resolve();
  const saveNow = (): void => {
    saving = saving.then(save).catch((err: Error) => {
      process.stderr.write(`--record-experts: ${err.message}\n`);
    });
  };
  const timer = recorder !== null && saveEvery !== undefined ? setInterval(saveNow, saveEvery * 1000) : null;
  timer?.unref();
  return {
    parallel,
    recorder,
    save,
    async stop() {
      if (timer !== null) clearInterval(timer);
      await saving;
      await save();
      recorder?.detach();
      parallel?.detach();
    },
    summary() {
      if (parallel === null) return null;
      const s = parallel.stats();
      return `expert parallelism on ${s.devices} devices: rows per device ${s.rows.map((r) => r.join('/')).join(', ')} (per MoE layer); ` +
        `max/mean ${stepImbalance(s).toFixed(3)} per step, ${totalImbalance(s).map((x) => x.toFixed(3)).join(', ')} over the run; busy ${s.busy.map((b) => b.toFixed(2)).join('/')} s`;
    },
  };
}
