// `nanoseek distill traces`: a teacher's correct, well-formed answers to training problems as SFT
// JSONL (rejection sampling, as DeepSeek made the data of its distilled models). `nanoseek distill
// run`: the whole recipe (src/train/distill/recipe.ts). Ctrl-C stops at the next round or step;
// --resume continues.
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadForInference, resolveModelDir } from '../../infer/index.js';
import { loadProblems, type Problem } from '../../tasks/index.js';
import { endpointTeacher, modelTeacher, traceProblems, writeTraces, type Teacher } from '../../train/distill/traces.js';
import { formatDuration } from '../../train/index.js';
import { exportStudent, parseDistillRecipe, runDistillRecipe } from '../../train/distill/recipe.js';
import { readJsonConfig, withStopSignal } from '../run-control.js';
import { cardTaskSpec, describeSpec, intFlag as int, numFlag, promptFrom, taskNameFrom, taskSpecFromFlags, withTaskSpecFlags, type TaskSpecFlags } from '../task-flags.js';

interface TracesFlags extends TaskSpecFlags {
  teacher?: string;
  endpointModel?: string;
  out: string;
  task?: string;
  data?: string;
  problems: string;
  samples: string;
  keep: string;
  template?: string;
  openThink?: boolean;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  batch: string;
  resume?: boolean;
}

async function tracesCommand(o: TracesFlags): Promise<void> {
  if (o.task !== undefined && o.data !== undefined) throw new Error('give one of --task <task> and --data <jsonl>, not both');
  const seed = int('--seed', o.seed, 0);
  const isUrl = o.teacher !== undefined && /^https?:\/\//i.test(o.teacher);
  let teacher: Teacher;
  let card = null;
  let maxTokensLimit = 1 << 20;
  let prompt: ReturnType<typeof promptFrom> | null = null;
  if (isUrl) {
    if (o.template !== undefined || o.openThink !== undefined) throw new Error('--template and --open-think apply to a teacher loaded here; a server prompts with its own chat template');
    teacher = await endpointTeacher(o.teacher!, { model: o.endpointModel });
  } else {
    if (o.endpointModel !== undefined) throw new Error('--endpoint-model applies to a --teacher URL only');
    const ck = await loadForInference(await resolveModelDir(o.teacher));
    card = ck.card;
    prompt = promptFrom(o, card);
    maxTokensLimit = ck.model.config.max_position_embeddings;
    teacher = modelTeacher(ck.name, ck.model, ck.tokenizer, prompt.template, prompt.openThink);
  }
  let problems: Problem[];
  let what: string;
  let dropped = 0;
  if (o.data !== undefined) {
    ({ problems, heldOutDropped: dropped } = traceProblems({ problems: await loadProblems(o.data) }));
    what = o.data;
  } else {
    const cardSpec = cardTaskSpec(card, 'the teacher\'s model_card.json');
    if (o.task === undefined && cardSpec === null) throw new Error(`the teacher has no model card naming its task: give --task <task> or --data <jsonl>`);
    const spec = taskSpecFromFlags(o.task === undefined ? cardSpec!.task : taskNameFrom('--task', o.task), o, '+', cardSpec);
    ({ problems } = traceProblems({ tasks: [spec], count: int('--problems', o.problems, 1, 10_000_000), seed }));
    what = describeSpec(spec);
  }
  const sampling = {
    samples: int('--samples', o.samples, 1, 1024),
    keep: int('--keep', o.keep, 1, 1024),
    maxNewTokens: int('--max-tokens', o.maxTokens, 1, maxTokensLimit),
    temperature: numFlag('--temperature', o.temperature, 0, 100),
    topP: numFlag('--top-p', o.topP, 0, 1),
  };
  const err = process.stderr;
  err.write(`teacher ${teacher.name}; ${problems.length} training problems (${what})${dropped > 0 ? `, ${dropped} held-out problems of the file left out` : ''}; ${sampling.samples} samples each, keeping up to ${sampling.keep} correct\n`);
  const r = await withStopSignal((line) => err.write(`${line}\n`), (signal) =>
    writeTraces(teacher, problems, {
      out: o.out, sampling, seed, batch: int('--batch', o.batch, 1, 1 << 20), resume: o.resume, signal,
      describe: { source: what, prompt: prompt === null ? 'server chat template' : `${prompt.template}${prompt.openThink ? ' open think' : ''}` },
      onRound: (p) => {
        const rate = p.elapsed_s > 0 ? p.tokens / p.elapsed_s : 0;
        const eta = p.problems > 0 ? ((p.total - p.problems) * p.elapsed_s) / p.problems : NaN;
        err.write(`${p.problems}/${p.total} problems  ${p.correct}/${p.sampled} correct  kept ${p.kept} (${p.solved} problems)  ${Math.round(rate)} teacher tok/s  ${((60 * p.problems) / Math.max(p.elapsed_s, 1e-9)).toFixed(1)} problems/min  ETA ${formatDuration(eta)}\n`);
      },
    }),
  );
  process.stdout.write(
    `${r.stopped ? 'stopped' : 'done'}: ${r.problems} of ${r.total} problems × ${sampling.samples} samples: ${r.correct} of ${r.sampled} correct; ` +
      `kept ${r.kept} traces for ${r.solved} problems → ${o.out}; ${r.tokens} teacher tokens in ${formatDuration(r.elapsed_s)} (${Math.round(r.tokens / Math.max(r.elapsed_s, 1e-9))} tok/s)\n`,
  );
}

interface RunFlags {
  config: string;
  out: string;
  base?: string;
  resume?: boolean;
  docs?: string;
  export?: string;
  name: string;
}

async function runCommand(o: RunFlags): Promise<void> {
  const read = await readJsonConfig(o.config, ['teacher'], (line) => process.stderr.write(`${line}\n`));
  const cfg = parseDistillRecipe(read.json, o.config);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const r = await withStopSignal(log, (signal) => runDistillRecipe(cfg, o.config, { out: o.out, base: o.base, resume: o.resume, docsDir: o.docs, log, signal }));
  const teacher = r.rows[0].reports[0]['pass@1'];
  for (const row of r.rows) {
    const p = row.reports[0]['pass@1'];
    log(`${row.label}: pass@1 ${(100 * p).toFixed(1)}%${row === r.rows[0] ? '' : ` (${((100 * p) / Math.max(teacher, 1e-9)).toFixed(0)}% of the teacher's)`}${row.tokens === null ? '' : `, ${row.tokens} student tokens trained`}`);
  }
  if (o.export !== undefined) {
    const best = r.rows.find((row) => row.name === r.best.name)!;
    const to = join(o.export, o.name);
    const e = await exportStudent(r.best.dir, to, cfg, { name: r.best.name, source: `nanoseek distill run --config ${o.config} --export ${o.export}`, summary: best.label.replace(/^\(\w\) /, '') });
    log(`exported the best student (${best.label}) to ${e.dir} and ${e.gguf}`);
  }
  log(`done in ${(r.seconds / 60).toFixed(1)} min; report ${r.report}`);
}

export function register(program: Command): void {
  const distill = program.command('distill').description('distillation: a teacher\'s reasoning traces as SFT data, and the whole recipe (logit KD itself: nanoseek train distill)');
  const traces = distill
    .command('traces')
    .description('a teacher answers training problems G times each; its correct, well-formed answers become SFT JSONL with the reasoning kept (resumable)')
    .requiredOption('--out <jsonl>', 'SFT records {prompt, completion} to write (progress in <out>.progress.json)')
    .option('--teacher <model|url>', 'checkpoint directory, GGUF file, or an OpenAI-compatible server on loopback (http://127.0.0.1:8080/v1); default models/nano-r1zero')
    .option('--endpoint-model <id>', 'with a --teacher URL: the model id (default: the server\'s first)')
    .option('--task <task>', 'arithmetic or countdown: draw training-split problems (default: the teacher card\'s task)')
    .option('--data <jsonl>', 'problems from a JSONL file instead (its held-out problems are left out)');
  withTaskSpecFlags(traces)
    .option('--problems <n>', 'training problems to draw (with --task)', '500')
    .option('--samples <n>', 'answers per problem (G)', '4')
    .option('--keep <n>', 'distinct correct answers kept per problem', '1')
    .option('--template <t>', 'prompt format of a local teacher: r1-zero or r1 (default: its model card\'s)')
    .option('--open-think', 'r1-zero: end the prompt with <think> (default: the model card\'s choice)')
    .option('--no-open-think', 'r1-zero: do not end the prompt with <think>')
    .option('--max-tokens <n>', 'tokens per answer', '256')
    .option('--temperature <x>', 'sampling temperature', '1')
    .option('--top-p <p>', 'nucleus sampling', '1')
    .option('--seed <n>', 'problem and sampling seed', '0')
    .option('--batch <n>', 'problems per round (each round is appended and recorded for --resume)', '32')
    .option('--resume', 'continue the run recorded in <out>.progress.json')
    .action(tracesCommand);
  distill
    .command('run')
    .description('the recipe: student base, traces, then SFT, off-policy KD, on-policy KD and a GRPO-only control with equal student tokens; held-out evaluation and an HTML report')
    .option('--config <json>', 'recipe config', 'configs/distill.json')
    .option('--out <dir>', 'run directory (pretrain/, traces.jsonl, sft/, kd/, onpolicy/, grpo/, eval/, report.html)', 'runs/distill')
    .option('--base <dir>', 'a student base checkpoint with the teacher\'s tokenizer, instead of pretraining one')
    .option('--resume', 'continue a run directory after its last finished phase')
    .option('--docs <dir>', 'also copy the report, metrics and evaluations to <dir>')
    .option('--export <dir>', 'also write the best student to <dir>/<name> (HF directory with a GGUF inside)')
    .option('--name <name>', 'directory name of the exported student', 'nano-distill-llama')
    .action(runCommand);
}
