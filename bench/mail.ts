// Throughput of `nanoseek mail triage` end to end — parse, rules, model, validation, SQLite — on a
// sample Maildir of corpus messages, twice: as the app runs (rules first) and with every message sent
// to the model (what a mailbox without list or automation headers costs).
//
// With --r1-distill the model is a stand-in for DeepSeek-R1-Distill-Qwen-1.5B in Q4_K_M (its exact
// shape and 151,936-token vocabulary, random weights; bench/open-weights.ts): speed does not depend on
// the weights, though a random model's answers run to the schema's length limits where a trained
// model's would stop sooner, so its tokens per message are reported beside its messages per minute.
//
//   nanoseek bench mail [--model dir|file.gguf | --r1-distill] [--messages 60] [--concurrency 4] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadForInference } from '../src/infer/index.js';
import { defaultDecodeModel } from './decode.js';
import { defaultConfig, LocalModel, MaildirSource, MailState, runTriage, writeSampleMaildir, type MailConfig } from '../src/mail/index.js';

export interface MailBenchOptions {
  /** A model path, or 'r1-distill' for the R1-Distill-Qwen-1.5B Q4_K_M stand-in. */
  model: string;
  messages: number;
  concurrency: number;
}

export interface MailBenchRun {
  mode: 'rules then model' | 'model for every message' | 'the same, unconstrained';
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
    const modes: [MailBenchRun['mode'], MailConfig][] = [
      ['rules then model', defaultConfig()],
      ['model for every message', defaultConfig()],
      // The peer: the same decoding without the grammar, so the ratio is what constraining costs.
      ['the same, unconstrained', defaultConfig()],
    ];
    // Minutes per message: only the model-for-every-message run (a random model never stops early
    // unconstrained, so that peer would measure nothing but the token limit).
    if (o.model === 'r1-distill') modes.splice(0, 3, modes[1]);
    for (const [mode, config] of modes) {
      const model = new LocalModel(ckpt, config.categories, { concurrency: o.concurrency, constrained: mode !== 'the same, unconstrained' });
      const state = new MailState(join(dir, `${runs.length}.db`));
      const t0 = performance.now();
      const before = model.stats();
      const s = await runTriage({ source: new MaildirSource(maildir), state, config, model, concurrency: o.concurrency, guard: false, noRules: mode !== 'rules then model' });
      const seconds = (performance.now() - t0) / 1000;
      const byModel = s.records.filter((r) => r.decided_by?.startsWith('model:') || r.status === 'needs_review').length;
      runs.push({
        mode,
        messages: s.records.length,
        by_model: byModel,
        seconds,
        messages_per_min: (s.records.length / seconds) * 60,
        model_messages_per_min: byModel === 0 ? 0 : (byModel / seconds) * 60,
        needs_review: s.needsReview,
        tokens_per_model_message: byModel === 0 ? 0 : (model.stats().generatedTokens - before.generatedTokens) / byModel,
        prompt_tokens_per_model_message: byModel === 0 ? 0 : (model.stats().promptTokens - before.promptTokens) / byModel,
        cached_prompt_tokens_per_model_message: byModel === 0 ? 0 : (model.stats().cachedPromptTokens - before.cachedPromptTokens) / byModel,
      });
      state.close();
      await model.close();
    }
    return { model: ckpt.name, parameters_note: ckpt.model.config.architectures[0], concurrency: o.concurrency, cores: cpus().length, runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatMailBench(r: MailBenchResult): string {
  const lines = [`nanoseek mail, model ${r.model} (${r.parameters_note}), ${r.concurrency} in flight, ${r.cores} cores`];
  for (const x of r.runs) {
    lines.push(
      `  ${x.mode.padEnd(24)} ${x.messages} messages (${x.by_model} by the model) in ${x.seconds.toFixed(1)} s: ${x.messages_per_min.toFixed(1)} msg/min; ` +
        `${x.needs_review} need review; per model answer ${x.prompt_tokens_per_model_message.toFixed(0)} prompt (${x.cached_prompt_tokens_per_model_message.toFixed(0)} from the prefix cache) + ${x.tokens_per_model_message.toFixed(0)} generated tokens`,
    );
  }
  return lines.join('\n');
}
