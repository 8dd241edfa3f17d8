// The recipe of the shipped mail model (configs/mail-nano.json): from the SpamAssassin corpus minus the
// hand-labelled evaluation messages, train a byte-level BPE on the prompts and answers, pretrain a nano
// DeepSeek-V3 on them (language first), fine-tune it to answer each prompt with its triage JSON
// (weak labels, see labels.ts, replaced by hand labels where the recipe has them), export it, and
// score it and the naive Bayes baseline on the hand-labelled evaluation set. Every step is a library
// call; `nanoseek mail train` runs it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { R1_CHAT_TEMPLATE, SPECIAL_TOKENS, setChatTemplate, trainTokenizer, type Tokenizer, applyChatTemplate } from '../tokenizer/index.js';
import { checkTrainConfig, parseTrainConfig } from '../train/config.js';
import { exportModel } from '../train/grpo/r1zero.js';
import { train } from '../train/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { isRecord } from '../util/json-fields.js';
import { NaiveBayes } from './baseline.js';
import { DEFAULT_CATEGORIES } from './config.js';
import { CORPUS_GROUPS, corpusEntries, readCorpusMessage, type CorpusEntry } from './corpus.js';
import { readLabels, weakLabel } from './labels.js';
import { parseMessage, type ParsedMessage } from './parse.js';
import { fitBody, triageMessages } from './prompt.js';
import { priorityOf } from './rules.js';
import type { ModelAnswer } from './schema.js';
import { cleanSubject } from './triage.js';

export interface MailRecipe {
  /** Hand labels of the evaluation set: these messages are never trained on. */
  labels: string;
  /** Hand labels of training messages (the same JSONL, corpus ids only): each replaces that message's weak label. */
  train_labels?: string;
  vocab_size: number;
  /** Most tokens of a prompt (the rest of the 512-token context is the answer's). */
  prompt_tokens: number;
  /** Corpus groups shown more than once per epoch (e.g. {"hard-ham-1": 3}): the rare, hard ham. */
  oversample: Record<string, number>;
  seed: number;
  /** Training configs (the fields of `nanoseek train`'s JSON) for the two stages, data filled in here. */
  pretrain: Record<string, unknown>;
  sft: Record<string, unknown>;
}

export function parseRecipe(json: unknown, source: string): MailRecipe {
  if (!isRecord(json)) throw new Error(`${source}: must be a JSON object`);
  for (const k of Object.keys(json)) if (!['labels', 'train_labels', 'vocab_size', 'prompt_tokens', 'oversample', 'seed', 'pretrain', 'sft'].includes(k)) throw new Error(`${source}: ${k}: unknown field`);
  const need = (k: string, ok: boolean, what: string): void => {
    if (!ok) throw new Error(`${source}: ${k} = ${JSON.stringify(json[k])}: ${what}`);
  };
  need('labels', typeof json.labels === 'string', 'must be the path of the hand labels');
  need('train_labels', json.train_labels === undefined || (typeof json.train_labels === 'string' && json.train_labels !== ''), 'must be the path of hand labels for training messages');
  need('vocab_size', Number.isSafeInteger(json.vocab_size) && (json.vocab_size as number) >= 512, 'must be an integer >= 512');
  need('prompt_tokens', Number.isSafeInteger(json.prompt_tokens) && (json.prompt_tokens as number) >= 64, 'must be an integer >= 64');
  json.oversample ??= {};
  need('oversample', isRecord(json.oversample) && Object.entries(json.oversample).every(([g, n]) => (CORPUS_GROUPS as readonly string[]).includes(g) && Number.isSafeInteger(n) && (n as number) >= 1), `must map corpus groups (${CORPUS_GROUPS.join(', ')}) to integers >= 1`);
  need('seed', Number.isSafeInteger(json.seed), 'must be an integer');
  need('pretrain', isRecord(json.pretrain), 'must be a training config object');
  need('sft', isRecord(json.sft), 'must be a training config object');
  return json as unknown as MailRecipe;
}

/** R1's chat format with the assistant turn opened but no think block: the model answers at once. */
export const MAIL_CHAT_TEMPLATE = R1_CHAT_TEMPLATE.replace(`${SPECIAL_TOKENS.assistant}${SPECIAL_TOKENS.think}\\n`, SPECIAL_TOKENS.assistant);

/** The answer the shipped model is taught for a message (its training label, subject as summary, first link). */
export function targetAnswer(m: ParsedMessage, category: string): ModelAnswer {
  const linky = category === 'newsletter' || category === 'promotional' || category === 'notification';
  return { category, priority: priorityOf(category), summary: cleanSubject(m.subject).slice(0, 120), actions: [], links: linky ? m.links.slice(0, 1).filter((l) => l.length <= 300) : [] };
}

export interface Example {
  entry: CorpusEntry;
  message: ParsedMessage;
  label: string;
}

/**
 * The recipe's hand labels of training messages (id → category), empty without `train_labels`. Each
 * must name a corpus message, and not one of the evaluation set: it would be trained on and scored.
 */
export async function readTrainLabels(r: Pick<MailRecipe, 'train_labels'>, heldOut: ReadonlySet<string>): Promise<Map<string, string>> {
  if (r.train_labels === undefined) return new Map();
  const corpus = new Set((await corpusEntries()).map((e) => e.id));
  const out = new Map<string, string>();
  for (const l of await readLabels(r.train_labels, DEFAULT_CATEGORIES)) {
    if (l.path !== undefined) throw new Error(`${r.train_labels}: ${l.id}: training labels name corpus messages by "id", not files`);
    if (!corpus.has(l.id)) throw new Error(`${r.train_labels}: ${l.id} is not a message of the SpamAssassin corpus`);
    if (heldOut.has(l.id)) throw new Error(`${r.train_labels}: ${l.id} is also an evaluation message; it cannot be trained on`);
    out.set(l.id, l.category);
  }
  return out;
}

/**
 * Parses the corpus into training examples and the held-out (hand-labelled) ids. A training
 * message's label is its hand label from `handLabels` (see readTrainLabels) where it has one, else
 * its weak label.
 */
export async function loadCorpus(heldOut: ReadonlySet<string>, log: (l: string) => void, handLabels: ReadonlyMap<string, string> = new Map()): Promise<{ train: Example[]; held: Map<string, Example> }> {
  const train: Example[] = [];
  const held = new Map<string, Example>();
  let changed = 0;
  for (const e of await corpusEntries()) {
    const m = await parseMessage(await readCorpusMessage(e));
    const weak = weakLabel(m, e.spam);
    const hand = handLabels.get(e.id);
    if (hand !== undefined && heldOut.has(e.id)) throw new Error(`training labels: ${e.id} is held out for evaluation`);
    if (hand !== undefined && hand !== weak) changed++;
    const ex = { entry: e, message: m, label: hand ?? weak };
    if (heldOut.has(e.id)) held.set(e.id, ex);
    else train.push(ex);
  }
  log(`corpus: ${train.length} training messages, ${held.size} held out${handLabels.size > 0 ? `; ${handLabels.size} labelled by hand (${changed} differ from the weak label)` : ''}`);
  return { train, held };
}

/** The training list with each example of an oversampled group repeated; model and baseline both learn from it. */
export function oversampled(examples: readonly Example[], oversample: Readonly<Record<string, number>>): Example[] {
  return examples.flatMap((e) => Array<Example>(oversample[e.entry.group] ?? 1).fill(e));
}

/** The prompt text of a message for a tokenizer, cut to `promptTokens`. */
export function promptFor(tok: Tokenizer, m: ParsedMessage, promptTokens: number): { messages: ReturnType<typeof fitBody>; text: string } {
  const messages = fitBody(m, DEFAULT_CATEGORIES, (msgs) => tok.encode(applyChatTemplate(tok, msgs)).length <= promptTokens, 3000);
  return { messages, text: messages[1].content };
}

export interface RecipeResult {
  model: string;
  baselineAccuracy: number;
}

export async function runMailRecipe(r: MailRecipe, o: { out: string; exportDir: string; log: (l: string) => void; signal?: AbortSignal }): Promise<string> {
  const log = o.log;
  const labels = await readLabels(r.labels, DEFAULT_CATEGORIES);
  const heldOut = new Set(labels.map((l) => l.id));
  const { train: corpus } = await loadCorpus(heldOut, log, await readTrainLabels(r, heldOut));
  const examples = oversampled(corpus, r.oversample);
  const counts = new Map<string, number>();
  for (const e of examples) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  log(`training labels: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  await mkdir(o.out, { recursive: true });

  // 1. Tokenizer, on the texts the model reads and writes: instructions, headers and fenced body,
  // and the JSON answer. Its merges then spend few tokens on the fixed parts and leave more of the
  // prompt budget to the message itself.
  const tokDir = join(o.out, 'tokenizer');
  const tok = await trainTokenizer(
    corpus.map((e) => {
      const prompt = triageMessages(e.message, DEFAULT_CATEGORIES, e.message.body.slice(0, 3000));
      return `${prompt.map((m) => m.content).join('\n')}\n${JSON.stringify(targetAnswer(e.message, e.label))}`;
    }),
    { vocabSize: r.vocab_size },
  );
  await tok.save(tokDir);
  await setChatTemplate(tokDir, MAIL_CHAT_TEMPLATE);
  const { loadTokenizer } = await import('../tokenizer/index.js');
  const mailTok = await loadTokenizer(tokDir);
  log(`tokenizer: ${mailTok.vocabSize} tokens`);

  // 2. Data: prompts for pretraining, prompt + answer for SFT.
  const pre: string[] = [];
  const sft: string[] = [];
  for (const e of examples) {
    const { messages, text } = promptFor(mailTok, e.message, r.prompt_tokens);
    pre.push(JSON.stringify({ text }));
    sft.push(JSON.stringify({ messages: [...messages, { role: 'assistant', content: JSON.stringify(targetAnswer(e.message, e.label)) }] }));
  }
  await writeFileAtomic(join(o.out, 'pretrain.jsonl'), `${pre.join('\n')}\n`);
  await writeFileAtomic(join(o.out, 'sft.jsonl'), `${sft.join('\n')}\n`);

  // 3. Pretrain, then SFT from it.
  const stage = async (name: 'pretrain' | 'sft', raw: Record<string, unknown>): Promise<string> => {
    const cfg = parseTrainConfig(raw, `${name} stage`, name);
    await checkTrainConfig(cfg, `${name} stage`);
    const result = await train(cfg, { out: join(o.out, name), resume: true, signal: o.signal, log, source: `${name} stage` });
    if (result.stopped) throw new Error(`${name}: stopped at step ${result.step}; run again to resume`);
    log(`${name}: done at step ${result.step}, validation loss ${result.valLoss?.toFixed(4)}`);
    return join(o.out, name, 'latest');
  };
  const pretrained = await stage('pretrain', {
    ...r.pretrain,
    stage: 'pretrain',
    seed: r.seed,
    tokenizer: { path: tokDir },
    data: { source: 'jsonl', path: join(o.out, 'pretrain.jsonl'), field: 'text', val_fraction: 0.02, seed: r.seed },
  });
  const tuned = await stage('sft', {
    ...r.sft,
    stage: 'sft',
    seed: r.seed,
    model: { init: pretrained },
    data: { source: 'jsonl', path: join(o.out, 'sft.jsonl'), val_fraction: 0.02, seed: r.seed, format: 'r1' },
  });
  const dest = join(o.exportDir, 'nano-mail');
  await exportModel(tuned, dest, 'BF16', MAIL_CHAT_TEMPLATE);
  log(`exported ${dest}`);
  return dest;
}

/** The naive Bayes baseline, trained on the same (oversampled) prompts and labels as the model. */
export function trainBaseline(examples: readonly Example[], tok: Tokenizer, promptTokens: number): NaiveBayes {
  const nb = new NaiveBayes();
  for (const e of examples) nb.train(promptFor(tok, e.message, promptTokens).text, e.label);
  return nb;
}

export async function writeJson(path: string, v: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(v, null, 2)}\n`);
}
