// `nanoseek eval`: a model on a task's fixed held-out set (or a problem file): greedy pass@1, pass@k and
// maj@k from n samples, format compliance and lengths; one JSON object with --json.
import type { Command } from 'commander';
import '../../kernels/index.js';
import { evaluateModel, type EvalReport } from '../../eval/evaluate.js';
import { loadForInference } from '../../infer/index.js';
import { heldOutSet, loadProblems, TASK_NAMES, validateSpec, type ArithOp, type Problem, type TaskSpec } from '../../tasks/index.js';
import { PROMPT_TEMPLATES, type PromptTemplate } from '../../train/grpo-config.js';

interface EvalFlags {
  model: string;
  tokenizer?: string;
  task?: string;
  data?: string;
  digits?: string;
  ops?: string;
  count?: string;
  numberMax?: string;
  targetMax?: string;
  problems: string;
  n: string;
  k?: string;
  template: string;
  openThink?: boolean;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  examples: string;
  prefill?: string;
  json?: boolean;
}

function int(flag: string, text: string, lo: number, hi = Number.MAX_SAFE_INTEGER): number {
  const v = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new Error(`${flag}: expected an integer in ${lo}..${hi}, got ${JSON.stringify(text)}`);
  return v;
}

function num(flag: string, text: string, lo: number, hi: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < lo || v > hi) throw new Error(`${flag}: expected a number in [${lo}, ${hi}], got ${JSON.stringify(text)}`);
  return v;
}

function pair(flag: string, text: string, lo: number, hi: number): [number, number] {
  const parts = text.split(',').map((p) => int(flag, p, lo, hi));
  if (parts.length > 2) throw new Error(`${flag}: expected N or A,B, got ${JSON.stringify(text)}`);
  return [parts[0], parts[1] ?? parts[0]];
}

/** The task spec the flags describe; a flag of the other task is an error, not ignored. */
export function taskSpecFromFlags(task: string, f: Pick<EvalFlags, 'digits' | 'ops' | 'count' | 'numberMax' | 'targetMax'>): TaskSpec {
  if (!(TASK_NAMES as readonly string[]).includes(task)) throw new Error(`--task: expected one of ${TASK_NAMES.join(', ')}, got ${JSON.stringify(task)}`);
  const foreign = task === 'arithmetic' ? (['count', 'numberMax', 'targetMax'] as const) : (['digits', 'ops'] as const);
  for (const k of foreign) if (f[k] !== undefined) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} does not apply to ${task}`);
  let spec: TaskSpec;
  if (task === 'arithmetic') {
    const ops = (f.ops ?? '+').split(',').map((o) => o.trim());
    if (!ops.every((o) => ['+', '-', '*'].includes(o))) throw new Error(`--ops: expected a comma-separated list of +, -, *, got ${JSON.stringify(f.ops)}`);
    const digits = (f.digits ?? '3,3').split(',').map((p) => int('--digits', p, 1, 40));
    spec = { task: 'arithmetic', digits: digits.length === 1 ? [digits[0] as number, digits[0] as number] : digits, ops: ops as ArithOp[] };
  } else {
    const count = pair('--count', f.count ?? '3,4', 2, 6);
    if (count[1] < count[0]) throw new Error(`--count: MIN must not exceed MAX, got ${JSON.stringify(f.count)}`);
    spec = { task: 'countdown', count, numberMax: int('--number-max', f.numberMax ?? '25', 1), targetMax: int('--target-max', f.targetMax ?? '100', 1) };
  }
  validateSpec(spec);
  return spec;
}

/** A task spec as a short name: arithmetic 3x3 +-, countdown 3-4 ≤25 →≤100. */
export function describeSpec(spec: TaskSpec): string {
  return spec.task === 'arithmetic'
    ? `arithmetic ${spec.digits.join('x')} ${spec.ops.join('')}`
    : `countdown ${spec.count[0]}-${spec.count[1]} numbers ≤${spec.numberMax} target ≤${spec.targetMax}`;
}

function pct(x: number | null): string {
  return x === null ? '-' : `${(100 * x).toFixed(1)}%`;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on a held-out task set or a problem file: pass@1 (greedy), pass@k, maj@k, format, lengths')
    .requiredOption('--model <dir>', 'checkpoint directory')
    .option('--tokenizer <path>', 'tokenizer.json or directory (default: the checkpoint\'s)')
    .option('--task <task>', `${TASK_NAMES.join(' or ')}: its fixed held-out set`)
    .option('--data <jsonl>', 'problems from a JSONL file instead')
    .option('--digits <a,b,…>', 'arithmetic: digits of each operand, two or more (default 3,3; one number N means N,N)')
    .option('--ops <list>', 'arithmetic: operators from +,-,* (default +)')
    .option('--count <n|min,max>', 'countdown: how many numbers (default 3,4)')
    .option('--number-max <n>', 'countdown: largest number (default 25)')
    .option('--target-max <n>', 'countdown: largest target (default 100)')
    .option('--problems <n>', 'held-out problems (with --task)', '200')
    .option('--n <k>', 'sampled completions per problem for pass@k and maj@k (0: greedy only)', '8')
    .option('--k <k>', 'k of pass@k and maj@k (default n)')
    .option('--template <t>', `prompt format: ${PROMPT_TEMPLATES.join(' or ')}`, 'r1-zero')
    .option('--open-think', 'r1-zero: end the prompt with <think>')
    .option('--max-tokens <n>', 'tokens per completion', '128')
    .option('--temperature <x>', 'sampling temperature for pass@k / maj@k', '1')
    .option('--top-p <x>', 'nucleus sampling', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--examples <n>', 'greedy completions to show', '3')
    .option('--prefill <text>', 'make every response begin with this text (\\n: newline), graded as part of it; with --open-think, "\\n" forces worked solutions and " </think> <answer>" direct answers')
    .option('--json', 'print one JSON object')
    .action(async (o: EvalFlags) => {
      if ((o.task === undefined) === (o.data === undefined)) throw new Error('give exactly one of --task <task> and --data <jsonl>');
      if (!(PROMPT_TEMPLATES as readonly string[]).includes(o.template)) throw new Error(`--template: expected one of ${PROMPT_TEMPLATES.join(', ')}, got ${JSON.stringify(o.template)}`);
      if (o.openThink && o.template !== 'r1-zero') throw new Error('--open-think applies to the r1-zero template only');
      const n = int('--n', o.n, 0, 1024);
      const k = o.k === undefined ? undefined : int('--k', o.k, 1, Math.max(1, n));
      let problems: Problem[];
      let task: string;
      if (o.data !== undefined) {
        problems = await loadProblems(o.data);
        if (problems.length === 0) throw new Error(`${o.data}: no problems`);
        task = `data:${o.data}`;
      } else {
        const spec = taskSpecFromFlags(o.task!, o);
        problems = heldOutSet(spec, int('--problems', o.problems, 1, 100_000));
        task = describeSpec(spec);
      }
      const ck = await loadForInference(o.model, o.tokenizer);
      const settings = {
        template: o.template as PromptTemplate,
        openThink: o.openThink === true,
        n,
        k,
        maxNewTokens: int('--max-tokens', o.maxTokens, 1, ck.model.config.max_position_embeddings),
        temperature: num('--temperature', o.temperature, 0, 100),
        topP: num('--top-p', o.topP, Number.MIN_VALUE, 1),
        seed: int('--seed', o.seed, 0),
        examples: int('--examples', o.examples, 0, 1000),
        prefill: o.prefill?.replace(/\\n/g, '\n').replace(/\\t/g, '\t'),
      };
      const started = performance.now();
      const r: EvalReport = await evaluateModel(ck.model, ck.tokenizer, problems, settings);
      const seconds = (performance.now() - started) / 1000;
      const { examples, ...metrics } = r;
      if (o.json) {
        const out = {
          task, model: ck.dir, template: settings.template, ...(settings.prefill === undefined ? {} : { prefill: settings.prefill }), max_new_tokens: settings.maxNewTokens, temperature: settings.temperature, top_p: settings.topP, seed: settings.seed,
          ...metrics, seconds: Number(seconds.toFixed(1)),
        };
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const lines = [
        `${ck.name} on ${task}: ${r.problems} problems, ${settings.template} prompt, ${seconds.toFixed(1)} s`,
        `  pass@1 (greedy)  ${pct(r['pass@1'])}`,
        `  pass@${r.k ?? 'k'}           ${pct(r['pass@k'])}${r.k === null ? '' : `   (n = ${n}, T = ${settings.temperature})`}`,
        `  maj@${r.k ?? 'k'}            ${pct(r['maj@k'])}`,
        `  format           ${pct(r.format_rate)}`,
        `  response tokens  ${r.mean_response_tokens.toFixed(1)} (think ${r.mean_think_tokens.toFixed(1)})`,
      ];
      for (const ex of examples) lines.push('', `Q: ${ex.question}  [${ex.accuracy ? 'correct' : 'wrong'}, format ${ex.format}]`, ex.completion);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
