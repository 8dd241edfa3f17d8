// `nanoseek eval`: a model on a task's fixed held-out set (or a problem file): greedy pass@1, pass@k and
// maj@k from n samples, format compliance and lengths; one JSON object with --json.
import type { Command } from 'commander';
import { evaluateModel, type EvalReport } from '../../eval/evaluate.js';
import { loadFromFlags } from './generate.js';
import { heldOutSet, loadProblems, PROMPT_TEMPLATES, TASK_NAMES, type Problem } from '../../tasks/index.js';
import { startExperts, withExpertFlags, type ExpertFlags } from '../expert-flags.js';
import { cardTaskSpec, describeSpec, formatHint, promptFrom, intFlag as int, numFlag as num, taskNameFrom, taskSpecFromFlags, withTaskSpecFlags, type TaskSpecFlags } from '../task-flags.js';

interface EvalFlags extends TaskSpecFlags, ExpertFlags {
  model?: string;
  tokenizer?: string;
  finiteCheck: boolean;
  task?: string;
  data?: string;
  problems: string;
  n: string;
  k?: string;
  template?: string;
  openThink?: boolean;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  examples: string;
  prefill?: string;
  json?: boolean;
}

function pct(x: number | null): string {
  return x === null ? '-' : `${(100 * x).toFixed(1)}%`;
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a model on a held-out task set or a problem file: pass@1 (greedy), pass@k, maj@k, format, lengths')
    .option('--model <path>', 'checkpoint directory or .gguf file (default: models/nano-r1zero in the package)')
    .option('--tokenizer <path>', 'tokenizer.json or directory (default: the checkpoint\'s)')
    .option('--no-finite-check', 'skip the check that every weight is finite (faster loading of large models)')
    .option('--task <task>', `${TASK_NAMES.join(' or ')}: its fixed held-out set (default: the model card's task)`)
    .option('--data <jsonl>', 'problems from a JSONL file instead');
  withExpertFlags(withTaskSpecFlags(cmd))
    .option('--problems <n>', 'held-out problems (with --task)', '200')
    .option('--n <k>', 'sampled completions per problem for pass@k and maj@k (0: greedy only)', '8')
    .option('--k <k>', 'k of pass@k and maj@k (default n)')
    .option('--template <t>', `prompt format: ${PROMPT_TEMPLATES.join(' or ')} (default: the model card's, else r1-zero)`)
    .option('--open-think', 'r1-zero: end the prompt with <think> (default: the model card\'s choice)')
    .option('--no-open-think', 'r1-zero: do not end the prompt with <think>')
    .option('--max-tokens <n>', 'tokens per completion', '128')
    .option('--temperature <x>', 'sampling temperature for pass@k / maj@k', '1')
    .option('--top-p <x>', 'nucleus sampling', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--examples <n>', 'greedy completions to show', '3')
    .option('--prefill <text>', 'make every response begin with this text (\\n: newline), graded as part of it; with --open-think, "\\n" forces worked solutions and " </think> <answer>" direct answers')
    .option('--json', 'print one JSON object')
    .action(async (o: EvalFlags) => {
      if (o.task !== undefined && o.data !== undefined) throw new Error('give one of --task <task> and --data <jsonl>, not both');
      const n = int('--n', o.n, 0, 1024);
      const k = o.k === undefined ? undefined : int('--k', o.k, 1, Math.max(1, n));
      const ck = await loadFromFlags(o);
      const cardSpec = cardTaskSpec(ck.card, `${ck.dir}/model_card.json`);
      const prompt = promptFrom(o, ck.card);
      let problems: Problem[];
      let task: string;
      if (o.data !== undefined) {
        problems = await loadProblems(o.data);
        if (problems.length === 0) throw new Error(`${o.data}: no problems`);
        task = `data:${o.data}`;
      } else {
        if (o.task === undefined && cardSpec === null) throw new Error(`${ck.name} has no model card naming its task: give --task <${TASK_NAMES.join('|')}> or --data <jsonl>`);
        const spec = taskSpecFromFlags(o.task === undefined ? cardSpec!.task : taskNameFrom('--task', o.task), o, '+', cardSpec);
        problems = heldOutSet(spec, int('--problems', o.problems, 1, 100_000));
        task = describeSpec(spec);
      }
      const settings = {
        template: prompt.template,
        openThink: prompt.openThink,
        n,
        k,
        maxNewTokens: int('--max-tokens', o.maxTokens, 1, ck.model.config.max_position_embeddings),
        temperature: num('--temperature', o.temperature, 0, 100),
        topP: num('--top-p', o.topP, Number.MIN_VALUE, 1),
        seed: int('--seed', o.seed, 0),
        examples: int('--examples', o.examples, 0, 1000),
        prefill: o.prefill?.replace(/\\n/g, '\n').replace(/\\t/g, '\t'),
      };
      const experts = await startExperts(ck.model, o, ck.dir, 'eval');
      const started = performance.now();
      const r: EvalReport = await evaluateModel(ck.model, ck.tokenizer, problems, settings);
      const seconds = (performance.now() - started) / 1000;
      await experts.stop();
      const summary = experts.summary();
      if (summary !== null) process.stderr.write(`${summary}\n`);
      if (r.format_rate === 0) {
        process.stderr.write(`warning: no greedy completion had the <think>…</think> <answer>…</answer> format (format 0%), so nothing could be graded right; ${formatHint(settings.template, settings.openThink)}\n`);
      }
      const { examples, ...metrics } = r;
      if (o.json) {
        const out = {
          task, model: ck.dir, template: settings.template, open_think: settings.openThink, ...(settings.prefill === undefined ? {} : { prefill: settings.prefill }), max_new_tokens: settings.maxNewTokens, temperature: settings.temperature, top_p: settings.topP, seed: settings.seed,
          ...metrics, seconds: Number(seconds.toFixed(1)),
        };
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const promptName = `${settings.template}${settings.openThink ? ' + <think>' : ''} prompt (from ${prompt.from})`;
      const lines = [
        `${ck.name} on ${task}: ${r.problems} problems, ${promptName}, ${seconds.toFixed(1)} s`,
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
