// `nanoseek r1zero`: the R1-Zero reproduction at small scale (corpus → tokenizer → pretraining → eval →
// GRPO → eval → HTML report), optionally exporting the models it trained. Ctrl-C stops at the next
// step boundary with a checkpoint; --resume continues.
import type { Command } from 'commander';
import { parseR1ZeroConfig, runR1Zero } from '../../train/grpo/r1zero.js';
import { readJsonConfig, withStopSignal } from '../run-control.js';

interface R1ZeroFlags {
  config: string;
  out: string;
  base?: string;
  resume?: boolean;
  export?: string;
  docs?: string;
}

export function register(program: Command): void {
  program
    .command('r1zero')
    .description('reproduce R1-Zero at small scale: pretrain (or --base), evaluate, GRPO, evaluate, write an HTML report')
    .option('--config <json>', 'pipeline config', 'configs/r1zero.json')
    .option('--out <dir>', 'run directory (corpus, tokenizer, pretrain/, grpo/, evaluations, report.html)', 'runs/r1zero')
    .option('--base <dir>', 'start from this base checkpoint (e.g. models/nano-base) instead of pretraining')
    .option('--resume', 'continue a run directory after its last finished phase')
    .option('--export <dir>', 'also write <dir>/nano-base and <dir>/nano-r1zero')
    .option('--docs <dir>', 'also copy the report, metrics and evaluations to <dir>')
    .action(async (o: R1ZeroFlags) => {
      const read = await readJsonConfig(o.config, [], (line) => process.stderr.write(`${line}\n`));
      const cfg = parseR1ZeroConfig(read.json, o.config);
      const log = (line: string) => process.stdout.write(`${line}\n`);
      const r = await withStopSignal(log, (signal) => runR1Zero(cfg, o.config, { out: o.out, base: o.base, resume: o.resume, exportDir: o.export, docsDir: o.docs, log, signal }));
      for (const c of r.comparisons) {
        log(`${c.task}: pass@1 ${(100 * c.before['pass@1']).toFixed(1)}% → ${(100 * c.after['pass@1']).toFixed(1)}%, response ${c.before.mean_response_tokens.toFixed(1)} → ${c.after.mean_response_tokens.toFixed(1)} tokens`);
      }
      log(`done in ${(r.seconds / 60).toFixed(1)} min; report ${r.report}`);
    });
}
