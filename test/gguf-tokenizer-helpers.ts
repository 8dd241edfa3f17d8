// Shared by the GGUF tokenizer tests: cached tokenizer.json files, a stand-in for
// DeepSeek-R1-Distill-Qwen-1.5B's tokenizer files and the two revisions of its chat template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './tokenizer-helpers.js';

export type Json = Record<string, unknown>;

const parsed = new Map<string, Json>();

/** A parsed JSON file, read once per process (the big tokenizer.json files are shared between suites; never mutate them). */
export function readJson(dir: string, file: string): Json {
  const path = join(dir, file);
  let json = parsed.get(path);
  if (!json) {
    json = JSON.parse(readFileSync(path, 'utf8')) as Json;
    parsed.set(path, json);
  }
  return json;
}

// The R1-Distill-Qwen-1.5B tokenizer stand-in and its chat templates live with the other stand-ins
// for downloaded models (bench/open-weights.ts); the tests read the templates synchronously.
export { R1_DISTILL_ADDED, R1_DISTILL_ROWS, r1DistillFiles } from '../bench/open-weights.js';

const CHAT_DIR = join(ROOT, 'test', 'fixtures', 'chat');
export const TEMPLATE_2025_01 = readFileSync(join(CHAT_DIR, 'deepseek-r1-distill-qwen-1.5b.2025-01.jinja'), 'utf8');
export const TEMPLATE_2025_02 = readFileSync(join(CHAT_DIR, 'deepseek-r1-distill-qwen-1.5b.2025-02.jinja'), 'utf8');
