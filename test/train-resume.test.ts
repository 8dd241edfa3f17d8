// Kill-and-resume through the real CLI: a run SIGKILLed after its first checkpoint and resumed ends
// with the same weights and optimizer state, bit for bit, as a run that was never interrupted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// From source (tsx) run the TypeScript entry point through tsx; from dist/ run the compiled one.
const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
const main = join(dirname(here), '..', 'src', 'cli', compiled ? 'main.js' : 'main.ts');
const nodeArgs = compiled ? [main] : ['--import', 'tsx', main];

function start(args: string[]) {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function runToEnd(args: string[]): Promise<string> {
  const { child, output } = start(args);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `nanoseek ${args.join(' ')} failed:\n${output()}`);
  return output();
}

const STEPS = 30;
const config = {
  stage: 'pretrain',
  model: { preset: 'nano', mtp: true },
  tokenizer: { train: { vocab_size: 400, documents: 300 } },
  data: { source: 'tasks', seed: 3 },
  seq_len: 32,
  batch_size: 2,
  grad_accum: 2,
  steps: STEPS,
  lr: 0.003,
  warmup: 4,
  mtp_weight: 0.3,
  balance_alpha: 0.001,
  bias_update_speed: 0.01,
  eval_every: 5,
  eval_batches: 1,
  save_every: 5,
  log_every: 5,
  keep_checkpoints: 2,
};

/** metrics.jsonl without the timing fields, which legitimately differ between runs. */
function metrics(run: string): unknown[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const { tokens_per_s: _t, elapsed_s: _e, ...rest } = JSON.parse(line);
      return rest;
    });
}

test('SIGKILL after the first checkpoint, then --resume: bit-identical to an uninterrupted run', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-resume-'));
  const cfgPath = join(dir, 'config.json');
  writeFileSync(cfgPath, JSON.stringify(config));
  const whole = join(dir, 'whole');
  const killed = join(dir, 'killed');

  await runToEnd(['train', 'pretrain', '--config', cfgPath, '--out', whole]);

  const { child, output } = start(['train', 'pretrain', '--config', cfgPath, '--out', killed]);
  const exited = once(child, 'exit');
  const first = join(killed, 'checkpoint-5', 'trainer_state.json');
  while (!existsSync(first)) {
    assert.equal(child.exitCode, null, `the run ended before its first checkpoint:\n${output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  assert.equal(existsSync(join(killed, `checkpoint-${STEPS}`)), false, 'the run must be killed before it finishes');

  // No --config: the run's own config comes from its checkpoint.
  const resumed = await runToEnd(['train', 'pretrain', '--out', killed, '--resume']);
  assert.match(resumed, /resuming .* from checkpoint-\d+/);

  const final = (run: string, file: string) => readFileSync(join(run, `checkpoint-${STEPS}`, file));
  assert.ok(final(whole, 'model.safetensors').equals(final(killed, 'model.safetensors')), 'final weights differ');
  assert.ok(final(whole, 'optimizer.safetensors').equals(final(killed, 'optimizer.safetensors')), 'final optimizer state differs');
  const state = (run: string) => {
    const { elapsed_s: _, ...rest } = JSON.parse(final(run, 'trainer_state.json').toString());
    return rest;
  };
  assert.deepEqual(state(killed), state(whole));
  assert.deepEqual(metrics(killed), metrics(whole));
  assert.equal(readFileSync(join(killed, 'latest', 'trainer_state.json')).toString(), final(killed, 'trainer_state.json').toString());
});
