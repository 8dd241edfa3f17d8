// Throughput of `nanoseek mail triage` end to end — parse, rules, model, validation, SQLite — on a
// sample Maildir of corpus messages, twice: as the app runs (rules first) and with every message sent
// to the model (what a mailbox without list or automation headers costs).
//
// With --r1-distill the model is a stand-in for DeepSeek-R1-Distill-Qwen-1.5B in Q4_K_M (its exact
// shape and 151,936-token vocabulary, random weights; bench/open-weights.ts): speed does not depend on
// the weights, though a random model's answers run to the schema's length limits where a trained
// model's would stop sooner, so its tokens per message are reported beside its messages per minute.
// A second run then times answers of a trained model's length: the shipped nano-mail triages the same
// messages first, and the stand-in emits nano-mail's answer for each message token by token (teacher
// forcing through the same engine, grammar and batching: one decode step per token), so its cost is
// what a distill answering like a trained model would pay. Messages nano-mail could not answer are
// generated freely.
//
//   nanoseek bench mail [--model dir|file.gguf | --r1-distill] [--replay] [--messages 60] [--concurrency 4] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadForInference, packageRoot } from '../src/infer/index.js';
import { defaultDecodeModel } from './decode.js';
import { defaultConfig, DEFAULT_MAIL_MODEL, FENCE_OPEN, LocalModel, MaildirSource, MailState, runTriage, writeSampleMaildir, type CompleteRequest, type CompleteResult, type TriageModel } from '../src/mail/index.js';
import type { ChatMessage } from '../src/tokenizer/index.js';

export interface MailBenchOptions {
  /** A model path, or 'r1-distill' for the R1-Distill-Qwen-1.5B Q4_K_M stand-in. */
  model: string;
  messages: number;
  concurrency: number;
  /** Also replay the shipped nano-mail's answers on the model (default: only for 'r1-distill'). */
  replay?: boolean;
}

export interface MailBenchRun {
  mode: 'rules then model' | 'model for every message' | 'the same, unconstrained' | "nano-mail's answers, replayed";
  messages: number;
  by_model: number;
  seconds: number;
  messages_per_min: number;
  model_messages_per_min: number;
  needs_review: number;
  /** Generated tokens per message the model answered (the engine's count over the run). */
  tokens_per_model_message: number;
  prompt_tokens_per_model_message: number;
  /** Of those, the ones whose KV rows were copied from the engine's prefix cache (the shared instructions). */
  cached_prompt_tokens_per_model_message: number;
  /** In the replayed run: messages with an answer of nano-mail to replay (the rest are generated freely). */
  replayed_answers?: number;
}

export interface MailBenchResult {
  model: string;
  parameters_note: string;
  concurrency: number;
  cores: number;
  runs: MailBenchRun[];
}

export async function benchMail(o: MailBenchOptions): Promise<MailBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-bench-mail-'));
  try {
    const maildir = join(dir, 'Maildir');
    await writeSampleMaildir(maildir, o.messages);
    let path = o.model;
    // The stand-in is written once into the bench cache, as `bench decode` does.
    if (path === 'r1-distill') path = await defaultDecodeModel('r1-distill-qwen-1.5b', 'q4_k_m');
    const ckpt = await loadForInference(path);
    const runs: MailBenchRun[] = [];
    const config = defaultConfig();
    const time = async (mode: MailBenchRun['mode'], local: LocalModel, model: TriageModel = local): Promise<void> => {
      const state = new MailState(join(dir, `${runs.length}.db`));
      const t0 = performance.now();
      const before = local.stats();
      const s = await runTriage({ source: new MaildirSource(maildir), state, config, model, concurrency: o.concurrency, guard: false, noRules: mode !== 'rules then model' });
      const seconds = (performance.now() - t0) / 1000;
      const after = local.stats();
      const byModel = s.records.filter((r) => r.decided_by?.startsWith('model:') || r.status === 'needs_review').length;
      const per = (n: number): number => (byModel === 0 ? 0 : n / byModel);
      runs.push({
        mode,
        messages: s.records.length,
        by_model: byModel,
        seconds,
        messages_per_min: (s.records.length / seconds) * 60,
        model_messages_per_min: byModel === 0 ? 0 : (byModel / seconds) * 60,
        needs_review: s.needsReview,
        tokens_per_model_message: per(after.generatedTokens - before.generatedTokens),
        prompt_tokens_per_model_message: per(after.promptTokens - before.promptTokens),
        cached_prompt_tokens_per_model_message: per(after.cachedPromptTokens - before.cachedPromptTokens),
      });
      state.close();
      await model.close();
    };
    const local = (constrained = true): LocalModel => new LocalModel(ckpt, config.categories, { concurrency: o.concurrency, constrained });
    if (o.model === 'r1-distill') {
      // Minutes per message with every message sent to the model. No unconstrained peer: a random
      // model never stops early unconstrained, so it would measure nothing but the token limit.
      await time('model for every message', local());
    } else {
      await time('rules then model', local());
      await time('model for every message', local());
      // The peer: the same decoding without the grammar, so the ratio is what constraining costs.
      await time('the same, unconstrained', local(false));
    }
    if (o.replay ?? o.model === 'r1-distill') {
      // The same messages answered as long as a trained model answers them (see the top).
      const nano = await loadForInference(join(await packageRoot(), DEFAULT_MAIL_MODEL));
      const recorder = new AnswerRecorder(new LocalModel(nano, config.categories, { concurrency: o.concurrency }));
      const state = new MailState(join(dir, 'nano.db'));
      await runTriage({ source: new MaildirSource(maildir), state, config, model: recorder, concurrency: o.concurrency, guard: false, noRules: true });
      state.close();
      await recorder.close();
      const stand = local();
      await time("nano-mail's answers, replayed", stand, new AnswerReplayer(stand, recorder.answers));
      runs[runs.length - 1].replayed_answers = recorder.answers.size;
    }
    return { model: ckpt.name, parameters_note: ckpt.model.config.architectures[0], concurrency: o.concurrency, cores: cpus().length, runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A message's identity in a triage prompt: its header block, which does not depend on how much body fits. */
function messageKey(messages: ChatMessage[]): string {
  const user = messages.find((m) => m.role === 'user')?.content ?? '';
  return user.slice(0, user.indexOf(FENCE_OPEN));
}

/** A model that passes every call to another; the two below change only `complete`. */
class Delegate implements TriageModel {
  constructor(protected readonly inner: TriageModel) {}
  get name(): string {
    return this.inner.name;
  }
  fits(messages: ChatMessage[], maxTokens: number): boolean {
    return this.inner.fits(messages, maxTokens);
  }
  complete(req: CompleteRequest): Promise<CompleteResult> {
    return this.inner.complete(req);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Keeps each message's last finished answer. */
class AnswerRecorder extends Delegate {
  readonly answers = new Map<string, string>();
  override async complete(req: CompleteRequest): Promise<CompleteResult> {
    const r = await this.inner.complete(req);
    if (r.finishReason === 'stop') this.answers.set(messageKey(req.messages), r.text);
    return r;
  }
}

/** Forces the recorded answer of each message it has one for. */
class AnswerReplayer extends Delegate {
  constructor(
    inner: LocalModel,
    private readonly answers: ReadonlyMap<string, string>,
  ) {
    super(inner);
  }
  override complete(req: CompleteRequest): Promise<CompleteResult> {
    return this.inner.complete({ ...req, force: this.answers.get(messageKey(req.messages)) });
  }
}

export function formatMailBench(r: MailBenchResult): string {
  const lines = [`nanoseek mail, model ${r.model} (${r.parameters_note}), ${r.concurrency} in flight, ${r.cores} cores`];
  for (const x of r.runs) {
    lines.push(
      `  ${x.mode.padEnd(24)} ${x.messages} messages (${x.by_model} by the model) in ${x.seconds.toFixed(1)} s: ${x.messages_per_min.toFixed(1)} msg/min; ` +
        `${x.needs_review} need review;${x.replayed_answers === undefined ? '' : ` ${x.replayed_answers} answers replayed;`} per model answer ${x.prompt_tokens_per_model_message.toFixed(0)} prompt (${x.cached_prompt_tokens_per_model_message.toFixed(0)} from the prefix cache) + ${x.tokens_per_model_message.toFixed(0)} generated tokens`,
    );
  }
  return lines.join('\n');
}
