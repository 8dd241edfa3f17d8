// Training data: document and example streams, their tokenization into batches, and the fixed
// validation batches. Every stream is deterministic and can report its position as plain JSON
// (`state()`); reopening a stream from that state continues with exactly the next item, which is
// what makes a resumed run bit-exact.
//
// Pretraining packs documents, each `<bos> text <eos>`, end to end into rows of seq_len + 1 tokens;
// consecutive rows overlap by one token so every token but the very first is a target once. SFT
// keeps one example per row, the loss on the completion (and its EOS) only, padded to a few fixed
// lengths (see paddedLength).
import { readFile } from 'node:fs/promises';
import { openedThink } from '../infer/reasoning.js';
import { IGNORE_INDEX } from '../tensor/index.js';
import { corpusDocuments, hashKey, heldOutSet, questionText, sftRecords, workedSolution, ZERO_TEMPLATE, type CorpusOptions, type TaskSpec } from '../tasks/index.js';
import { applyChatTemplate, SPECIAL_TOKENS, type ChatMessage, type Tokenizer } from '../tokenizer/index.js';
import { Rng, type RngState } from '../util/rng.js';
import type { CorpusData, DataSpec, FileData, SftFileData, SftFormat, SftTaskData, TrainConfig } from './config.js';
import type { Batch } from './step.js';

/** An endless (training) or finite (validation) sequence of items with a resumable position. */
export interface Stream<T> {
  /** The next item; null when a finite stream is exhausted. */
  next(): T | null;
  /** The position: reopening the stream from it yields the same items that `next()` would. */
  state(): unknown;
}

/** The generated task corpus; its position is the number of documents drawn (replayed on reopen). */
export class CorpusStream implements Stream<string> {
  private readonly docs: Generator<{ text: string }>;
  private consumed = 0;

  constructor(opts: CorpusOptions, state?: unknown) {
    this.docs = corpusDocuments(opts);
    const skip = state === undefined ? 0 : readState(state, 'consumed');
    for (let i = 0; i < skip; i++) this.next();
  }

  next(): string {
    this.consumed++;
    return this.docs.next().value!.text;
  }

  state(): { consumed: number } {
    return { consumed: this.consumed };
  }
}

/**
 * A fixed list visited in a fresh random order each epoch (endless), or once in order (`cycle`
 * false). The position holds the RNG state the current epoch's order was drawn from.
 */
export class ListStream<T> implements Stream<T> {
  private epoch = 0;
  private index = 0;
  private order: number[] = [];
  private epochRng!: RngState;
  private readonly rng: Rng;

  constructor(private readonly items: readonly T[], seed: number, private readonly cycle = true, state?: unknown) {
    if (items.length === 0) throw new Error('data: no documents to draw from');
    this.rng = new Rng(seed);
    if (state !== undefined) {
      const s = state as { epoch: number; index: number; rng: RngState };
      this.rng.setState(s.rng);
      this.epoch = readState(state, 'epoch');
      this.startEpoch();
      this.index = readState(state, 'index');
    } else {
      this.startEpoch();
    }
  }

  private startEpoch(): void {
    this.epochRng = this.rng.getState();
    this.order = this.items.map((_, i) => i);
    if (this.cycle) this.rng.shuffle(this.order);
    this.index = 0;
  }

  next(): T | null {
    if (this.index === this.order.length) {
      if (!this.cycle) return null;
      this.epoch++;
      this.startEpoch();
    }
    return this.items[this.order[this.index++]];
  }

  state(): { epoch: number; index: number; rng: RngState } {
    return { epoch: this.epoch, index: this.index, rng: this.epochRng };
  }
}

function readState(state: unknown, key: string): number {
  const v = (state as Record<string, unknown> | null)?.[key];
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`data state: ${key} = ${JSON.stringify(v)} is not a position`);
  return v as number;
}

export interface SftExample {
  /** The user's question (R1 and R1-Zero formats). */
  prompt?: string;
  /** A whole conversation whose last message is the assistant turn to learn (R1 format). */
  messages?: ChatMessage[];
  /** The assistant's reply: `<think>…</think>` reasoning then the answer. */
  completion: string;
}

/** Cold-start SFT records from generated problems, tasks mixed uniformly by a resumable RNG. */
export class TaskSftStream implements Stream<SftExample> {
  private readonly gens: Generator<{ prompt: string; completion: string }>[];
  private readonly consumed: number[];
  private readonly rng: Rng;

  constructor(tasks: readonly TaskSpec[], seed: number, state?: unknown) {
    this.rng = new Rng(seed);
    this.gens = tasks.map((spec) => sftRecords(spec, { seed: this.rng.nextU32() }));
    this.consumed = tasks.map(() => 0);
    if (state !== undefined) {
      const s = state as { rng: RngState; consumed: unknown };
      if (!Array.isArray(s.consumed) || s.consumed.length !== tasks.length) throw new Error('data state: consumed does not match the task list');
      s.consumed.forEach((_, i) => {
        const n = readState(s.consumed, String(i));
        for (let k = 0; k < n; k++) this.draw(i);
      });
      this.rng.setState(s.rng);
    }
  }

  private draw(i: number): SftExample {
    this.consumed[i]++;
    const r = this.gens[i].next().value!;
    return { prompt: r.prompt, completion: r.completion };
  }

  next(): SftExample {
    return this.draw(this.gens.length === 1 ? 0 : this.rng.int(0, this.gens.length - 1));
  }

  state(): { rng: RngState; consumed: number[] } {
    return { rng: this.rng.getState(), consumed: [...this.consumed] };
  }
}

// ---------------------------------------------------------------------------------------------
// Tokenization

/** `<bos> text <eos>` (no BOS when the vocabulary has none). */
export function encodeDocument(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text, { addBos: tokenizer.special.bos !== undefined });
  ids.push(requireEos(tokenizer));
  return ids;
}

function requireEos(tokenizer: Tokenizer): number {
  const eos = tokenizer.special.eos;
  if (eos === undefined) throw new Error(`tokenizer: has no EOS token (${SPECIAL_TOKENS.eos}), which training needs between documents and after replies`);
  return eos;
}

export interface EncodedExample {
  tokens: number[];
  /** tokens[0..promptLength) are context: no loss on predicting them. */
  promptLength: number;
}

/**
 * One SFT example as tokens. R1: the chat template renders the conversation up to the assistant's
 * turn (ending in `<｜Assistant｜><think>\n`, as at inference, so the reply's own `<think>\n` is
 * dropped; the same for any template that ends by opening the think block); R1-Zero: BOS + the plain-text R1-Zero prompt, then " " + the reply. Prompt and reply are
 * encoded separately, as generation sees them, and the reply ends with EOS.
 */
export function encodeSftExample(tokenizer: Tokenizer, ex: SftExample, format: SftFormat): EncodedExample {
  let prompt: number[];
  let reply = ex.completion;
  if (format === 'r1') {
    const messages: ChatMessage[] = ex.messages ?? [{ role: 'user', content: ex.prompt ?? '' }];
    const text = applyChatTemplate(tokenizer, messages, { addGenerationPrompt: true });
    // A template that opens the think block (R1's "<think>\n", or " <think>" in a model exported with
    // the R1-Zero prompt) has already written the reply's "<think>" and any whitespace after it.
    const opened = openedThink(text);
    const head = `${SPECIAL_TOKENS.think}${opened}`;
    if (opened !== null && reply.startsWith(head)) reply = reply.slice(head.length);
    prompt = tokenizer.encode(text);
  } else {
    if (ex.prompt === undefined) throw new Error('data: the r1-zero format needs {prompt, completion} examples');
    prompt = tokenizer.encode(ZERO_TEMPLATE.replace('{question}', () => ex.prompt!), { addBos: tokenizer.special.bos !== undefined });
    reply = ` ${reply}`;
  }
  const tokens = [...prompt, ...tokenizer.encode(reply), requireEos(tokenizer)];
  return { tokens, promptLength: prompt.length };
}

// ---------------------------------------------------------------------------------------------
// Batching

export interface Batcher {
  next(): Batch;
  state(): unknown;
}

/** Packs a document stream into rows of T+1 tokens; position = (document, token offset in it). */
export class PackedBatcher implements Batcher {
  private readonly stream: Stream<string>;
  private doc: number[] = [];
  private docState: unknown;
  private pos = 0;

  constructor(
    open: (state?: unknown) => Stream<string>,
    private readonly encode: (text: string) => number[],
    private readonly B: number,
    private readonly T: number,
    state?: { doc: unknown; offset: number },
  ) {
    this.stream = open(state?.doc);
    if (!this.advance()) throw new Error('data: the document stream is empty');
    if (state !== undefined) this.pos = readState(state, 'offset');
  }

  /** Moves to the next document; false at the end of a finite stream. */
  private advance(): boolean {
    this.docState = this.stream.state();
    const text = this.stream.next();
    if (text === null) return false;
    this.doc = this.encode(text);
    this.pos = 0;
    return true;
  }

  /** One row of T+1 tokens, or null when a finite stream runs out. */
  row(): Int32Array | null {
    const row = new Int32Array(this.T + 1);
    let n = 0;
    while (n < row.length) {
      if (this.pos >= this.doc.length && !this.advance()) return null;
      const take = Math.min(row.length - n, this.doc.length - this.pos);
      for (let i = 0; i < take; i++) row[n + i] = this.doc[this.pos + i];
      n += take;
      this.pos += take;
    }
    this.pos--; // the row's last token is the next row's first input
    return row;
  }

  next(): Batch {
    const rows: Int32Array[] = [];
    for (let b = 0; b < this.B; b++) rows.push(this.row()!);
    return rowsToBatch(rows, this.T);
  }

  state(): { doc: unknown; offset: number } {
    return { doc: this.docState, offset: this.pos };
  }
}

function rowsToBatch(rows: readonly Int32Array[], T: number): Batch {
  const B = rows.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  rows.forEach((r, b) => {
    ids.set(r.subarray(0, T), b * T);
    targets.set(r.subarray(1, T + 1), b * T);
  });
  return { ids, targets, B, T };
}

export interface SftBatchStats {
  /** Examples whose reply did not fit in seq_len and was cut. */
  truncated: number;
  /** Examples whose prompt alone filled seq_len (nothing to learn): skipped. */
  skipped: number;
}

/**
 * The padded length for a batch whose longest row is `n`: the next power of two (at least 16), at
 * most seqLen. The tensor heap keeps freed buffers per exact size and never merges them, so every
 * distinct batch shape costs its own set of activation buffers for the rest of the run; a handful
 * of lengths bounds that, where padding to each batch's longest row exhausts the heap.
 */
export function paddedLength(n: number, seqLen: number): number {
  return Math.min(seqLen, Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n)))));
}

/**
 * Encoded examples → one batch: each row is an example cut to at most seqLen positions, padded with
 * `padId` (targets IGNORE_INDEX) to paddedLength of the longest row.
 */
export function collateSft(examples: readonly EncodedExample[], seqLen: number, padId: number, stats?: SftBatchStats): Batch {
  const lengths = examples.map((e) => Math.min(e.tokens.length - 1, seqLen));
  const T = paddedLength(Math.max(...lengths), seqLen);
  const B = examples.length;
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  examples.forEach((e, b) => {
    if (e.tokens.length - 1 > seqLen && stats) stats.truncated++;
    for (let t = 0; t < lengths[b]; t++) {
      ids[b * T + t] = e.tokens[t];
      if (t + 1 >= e.promptLength) targets[b * T + t] = e.tokens[t + 1];
    }
  });
  return { ids, targets, B, T };
}

/** Whether an example leaves at least one reply token inside the first seqLen positions. */
function learnable(e: EncodedExample, seqLen: number): boolean {
  return e.promptLength <= seqLen && e.tokens.length > e.promptLength;
}

/** SFT micro-batches of B examples; position = the example stream's. */
export class SftBatcher implements Batcher {
  private readonly stream: Stream<SftExample>;
  readonly stats: SftBatchStats = { truncated: 0, skipped: 0 };

  constructor(
    open: (state?: unknown) => Stream<SftExample>,
    private readonly encode: (ex: SftExample) => EncodedExample,
    private readonly B: number,
    private readonly seqLen: number,
    private readonly padId: number,
    state?: unknown,
  ) {
    this.stream = open(state);
  }

  next(): Batch {
    const picked: EncodedExample[] = [];
    // A stream where no example fits would loop forever; a budget turns that into an error.
    for (let tries = 0; picked.length < this.B; tries++) {
      if (tries > 1000 + 100 * this.B) throw new Error(`data: no SFT example fits seq_len ${this.seqLen} (prompts too long); raise seq_len`);
      const e = this.encode(this.stream.next()!);
      if (learnable(e, this.seqLen)) picked.push(e);
      else this.stats.skipped++;
    }
    return collateSft(picked, this.seqLen, this.padId, this.stats);
  }

  state(): unknown {
    return this.stream.state();
  }
}

// ---------------------------------------------------------------------------------------------
// Sources from a config

/** Whether a document (by content, so duplicates stay together) belongs to the validation split. */
function heldOut(key: string, fraction: number): boolean {
  return hashKey(key) / 2 ** 32 < fraction;
}

async function readLines(path: string): Promise<{ value: unknown; where: string }[]> {
  const text = await readFile(path, 'utf8');
  const out: { value: unknown; where: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    try {
      out.push({ value: JSON.parse(line), where });
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
  });
  return out;
}

async function readDocuments(path: string, format: 'text' | 'jsonl', field: string): Promise<string[]> {
  if (format === 'text') {
    return (await readFile(path, 'utf8')).split(/\n[ \t]*\n/).map((d) => d.trim()).filter((d) => d !== '');
  }
  return (await readLines(path)).map(({ value, where }) => {
    const v = (value as Record<string, unknown> | null)?.[field];
    if (typeof v !== 'string') throw new Error(`${where}: field "${field}" must be a string`);
    return v;
  });
}

function toExample(value: unknown, where: string): SftExample {
  const r = value as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${where}: expected a JSON object`);
  for (const k of Object.keys(r)) if (!['prompt', 'completion', 'messages'].includes(k)) throw new Error(`${where}: unknown field "${k}" (expected prompt + completion, or messages)`);
  if (Array.isArray(r.messages)) {
    const msgs = r.messages as ChatMessage[];
    if (!msgs.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string')) throw new Error(`${where}: every message needs a string role and content`);
    const last = msgs[msgs.length - 1];
    if (last?.role !== 'assistant') throw new Error(`${where}: the last message must be the assistant's reply to learn`);
    return { messages: msgs.slice(0, -1), completion: last.content };
  }
  if (typeof r.prompt !== 'string' || typeof r.completion !== 'string') throw new Error(`${where}: needs string fields prompt and completion (or messages)`);
  return { prompt: r.prompt, completion: r.completion };
}

async function readExamples(path: string): Promise<{ example: SftExample; key: string }[]> {
  return (await readLines(path)).map(({ value, where }) => ({ example: toExample(value, where), key: JSON.stringify(value) }));
}

function corpusOptions(d: CorpusData, seed: number): CorpusOptions {
  return { seed, maxDigits: d.max_digits, ops: d.ops, ...(d.countdown ? { countdown: d.countdown } : {}) };
}

export interface TrainData {
  batcher: Batcher;
  /** Fixed validation batches (empty when eval_batches is 0). */
  val: Batch[];
  /** SFT only: truncation and skip counts. */
  sftStats: SftBatchStats | null;
}

/** The first `n` training texts, for learning a tokenizer on the data the model will see. */
export async function tokenizerTexts(data: DataSpec, stage: TrainConfig['stage'], n: number): Promise<string[]> {
  const out: string[] = [];
  if (stage === 'pretrain' && data.source === 'tasks') {
    const s = new CorpusStream(corpusOptions(data as CorpusData, data.seed));
    for (let i = 0; i < n; i++) out.push(s.next());
  } else if (stage !== 'pretrain' && data.source === 'tasks') {
    const s = new TaskSftStream((data as SftTaskData).tasks, data.seed);
    for (let i = 0; i < n; i++) {
      const e = s.next();
      out.push(`${e.prompt}\n${e.completion}`);
    }
  } else if (stage === 'pretrain') {
    const d = data as FileData;
    out.push(...(await readDocuments(d.path, d.source, d.field)).slice(0, n));
  } else {
    for (const { example } of (await readExamples((data as SftFileData).path)).slice(0, n)) {
      out.push([...(example.messages ?? []).map((m) => m.content), example.prompt ?? '', example.completion].join('\n'));
    }
  }
  return out;
}

function batchesFrom(rows: Int32Array[], B: number, T: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i + B <= rows.length; i += B) out.push(rowsToBatch(rows.slice(i, i + B), T));
  return out;
}

/**
 * The training batcher (at `state`, or the start) and the validation batches for a config. Reads
 * data files; throws naming file and line on malformed input.
 */
export async function openTrainData(cfg: TrainConfig, tokenizer: Tokenizer, state?: unknown): Promise<TrainData> {
  const { data, batch_size: B, seq_len: T } = cfg;
  const valRows = cfg.eval_batches * B;
  if (cfg.stage === 'pretrain') {
    const encode = (text: string) => encodeDocument(tokenizer, text);
    let open: (s?: unknown) => Stream<string>;
    let openVal: () => Stream<string>;
    if (data.source === 'tasks') {
      const d = data as CorpusData;
      open = (s) => new CorpusStream(corpusOptions(d, d.seed), s);
      openVal = () => new CorpusStream(corpusOptions(d, d.val_seed));
    } else {
      const d = data as FileData;
      const docs = await readDocuments(d.path, d.source, d.field);
      const val = d.val_path !== null ? await readDocuments(d.val_path, d.source, d.field) : docs.filter((t) => heldOut(t, d.val_fraction));
      const train = d.val_path !== null ? docs : docs.filter((t) => !heldOut(t, d.val_fraction));
      if (train.length === 0) throw new Error(`${d.path}: no training documents (all ${docs.length} fell in the validation split)`);
      open = (s) => new ListStream(train, d.seed, true, s);
      if (valRows > 0 && val.length === 0) throw new Error(`${d.val_path ?? d.path}: no validation documents; raise data.val_fraction or give data.val_path`);
      openVal = () => new ListStream(val, 0, false);
    }
    const rows: Int32Array[] = [];
    if (valRows > 0) {
      const packer = new PackedBatcher(openVal, encode, 1, T);
      while (rows.length < valRows) {
        const r = packer.row();
        if (r === null) break;
        rows.push(r);
      }
    }
    const val = batchesFrom(rows, B, T);
    if (valRows > 0 && val.length === 0) throw new Error(`data: the validation split has fewer than ${B} sequences of ${T + 1} tokens; lower seq_len or batch_size, or add validation data`);
    return { batcher: new PackedBatcher(open, encode, B, T, state as { doc: unknown; offset: number } | undefined), val, sftStats: null };
  }

  const padId = tokenizer.special.pad ?? requireEos(tokenizer);
  const format = (data as SftTaskData | SftFileData).format;
  const encode = (ex: SftExample) => encodeSftExample(tokenizer, ex, format);
  let open: (s?: unknown) => Stream<SftExample>;
  let valExamples: SftExample[];
  if (data.source === 'tasks') {
    const d = data as SftTaskData;
    open = (s) => new TaskSftStream(d.tasks, d.seed, s);
    const per = Math.ceil(valRows / d.tasks.length);
    valExamples = valRows === 0 ? [] : d.tasks.flatMap((spec) => heldOutValExamples(spec, per));
  } else {
    const d = data as SftFileData;
    const all = await readExamples(d.path);
    const val = d.val_path !== null ? await readExamples(d.val_path) : all.filter((e) => heldOut(e.key, d.val_fraction));
    const train = d.val_path !== null ? all : all.filter((e) => !heldOut(e.key, d.val_fraction));
    if (train.length === 0) throw new Error(`${d.path}: no training examples (all ${all.length} fell in the validation split)`);
    open = (s) => new ListStream(train.map((e) => e.example), d.seed, true, s);
    valExamples = val.map((e) => e.example);
  }
  const usable = valExamples.map(encode).filter((e) => learnable(e, T)).slice(0, valRows);
  const val: Batch[] = [];
  for (let i = 0; i < usable.length; i += B) val.push(collateSft(usable.slice(i, i + B), T, padId));
  if (valRows > 0 && val.length === 0) throw new Error(`data: no validation example fits seq_len ${T}`);
  const batcher = new SftBatcher(open, encode, B, T, padId, state);
  return { batcher, val, sftStats: batcher.stats };
}

/** Held-out problems of a task with worked-solution replies: never drawn by training. */
function heldOutValExamples(spec: TaskSpec, n: number): SftExample[] {
  const rng = new Rng(hashKey(JSON.stringify(spec)));
  return heldOutSet(spec, n).map((p) => {
    const { steps, answer } = workedSolution(p, rng);
    return { prompt: questionText(p), completion: `<think>\n${steps.join('\n')}\n</think>\n<answer>${answer}</answer>` };
  });
}
