// `nanoseek train pretrain|sft|distill|grpo`: read a config, apply flag overrides, run the trainer with a progress
// line on a terminal (plain log lines elsewhere). Ctrl-C stops after the current step and saves a
// checkpoint that `--resume` continues exactly; a second Ctrl-C quits at once.
import type { Command } from 'commander';
import { applyOverrides, parseTrainConfig, Progress, savedRunConfig, STAGES, train, TRAIN_PATH_FIELDS, type Stage } from '../../train/index.js';
import { collect, fitWarmup, Overrides, readJsonConfig, withStopSignal } from '../run-control.js';
import { grpoTrainCommand } from './grpo.js';

interface TrainFlags {
  config?: string;
  out: string;
  resume?: boolean;
  preset?: string;
  init?: string;
  tokenizer?: string;
  steps?: string;
  lr?: string;
  batchSize?: string;
  seqLen?: string;
  gradAccum?: string;
  warmup?: string;
  seed?: string;
  evalEvery?: string;
  saveEvery?: string;
  logEvery?: string;
  set: string[];
}

/** Flags that set one top-level config field each. */
const FIELD_FLAGS = {
  steps: 'steps',
  lr: 'lr',
  batchSize: 'batch_size',
  seqLen: 'seq_len',
  gradAccum: 'grad_accum',
  warmup: 'warmup',
  seed: 'seed',
  evalEvery: 'eval_every',
  saveEvery: 'save_every',
  logEvery: 'log_every',
} as const;

function overridesFrom(o: TrainFlags, raw: Record<string, unknown>): Overrides {
  const ov = new Overrides().fromFlags(o, FIELD_FLAGS);
  const model = raw.model as Record<string, unknown> | undefined;
  if (o.preset !== undefined) ov.set('model', { ...(model && !('init' in model) ? model : {}), preset: o.preset }, `--preset ${o.preset}`);
  if (o.init !== undefined) ov.set('model', { init: o.init }, `--init ${o.init}`);
  if (o.tokenizer !== undefined) ov.set('tokenizer', { path: o.tokenizer }, `--tokenizer ${o.tokenizer}`);
  return ov.fromSet(o.set, 'data.seed=3');
}

/** Flags of pretraining and SFT that a GRPO config has no field for. */
const NOT_GRPO = { preset: '--preset', tokenizer: '--tokenizer', batchSize: '--batch-size', seqLen: '--seq-len', gradAccum: '--grad-accum' } as const;

/** `nanoseek train grpo`: the GRPO trainer under the name the other stages use. */
function grpoStage(o: TrainFlags): Promise<void> {
  for (const [key, flag] of Object.entries(NOT_GRPO)) {
    if (o[key as keyof typeof NOT_GRPO] !== undefined) throw new Error(`${flag} does not apply to grpo (its config sets prompts_per_step, group_size, max_new_tokens); use --set`);
  }
  return grpoTrainCommand(o);
}

export function register(program: Command): void {
  program
    .command('train')
    .description('pretrain, fine-tune (SFT), distil from a teacher (logit KD, off- and on-policy) or GRPO-train a model; checkpoints, metrics.jsonl and --resume under --out')
    .argument('<stage>', `one of ${STAGES.join(', ')}, grpo (the same as nanoseek grpo train)`)
    .requiredOption('--out <dir>', 'run directory (checkpoint-<step>/, latest, metrics.jsonl)')
    .option('--config <json>', 'training config file (see configs/); optional with --resume')
    .option('--resume', 'continue the newest checkpoint in --out (bit-exact); starts fresh when there is none')
    .option('--preset <name>', 'model preset (replaces model.preset / model.init)')
    .option('--init <dir>', 'start from this checkpoint (replaces model)')
    .option('--tokenizer <path>', 'tokenizer.json or a directory holding one')
    .option('--steps <n>', 'optimizer steps')
    .option('--lr <x>', 'peak learning rate')
    .option('--batch-size <n>', 'sequences per micro-batch')
    .option('--seq-len <n>', 'tokens per sequence')
    .option('--grad-accum <n>', 'micro-batches per step')
    .option('--warmup <n>', 'linear warmup steps')
    .option('--seed <n>', 'initialisation and data seed')
    .option('--eval-every <n>', 'validation every n steps')
    .option('--save-every <n>', 'checkpoint every n steps')
    .option('--log-every <n>', 'metrics line every n steps')
    .option('--set <key=value>', 'any config field by dotted path, value as JSON (repeatable)', collect, [] as string[])
    .action(async (stageArg: string, o: TrainFlags) => {
      if (stageArg === 'grpo') return grpoStage(o);
      if (!(STAGES as readonly string[]).includes(stageArg)) throw new Error(`<stage> must be one of ${[...STAGES, 'grpo'].join(', ')}, got '${stageArg}'`);
      const stage = stageArg as Stage;
      const note = (line: string) => process.stderr.write(`${line}\n`);
      const saved = o.resume ? await savedRunConfig(o.out) : null;
      let raw: unknown;
      let source: string;
      if (o.config !== undefined) {
        const read = await readJsonConfig(o.config, TRAIN_PATH_FIELDS, note);
        raw = read.json;
        source = o.config;
      } else {
        if (saved === null) throw new Error(o.resume ? `${o.out}: no checkpoint to resume; give --config to start a run` : '--config is required (or --resume an existing run)');
        raw = saved;
        source = `${o.out} (saved config)`;
      }
      const record = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const ov = overridesFrom(o, record);
      fitWarmup(raw, ov, source, saved, note);
      const config = await ov.naming(() => parseTrainConfig(applyOverrides(raw, ov.values), source, stage));

      const out = process.stdout;
      let progress = null as Progress | null;
      const log = (line: string) => (progress ? progress.log(line) : out.write(`${line}\n`));
      const result = await withStopSignal(log, (signal) => ov.naming(() =>
        train(config, {
          out: o.out,
          resume: o.resume,
          signal,
          source,
          log,
          onStep: (s) => {
            progress ??= new Progress({ total: s.total, start: s.step - 1, stream: out });
            progress.update(s.step, { loss: s.stats.loss, tokensPerS: s.tokensPerS });
          },
        })),
      );
      progress?.done();
      const val = result.valLoss === null ? '' : `, validation loss ${result.valLoss.toFixed(4)}`;
      out.write(`${result.stopped ? 'stopped' : 'done'} at step ${result.step}${val}; ${result.checkpoint}\n`);
    });
}
