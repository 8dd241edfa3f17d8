// Reasoning traces from a teacher, the data DeepSeek distilled its small models on: the teacher
// answers training problems G times each, the grader keeps the correct, well-formed answers
// (rejection sampling), and each kept answer becomes an SFT record {prompt, completion} with its
// reasoning (`<think>…</think>`) kept, in the shape `nanoseek train sft` reads (format r1: the
// question goes through the student's chat template).
//
// The teacher is a model nanoseek loads (checkpoint directory or GGUF, sampled in-process) or an
// OpenAI-compatible server on this machine (`nanoseek serve`, llama.cpp's server). Problems come in
// rounds of `batch`; after each round its records are appended to the output and a progress file
// beside it records how far the run got (and the output's length then), so a run killed at any
// moment resumes where its last round ended, with the same records an uninterrupted run writes.
// Held-out problems (the evaluation split) are never put to the teacher.
import { open, readFile, stat, truncate } from 'node:fs/promises';
import type { CausalLM } from '../../model/model.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import { hashKey, isHeldOut, questionText, sampleProblem, type Problem, type PromptTemplate, type TaskSpec } from '../../tasks/index.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { isLoopbackHost } from '../../util/net.js';
import { Rng } from '../../util/rng.js';
import { keepCorrect, sampleReplies } from '../grpo/reject.js';

export interface TraceSampling {
  /** Answers per problem (G). */
  samples: number;
  /** Distinct correct answers kept per problem at most. */
  keep: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
}

/** A teacher answers problems: `samples` whole replies (`<think>…</think> <answer>…</answer>`) each. */
export interface Teacher {
  /** What the progress file records, so a resumed run is checked to use the same teacher. */
  readonly name: string;
  answer(problems: readonly Problem[], s: TraceSampling, seed: number): Promise<{ replies: string[][]; tokens: number }>;
}

/** A model in this process, prompted as it was trained (template, open think). */
export function modelTeacher(name: string, model: CausalLM, tokenizer: Tokenizer, template: PromptTemplate, openThink: boolean): Teacher {
  return {
    name: `${name} (${template}${openThink ? ', open think' : ''})`,
    answer: (problems, s, seed) => sampleReplies(model, tokenizer, problems, { template, openThink, samples: s.samples, maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, seed }),
  };
}

/** The answer inside a server's `content`: <answer>…</answer>, else the last \boxed{…}, else all of it. */
function answerOf(content: string): string {
  const tagged = /<answer>([\s\S]*?)<\/answer>/.exec(content);
  if (tagged) return tagged[1].trim();
  const boxed = [...content.matchAll(/\\boxed\{([^{}]*)\}/g)];
  if (boxed.length > 0) return boxed[boxed.length - 1][1].trim();
  return content.trim();
}

/**
 * An OpenAI-compatible chat endpoint on loopback (`http://127.0.0.1:8080/v1`). Each problem goes as
 * one user message, `samples` requests with seeds seed, seed+1, …; a reply is rebuilt from the
 * answer's `reasoning_content` and `content` (or the `<think>` block left in `content` by servers
 * that do not split it) as `<think>\n…\n</think>\n<answer>…</answer>`.
 */
export async function endpointTeacher(url: string, opts: { model?: string; apiKey?: string; concurrency?: number } = {}): Promise<Teacher> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--teacher ${url}: not a URL (e.g. http://127.0.0.1:8080/v1)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--teacher ${url}: must be http(s)`);
  if (!isLoopbackHost(u.hostname)) throw new Error(`--teacher ${url}: the teacher's server must be on this machine (127.0.0.1, localhost or ::1)`);
  const base = url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {}) };
  let model = opts.model;
  if (model === undefined) {
    const res = await fetch(`${base}/models`, { headers }).catch((err: Error) => {
      throw new Error(`--teacher ${url}: cannot reach the server: ${err.message}`);
    });
    if (!res.ok) throw new Error(`--teacher ${url}: GET /models answered ${res.status}`);
    model = ((await res.json()) as { data?: { id: string }[] }).data?.[0]?.id;
    if (model === undefined) throw new Error(`--teacher ${url}: the server lists no model; pass --endpoint-model`);
  }
  const id = model;
  const concurrency = opts.concurrency ?? 8;
  const ask = async (p: Problem, s: TraceSampling, seed: number): Promise<{ reply: string; tokens: number }> => {
    const res = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: id, messages: [{ role: 'user', content: questionText(p) }], max_tokens: s.maxNewTokens, temperature: s.temperature, top_p: s.topP, seed }),
    });
    const body = (await res.json().catch(() => null)) as { choices?: { message?: { content?: string; reasoning_content?: string } }[]; usage?: { completion_tokens?: number }; error?: { message?: string } } | null;
    if (!res.ok) throw new Error(`--teacher ${url}: the server answered ${res.status}: ${body?.error?.message ?? 'no error message'}`);
    const msg = body?.choices?.[0]?.message ?? {};
    let content = String(msg.content ?? '');
    let reasoning = msg.reasoning_content;
    const close = content.indexOf('</think>');
    if ((reasoning === undefined || reasoning === null) && close >= 0) {
      reasoning = content.slice(0, close).replace(/^\s*<think>/, '');
      content = content.slice(close + '</think>'.length);
    }
    return { reply: `<think>\n${String(reasoning ?? '').trim()}\n</think>\n<answer>${answerOf(content)}</answer>`, tokens: Number(body?.usage?.completion_tokens ?? 0) };
  };
  return {
    name: `${id} at ${base}`,
    async answer(problems, s, seed) {
      const jobs = problems.flatMap((p, i) => Array.from({ length: s.samples }, (_, g) => ({ p, i, g })));
      const replies: string[][] = problems.map(() => new Array<string>(s.samples));
      let tokens = 0;
      let next = 0;
      const worker = async () => {
        while (next < jobs.length) {
          const j = jobs[next++];
          const r = await ask(j.p, s, seed + j.i * s.samples + j.g);
          replies[j.i][j.g] = r.reply;
          tokens += r.tokens;
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
      return { replies, tokens };
    },
  };
}

/** Training problems for traces: drawn from task specs (never the held-out split), or a file's minus its held-out ones. */
export function traceProblems(source: { tasks: readonly TaskSpec[]; count: number; seed: number } | { problems: readonly Problem[] }): { problems: Problem[]; heldOutDropped: number } {
  if ('problems' in source) {
    const problems = source.problems.filter((p) => !isHeldOut(p));
    return { problems, heldOutDropped: source.problems.length - problems.length };
  }
  const rng = new Rng(source.seed);
  const problems = Array.from({ length: source.count }, (_, i) => sampleProblem(source.tasks[i % source.tasks.length], rng, 'train'));
  return { problems, heldOutDropped: 0 };
}

export interface TraceOptions {
  out: string;
  sampling: TraceSampling;
  seed: number;
  /** Problems per round (and per progress-file update). */
  batch: number;
  /** Continue the run recorded in `<out>.progress.json`. */
  resume?: boolean;
  signal?: AbortSignal;
  onRound?: (p: TraceProgress) => void;
  /** Recorded in the progress file and checked on resume (the problem source, the template …). */
  describe?: Record<string, unknown>;
}

export interface TraceProgress {
  problems: number;
  total: number;
  sampled: number;
  /** Correct answers, well-formed or not. */
  correct: number;
  /** Records written (correct and well-formed, distinct, at most keep per problem). */
  kept: number;
  /** Problems with at least one record. */
  solved: number;
  /** Teacher tokens generated. */
  tokens: number;
  elapsed_s: number;
}

interface ProgressFile extends TraceProgress {
  format: 'nanoseek-traces';
  version: 1;
  /** Bytes of the output that belong to finished rounds. */
  bytes: number;
  settings: Record<string, unknown>;
  done: boolean;
}

export function progressPath(out: string): string {
  return `${out}.progress.json`;
}

/**
 * Puts every problem to the teacher and appends the kept answers to `opts.out` as SFT records. An
 * existing run is refused unless `resume`; resuming checks the settings are the ones it started with.
 */
export async function writeTraces(teacher: Teacher, problems: readonly Problem[], opts: TraceOptions): Promise<TraceProgress & { stopped: boolean }> {
  const settings = { teacher: teacher.name, problems: problems.length, first: problems.length > 0 ? questionText(problems[0]) : null, sampling: opts.sampling, seed: opts.seed, batch: opts.batch, ...opts.describe };
  const ppath = progressPath(opts.out);
  const saved = await readFile(ppath, 'utf8').then((t) => JSON.parse(t) as ProgressFile, () => null);
  const outExists = await stat(opts.out).then(() => true, () => false);
  let st: ProgressFile;
  if (saved !== null && opts.resume) {
    if (saved.format !== 'nanoseek-traces' || saved.version !== 1) throw new Error(`${ppath}: not a nanoseek traces progress file`);
    for (const key of new Set([...Object.keys(settings), ...Object.keys(saved.settings)])) {
      const a = JSON.stringify((settings as Record<string, unknown>)[key]), b = JSON.stringify(saved.settings[key]);
      if (a !== b) throw new Error(`${opts.out}: cannot resume with ${key} = ${a}: the run was started with ${b}`);
    }
    st = saved;
    // Records appended after the last progress update belong to an unfinished round: drop them.
    await truncate(opts.out, st.bytes).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && st.bytes === 0) return;
      throw new Error(`${opts.out}: cannot resume: ${err.message}`);
    });
  } else {
    if (saved !== null && saved.done) throw new Error(`${opts.out}: already holds a finished traces run (${saved.kept} traces); choose another --out`);
    if (saved !== null || outExists) throw new Error(`${opts.out}: already exists${saved !== null ? ' with a traces run in progress' : ''}; pass --resume to continue it, or choose another --out`);
    st = { format: 'nanoseek-traces', version: 1, problems: 0, total: problems.length, sampled: 0, correct: 0, kept: 0, solved: 0, tokens: 0, elapsed_s: 0, bytes: 0, settings, done: false };
    await writeJsonAtomic(ppath, st);
  }
  const fh = await open(opts.out, 'a');
  const started = performance.now();
  const before = st.elapsed_s;
  let stopped = false;
  try {
    while (st.problems < problems.length) {
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
      const round = problems.slice(st.problems, st.problems + opts.batch);
      // Each round's seed depends on where it starts, not on how the run was interrupted.
      const seed = hashKey(`${opts.seed}:${st.problems}`);
      const { replies, tokens } = await teacher.answer(round, opts.sampling, seed);
      let text = '';
      round.forEach((problem, i) => {
        const r = keepCorrect(problem, replies[i], opts.sampling.keep);
        st.sampled += replies[i].length;
        st.correct += r.correct;
        if (r.kept.length > 0) st.solved++;
        st.kept += r.kept.length;
        for (const completion of r.kept) text += `${JSON.stringify({ prompt: questionText(problem), completion })}\n`;
      });
      await fh.write(text);
      await fh.sync();
      st.bytes += Buffer.byteLength(text);
      st.problems += round.length;
      st.tokens += tokens;
      st.elapsed_s = before + (performance.now() - started) / 1000;
      st.done = st.problems === problems.length;
      await writeJsonAtomic(ppath, st);
      opts.onRound?.(st);
    }
  } finally {
    await fh.close();
  }
  const { format: _f, version: _v, bytes: _b, settings: _s, done: _d, ...progress } = st;
  return { ...progress, stopped };
}
