// Models and tokenizers for the inference and server tests, built in a second or so: a small BPE
// tokenizer trained on a few lines of text, a randomly initialised nano DeepSeek-V3 model, and a
// "scripted" one whose weights make it answer every chat prompt with a fixed reasoning-then-answer
// completion, so tests can check exact reasoning and answer text.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { presetConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { saveModel } from '../src/io/model-file.js';
import { applyChatTemplate, trainTokenizer, type Tokenizer } from '../src/tokenizer/index.js';

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. Two and two make four, and three and three make six.',
  'A reasoning model thinks before it answers: it works through the problem, then states the result.',
  'Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100. Add them, multiply them, compare them, count them.',
  'User: what is the capital of France? Assistant: Paris is the capital of France.',
  'Streams of tokens flow from the server to the client, one event at a time, until the answer ends.',
  'Hello, world! How are you today? I am fine, thank you. Let me think about that question.',
];

let tokenizer: Promise<Tokenizer> | null = null;

/** A 400-token byte-level BPE with the DeepSeek special tokens and the R1 chat template. */
export function fixtureTokenizer(): Promise<Tokenizer> {
  tokenizer ??= trainTokenizer(CORPUS.flatMap((line) => [line, line.toLowerCase()]), { vocabSize: 400 });
  return tokenizer;
}

export function randomModel(tok: Tokenizer, seed = 1): CausalLM {
  return new CausalLM(presetConfig('nano', { vocabSize: tok.vocabSize }), { seed });
}

/** What the scripted model answers: reasoning, then an R1-Zero style tagged answer. */
export const SCRIPT = { completion: 'Two and two make four.</think>Result: <answer>4</answer>', reasoning: 'Two and two make four.', content: 'Result: 4' };

/**
 * A nano model that greedily (and, its logits being very peaked, also under sampling) continues any
 * R1 chat prompt with `completion` and then EOS. Zeroing every block's output projection turns the
 * network into a bigram model: the final hidden state is the current token's embedding. The chain
 * tokens' embeddings are made orthonormal and each one's successor gets an lm_head row along it.
 */
export function scriptedModel(tok: Tokenizer, completion = SCRIPT.completion): CausalLM {
  const model = randomModel(tok, 7);
  const D = model.config.hidden_size;
  for (const [name, t] of model.params.tensors) if (/(o_proj|down_proj)\.weight$/.test(name)) t.data.fill(0);
  const start = tok.encode(applyChatTemplate(tok, [{ role: 'user', content: 'hi' }])).at(-1)!;
  const chain = [start, ...tok.encode(completion), tok.special.eos!];
  if (new Set(chain).size !== chain.length) throw new Error(`scripted completion repeats a token: ${chain.join(',')}`);
  const E = model.params.get('model.embed_tokens.weight').data;
  const H = model.params.get(model.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight').data;
  const basis: Float64Array[] = [];
  for (let k = 0; k + 1 < chain.length; k++) {
    const v = Float64Array.from(E.subarray(chain[k] * D, (chain[k] + 1) * D));
    for (const b of basis) {
      let dot = 0;
      for (let i = 0; i < D; i++) dot += v[i] * b[i];
      for (let i = 0; i < D; i++) v[i] -= dot * b[i];
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < D; i++) v[i] /= norm;
    basis.push(v);
    for (let i = 0; i < D; i++) {
      E[chain[k] * D + i] = v[i];
      H[chain[k + 1] * D + i] = 3 * v[i]; // logit 3·√D ≈ 34 against ≈ 0.2 for the rest
    }
  }
  return model;
}

/** A checkpoint directory with the model and tokenizer; remove it with the returned function. */
export async function saveFixture(model: CausalLM, tok: Tokenizer): Promise<{ dir: string; remove: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'nanoseek-serve-'));
  const dir = join(root, 'model');
  await saveModel(model, dir);
  await tok.save(dir);
  return { dir, remove: () => rm(root, { recursive: true, force: true }) };
}

/** node arguments that run the CLI: the compiled one next to compiled tests, the sources under tsx. */
export function cliArgs(): string[] {
  const ts = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(`../src/cli/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  return ts ? ['--import', 'tsx', main] : [main];
}

export interface ServeProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  exited: Promise<number | null>;
  stderr(): string;
}

/** `nanoseek serve --model <model> --port 0 --quiet [extra…]` as a child process, once it prints where it listens. */
export async function startServe(model: string, extra: readonly string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...cliArgs(), 'serve', '--model', model, '--port', '0', '--quiet', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve(m[0]);
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}
