// `nanoseek grpo train|reject-sample|plot`: GRPO runs with checkpoints and --resume, rejection sampling
// of a model's correct completions into SFT data, and a run's curves as HTML. Ctrl-C during training
// stops after the current step and saves a checkpoint that --resume continues exactly.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { renderGrpoRun } from '../../eval/report.js';
import { loadForInference } from '../../infer/index.js';
import { writeChunksAtomic, writeFileAtomic } from '../../util/atomic.js';
import { loadProblems, PROMPT_TEMPLATES, sampleProblem, type Problem } from '../../tasks/index.js';
import { GRPO_CONFIG_FILE, savedGrpoConfig, trainGrpo } from '../../train/grpo/trainer.js';
import { GRPO_PATH_FIELDS, parseGrpoConfig } from '../../train/grpo/config.js';
import { rejectSample } from '../../train/grpo/reject.js';
import { applyOverrides, Progress } from '../../train/index.js';
import { readRunMetrics } from '../../report/index.js';
import { Rng } from '../../util/rng.js';
import { collect, fitWarmup, Overrides, readJsonConfig, withStopSignal } from '../run-control.js';
import { cardTaskSpec, describeSpec, intFlag as int, promptFrom, taskNameFrom, taskSpecFromFlags, withTaskSpecFlags } from '../task-flags.js';

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
  const note = (line: string) => process.stderr.write(`${line}\n`);
  const saved = o.resume ? await savedGrpoConfig(o.out) : null;
  let raw: unknown;
  let source: string;
  if (o.config !== undefined) {
    raw = (await readJsonConfig(o.config, GRPO_PATH_FIELDS, note)).json;
    source = o.config;
  } else {
    if (saved === null) throw new Error(o.resume ? `${o.out}: no checkpoint to resume; give --config to start a run` : '--config is required (or --resume an existing run)');
    raw = saved;
    source = `${o.out} (saved config)`;
  }
  const ov = new Overrides();
  if (o.init !== undefined) ov.set('model.init', o.init, `--init ${o.init}`);
  ov.fromFlags(o, FIELD_FLAGS).fromSet(o.set, 'beta=0.04');
  fitWarmup(raw, ov, source, saved, note);
  const config = await ov.naming(() => parseGrpoConfig(applyOverrides(raw, ov.values), source));

  const out = process.stdout;
  let progress = null as Progress | null;
  const log = (line: string) => (progress ? progress.log(line) : out.write(`${line}\n`));
  const result = await withStopSignal(log, (signal) => ov.naming(() =>
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
    })),
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
  template?: string;
  openThink?: boolean;
  maxTokens: string;
  temperature: string;
  seed: string;
}

async function rejectCommand(o: RejectFlags): Promise<void> {
  if (o.task !== undefined && o.data !== undefined) throw new Error('give one of --task <task> and --data <jsonl>, not both');
  const seed = int('--seed', o.seed, 0);
  const ck = await loadForInference(o.model);
  const prompt = promptFrom(o, ck.card);
  const cardSpec = cardTaskSpec(ck.card, `${ck.dir}/model_card.json`);
  let problems: Problem[];
  let what: string;
  if (o.data !== undefined) {
    problems = await loadProblems(o.data);
    what = o.data;
  } else {
    // Training problems: rejection-sampled data feeds SFT, which must never see the held-out split.
    if (o.task === undefined && cardSpec === null) throw new Error(`${ck.name} has no model card naming its task: give --task <task> or --data <jsonl>`);
    const spec = taskSpecFromFlags(o.task === undefined ? cardSpec!.task : taskNameFrom('--task', o.task), o, '+', cardSpec);
    const rng = new Rng(seed);
    problems = Array.from({ length: int('--problems', o.problems, 1, 1_000_000) }, () => sampleProblem(spec, rng));
    what = describeSpec(spec);
  }
  const temperature = Number(o.temperature);
  if (!(temperature > 0 && temperature <= 100)) throw new Error(`--temperature: expected a number in (0, 100], got ${JSON.stringify(o.temperature)}`);
  const r = await rejectSample(ck.model, ck.tokenizer, problems, {
    template: prompt.template,
    openThink: prompt.openThink,
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
    .option('--task <task>', 'arithmetic or countdown: draw training-split problems (default: the model card\'s task)')
    .option('--data <jsonl>', 'problems from a JSONL file instead');
  withTaskSpecFlags(reject)
    .option('--problems <n>', 'training problems to draw (with --task)', '500')
    .option('--samples <n>', 'completions per problem', '4')
    .option('--keep <n>', 'distinct correct completions kept per problem', '1')
    .option('--template <t>', `prompt format: ${PROMPT_TEMPLATES.join(' or ')} (default: the model card's, else r1-zero)`)
    .option('--open-think', 'r1-zero: end the prompt with <think> (default: the model card\'s choice)')
    .option('--no-open-think', 'r1-zero: do not end the prompt with <think>')
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
      const records = await readRunMetrics(runDir, 'nanoseek grpo train');
      const details = await readFile(join(runDir, GRPO_CONFIG_FILE), 'utf8').catch(() => undefined);
      const path = o.out ?? join(runDir, 'metrics.html');
      await writeFileAtomic(path, renderGrpoRun(records, { title: `nanoseek GRPO run ${basename(resolve(runDir))}`, details }));
      process.stdout.write(`wrote ${path}\n`);
    });
}
