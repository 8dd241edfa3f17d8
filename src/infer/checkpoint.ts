// Finding and loading a model for inference (a checkpoint directory or a GGUF file): the model, its
// tokenizer, and its sampling defaults.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GenerationConfig } from '../io/checkpoint.js';
import type { CausalLM } from '../model/model.js';
import { loadModelFrom, modelName, openModelFile, tokenizerFor, type ModelFile } from '../io/model-file.js';
import { modelCard, type ModelCard } from '../io/model-card.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { SamplingOptions } from './sampler.js';

/** The model `serve`, `chat` and `generate` use when given none, relative to the package root. */
export const DEFAULT_MODEL = join('models', 'nano-r1zero');

const isFile = (p: string): Promise<boolean> => stat(p).then((s) => s.isFile(), () => false);

/** The directory holding nanoseek's package.json, found from this file (sources and dist/ alike). */
export async function packageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'nanoseek') return dir;
    } catch {
      // no package.json here: keep climbing
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the nanoseek package root');
    dir = up;
  }
}

/**
 * The checkpoint to use: `requested` when given; else the default model, or, while that does not exist
 * yet, the most recently written checkpoint under models/ (saying so through `notice`).
 */
export async function resolveModelDir(requested: string | undefined, notice: (line: string) => void = () => {}): Promise<string> {
  if (requested !== undefined) return requested;
  const root = await packageRoot();
  const preferred = join(root, DEFAULT_MODEL);
  if (await isFile(join(preferred, 'config.json'))) return preferred;
  const models = join(root, 'models');
  const names = await readdir(models).catch(() => [] as string[]);
  const found: { dir: string; mtime: number }[] = [];
  for (const name of names) {
    const dir = join(models, name);
    const s = await stat(join(dir, 'config.json')).catch(() => null);
    if (s !== null && (await isFile(join(dir, 'tokenizer.json')))) found.push({ dir, mtime: s.mtimeMs });
  }
  if (found.length === 0) {
    const scratch = relative(process.cwd(), join(models, 'scratch'));
    throw new Error(
      `no model given and ${relative(process.cwd(), preferred)} does not exist yet (the R1-Zero training pipeline writes it).\n` +
        'Pass --model <checkpoint dir>, or make an untrained one to try the tools (it will babble):\n' +
        `  nanoseek init --preset nano --vocab-size 4096 --out ${scratch}\n` +
        `  nanoseek tokenizer train --corpus <some text file> --vocab-size 4096 --out ${scratch}`,
    );
  }
  found.sort((a, b) => b.mtime - a.mtime);
  notice(`${DEFAULT_MODEL} does not exist yet; using ${relative(root, found[0].dir)}, the newest checkpoint under models/`);
  return found[0].dir;
}

export interface InferenceCheckpoint {
  model: CausalLM;
  tokenizer: Tokenizer;
  dir: string;
  /** The directory name: what the server calls the model. */
  name: string;
  samplingDefaults: Pick<SamplingOptions, 'temperature' | 'topP' | 'topK' | 'repetitionPenalty'>;
  /** What the checkpoint says about itself (model_card.json), or null. */
  card: ModelCard | null;
}

export interface InferenceLoadOptions {
  /** tokenizer.json or its directory, instead of the model's own. */
  tokenizer?: string;
  /** Refuse non-finite weights (default true). */
  checkFinite?: boolean;
}

/** generation_config.json's sampling fields; do_sample false means greedy. */
export function samplingDefaultsOf(g: GenerationConfig | null): InferenceCheckpoint['samplingDefaults'] {
  if (g === null) return {};
  return {
    temperature: g.do_sample === false ? 0 : g.temperature,
    topP: g.top_p,
    topK: g.top_k,
    repetitionPenalty: g.repetition_penalty,
  };
}

/**
 * Loads a model (a checkpoint directory or a GGUF file), its tokenizer (the model's own unless
 * `opts.tokenizer` says otherwise) and its card.
 */
export async function loadForInference(path: string, opts: InferenceLoadOptions = {}): Promise<InferenceCheckpoint> {
  const file = await openModelFile(path);
  let tokenizer: Tokenizer;
  let card: ModelCard | null;
  try {
    tokenizer = await tokenizerFor(file, opts.tokenizer);
    card = await modelCard(file);
  } catch (err) {
    await file.close();
    throw err;
  }
  const { model } = await loadModelFrom(file, { checkFinite: opts.checkFinite });
  return { model, tokenizer, dir: file.path, name: modelName(path), samplingDefaults: samplingDefaultsOf(samplingOf(file, tokenizer)), card };
}

/**
 * A model's sampling defaults: its generation config, else — for a GGUF without sampling keys whose
 * chat template is DeepSeek's — DeepSeek-R1's recommendation (temperature 0.6, top-p 0.95).
 */
function samplingOf(file: ModelFile, tokenizer: Tokenizer): GenerationConfig | null {
  if (file.generationConfig !== null) return file.generationConfig;
  if (file.format === 'gguf' && tokenizer.chatTemplate?.includes('<｜Assistant｜>')) return { do_sample: true, temperature: 0.6, top_p: 0.95 };
  return null;
}
