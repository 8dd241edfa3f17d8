// `nanoseek tasks …`: sample problems, write pretraining / SFT data, grade completions.
import { writeChunksAtomic } from '../../util/atomic.js';
import type { Command } from 'commander';
import { Rng } from '../../util/rng.js';
import {
  EVAL_SEED,
  grade,
  heldOutSet,
  loadProblems,
  problemToJson,
  questionText,
  readJsonl,
  sampleProblem,
  sftRecords,
  solutionOf,
  TASK_NAMES,
  writeCorpus,
  type Grade,
  type Problem,
  type TaskSpec,
} from '../../tasks/index.js';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveModelDir } from '../../infer/index.js';
import { MODEL_CARD_FILE, readModelCard } from '../../io/model-card.js';
import { cardTaskSpec, countdownSpecFrom, describeSpec, intFlag as int, opsFrom, specFlags, taskNameFrom, taskSpecFromFlags, withTaskSpecFlags, type TaskSpecFlags as SpecFlags } from '../task-flags.js';

/** tasks' arithmetic draws all three operators unless told otherwise. */
const ALL_OPS = '+,-,*';
const specFrom = (task: string, f: SpecFlags) => taskSpecFromFlags(taskNameFrom('<task>', task), f, ALL_OPS);
const withSpecFlags = (cmd: Command) => withTaskSpecFlags(cmd, ALL_OPS);

/** Where commands print; tests pass their own to capture output without touching process.stdout. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/**
 * The task a model was trained on (its card's), for `tasks sample` without a spec: the given
 * model, else the default one; null when there is none (then the generic defaults apply).
 */
async function modelTask(io: Io, model: string | undefined): Promise<TaskSpec | null> {
  let dir: string;
  try {
    dir = await resolveModelDir(model);
  } catch (err) {
    if (model !== undefined) throw err;
    return null;
  }
  if (!(await stat(dir).then(() => true, () => false))) throw new Error(`--model ${dir}: no such file or directory`);
  const card = await readModelCard(dir);
  const spec = cardTaskSpec(card, join(dir, MODEL_CARD_FILE));
  if (spec === null && model !== undefined) io.err(`note: ${dir} has no model card naming its task; using the generic defaults`);
  return spec;
}

async function sample(io: Io, task: string | undefined, o: SpecFlags & { n: string; seed?: string; json?: boolean; heldout?: boolean; model?: string }): Promise<void> {
  const given = task !== undefined && ['digits', 'ops', 'count', 'numberMax', 'targetMax'].some((k) => o[k as keyof SpecFlags] !== undefined);
  const own = given ? null : await modelTask(io, o.model);
  if (task === undefined && own === null) throw new Error(`<task>: give ${TASK_NAMES.join(' or ')} (no model card names a default)`);
  const name = task === undefined ? own!.task : taskNameFrom('<task>', task);
  const spec = taskSpecFromFlags(name, o, ALL_OPS, own);
  if (own !== null && spec === own) io.err(`(${describeSpec(spec)}: the task of ${o.model ?? 'the default model'}, from its model card; ${specFlags(spec)} to change it)`);
  const n = int('--n', o.n, 1, 1_000_000);
  const seed = o.seed === undefined ? undefined : int('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  let problems: Problem[];
  if (o.heldout) {
    problems = heldOutSet(spec, n, seed ?? EVAL_SEED);
    if (problems.length < n) io.err(`note: this spec's held-out split has only ${problems.length} problems`);
  } else {
    const rng = new Rng(seed ?? 0);
    problems = Array.from({ length: n }, () => sampleProblem(spec, rng));
  }
  for (const p of problems) {
    if (o.json) io.out(problemToJson(p));
    else io.out(`[${p.id}] ${questionText(p)}\n  ${p.task === 'arithmetic' ? 'answer' : 'solution'}: ${solutionOf(p)}`);
  }
}

async function corpus(io: Io, o: SpecFlags & { out: string; mb: string; seed?: string; maxDigits?: string }): Promise<void> {
  const mb = Number(o.mb);
  if (!(mb > 0 && mb <= 100_000)) throw new Error(`--mb: expected a positive number of megabytes, got ${JSON.stringify(o.mb)}`);
  if (o.digits !== undefined) throw new Error('--digits does not apply to corpus; use --max-digits');
  const countdown = countdownSpecFrom(o);
  const r = await writeCorpus(o.out, Math.round(mb * 1e6), {
    seed: o.seed === undefined ? undefined : int('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER),
    maxDigits: o.maxDigits === undefined ? undefined : int('--max-digits', o.maxDigits, 1, 40),
    ops: opsFrom(o.ops ?? ALL_OPS),
    countdown,
  });
  io.out(`wrote ${(r.bytes / 1e6).toFixed(1)} MB to ${o.out}: ${r.documents} documents, ${r.problems} problems`);
}

async function sft(io: Io, task: string, o: SpecFlags & { out: string; n: string; seed?: string; zero?: boolean }): Promise<void> {
  const spec = specFrom(task, o);
  const n = int('--n', o.n, 1, 100_000_000);
  const records = sftRecords(spec, { seed: o.seed === undefined ? undefined : int('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER), zero: o.zero });
  const lines = function* (): Generator<string> {
    for (let i = 0; i < n; i++) {
      const r = records.next().value as { prompt: string; completion: string };
      yield `${JSON.stringify({ prompt: r.prompt, completion: r.completion })}\n`;
    }
  };
  await writeChunksAtomic(o.out, lines());
  io.out(`wrote ${n} SFT records to ${o.out}`);
}

async function gradeFiles(io: Io, o: { data: string; completions: string; chat?: boolean; formatWeight?: string; json?: boolean }): Promise<void> {
  const formatWeight = o.formatWeight === undefined ? 0.1 : Number(o.formatWeight);
  if (!(formatWeight >= 0 && formatWeight <= 1)) throw new Error(`--format-weight: expected a number in [0, 1], got ${JSON.stringify(o.formatWeight)}`);
  const problems = await loadProblems(o.data);
  const byId = new Map(problems.filter((p) => p.id !== undefined).map((p) => [p.id as string, p]));
  const total = { n: 0, accuracy: 0, format: 0, reward: 0 };
  let index = 0;
  for await (const { value, line } of readJsonl(o.completions)) {
    const where = `${o.completions}:${line}`;
    const r = value as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r.completion !== 'string') throw new Error(`${where}: field "completion": expected a string`);
    let p: Problem | undefined;
    if (r.id !== undefined) {
      p = byId.get(String(r.id));
      if (!p) throw new Error(`${where}: field "id": no problem with id ${JSON.stringify(r.id)} in ${o.data}`);
    } else {
      p = problems[index];
      if (!p) throw new Error(`${where}: more completions than the ${problems.length} problems in ${o.data} (add "id" to match by id)`);
    }
    index++;
    const g: Grade = grade(p, r.completion, { promptOpensThink: o.chat, formatWeight });
    total.n++;
    total.accuracy += g.accuracy;
    total.format += g.format;
    total.reward += g.reward;
    if (o.json) io.out(JSON.stringify({ line, id: p.id, accuracy: g.accuracy, format: g.format, reward: g.reward, value: g.value, reason: g.reason }));
  }
  const mean = (x: number): string => (total.n ? x / total.n : 0).toFixed(4);
  const summary = `graded ${total.n} completions: accuracy ${mean(total.accuracy)}, format ${mean(total.format)}, reward ${mean(total.reward)}`;
  if (o.json) io.err(summary);
  else io.out(summary);
}

export function register(program: Command, io: Io = stdio): void {
  const tasks = program.command('tasks').description('verifiable tasks (arithmetic, countdown): problems, training text, grading');

  withSpecFlags(tasks.command('sample').argument('[task]', `${TASK_NAMES.join(' | ')} (default: the model's own task)`))
    .description('print problems with their solutions (by default the kind the model was trained on, from its model card)')
    .option('--model <path>', 'whose task to sample when no --digits/--ops/… are given (default: models/nano-r1zero in the package)')
    .option('--n <count>', 'how many', '5')
    .option('--seed <seed>', `random seed (default 0; with --heldout ${EVAL_SEED})`)
    .option('--json', 'one JSONL problem record per line (the format --data files use)')
    .option('--heldout', 'the fixed held-out evaluation set instead of training problems')
    .action((task, o) => sample(io, task, o));

  withSpecFlags(tasks.command('corpus'))
    .description('write a plain-text pretraining corpus (documents separated by blank lines)')
    .requiredOption('--out <file>', 'output file')
    .requiredOption('--mb <n>', 'size in megabytes (10^6 bytes)')
    .option('--seed <seed>', 'random seed (default 0)')
    .option('--max-digits <n>', 'arithmetic operands get 1..n digits (default 4)')
    .action((o) => corpus(io, o));

  withSpecFlags(tasks.command('sft').argument('<task>', TASK_NAMES.join(' | ')))
    .description('write cold-start SFT records {prompt, completion} with <think>/<answer> completions')
    .requiredOption('--out <file>', 'output JSONL file')
    .requiredOption('--n <count>', 'how many records')
    .option('--seed <seed>', 'random seed (default 0)')
    .option('--zero', 'prompt is the R1-Zero template instead of the bare question')
    .action((task, o) => sft(io, task, o));

  tasks
    .command('grade')
    .description('grade completions against problems; prints mean accuracy, format and reward')
    .requiredOption('--data <jsonl>', 'problem records')
    .requiredOption('--completions <jsonl>', 'records {"completion": "...", "id"?: "..."}: matched by id, else by position')
    .option('--chat', 'prompts ended with <think>: completions start mid-thought')
    .option('--format-weight <w>', 'share of the reward given to format (default 0.1)')
    .option('--json', 'also print one JSON result per completion')
    .action((o) => gradeFiles(io, o));
}
