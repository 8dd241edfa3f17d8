// The R1-Zero reproduction at small scale, end to end: write the pretraining corpus, learn a
// tokenizer, pretrain a base model (or take a given one), evaluate it on held-out problems, train it
// with GRPO from the R1-Zero prompt, evaluate again, and write one HTML report. Every phase keeps its
// output under the run directory, so `resume` picks up after the last finished phase (and inside
// pretraining or GRPO at their last checkpoint).
import { cpus } from 'node:os';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { countParameters } from '../../model/config.js';
import { loadModel, saveModel } from '../../io/model-file.js';
import { writeModelCard, type ModelCard } from '../../io/model-card.js';
import { readMetrics, METRICS_FILE } from '../../report/index.js';
import { corpusDocuments, DEFAULT_MIX, heldOutSet, solutionOf, taskPhrase, writeCorpus, ZERO_TEMPLATE, type CorpusMix, type CorpusOptions, type TaskSpec } from '../../tasks/index.js';
import { loadTokenizer, r1ZeroChatTemplate, setChatTemplate, trainTokenizer, type Tokenizer } from '../../tokenizer/index.js';
import { evaluateModel, type EvalReport } from '../../eval/evaluate.js';
import { renderR1ZeroReport, type TaskComparison } from '../../eval/report.js';
import { checkTrainConfig, parseTrainConfig, type TrainConfig } from '../config.js';
import { trainGrpo, GRPO_CONFIG_FILE } from './trainer.js';
import { parseGrpoConfig, parseTaskSpec, type GrpoConfig } from './config.js';
import { train } from '../trainer.js';
import { openPhases } from '../phases.js';

export interface R1ZeroEval {
  tasks: TaskSpec[];
  /** Held-out problems per task. */
  problems: number;
  /** Samples per problem for pass@k and maj@k. */
  n: number;
  max_new_tokens: number;
  temperature: number;
  seed: number;
  /** Greedy completions shown per task in the report. */
  examples: number;
}

export interface R1ZeroConfig {
  corpus: CorpusOptions & { bytes: number };
  tokenizer: { vocab_size: number; documents: number };
  /** A pretraining config without model.init, tokenizer and data (the pipeline fills them in). */
  pretrain: TrainConfig;
  /** A GRPO config without model.init (the base model). */
  grpo: GrpoConfig;
  eval: R1ZeroEval;
  /** Weights of the exported models. */
  export_dtype: 'F32' | 'BF16';
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Stands in for paths the pipeline creates, so the sections validate before any work starts. */
const PLACEHOLDER = '<r1zero run>';

function section(json: Json, key: string, source: string): Json {
  const v = json[key];
  if (!isRecord(v)) throw new Error(`${source}: ${key} = ${JSON.stringify(v) ?? 'missing'}: must be an object`);
  return v;
}

/** Validates an r1zero config: its own fields here, the pretrain and grpo sections by their parsers. */
export function parseR1ZeroConfig(json: unknown, source = 'r1zero config'): R1ZeroConfig {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  for (const k of Object.keys(json)) {
    if (!['corpus', 'tokenizer', 'pretrain', 'grpo', 'eval', 'export_dtype'].includes(k)) throw new Error(`${source}: ${k}: unknown field (known: corpus, tokenizer, pretrain, grpo, eval, export_dtype)`);
  }
  const fail = (field: string, problem: string): never => {
    throw new Error(`${source}: ${field}: ${problem}`);
  };
  const c = section(json, 'corpus', source);
  const corpusFields = ['seed', 'bytes', 'maxDigits', 'ops', 'arithmetic', 'countdown', 'mix', 'taggedWorked'];
  for (const k of Object.keys(c)) if (!corpusFields.includes(k)) fail(`corpus.${k}`, `unknown field (known: ${corpusFields.join(', ')})`);
  if (!(typeof c.bytes === 'number' && Number.isSafeInteger(c.bytes) && c.bytes > 0)) fail('corpus.bytes', 'must be a positive integer');
  // corpusDocuments checks the rest (digits, ops, mix) on its first document.
  try {
    corpusDocuments(c as CorpusOptions).next();
  } catch (err) {
    fail('corpus', (err as Error).message);
  }
  const t = section(json, 'tokenizer', source);
  const vocab = t.vocab_size, docs = t.documents;
  if (!(Number.isSafeInteger(vocab) && (vocab as number) >= 300)) fail('tokenizer.vocab_size', 'must be an integer >= 300');
  if (!(Number.isSafeInteger(docs) && (docs as number) >= 1)) fail('tokenizer.documents', 'must be a positive integer');
  if (Object.keys(t).some((k) => k !== 'vocab_size' && k !== 'documents')) fail('tokenizer', 'known fields: vocab_size, documents');
  const pre = section(json, 'pretrain', source);
  if ('data' in pre || 'tokenizer' in pre) fail('pretrain', 'data and tokenizer come from the corpus and tokenizer sections; leave them out');
  const pretrain = parseTrainConfig(
    { ...pre, stage: 'pretrain', tokenizer: { path: PLACEHOLDER }, data: { source: 'text', path: PLACEHOLDER, val_fraction: 0.01 } },
    `${source} (pretrain)`,
  );
  if ('init' in pretrain.model) fail('pretrain.model', 'must be a preset: give a base checkpoint with --base instead');
  const g = section(json, 'grpo', source);
  if ('model' in g) fail('grpo.model', 'the base model comes from pretraining or --base; leave it out');
  const grpo = parseGrpoConfig({ ...g, model: { init: PLACEHOLDER } }, `${source} (grpo)`);
  const e = section(json, 'eval', source);
  const int = (k: string, lo: number) => {
    const v = e[k];
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= lo)) fail(`eval.${k}`, `must be an integer >= ${lo}`);
    return v as number;
  };
  if (!Array.isArray(e.tasks) || e.tasks.length === 0) fail('eval.tasks', 'must be a non-empty list of task specs');
  for (const k of Object.keys(e)) if (!['tasks', 'problems', 'n', 'max_new_tokens', 'temperature', 'seed', 'examples'].includes(k)) fail(`eval.${k}`, 'unknown field');
  const temperature = e.temperature;
  if (!(typeof temperature === 'number' && temperature > 0 && temperature <= 100)) fail('eval.temperature', 'must be a number in (0, 100]');
  const evalCfg: R1ZeroEval = {
    tasks: (e.tasks as unknown[]).map((s, i) => parseTaskSpec(s, `eval.tasks[${i}]`, source)),
    problems: int('problems', 1),
    n: int('n', 1),
    max_new_tokens: int('max_new_tokens', 1),
    temperature: temperature as number,
    seed: int('seed', 0),
    examples: int('examples', 0),
  };
  const dtype = json.export_dtype ?? 'BF16';
  if (dtype !== 'F32' && dtype !== 'BF16') fail('export_dtype', 'must be "F32" or "BF16"');
  return { corpus: c as unknown as R1ZeroConfig['corpus'], tokenizer: { vocab_size: vocab as number, documents: docs as number }, pretrain, grpo, eval: evalCfg, export_dtype: dtype as 'F32' | 'BF16' };
}

/**
 * Writes a model with its tokenizer as a self-contained checkpoint directory (the shipped models),
 * with `chatTemplate` in its tokenizer_config.json when given.
 */
export async function exportModel(from: string, to: string, dtype: 'F32' | 'BF16', chatTemplate?: string): Promise<void> {
  const { model } = await loadModel(from);
  const tokenizer = await loadTokenizer(from);
  // Greedy decoding: what the reported pass@1 measures, and the best a model this small does.
  await saveModel(model, to, { dtype, generationConfig: { do_sample: false } });
  await tokenizer.save(to);
  if (chatTemplate !== undefined) await setChatTemplate(to, chatTemplate);
}

/** Which of the two exported models a card describes. */
export type ExportedRole = 'base' | 'r1zero';

/** Example questions a card offers: greedy answers checked correct, distinct answers. */
const CARD_EXAMPLES = 4;

/**
 * The model card of an exported model, measured on the exported weights themselves: held-out greedy
 * pass@1 on the recipe's evaluation tasks, and example questions those greedy answers got right
 * (what the chat page offers to click). Also records the prompt format and task, so `eval` and
 * `tasks sample` default to how the model was trained.
 */
export async function exportedModelCard(dir: string, cfg: R1ZeroConfig, role: ExportedRole, source: string): Promise<ModelCard> {
  const { model } = await loadModel(dir);
  const tokenizer = await loadTokenizer(dir);
  const p = countParameters(model.config);
  const scores: string[] = [];
  const examples: string[] = [];
  const answers = new Set<string>();
  for (const spec of cfg.eval.tasks) {
    const problems = heldOutSet(spec, cfg.eval.problems);
    const r = await evaluateModel(model, tokenizer, problems, {
      template: cfg.grpo.template, openThink: cfg.grpo.open_think, n: 0, maxNewTokens: cfg.eval.max_new_tokens, temperature: 1, seed: 0, examples: problems.length,
    });
    scores.push(`held-out ${taskPhrase([spec])}: greedy pass@1 ${r['pass@1'].toFixed(3)}, ${r.mean_response_tokens.toFixed(0)} tokens per answer`);
    r.examples.forEach((e, i) => {
      const answer = solutionOf(problems[i]) ?? e.question;
      if (e.accuracy === 1 && examples.length < CARD_EXAMPLES && !answers.has(answer)) {
        examples.push(e.question);
        answers.add(answer);
      }
    });
  }
  const trained = cfg.grpo.data.source === 'tasks' ? taskPhrase(cfg.grpo.data.tasks) : taskPhrase(cfg.eval.tasks);
  const size = `${(p.total / 1e6).toFixed(2)}M-parameter DeepSeek-V3-style model (${(p.active / 1e3).toFixed(0)}K active per token)`;
  const description = role === 'r1zero'
    ? `Trained on ${trained} and knows nothing else: it reasons inside <think>, then answers. ` +
      `A ${size} pretrained from scratch on generated text, then trained with R1-Zero-style GRPO (${scores.join('; ')}). ` +
      'A demonstration of the training pipeline, not an assistant: anything else gets a made-up answer.'
    : `Answers ${taskPhrase(cfg.eval.tasks)} at once, without reasoning, and knows nothing else. ` +
      `A ${size} pretrained from scratch on generated text, before reinforcement learning (${scores.join('; ')}). ` +
      'A demonstration of the training pipeline, not an assistant: anything else gets a made-up answer.';
  return {
    description,
    examples,
    prompt: { template: cfg.grpo.template, open_think: cfg.grpo.template === 'r1-zero' && cfg.grpo.open_think },
    task: { ...cfg.eval.tasks[0] },
    source,
  };
}

export interface R1ZeroOptions {
  out: string;
  /** Start from this base checkpoint instead of pretraining one. */
  base?: string;
  /** Continue a run directory that already holds phases. */
  resume?: boolean;
  /** Write nano-base and nano-r1zero here. */
  exportDir?: string;
  /** Copy the report, metrics and evaluations here. */
  docsDir?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface R1ZeroResult {
  report: string;
  base: string;
  final: string;
  comparisons: TaskComparison[];
  seconds: number;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

function describeTask(spec: TaskSpec): string {
  return spec.task === 'arithmetic' ? `${spec.digits.join('×')}-digit ${spec.ops.join(' ')}` : `countdown (${spec.count.join('–')} numbers ≤ ${spec.numberMax}, target ≤ ${spec.targetMax})`;
}

const KIND_NAMES: Record<keyof CorpusMix, string> = {
  facts: 'question lists with direct answers',
  worked: 'narrated column arithmetic',
  scratch: 'terse scratch work (columns, or one operation per line)',
  columns: 'place-value drills',
  tagged: 'single problems in the think/answer layout',
  countdown: 'narrated Countdown searches',
  countdownFacts: 'Countdown solutions',
};

function describeCorpus(c: CorpusOptions): string {
  const mix = { ...DEFAULT_MIX, ...c.mix };
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  const kinds = (Object.keys(mix) as (keyof CorpusMix)[]).filter((k) => mix[k] > 0).map((k) => `${Math.round((100 * mix[k]) / total)}% ${KIND_NAMES[k]}`);
  const arithmetic = c.arithmetic ? c.arithmetic.map(describeTask).join(', ') : `${(c.ops ?? ['+', '-', '*']).join(' ')} with operands of up to ${c.maxDigits ?? 4} digits`;
  return `${arithmetic}: ${kinds.join(', ')}`;
}

async function evaluateAll(dir: string, cfg: R1ZeroConfig, file: string, log: (l: string) => void): Promise<EvalReport[]> {
  if (await exists(file)) return JSON.parse(await readFile(file, 'utf8')) as EvalReport[];
  const { model } = await loadModel(dir);
  const tokenizer = await loadTokenizer(dir);
  const reports: EvalReport[] = [];
  for (const spec of cfg.eval.tasks) {
    const r = await evaluateModel(model, tokenizer, heldOutSet(spec, cfg.eval.problems), {
      template: cfg.grpo.template,
      openThink: cfg.grpo.open_think,
      n: cfg.eval.n,
      maxNewTokens: cfg.eval.max_new_tokens,
      temperature: cfg.eval.temperature,
      seed: cfg.eval.seed,
      examples: cfg.eval.examples,
    });
    log(`  ${describeTask(spec)}: pass@1 ${r['pass@1'].toFixed(3)}, pass@${r.k} ${r['pass@k']!.toFixed(3)}, maj@${r.k} ${r['maj@k']!.toFixed(3)}, format ${r.format_rate.toFixed(3)}, ${r.mean_response_tokens.toFixed(1)} tokens (think ${r.mean_think_tokens.toFixed(1)})`);
    reports.push(r);
  }
  await writeJsonAtomic(file, reports);
  return reports;
}

/** Learns the tokenizer on corpus documents plus the prompt frame (which pretraining never shows). */
async function makeTokenizer(cfg: R1ZeroConfig, dir: string): Promise<Tokenizer> {
  const texts: string[] = [];
  for (const d of corpusDocuments({ ...cfg.corpus, seed: (cfg.corpus.seed ?? 0) + 1 })) {
    if (texts.push(d.text) >= cfg.tokenizer.documents) break;
  }
  // Real tokenizers learn from general text and so cut the template's English into words; ours sees
  // the frame a few times for the same effect. Only the tokenizer sees it, never the model.
  const frames = Math.max(1, Math.round(cfg.tokenizer.documents / 100));
  for (let i = 0; i < frames; i++) texts.push(ZERO_TEMPLATE.replace('{question}', ''));
  const tokenizer = await trainTokenizer(texts, { vocabSize: cfg.tokenizer.vocab_size });
  await tokenizer.save(dir);
  await setChatTemplate(dir, r1ZeroChatTemplate(cfg.grpo.open_think));
  return loadTokenizer(dir);
}

/** Runs the whole reproduction; see the file comment. */
export async function runR1Zero(cfg: R1ZeroConfig, source: string, o: R1ZeroOptions): Promise<R1ZeroResult> {
  const log = o.log ?? (() => {});
  const out = o.out;
  if (!o.resume && (await exists(join(out, 'r1zero_config.json')))) throw new Error(`${out}: already holds an r1zero run; pass --resume to continue it, or choose another --out`);
  await mkdir(out, { recursive: true });
  await writeJsonAtomic(join(out, 'r1zero_config.json'), cfg);
  const { timings, timed } = await openPhases(out, log);
  const stopIfAsked = () => {
    if (o.signal?.aborted) throw new Error('stopped; continue with --resume');
  };

  let base = o.base;
  let pretrainDir: string | null = null;
  if (base === undefined) {
    const corpusFile = join(out, 'corpus.txt');
    const tokDir = join(out, 'tokenizer');
    await timed('corpus and tokenizer', async () => {
      if (!(await exists(corpusFile))) {
        const w = await writeCorpus(corpusFile, cfg.corpus.bytes, cfg.corpus);
        log(`corpus: ${w.documents} documents, ${(w.bytes / 1e6).toFixed(1)} MB, ${w.problems} problems`);
      }
      if (!(await exists(join(tokDir, 'tokenizer.json')))) {
        const t = await makeTokenizer(cfg, tokDir);
        log(`tokenizer: ${t.vocabSize} tokens`);
      }
    });
    pretrainDir = join(out, 'pretrain');
    const pcfg = parseTrainConfig({ ...cfg.pretrain, tokenizer: { path: tokDir }, data: { source: 'text', path: corpusFile, val_fraction: 0.01 } }, `${source} (pretrain)`);
    await checkTrainConfig(pcfg, `${source} (pretrain)`);
    await timed('pretraining', () => train(pcfg, { out: pretrainDir!, resume: true, log: (l) => log(`  ${l}`), signal: o.signal }));
    stopIfAsked();
    base = join(pretrainDir, 'latest');
  }
  const baseModel = (await loadModel(base)).model;
  const params = countParameters(baseModel.config);

  const before = await timed('evaluation of the base model', () => evaluateAll(base!, cfg, join(out, 'eval-before.json'), log));
  const grpoDir = join(out, 'grpo');
  const gcfg: GrpoConfig = { ...cfg.grpo, model: { init: base } };
  await timed('GRPO', () => trainGrpo(gcfg, { out: grpoDir, resume: true, log: (l) => log(`  ${l}`), signal: o.signal, source }));
  stopIfAsked();
  const final = join(grpoDir, 'latest');
  const after = await timed('evaluation after GRPO', () => evaluateAll(final, cfg, join(out, 'eval-after.json'), log));

  const comparisons = cfg.eval.tasks.map((spec, i) => ({ task: describeTask(spec), before: before[i], after: after[i] }));
  const grpoRecords = await readMetrics(join(grpoDir, METRICS_FILE));
  const pretrainRecords = pretrainDir === null ? [] : await readMetrics(join(pretrainDir, METRICS_FILE));
  const g = cfg.grpo;
  const tasks = g.data.source === 'tasks' ? g.data.tasks.map(describeTask).join(', ') : g.data.path;
  const html = renderR1ZeroReport({
    title: 'nanoseek: R1-Zero at small scale',
    intro: [
      `A ${(params.total / 1e6).toFixed(2)}M-parameter DeepSeek-V3-style model (${(params.active / 1e6).toFixed(2)}M active: MLA attention, ` +
        `${baseModel.moeLayers().length} MoE layers) ${pretrainDir === null ? `taken from ${base}` : `pretrained from scratch on a ${(cfg.corpus.bytes / 1e6).toFixed(0)} MB generated corpus (${describeCorpus(cfg.corpus)})`}. ` +
        'In the corpus some solutions are laid out as <think>…</think> <answer>…</answer>, mostly as direct answers and less often with the worked steps; the R1-Zero prompt itself never appears in it.',
      `GRPO from the R1-Zero prompt${g.open_think ? ' (ending in <think>)' : ''} on ${tasks}: ${g.steps} steps of ${g.prompts_per_step} prompts × ${g.group_size} samples ` +
        `(temperature ${g.temperature}, at most ${g.max_new_tokens} tokens), rewards ${Object.entries(g.rewards).map(([k, w]) => `${w}·${k}`).join(' + ')}, ` +
        `μ = ${g.mu}, ε = ${g.eps_low}${g.eps_high !== null ? `/${g.eps_high}` : ''}, β = ${g.beta}, ${g.aggregation} aggregation${g.dynamic_sampling ? ', dynamic sampling' : ''}, lr ${g.lr}.`,
      `Evaluation on the fixed held-out split (never drawn for training): ${cfg.eval.problems} problems per task, pass@1 by greedy decoding, ` +
        `pass@${cfg.eval.n} (unbiased estimator) and maj@${cfg.eval.n} from ${cfg.eval.n} samples at temperature ${cfg.eval.temperature}, at most ${cfg.eval.max_new_tokens} tokens. ` +
        `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}.`,
    ],
    comparisons,
    grpoRecords,
    pretrainRecords,
    timings,
    details: JSON.stringify(cfg, null, 2),
  });
  const report = join(out, 'report.html');
  await writeFileAtomic(report, html);

  if (o.exportDir !== undefined) {
    // Served models must be prompted as in RL; the R1 chat layout is already the tokenizer's own.
    const chat = cfg.grpo.template === 'r1-zero' ? r1ZeroChatTemplate(cfg.grpo.open_think) : undefined;
    for (const [role, from] of [['base', base], ['r1zero', final]] as const) {
      const to = join(o.exportDir, `nano-${role}`);
      await exportModel(from, to, cfg.export_dtype, chat);
      await writeModelCard(to, await exportedModelCard(to, cfg, role, `nanoseek r1zero --config ${source}`));
    }
    log(`exported ${join(o.exportDir, 'nano-base')} and ${join(o.exportDir, 'nano-r1zero')} (${cfg.export_dtype})`);
  }
  if (o.docsDir !== undefined) {
    await mkdir(o.docsDir, { recursive: true });
    await writeFile(join(o.docsDir, 'index.html'), html);
    await writeFile(join(o.docsDir, 'grpo-metrics.jsonl'), await readFile(join(grpoDir, METRICS_FILE)));
    await writeFile(join(o.docsDir, 'grpo-config.json'), await readFile(join(grpoDir, GRPO_CONFIG_FILE)));
    if (pretrainDir !== null) await writeFile(join(o.docsDir, 'pretrain-metrics.jsonl'), await readFile(join(pretrainDir, METRICS_FILE)));
    await writeJsonAtomic(join(o.docsDir, 'eval.json'), { before: stripExamples(before), after: stripExamples(after), tasks: cfg.eval.tasks, timings });
  }
  return { report, base, final, comparisons, seconds: timings.reduce((s, t) => s + t.seconds, 0) };
}

function stripExamples(reports: readonly EvalReport[]): Omit<EvalReport, 'examples'>[] {
  return reports.map(({ examples: _, ...rest }) => rest);
}
