// The R1 distillation recipe at small scale (`nanoseek distill run --config configs/distill.json`):
// from the shipped DeepSeek-V3 MoE teacher, make a student base (dense Llama/Qwen2, or a smaller MoE) of about half its
// active parameters (pretrained on the teacher's corpus, with the teacher's tokenizer), build the
// trace set by rejection sampling, then train four students from that one base:
//   (a) sft       sequence-level distillation: SFT on the traces (what DeepSeek did);
//   (b) kd        logit distillation off-policy: the traces, scored token by token by the teacher;
//   (c) onpolicy  logit distillation on the student's own samples (λ of the steps);
//   (d) grpo      the control: GRPO alone, run until it has trained on as many student tokens as the
//                 largest of (a)–(c) (tokens with a gradient: reply tokens of each update).
// Everything is evaluated on held-out problems (never drawn for traces or training), and one HTML
// report compares them. Every phase keeps its output in the run directory, so `resume` continues
// after the last finished phase (and inside each training run at its last checkpoint).
import { cpus } from 'node:os';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { countParameters, parseModelConfig, presetConfig, PRESET_NAMES, type ModelConfig, type PresetName } from '../../model/config.js';
import { CausalLM } from '../../model/model.js';
import { loadModel, loadModelTokenizer, saveModel } from '../../io/model-file.js';
import { convertModel } from '../../io/convert.js';
import { writeModelCard, type ModelCard } from '../../io/model-card.js';
import { loadForInference } from '../../infer/index.js';
import { readMetrics, METRICS_FILE, type MetricsRecord } from '../../report/index.js';
import { heldOutSet, solutionOf, taskPhrase, writeCorpus, type CorpusOptions, type TaskSpec } from '../../tasks/index.js';
import { evaluateModel, type EvalReport } from '../../eval/evaluate.js';
import { renderDistillReport, type DistillRow } from '../../eval/report.js';
import { checkTrainConfig, parseTrainConfig, type TrainConfig } from '../config.js';
import { train } from '../trainer.js';
import { latestCheckpoint } from '../checkpoint-state.js';
import { parseGrpoConfig, parseTaskSpec, type GrpoConfig } from '../grpo/config.js';
import { trainGrpo } from '../grpo/trainer.js';
import { exportModel } from '../grpo/r1zero.js';
import { modelTeacher, traceProblems, writeTraces, progressPath } from './traces.js';
import { openPhases } from '../phases.js';

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The student: a preset (a dense `nano-dense`, or a DeepSeek-V3 `nano`) with config.json fields
 * replaced (hidden_size, num_hidden_layers, n_routed_experts, …), and its initialisation seed.
 */
export interface StudentShape {
  preset: PresetName;
  /** Dense presets: llama or qwen2. */
  family: 'llama' | 'qwen2' | null;
  seed: number;
  /** config.json fields that replace the preset's. */
  config: Record<string, number>;
}

export interface DistillRecipeConfig {
  /** Checkpoint directory (or GGUF) of the teacher. */
  teacher: string;
  student: StudentShape;
  /** The student base's pretraining corpus (the teacher's own recipe: configs/r1zero.json). */
  corpus: CorpusOptions & { bytes: number };
  /** Pretraining of the student base (model, tokenizer and data filled in). */
  pretrain: TrainConfig;
  traces: { tasks: TaskSpec[]; problems: number; samples: number; keep: number; max_new_tokens: number; temperature: number; seed: number; batch: number };
  /** The three distilled students (model and data filled in). */
  sft: TrainConfig;
  kd: TrainConfig;
  onpolicy: TrainConfig;
  /** The RL-only control; `steps` is where it starts, extended until its token count matches. */
  grpo: GrpoConfig;
  eval: { tasks: TaskSpec[]; problems: number; n: number; max_new_tokens: number; temperature: number; seed: number };
}

/** Stands in for paths the recipe creates, so the sections validate before any work starts. */
const PLACEHOLDER = '<distill run>';
const KNOWN = ['teacher', 'student', 'corpus', 'pretrain', 'traces', 'sft', 'kd', 'onpolicy', 'grpo', 'eval'];

function section(json: Json, key: string, source: string): Json {
  const v = json[key];
  if (!isRecord(v)) throw new Error(`${source}: ${key} = ${JSON.stringify(v) ?? 'missing'}: must be an object`);
  return v;
}

/** Validates a recipe config: its own fields here, the training sections by their parsers. */
export function parseDistillRecipe(json: unknown, source = 'distill config'): DistillRecipeConfig {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  for (const k of Object.keys(json)) if (!KNOWN.includes(k)) throw new Error(`${source}: ${k}: unknown field (known: ${KNOWN.join(', ')})`);
  const fail = (field: string, problem: string): never => {
    throw new Error(`${source}: ${field}: ${problem}`);
  };
  if (typeof json.teacher !== 'string') fail('teacher', 'must be the path of the teacher checkpoint');
  const s = section(json, 'student', source);
  const posInt = (o: Json, k: string, where: string) => {
    if (!(typeof o[k] === 'number' && Number.isSafeInteger(o[k]) && (o[k] as number) >= 1)) fail(`${where}.${k}`, 'must be a positive integer');
    return o[k] as number;
  };
  const preset = s.preset ?? 'nano-dense';
  if (!(PRESET_NAMES as readonly unknown[]).includes(preset)) fail('student.preset', `must be one of ${PRESET_NAMES.join(', ')}`);
  const family = s.family ?? null;
  if (family !== null && family !== 'llama' && family !== 'qwen2') fail('student.family', 'must be "llama" or "qwen2"');
  const shapeKeys = Object.keys(presetConfig(preset as PresetName, { vocabSize: 512 }));
  const config: Record<string, number> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'preset' || k === 'family' || k === 'seed') continue;
    if (!shapeKeys.includes(k)) fail(`student.${k}`, `not a config.json field of preset ${preset}`);
    if (typeof v !== 'number') fail(`student.${k}`, 'must be a number');
    config[k] = v as number;
  }
  const student: StudentShape = { preset: preset as PresetName, family: family as StudentShape['family'], seed: typeof s.seed === 'number' ? s.seed : 0, config };
  studentConfig(student, 512, source);
  const c = section(json, 'corpus', source);
  if (!(typeof c.bytes === 'number' && Number.isSafeInteger(c.bytes) && c.bytes > 0)) fail('corpus.bytes', 'must be a positive integer');
  const sub = (key: string, stage: 'pretrain' | 'sft' | 'distill', data: Json): TrainConfig => {
    const v = section(json, key, source);
    for (const k of ['model', 'tokenizer', 'data']) if (k in v) fail(`${key}.${k}`, 'the recipe fills it in; leave it out');
    const distill = stage === 'distill' ? { ...section(v, 'distill', `${source} (${key})`), teacher: PLACEHOLDER } : undefined;
    return parseTrainConfig({ ...v, stage, model: { init: PLACEHOLDER }, data, ...(distill ? { distill } : {}) }, `${source} (${key})`);
  };
  const traceData = { source: 'jsonl', path: PLACEHOLDER, format: 'r1' };
  const t = section(json, 'traces', source);
  for (const k of Object.keys(t)) if (!['tasks', 'problems', 'samples', 'keep', 'max_new_tokens', 'temperature', 'seed', 'batch'].includes(k)) fail(`traces.${k}`, 'unknown field');
  if (!Array.isArray(t.tasks) || t.tasks.length === 0) fail('traces.tasks', 'must be a non-empty list of task specs');
  const e = section(json, 'eval', source);
  if (!Array.isArray(e.tasks) || e.tasks.length === 0) fail('eval.tasks', 'must be a non-empty list of task specs');
  const g = section(json, 'grpo', source);
  if ('model' in g) fail('grpo.model', 'the recipe fills it in (the student base); leave it out');
  return {
    teacher: json.teacher as string,
    student,
    corpus: c as unknown as DistillRecipeConfig['corpus'],
    pretrain: sub('pretrain', 'pretrain', { source: 'text', path: PLACEHOLDER, val_fraction: 0.01 }),
    traces: {
      tasks: (t.tasks as unknown[]).map((x, i) => parseTaskSpec(x, `traces.tasks[${i}]`, source)),
      problems: posInt(t, 'problems', 'traces'),
      samples: posInt(t, 'samples', 'traces'),
      keep: posInt(t, 'keep', 'traces'),
      max_new_tokens: posInt(t, 'max_new_tokens', 'traces'),
      temperature: typeof t.temperature === 'number' && t.temperature > 0 ? t.temperature : fail('traces.temperature', 'must be a number > 0'),
      seed: typeof t.seed === 'number' ? t.seed : 0,
      batch: typeof t.batch === 'number' ? posInt(t, 'batch', 'traces') : 64,
    },
    sft: sub('sft', 'sft', traceData),
    kd: sub('kd', 'distill', traceData),
    onpolicy: sub('onpolicy', 'distill', traceData),
    grpo: parseGrpoConfig({ ...g, model: { init: PLACEHOLDER } }, `${source} (grpo)`),
    eval: {
      tasks: (e.tasks as unknown[]).map((x, i) => parseTaskSpec(x, `eval.tasks[${i}]`, source)),
      problems: posInt(e, 'problems', 'eval'),
      n: typeof e.n === 'number' ? e.n : 0,
      max_new_tokens: posInt(e, 'max_new_tokens', 'eval'),
      temperature: typeof e.temperature === 'number' ? e.temperature : 1,
      seed: typeof e.seed === 'number' ? e.seed : 0,
    },
  };
}

/** The student's config.json: its preset with the recipe's fields and the teacher's vocabulary, checked. */
export function studentConfig(s: StudentShape, vocabSize: number, source: string, tokens: { bos: number; eos: number } = { bos: 0, eos: 1 }) {
  const base = presetConfig(s.preset, { vocabSize, ...(s.family === null ? {} : { denseFamily: s.family }), bosTokenId: tokens.bos, eosTokenId: tokens.eos });
  return parseModelConfig({ ...base, ...s.config }, `${source} (student)`);
}

export interface DistillRecipeOptions {
  out: string;
  /** A student base checkpoint (with the teacher's tokenizer) instead of pretraining one. */
  base?: string;
  resume?: boolean;
  /** Copy the report, metrics and evaluations here. */
  docsDir?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const RUNS = ['sft', 'kd', 'onpolicy', 'grpo'] as const;
export type RunName = (typeof RUNS)[number];

export interface DistillRecipeResult {
  report: string;
  rows: DistillRow[];
  /** The distilled student with the best held-out greedy pass@1 (ties: the fewest tokens). */
  best: { name: RunName; dir: string };
  seconds: number;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Student tokens with a gradient in a trainer run (reply tokens), from its metrics. */
function trainedTokens(records: readonly MetricsRecord[]): number {
  const last = records[records.length - 1];
  return typeof last?.tokens === 'number' ? last.tokens : 0;
}

/** The same for a GRPO run: every logged step's groups × G × mean response tokens (log_every 1). */
function grpoTokens(records: readonly MetricsRecord[], G: number): number {
  return Math.round(records.reduce((s, r) => s + (r.groups_used as number) * G * (r.response_tokens as number), 0));
}

/** Runs the recipe; see the file comment. */
export async function runDistillRecipe(cfg: DistillRecipeConfig, source: string, o: DistillRecipeOptions): Promise<DistillRecipeResult> {
  const log = o.log ?? (() => {});
  const out = o.out;
  if (!o.resume && (await exists(join(out, 'distill_config.json')))) throw new Error(`${out}: already holds a distill run; pass --resume to continue it, or choose another --out`);
  await mkdir(out, { recursive: true });
  await writeJsonAtomic(join(out, 'distill_config.json'), cfg);
  const { timings, timed } = await openPhases(out, log);
  const stopIfAsked = () => {
    if (o.signal?.aborted) throw new Error('stopped; continue with --resume');
  };
  const sub = (l: string) => log(`  ${l}`);
  const tokenizer = await loadModelTokenizer(cfg.teacher);

  // The student base: the recipe's shape with the teacher's tokenizer, pretrained on the teacher's corpus.
  let base = o.base;
  let pretrainRecords: MetricsRecord[] = [];
  if (base === undefined) {
    const init = join(out, 'student-init');
    const corpusFile = join(out, 'corpus.txt');
    await timed('student base: corpus and initialisation', async () => {
      if (!(await exists(corpusFile))) {
        const w = await writeCorpus(corpusFile, cfg.corpus.bytes, cfg.corpus);
        log(`corpus: ${w.documents} documents, ${(w.bytes / 1e6).toFixed(1)} MB`);
      }
      if (!(await exists(join(init, 'config.json')))) {
        const sc = studentConfig(cfg.student, tokenizer.vocabSize, source, { bos: tokenizer.special.bos ?? 0, eos: tokenizer.special.eos ?? 1 });
        await saveModel(new CausalLM(sc, { seed: cfg.student.seed }), init);
        await tokenizer.save(init);
      }
    });
    const pcfg = { ...cfg.pretrain, model: { init }, tokenizer: { from_init: true as const }, data: { ...(cfg.pretrain.data as object), path: corpusFile } } as TrainConfig;
    await checkTrainConfig(pcfg, `${source} (pretrain)`);
    await timed('student base: pretraining', () => train(pcfg, { out: join(out, 'pretrain'), resume: true, log: sub, signal: o.signal }));
    stopIfAsked();
    base = join(out, 'pretrain', 'latest');
    pretrainRecords = await readMetrics(join(out, 'pretrain', METRICS_FILE));
  }

  // The trace set: the teacher's correct, well-formed answers to training problems.
  const traces = join(out, 'traces.jsonl');
  const t = cfg.traces;
  const traceStats = await timed('traces (teacher, rejection sampling)', async () => {
    // Prompted as the teacher was trained (its model card), else with its chat template.
    const teacher = await loadForInference(cfg.teacher);
    const tm = modelTeacher(cfg.teacher, teacher.model, teacher.tokenizer, teacher.card?.prompt?.template ?? 'r1', teacher.card?.prompt?.open_think ?? false);
    const { problems } = traceProblems({ tasks: t.tasks, count: t.problems, seed: t.seed });
    const done = JSON.parse(await readFile(progressPath(traces), 'utf8').catch(() => 'null')) as { done?: boolean } | null;
    return writeTraces(tm, problems, {
      out: traces, seed: t.seed, batch: t.batch, resume: done !== null, signal: o.signal,
      sampling: { samples: t.samples, keep: t.keep, maxNewTokens: t.max_new_tokens, temperature: t.temperature, topP: 1 },
      onRound: (p) => sub(`${p.problems}/${p.total} problems, ${p.correct}/${p.sampled} correct, kept ${p.kept}, ${Math.round(p.tokens / Math.max(p.elapsed_s, 1e-9))} teacher tok/s`),
    });
  });
  stopIfAsked();

  // The three distilled students, each from the same base.
  const withData = (c: TrainConfig): TrainConfig => ({
    ...c,
    model: { init: base! },
    tokenizer: { from_init: true },
    data: { ...(c.data as object), path: traces } as TrainConfig['data'],
    distill: c.distill === null ? null : { ...c.distill, teacher: cfg.teacher },
  });
  const budget: Record<string, number> = {};
  for (const name of ['sft', 'kd', 'onpolicy'] as const) {
    const c = withData(cfg[name]);
    await checkTrainConfig(c, `${source} (${name})`);
    await timed(`student ${name}`, () => train(c, { out: join(out, name), resume: true, log: sub, signal: o.signal, source: `${source} (${name})` }));
    stopIfAsked();
    budget[name] = trainedTokens(await readMetrics(join(out, name, METRICS_FILE)));
  }

  // The control: GRPO from the same base until it has trained on as many student tokens.
  const target = Math.max(...Object.values(budget));
  const grpoDir = join(out, 'grpo');
  const G = cfg.grpo.group_size;
  await timed('student grpo (control, equal student tokens)', async () => {
    // A resumed recipe continues from the steps the control already ran.
    let steps = Math.max(cfg.grpo.steps, (await latestCheckpoint(grpoDir))?.step ?? 0);
    for (;;) {
      await trainGrpo({ ...cfg.grpo, model: { init: base! }, steps }, { out: grpoDir, resume: true, log: sub, signal: o.signal, source: `${source} (grpo)` });
      stopIfAsked();
      const records = await readMetrics(join(grpoDir, METRICS_FILE));
      const used = grpoTokens(records, G);
      if (used >= target) break;
      // Responses grow as GRPO goes on (R1-Zero's length growth): plan from the latest step's tokens.
      const last = grpoTokens(records.slice(-1), G);
      steps += Math.max(1, Math.ceil((target - used) / Math.max(last, 1)));
      sub(`GRPO has trained on ${used} student tokens of ${target}: continuing to step ${steps}`);
    }
  });
  budget.grpo = grpoTokens(await readMetrics(join(grpoDir, METRICS_FILE)), G);

  // Held-out evaluation of the teacher, the base and the four students.
  const evalDir = join(out, 'eval');
  await mkdir(evalDir, { recursive: true });
  // Every model is prompted the same way: the teacher's chat template (the R1-Zero prompt, opening <think>).
  const evaluate = async (name: string, dir: string): Promise<EvalReport[]> => {
    const file = join(evalDir, `${name}.json`);
    if (await exists(file)) return JSON.parse(await readFile(file, 'utf8')) as EvalReport[];
    const m = await loadModel(dir);
    const tok = await loadModelTokenizer(dir);
    const reports: EvalReport[] = [];
    for (const spec of cfg.eval.tasks) {
      const e = cfg.eval;
      const r = await evaluateModel(m.model, tok, heldOutSet(spec, e.problems), { template: 'r1', n: e.n, maxNewTokens: e.max_new_tokens, temperature: e.temperature, seed: e.seed, examples: 3 });
      sub(`${name}, ${taskPhrase([spec])}: pass@1 ${r['pass@1'].toFixed(3)}${r['pass@k'] === null ? '' : `, pass@${r.k} ${r['pass@k'].toFixed(3)}`}, format ${r.format_rate.toFixed(3)}, ${r.mean_response_tokens.toFixed(1)} tokens`);
      reports.push(r);
    }
    await writeJsonAtomic(file, reports);
    return reports;
  };
  const rows: DistillRow[] = [];
  await timed('held-out evaluation', async () => {
    const entries: [string, string, string][] = [
      ['teacher', cfg.teacher, 'the teacher (DeepSeek-V3 MoE)'],
      ['base', base!, 'student base (pretrained only)'],
      ['sft', join(out, 'sft', 'latest'), '(a) SFT on traces'],
      ['kd', join(out, 'kd', 'latest'), '(b) logit KD, off-policy'],
      ['onpolicy', join(out, 'onpolicy', 'latest'), '(c) logit KD, on-policy'],
      ['grpo', join(grpoDir, 'latest'), '(d) GRPO only (control)'],
    ];
    for (const [name, dir, label] of entries) {
      const reports = await evaluate(name, dir);
      const cfgOf = (await loadModel(dir)).model.config;
      const p = countParameters(cfgOf);
      rows.push({ name, label, architecture: cfgOf.architectures[0], params: p.total, active: p.active, tokens: budget[name] ?? null, reports });
    }
  });

  const distilled = rows.filter((r) => r.name === 'sft' || r.name === 'kd' || r.name === 'onpolicy');
  const bestRow = distilled.reduce((a, b) => (b.reports[0]['pass@1'] > a.reports[0]['pass@1'] || (b.reports[0]['pass@1'] === a.reports[0]['pass@1'] && (b.tokens ?? 0) < (a.tokens ?? 0)) ? b : a));
  const curves: Record<string, MetricsRecord[]> = {};
  for (const name of RUNS) curves[name] = await readMetrics(join(out, name, METRICS_FILE));
  const teacherP = rows[0].active;
  const html = renderDistillReport({
    title: `nanoseek: distilling a DeepSeek-V3 MoE reasoning model into ${studentConfig(cfg.student, tokenizer.vocabSize, source).model_type === 'deepseek_v3' ? 'a smaller MoE' : 'a dense'} student`,
    intro: [
      `Teacher: ${shown(cfg.teacher)}, a DeepSeek-V3-architecture MoE (${(rows[0].params / 1e6).toFixed(2)}M parameters, ${(teacherP / 1e3).toFixed(0)}K active per token) trained with R1-Zero-style GRPO. ` +
        `Student: ${describeStudent(studentConfig(cfg.student, tokenizer.vocabSize, source))} (${(rows[1].params / 1e3).toFixed(0)}K parameters, ${(rows[1].active / 1e3).toFixed(0)}K active: ${(rows[1].active / teacherP).toFixed(2)}× the teacher's active ones) with the teacher's tokenizer, ` +
        (o.base === undefined ? `pretrained from scratch on the teacher's generated corpus (${(cfg.corpus.bytes / 1e6).toFixed(0)} MB, ${cfg.pretrain.steps} steps).` : `taken from ${o.base}.`),
      `Traces: the teacher answered ${traceStats.problems} training problems (${taskPhrase(t.tasks)}) ${t.samples} times each at temperature ${t.temperature}; ` +
        `${traceStats.correct} of ${traceStats.sampled} answers were correct, and ${traceStats.kept} correct, well-formed ones (at most ${t.keep} per problem) became SFT records with their reasoning.`,
      `Students, each from the same base: (a) SFT on the traces (${cfg.sft.steps} steps); (b) logit KD on the traces (${describeKd(cfg.kd)}); (c) logit KD on the student's own samples (${describeKd(cfg.onpolicy)}); ` +
        `(d) GRPO alone (${cfg.grpo.prompts_per_step} prompts × ${G} samples per step, rewards ${Object.entries(cfg.grpo.rewards).map(([k, w]) => `${w}·${k}`).join(' + ')}), run until it had trained on at least as many student tokens (reply tokens with a gradient) as the largest of (a)–(c).`,
      `Evaluation on the fixed held-out split (never drawn for traces or training): ${cfg.eval.problems} problems of ${taskPhrase(cfg.eval.tasks)}, greedy pass@1` +
        `${cfg.eval.n > 0 ? `, pass@${cfg.eval.n} from ${cfg.eval.n} samples at temperature ${cfg.eval.temperature}` : ''}, at most ${cfg.eval.max_new_tokens} tokens, every model prompted with the teacher's chat template. ` +
        `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, shared with other jobs.`,
    ],
    rows,
    best: bestRow.name,
    curves,
    pretrainRecords,
    timings,
    details: JSON.stringify({ ...cfg, teacher: shown(cfg.teacher) }, null, 2),
  });
  const report = join(out, 'report.html');
  await writeFileAtomic(report, html);
  if (o.docsDir !== undefined) {
    await mkdir(o.docsDir, { recursive: true });
    await writeFile(join(o.docsDir, 'index.html'), html);
    for (const name of RUNS) await writeFile(join(o.docsDir, `${name}-metrics.jsonl`), await readFile(join(out, name, METRICS_FILE)));
    await writeJsonAtomic(join(o.docsDir, 'eval.json'), { rows: rows.map((r) => ({ ...r, reports: r.reports.map(({ examples: _, ...rest }) => rest) })), best: bestRow.name, timings, traces: traceStats });
  }
  const bestName = bestRow.name as RunName;
  return { report, rows, best: { name: bestName, dir: join(out, bestName, 'latest') }, seconds: timings.reduce((s, x) => s + x.seconds, 0) };
}

/** A model's shape in words: "a dense Llama (4 layers × 96, GQA 4/2 heads)", "a DeepSeek-V3 MoE (…)". */
function describeStudent(c: ModelConfig): string {
  const head = `${c.num_hidden_layers} layers × ${c.hidden_size}`;
  if (c.model_type === 'deepseek_v3') return `a smaller DeepSeek-V3 MoE (${head}, MLA, ${c.n_routed_experts} routed experts, top-${c.num_experts_per_tok}, 1 shared)`;
  return `a dense ${c.model_type === 'llama' ? 'Llama' : 'Qwen2'} (${head}, GQA ${c.num_attention_heads}/${c.num_key_value_heads} heads)`;
}

/** A path as a reader of the report or card should see it: relative to where the command ran. */
function shown(path: string): string {
  return relative(process.cwd(), path) || path;
}

function describeKd(c: TrainConfig): string {
  const d = c.distill!;
  const div = d.divergence === 'jsd' ? `JSD β = ${d.beta}` : `${d.divergence} KL`;
  return `${div}, τ = ${d.temperature}, α = ${d.alpha}, λ = ${d.lambda}, ${c.steps} steps`;
}

/**
 * Ships a student: a Hugging Face directory (BF16 weights, greedy generation config, the teacher's
 * chat template, a model card measured on the exported weights) with a GGUF of it inside (F32, so
 * llama.cpp decodes exactly the weights nanoseek does).
 */
export async function exportStudent(from: string, to: string, cfg: DistillRecipeConfig, info: { name: RunName; source: string; summary: string }): Promise<{ dir: string; gguf: string; card: ModelCard }> {
  await exportModel(from, to, 'BF16');
  const { model } = await loadModel(to);
  const tokenizer = await loadModelTokenizer(to);
  const spec = cfg.eval.tasks[0];
  const problems = heldOutSet(spec, cfg.eval.problems);
  const r = await evaluateModel(model, tokenizer, problems, { template: 'r1', n: 0, maxNewTokens: cfg.eval.max_new_tokens, temperature: 1, seed: 0, examples: problems.length });
  const examples: string[] = [];
  const answers = new Set<string>();
  r.examples.forEach((e, i) => {
    const answer = solutionOf(problems[i]) ?? e.question;
    if (e.accuracy === 1 && examples.length < 4 && !answers.has(answer)) {
      examples.push(e.question);
      answers.add(answer);
    }
  });
  const p = countParameters(model.config);
  const card: ModelCard = {
    description:
      `${describeStudent(model.config).replace(/^a/, 'A')} student (${(p.total / 1e3).toFixed(0)}K parameters, ${(p.active / 1e3).toFixed(0)}K active) distilled from ${shown(cfg.teacher)}, a DeepSeek-V3 MoE reasoning model, ` +
      `on ${taskPhrase(cfg.traces.tasks)}: ${info.summary}. It reasons inside <think>, then answers ` +
      `(held-out ${taskPhrase([spec])}: greedy pass@1 ${r['pass@1'].toFixed(3)}, ${r.mean_response_tokens.toFixed(0)} tokens per answer, as exported in BF16). ` +
      'A demonstration of the distillation recipe, not an assistant: anything else gets a made-up answer.',
    examples,
    prompt: { template: 'r1', open_think: false },
    task: { ...spec },
    source: info.source,
  };
  await writeModelCard(to, card);
  const gguf = join(to, `${basename(to)}-f32.gguf`);
  await convertModel(to, gguf, { type: 'f32' });
  return { dir: to, gguf, card };
}
