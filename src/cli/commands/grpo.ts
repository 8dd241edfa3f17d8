// `nanoseek grpo train|reject-sample|plot`: GRPO runs with checkpoints and --resume, rejection sampling
// of a model's correct completions into SFT data, and a run's curves as HTML. Ctrl-C during training
// stops after the current step and saves a checkpoint that --resume continues exactly.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { renderGrpoRun } from '../../eval/report.js';
import { loadForInference } from '../../infer/index.js';
import { writeChunksAtomic, writeFileAtomic } from '../../util/atomic.js';
import { loadProblems, PROMPT_TEMPLATES, sampleProblem, type Problem, type PromptTemplate } from '../../tasks/index.js';
import { GRPO_CONFIG_FILE, savedGrpoConfig, trainGrpo } from '../../train/grpo/trainer.js';
import { parseGrpoConfig } from '../../train/grpo/config.js';
import { rejectSample } from '../../train/grpo/reject.js';
import { applyOverrides, METRICS_FILE, Progress, readMetrics } from '../../train/index.js';
import { Rng } from '../../util/rng.js';
import { collect, flagOverrides, readJsonConfig, setOverrides, withStopSignal } from '../run-control.js';
import { describeSpec, intFlag as int, taskNameFrom, taskSpecFromFlags, withTaskSpecFlags } from '../task-flags.js';

/** Flags of `nanoseek grpo train` (and `nanoseek train grpo`); each replaces one config field. */
export interface GrpoTrainFlags {
  config?: string;
  out: string;
  resume?: boolean;
  init?: string;
  steps?: string;
  lr?: string;
  warmup?: string;
  seed?: string;
  evalEvery?: string;
  saveEvery?: string;
  logEvery?: string;
  set: string[];
}

const FIELD_FLAGS = { steps: 'steps', lr: 'lr', warmup: 'warmup', seed: 'seed', evalEvery: 'eval_every', saveEvery: 'save_every', logEvery: 'log_every' } as const;

export async function grpoTrainCommand(o: GrpoTrainFlags): Promise<void> {
  let raw: unknown;
  let source: string;
  if (o.config !== undefined) {
    raw = await readJsonConfig(o.config);
    source = o.config;
  } else {
    const saved = o.resume ? await savedGrpoConfig(o.out) : null;
    if (saved === null) throw new Error(o.resume ? `${o.out}: no checkpoint to resume; give --config to start a run` : '--config is required (or --resume an existing run)');
    raw = saved;
    source = `${o.out} (saved config)`;
  }
  const overrides: Record<string, unknown> = {};
  if (o.init !== undefined) overrides['model.init'] = o.init;
  Object.assign(overrides, flagOverrides(o, FIELD_FLAGS), setOverrides(o.set, 'beta=0.04'));
  const config = parseGrpoConfig(applyOverrides(raw, overrides), source);

  const out = process.stdout;
  let progress = null as Progress | null;
  const log = (line: string) => (progress ? progress.log(line) : out.write(`${line}\n`));
  const result = await withStopSignal(log, (signal) =>
    trainGrpo(config, {
      out: o.out,
      resume: o.resume,
      signal,
      source,
      log,
      onStep: (s) => {
        progress ??= new Progress({ total: s.total, start: s.step - 1, stream: out });
        progress.update(s.step);
      },
    }),
  );
  progress?.done();
  out.write(`${result.stopped ? 'stopped' : 'done'} at step ${result.step}; ${result.checkpoint}\n`);
}

interface RejectFlags {
  model: string;
  out: string;
  task?: string;
  data?: string;
  digits?: string;
  ops?: string;
  count?: string;
  numberMax?: string;
  targetMax?: string;
  problems: string;
  samples: string;
  keep: string;
  template: string;
  openThink?: boolean;
  maxTokens: string;
  temperature: string;
  seed: string;
}

async function rejectCommand(o: RejectFlags): Promise<void> {
  if ((o.task === undefined) === (o.data === undefined)) throw new Error('give exactly one of --task <task> and --data <jsonl>');
  if (!(PROMPT_TEMPLATES as readonly string[]).includes(o.template)) throw new Error(`--template: expected one of ${PROMPT_TEMPLATES.join(', ')}, got ${JSON.stringify(o.template)}`);
  const seed = int('--seed', o.seed, 0);
  let problems: Problem[];
  let what: string;
  if (o.data !== undefined) {
    problems = await loadProblems(o.data);
    what = o.data;
  } else {
    // Training problems: rejection-sampled data feeds SFT, which must never see the held-out split.
    const spec = taskSpecFromFlags(taskNameFrom('--task', o.task!), o);
    const rng = new Rng(seed);
    problems = Array.from({ length: int('--problems', o.problems, 1, 1_000_000) }, () => sampleProblem(spec, rng));
    what = describeSpec(spec);
  }
  const temperature = Number(o.temperature);
  if (!(temperature > 0 && temperature <= 100)) throw new Error(`--temperature: expected a number in (0, 100], got ${JSON.stringify(o.temperature)}`);
  const ck = await loadForInference(o.model);
  const r = await rejectSample(ck.model, ck.tokenizer, problems, {
    template: o.template as PromptTemplate,
    openThink: o.openThink === true,
    samples: int('--samples', o.samples, 1, 1024),
    keepPerProblem: int('--keep', o.keep, 1, 1024),
    maxNewTokens: int('--max-tokens', o.maxTokens, 1, ck.model.config.max_position_embeddings),
    temperature,
    seed,
  });
  await writeChunksAtomic(o.out, r.records.map((rec) => `${JSON.stringify(rec)}\n`));
  process.stdout.write(
    `${what}: ${problems.length} problems × ${o.samples} samples: ${r.correct} of ${r.sampled} correct; ` +
      `kept ${r.records.length} completions for ${r.solved} problems → ${o.out}\n`,
  );
}

export function register(program: Command): void {
  const grpo = program.command('grpo').description('GRPO reinforcement learning: train, rejection-sample SFT data, plot a run');
  grpo
    .command('train')
    .description('train with GRPO; checkpoints, metrics.jsonl and --resume under --out')
    .requiredOption('--out <dir>', 'run directory (checkpoint-<step>/, latest, metrics.jsonl)')
    .option('--config <json>', 'GRPO config file (e.g. configs/r1-grpo.json); optional with --resume')
    .option('--resume', 'continue the newest checkpoint in --out (bit-exact)')
    .option('--init <dir>', 'policy to start from (replaces model.init)')
    .option('--steps <n>', 'GRPO steps')
    .option('--lr <x>', 'learning rate')
    .option('--warmup <n>', 'linear warmup steps')
    .option('--seed <n>', 'problem and sampling seed')
    .option('--eval-every <n>', 'held-out accuracy every n steps')
    .option('--save-every <n>', 'checkpoint every n steps')
    .option('--log-every <n>', 'metrics line every n steps')
    .option('--set <key=value>', 'any config field by dotted path, value as JSON (repeatable)', collect, [] as string[])
    .action(grpoTrainCommand);
  const reject = grpo
    .command('reject-sample')
    .description('sample a model on training problems and keep its correct, well-formatted completions as SFT JSONL')
    .requiredOption('--model <dir>', 'checkpoint directory (the RL model)')
    .requiredOption('--out <jsonl>', 'SFT records {prompt, completion} to write')
    .option('--task <task>', 'arithmetic or countdown: draw training-split problems')
    .option('--data <jsonl>', 'problems from a JSONL file instead');
  withTaskSpecFlags(reject)
    .option('--problems <n>', 'training problems to draw (with --task)', '500')
    .option('--samples <n>', 'completions per problem', '4')
    .option('--keep <n>', 'distinct correct completions kept per problem', '1')
    .option('--template <t>', `prompt format: ${PROMPT_TEMPLATES.join(' or ')}`, 'r1-zero')
    .option('--open-think', 'r1-zero: end the prompt with <think>')
    .option('--max-tokens <n>', 'tokens per completion', '128')
    .option('--temperature <x>', 'sampling temperature', '1')
    .option('--seed <n>', 'problem and sampling seed', '0')
    .action(rejectCommand);
  grpo
    .command('plot')
    .description('render a GRPO run\'s metrics.jsonl (reward, accuracy, lengths, KL, clipping) to one HTML file')
    .argument('<run-dir>', 'a GRPO run directory (holds metrics.jsonl)')
    .option('--out <file>', 'HTML file to write (default <run-dir>/metrics.html)')
    .action(async (runDir: string, o: { out?: string }) => {
      const records = await readMetrics(join(runDir, METRICS_FILE));
      if (records.length === 0) throw new Error(`${join(runDir, METRICS_FILE)}: no metrics to plot`);
      const details = await readFile(join(runDir, GRPO_CONFIG_FILE), 'utf8').catch(() => undefined);
      const path = o.out ?? join(runDir, 'metrics.html');
      await writeFileAtomic(path, renderGrpoRun(records, { title: `nanoseek GRPO run ${basename(resolve(runDir))}`, details }));
      process.stdout.write(`wrote ${path}\n`);
    });
}
