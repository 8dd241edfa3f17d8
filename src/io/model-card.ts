// model_card.json: what a checkpoint says about itself, written by the recipe that trained it. A
// person opening the chat page or `nanoseek chat` learns from it what the model knows and what to
// ask (a description, example questions it answers correctly); `eval`, `tasks sample` and
// `grpo reject-sample` learn from it how problems were put to the model (its prompt format) and
// which task it was trained on, so they need no flags to measure it as it was trained. Every field
// is optional; a checkpoint without the file is described by its config alone.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { isRecord, JsonFields } from '../util/json-fields.js';
import type { ModelFile } from './model-file.js';

export const MODEL_CARD_FILE = 'model_card.json';

/** The prompt formats a card may name (tasks/prompt.ts renders them). */
const CARD_TEMPLATES = ['r1-zero', 'r1'] as const;

export interface ModelCard {
  /** What the model knows and what it does not, in a few sentences, for people. */
  description: string | null;
  /** Questions the model answered correctly when the card was written (greedy decoding). */
  examples: string[];
  /**
   * How problems are put to it: the R1-Zero prompt (optionally ending with "<think>") or the
   * tokenizer's chat template.
   */
  prompt: { template: 'r1-zero' | 'r1'; open_think: boolean } | null;
  /**
   * The task spec it was trained and evaluated on, as configs write it ({"task": "arithmetic",
   * "digits": [1, 1], "ops": ["+"]}); the tasks layer validates it where it is used.
   */
  task: Record<string, unknown> | null;
  /** What wrote the card (a command line, a run directory). */
  source: string | null;
}

export function emptyCard(): ModelCard {
  return { description: null, examples: [], prompt: null, task: null, source: null };
}

/** Validates a model_card.json object; errors name the file and the field. */
export function parseModelCard(json: unknown, source = MODEL_CARD_FILE): ModelCard {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  const r = new JsonFields(json, source);
  const description = r.optStr('description');
  const examples = r.raw('examples') ?? [];
  if (!Array.isArray(examples) || !examples.every((e) => typeof e === 'string' && e.trim() !== '')) r.fail('examples', 'must be a list of non-empty strings');
  let prompt: ModelCard['prompt'] = null;
  if (r.has('prompt') && json.prompt !== null) {
    const p = r.object('prompt');
    prompt = { template: p.oneOf('template', CARD_TEMPLATES), open_think: p.bool('open_think', false) };
    if (prompt.template === 'r1' && prompt.open_think) p.fail('open_think', 'applies to the r1-zero template only');
    p.done();
  } else r.raw('prompt');
  const task = r.raw('task') ?? null;
  if (task !== null && !(isRecord(task) && typeof task.task === 'string')) r.fail('task', 'must be a task spec object like {"task": "arithmetic", "digits": [1, 1], "ops": ["+"]}');
  const from = r.optStr('source');
  r.done();
  return { description, examples: examples as string[], prompt, task: task as Record<string, unknown> | null, source: from };
}

/** The card as its file holds it: fields that are empty are left out. */
export function modelCardJson(card: ModelCard): string {
  const out: Record<string, unknown> = {};
  if (card.description !== null) out.description = card.description;
  if (card.examples.length > 0) out.examples = card.examples;
  if (card.prompt !== null) out.prompt = card.prompt;
  if (card.task !== null) out.task = card.task;
  if (card.source !== null) out.source = card.source;
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Writes `dir`/model_card.json (atomically). */
export async function writeModelCard(dir: string, card: ModelCard): Promise<void> {
  await writeFileAtomic(join(dir, MODEL_CARD_FILE), modelCardJson(card));
}

/** A checkpoint directory's card, or null when it has none (GGUF files carry none). */
export async function readModelCard(dir: string): Promise<ModelCard | null> {
  const path = join(dir, MODEL_CARD_FILE);
  if (!(await stat(path).then((s) => s.isFile(), () => false))) return null;
  const text = await readFile(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelCard(json, path);
}

/** The card of an opened model file. */
export function modelCard(file: ModelFile): Promise<ModelCard | null> {
  return file.format === 'safetensors' ? readModelCard(file.path) : Promise.resolve(null);
}
