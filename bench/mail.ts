// Throughput of `nanoseek mail triage` end to end — parse, rules, model, validation, SQLite — on a
// sample Maildir of corpus messages, twice: as the app runs (rules first) and with every message sent
// to the model (what a mailbox without list or automation headers costs).
//
//   nanoseek bench mail [--model dir|file.gguf] [--messages 60] [--concurrency 4] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadForInference } from '../src/infer/index.js';
import { defaultConfig, LocalModel, MaildirSource, MailState, runTriage, writeSampleMaildir, type MailConfig } from '../src/mail/index.js';

export interface MailBenchOptions {
  model: string;
  messages: number;
  concurrency: number;
}

export interface MailBenchRun {
  mode: 'rules then model' | 'model for every message';
  messages: number;
  by_model: number;
  seconds: number;
  messages_per_min: number;
  model_messages_per_min: number;
  needs_review: number;
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
    const ckpt = await loadForInference(o.model);
    const runs: MailBenchRun[] = [];
    const modes: [MailBenchRun['mode'], MailConfig][] = [
      ['rules then model', defaultConfig()],
      ['model for every message', defaultConfig()],
    ];
    for (const [mode, config] of modes) {
      const model = new LocalModel(ckpt, config.categories, { concurrency: o.concurrency });
      const state = new MailState(join(dir, `${runs.length}.db`));
      const t0 = performance.now();
      const s = await runTriage({ source: new MaildirSource(maildir), state, config, model, concurrency: o.concurrency, guard: false, noRules: mode === 'model for every message' });
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
    lines.push(`  ${x.mode.padEnd(24)} ${x.messages} messages (${x.by_model} by the model) in ${x.seconds.toFixed(1)} s: ${x.messages_per_min.toFixed(1)} msg/min; ${x.needs_review} need review`);
  }
  return lines.join('\n');
}
