// Continuous batching: every step runs ONE batched cached forward over all active sequences, in which
// new requests prefill a chunk of their prompt and running ones decode their next token. Sequences join
// and leave between steps, so a long generation never holds up a short one and the batch stays full
// while requests come and go. Steps are synchronous (the model is); between them the loop yields to the
// event loop so that the HTTP server can accept requests, write tokens and notice disconnects.
// Prompts that start like a recently prefilled one copy the KV rows of the shared prefix from a small
// store (prefix-cache.ts) and prefill only the rest.
import type { KVCache } from '../model/cache.js';
import type { CausalLM } from '../model/model.js';
import * as T from '../tensor/index.js';
import type { DecodeStream, Tokenizer } from '../tokenizer/index.js';
import { Rng } from '../util/rng.js';
import { grammarMasks, type GrammarMasks } from './constraint.js';
import { JsonMatcher, type JsonGrammar } from './json-schema.js';
import { commonPrefix, PrefixCache } from './prefix-cache.js';
import { Sampler, checkSamplingOptions, logSumExp, type Sample, type SamplingOptions } from './sampler.js';
import { StopStrings } from './stop.js';

/** Generated tokens a sequence's KV cache makes room for up front (it grows by doubling past them). */
const RESERVE_AHEAD = 512;

export interface GenerationOptions extends SamplingOptions {
  /** Most tokens to generate (the context window bounds it in any case). */
  maxTokens?: number;
  /** Token ids that end the sequence (kept in `tokens`, not in the text). Default: the engine's EOS ids; [] = none. */
  stopTokenIds?: readonly number[];
  /** Strings that end the sequence; the text stops before the first one. */
  stop?: readonly string[];
  /** Aborting cancels the request (queued or running). */
  signal?: AbortSignal;
  /** Called for every sampled token, in order, before the async iterator sees it. */
  onToken?: (event: TokenEvent) => void;
  /** Report each token's log-probability (default true); without, they are NaN and sampling is cheaper. */
  logprobs?: boolean;
  /** Constrain the output to JSON (see JsonConstraint). */
  json?: JsonConstraint;
  /**
   * Teacher forcing: emit exactly these tokens, then stop ('stop'). Each still costs one decode step
   * with its argmax, logprob and grammar check, so this times (or scores) a known answer; a token the
   * JSON constraint refuses fails the request.
   */
  forceTokens?: readonly number[];
}

/**
 * JSON-constrained decoding: every token after the constraint engages keeps the output a prefix of a
 * value the grammar accepts (compileJsonSchema), and the sequence stops with 'stop' once the value is
 * complete. With `after`, the text is free until that string has been generated (a reasoning model's
 * '</think>': it thinks freely, then answers in the schema); without, from the first token.
 */
export interface JsonConstraint {
  grammar: JsonGrammar;
  after?: string;
}

interface JsonState {
  masks: GrammarMasks;
  grammar: JsonGrammar;
  /** null until `after` has been generated. */
  matcher: JsonMatcher | null;
  after: string;
  /** The end of the text so far, while looking for `after`. */
  tail: string;
}

export interface TokenEvent {
  /** 0 for the first generated token. */
  index: number;
  token: number;
  /** Its log-probability under the model's unmodified distribution (NaN if not asked for). */
  logprob: number;
  /** Text this token released: '' while a character or a possible stop string is incomplete. */
  text: string;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface GenerationResult {
  promptTokens: number;
  /** Of those, the leading ones whose KV rows came from the prefix cache instead of a prefill. */
  cachedPromptTokens: number;
  /** Every sampled token, including a final stop token. */
  tokens: number[];
  logprobs: number[];
  /** Decoded completion without the stop token or stop string (special tokens such as EOS skipped). */
  text: string;
  finishReason: FinishReason;
  /** The stop string or stop token id that ended it ('stop' only). */
  stoppedBy: string | number | null;
}

/** A submitted request: iterate it for tokens as they come, or await `result`. */
export interface Generation extends AsyncIterable<TokenEvent> {
  readonly result: Promise<GenerationResult>;
  /** Ends it with finishReason 'cancelled' and frees its cache. Breaking out of iteration does the same. */
  cancel(): void;
}

export interface EngineOptions {
  /** Sequences decoded together (default 32); later requests wait in the queue. */
  maxConcurrent?: number;
  /** Requests waiting beyond those (default 64; Infinity for offline batches); more are refused as busy. */
  maxQueue?: number;
  /** Most prompt tokens one sequence prefills per step (default 64). */
  prefillChunk?: number;
  /** Most prompt tokens all sequences together prefill per step (default 256), so decoding never stalls long. */
  prefillBudget?: number;
  /** Default stop token ids; default: the EOS ids of the model config and the tokenizer. */
  stopTokenIds?: readonly number[];
  /** Seeds the seeds of requests that bring none. Default: from the clock. */
  seed?: number;
  /**
   * Prompt-prefix reuse. Once a sequence has prefilled its prompt, a copy of the prompt's KV rows is
   * kept (ordinary memory, not the WASM heap), least recently used evicted first to stay within
   * `maxBytes` (default 256 MiB; 0 turns reuse off). A later prompt sharing at least `minTokens`
   * (default 16) leading tokens with a kept one copies those rows and prefills only the rest, at least
   * its last token. Kept rows belong to the current weights: call clearPrefixCache() after changing them.
   */
  prefixCache?: { maxBytes?: number; minTokens?: number };
}

export interface EngineStats {
  running: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
  steps: number;
  /** Prompt tokens of admitted sequences brought into their caches, prefilled or copied. */
  promptTokens: number;
  /** Of those, the ones copied from the prefix cache (not run through the model). */
  cachedPromptTokens: number;
  generatedTokens: number;
  /** Bytes the prefix cache holds, in how many prompts. */
  prefixCacheBytes: number;
  prefixCacheEntries: number;
}

/** The engine is full: running and queue limits reached. */
export class EngineBusyError extends Error {
  readonly code = 'busy';
}

/** The engine is shutting down and takes no new requests. */
export class EngineClosedError extends Error {
  readonly code = 'closed';
}

/** A push-to-pull queue behind each request's async iterator. */
class Channel<V> {
  private readonly items: V[] = [];
  private ended = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;

  push(v: V): void {
    this.items.push(v);
    this.notify();
  }

  end(error: unknown = null): void {
    this.ended = true;
    this.error = error;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *drain(onStop: () => void): AsyncGenerator<V> {
    try {
      for (;;) {
        if (this.items.length > 0) {
          yield this.items.shift()!;
          continue;
        }
        if (this.ended) {
          if (this.error !== null) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      onStop(); // no-op once finished; cancels when the consumer broke out early
    }
  }
}

interface Sequence {
  prompt: readonly number[];
  sampler: Sampler;
  wantLogprobs: boolean;
  maxTokens: number;
  stopIds: ReadonlySet<number>;
  stopper: StopStrings;
  decoder: DecodeStream;
  onToken: ((e: TokenEvent) => void) | undefined;
  channel: Channel<TokenEvent>;
  resolve: (r: GenerationResult) => void;
  reject: (err: unknown) => void;
  detach: () => void;
  cache: KVCache | null;
  prefilled: number;
  /** Prompt tokens copied from the prefix cache. */
  cached: number;
  /** The prefix cache has been consulted (just before the first prefill chunk). */
  lookedUp: boolean;
  tokens: number[];
  logprobs: number[];
  text: string;
  done: boolean;
  json: JsonState | null;
  force: readonly number[] | null;
}

function eosIds(model: CausalLM, tokenizer: Tokenizer): number[] {
  const ids = new Set<number>();
  const e = model.config.eos_token_id;
  for (const id of Array.isArray(e) ? e : e === null ? [] : [e]) ids.add(id);
  if (tokenizer.special.eos !== undefined) ids.add(tokenizer.special.eos);
  return [...ids];
}

function positiveInt(name: string, v: number, allowInfinity = false): number {
  if (!(Number.isSafeInteger(v) && v > 0) && !(allowInfinity && v === Infinity)) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Engine {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly prefillChunk: number;
  readonly prefillBudget: number;
  readonly stopTokenIds: readonly number[];
  private readonly seeds: Rng;
  private readonly running: Sequence[] = [];
  private readonly waiting: Sequence[] = [];
  private looping = false;
  private closed = false;
  private readonly drained: (() => void)[] = [];
  private steps = 0;
  private promptTokens = 0;
  private cachedPromptTokens = 0;
  private generatedTokens = 0;
  private readonly prefixes: PrefixCache | null;

  constructor(readonly model: CausalLM, readonly tokenizer: Tokenizer, options: EngineOptions = {}) {
    this.maxConcurrent = positiveInt('maxConcurrent', options.maxConcurrent ?? 32);
    const q = options.maxQueue ?? 64;
    if (!(q === Infinity || (Number.isSafeInteger(q) && q >= 0))) throw new RangeError(`maxQueue must be a non-negative integer or Infinity, got ${q}`);
    this.maxQueue = q;
    this.prefillChunk = positiveInt('prefillChunk', options.prefillChunk ?? 64);
    this.prefillBudget = positiveInt('prefillBudget', options.prefillBudget ?? 256);
    this.stopTokenIds = options.stopTokenIds ?? eosIds(model, tokenizer);
    this.seeds = new Rng(options.seed ?? Date.now());
    const pc = options.prefixCache ?? {};
    const maxBytes = pc.maxBytes ?? 256 * 2 ** 20;
    if (!(maxBytes >= 0)) throw new RangeError(`prefixCache.maxBytes must be a non-negative number, got ${maxBytes}`);
    const minTokens = positiveInt('prefixCache.minTokens', pc.minTokens ?? 16);
    this.prefixes = maxBytes > 0 ? new PrefixCache(maxBytes, minTokens) : null;
  }

  get contextLength(): number {
    return this.model.config.max_position_embeddings;
  }

  stats(): EngineStats {
    return {
      running: this.running.length,
      queued: this.waiting.length,
      maxConcurrent: this.maxConcurrent,
      maxQueue: this.maxQueue,
      steps: this.steps,
      promptTokens: this.promptTokens,
      cachedPromptTokens: this.cachedPromptTokens,
      generatedTokens: this.generatedTokens,
      prefixCacheBytes: this.prefixes?.bytes ?? 0,
      prefixCacheEntries: this.prefixes?.size ?? 0,
    };
  }

  /** Forgets every kept prompt prefix: their rows were computed with the weights of that time. */
  clearPrefixCache(): void {
    this.prefixes?.clear();
  }

  /**
   * Queues a prompt (token ids). Throws EngineBusyError when the queue is full, EngineClosedError
   * after close(), RangeError for a bad prompt or option.
   */
  submit(prompt: readonly number[], options: GenerationOptions = {}): Generation {
    if (this.closed) throw new EngineClosedError('the engine is shutting down');
    const V = this.model.config.vocab_size;
    if (prompt.length === 0) throw new RangeError('the prompt has no tokens');
    if (prompt.length >= this.contextLength) {
      throw new RangeError(`the prompt has ${prompt.length} tokens; the context window is ${this.contextLength}, leaving no room to generate`);
    }
    for (const id of prompt) if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`prompt token ${id} is outside the vocabulary [0, ${V})`);
    checkSamplingOptions(options);
    const c = options.json;
    const json: JsonState | null =
      c === undefined
        ? null
        : { masks: grammarMasks(c.grammar, this.tokenizer, V), grammar: c.grammar, matcher: c.after ? null : JsonMatcher.start(c.grammar), after: c.after ?? '', tail: '' };
    const maxTokens = positiveInt('maxTokens', options.maxTokens ?? Infinity, true);
    const force = options.forceTokens ?? null;
    if (force !== null) {
      if (force.length === 0) throw new RangeError('forceTokens must hold at least one token');
      const bad = force.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= V);
      if (bad >= 0) throw new RangeError(`forceTokens[${bad}] = ${force[bad]} is not a token id of this ${V}-token vocabulary`);
    }
    const stopper = new StopStrings(options.stop ?? []);
    if (this.running.length >= this.maxConcurrent && this.waiting.length >= this.maxQueue) {
      throw new EngineBusyError(`${this.running.length} of ${this.maxConcurrent} sequences running and ${this.waiting.length} of ${this.maxQueue} queued`);
    }

    const sampler = new Sampler({ ...options, seed: options.seed ?? this.seeds.int(0, 2 ** 48) });
    if (sampler.repetitionPenalty !== 1) sampler.observe(prompt);
    let resolve!: (r: GenerationResult) => void;
    let reject!: (err: unknown) => void;
    const result = new Promise<GenerationResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => {}); // a caller that only iterates sees the error there; don't also crash the process
    const s: Sequence = {
      prompt: [...prompt],
      sampler,
      wantLogprobs: options.logprobs ?? true,
      maxTokens,
      stopIds: new Set(options.stopTokenIds ?? this.stopTokenIds),
      stopper,
      decoder: this.tokenizer.createDecodeStream({ skipSpecial: true }),
      onToken: options.onToken,
      channel: new Channel<TokenEvent>(),
      resolve,
      reject,
      detach: () => {},
      cache: null,
      prefilled: 0,
      cached: 0,
      lookedUp: false,
      tokens: [],
      logprobs: [],
      text: '',
      done: false,
      json,
      force: force === null ? null : [...force],
    };
    const cancel = (): void => this.finish(s, 'cancelled', null);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        cancel();
      } else {
        signal.addEventListener('abort', cancel, { once: true });
        s.detach = () => signal.removeEventListener('abort', cancel);
      }
    }
    if (!s.done) {
      if (this.running.length < this.maxConcurrent) this.admit(s);
      else this.waiting.push(s);
      this.start();
    }
    return { result, cancel, [Symbol.asyncIterator]: () => s.channel.drain(cancel) };
  }

  /**
   * Stops taking requests and resolves once every running and queued one has finished. With
   * `cancel`, they are cancelled instead of being run to completion.
   */
  close(options: { cancel?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (options.cancel) this.cancelAll();
    if (this.running.length + this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  cancelAll(): void {
    for (const s of [...this.waiting, ...this.running]) this.finish(s, 'cancelled', null);
  }

  private admit(s: Sequence): void {
    // Room for the prompt and up to RESERVE_AHEAD generated tokens at once, so a short request
    // never grows its cache (each growth leaves the old buffers behind in the heap), rounded up to a
    // power of two so that finished sequences' buffers fit the next ones. Pages past the rows a
    // sequence writes are never touched, so the rounding costs address space, not resident memory.
    const want = Math.min(s.prompt.length + Math.min(s.maxTokens, RESERVE_AHEAD), this.contextLength);
    const end = 2 ** Math.ceil(Math.log2(Math.max(16, want)));
    s.cache = this.model.newCache(end);
    this.running.push(s);
  }

  private start(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.running.length + this.waiting.length > 0) {
        while (this.running.length < this.maxConcurrent && this.waiting.length > 0) this.admit(this.waiting.shift()!);
        this.step();
        await nextTick();
      }
    } finally {
      this.looping = false;
      for (const d of this.drained.splice(0)) d();
    }
  }

  /** One batched forward: a prompt chunk for prefilling sequences, the last token for decoding ones. */
  private step(): void {
    const batch: { s: Sequence; ids: readonly number[]; prefill: boolean }[] = [];
    let budget = this.prefillBudget;
    for (const s of this.running) {
      if (s.prefilled < s.prompt.length) {
        if (!s.lookedUp) {
          if (this.awaitsPrefix(s)) continue;
          this.reusePrefix(s);
        }
        const n = Math.min(this.prefillChunk, s.prompt.length - s.prefilled, budget);
        if (n <= 0) continue;
        budget -= n;
        batch.push({ s, ids: s.prompt.slice(s.prefilled, s.prefilled + n), prefill: true });
      } else {
        batch.push({ s, ids: [s.tokens[s.tokens.length - 1]], prefill: false });
      }
    }
    if (batch.length === 0) return;
    this.steps++;
    let samples: ({ token: number; logprob: number } | null)[];
    try {
      samples = T.noGrad(() =>
        T.tidy(() => {
          const logits = this.model.forwardCached(batch.map((b) => ({ ids: b.ids, cache: b.s.cache! })));
          const V = logits.shape[1];
          return batch.map((b, r) => {
            if (b.prefill) {
              b.s.prefilled += b.ids.length;
              this.promptTokens += b.ids.length;
              if (b.s.prefilled < b.s.prompt.length) return null;
              this.keepPrefix(b.s);
            }
            return this.sample(b.s, logits.data.subarray(r * V, (r + 1) * V));
          });
        }),
      );
    } catch (err) {
      for (const b of batch) this.fail(b.s, err);
      return;
    }
    batch.forEach((b, r) => {
      const x = samples[r];
      if (x === null || b.s.done) return;
      try {
        this.accept(b.s, x.token, x.logprob);
      } catch (err) {
        this.fail(b.s, err); // a throwing onToken callback ends its own request only
      }
    });
  }

  /**
   * Starts a sequence's cache from the kept prompt sharing the longest prefix with it, if any. Done
   * at its first prefill chunk rather than on admission, so a prompt kept in between still counts.
   */
  private reusePrefix(s: Sequence): void {
    s.lookedUp = true;
    const hit = this.prefixes?.lookup(s.prompt);
    if (!hit) return;
    s.cache!.restore(hit.snapshot, hit.rows);
    s.prefilled = s.cached = hit.rows;
    this.promptTokens += hit.rows;
    this.cachedPromptTokens += hit.rows;
  }

  /**
   * Whether a sequence should hold back its first prefill chunk because another one is prefilling a
   * prompt that shares more with it than any kept one: once that prompt is kept, this one copies the
   * shared rows instead of computing them alongside. The G samples of a GRPO prompt (and the first
   * requests to a server, all with one system prompt) arrive together and would otherwise all prefill
   * the same tokens. It waits only while the other has no more left to prefill than it has itself, so
   * the wait costs it little; it looks again each step (the other may finish, or be cancelled).
   */
  private awaitsPrefix(s: Sequence): boolean {
    const store = this.prefixes;
    if (store === null) return false;
    const kept = store.reusable(s.prompt);
    const rowBytes = s.cache!.rowBytes;
    for (const t of this.running) {
      // Only sequences already prefilling (not themselves waiting), whose prompt will be kept.
      if (t === s || !t.lookedUp || t.prefilled >= t.prompt.length || !store.keeps(t.prompt.length, t.prompt.length * rowBytes)) continue;
      const rows = Math.min(commonPrefix(s.prompt, t.prompt), s.prompt.length - 1);
      if (rows - kept >= store.minTokens && t.prompt.length - t.prefilled <= s.prompt.length - kept) return true;
    }
    return false;
  }

  /** Keeps a copy of the rows of a prompt just prefilled (the cache holds exactly the prompt now). */
  private keepPrefix(s: Sequence): void {
    const cache = s.cache!;
    this.prefixes?.store(s.prompt, cache.bytes(), () => cache.snapshot());
  }

  /** The next token of a sequence, within its JSON grammar when one is engaged. */
  private sample(s: Sequence, row: ArrayLike<number>): Sample {
    if (s.force !== null) return this.forced(s, row);
    const m = s.json?.matcher;
    if (m === undefined || m === null) return s.sampler.sample(row, s.wantLogprobs);
    const masks = s.json!.masks;
    if (s.sampler.greedy) {
      // The likeliest token is usually allowed; then it is also the likeliest allowed one.
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
      if (masks.allows(m, best)) return s.sampler.sample(row, s.wantLogprobs);
    }
    const mask = masks.mask(m);
    if (!mask.some((w) => w !== 0)) throw new Error('constrained decoding: no token of the vocabulary can continue the JSON');
    return s.sampler.sample(row, s.wantLogprobs, mask);
  }

  /**
   * The next forced token. Its grammar check stands for the check a greedy step makes of its argmax
   * (usually allowed, so no mask is built), and its logprob costs a pass over the row as that argmax does.
   */
  private forced(s: Sequence, row: ArrayLike<number>): Sample {
    const i = s.tokens.length;
    const token = s.force![i];
    const m = s.json?.matcher;
    if (m !== undefined && m !== null && !s.json!.masks.allows(m, token)) throw new Error(`forceTokens[${i}] = ${token} leaves the JSON grammar`);
    return { token, logprob: row[token] - logSumExp(row) };
  }

  /** Advances the JSON state over a generated token; true when the value is complete. */
  private advanceJson(j: JsonState, token: number, piece: string): boolean {
    if (j.matcher === null) {
      j.tail += piece;
      const at = j.tail.indexOf(j.after);
      if (at < 0) {
        j.tail = j.tail.slice(-j.after.length);
        return false;
      }
      // Engaged: whatever followed `after` in this token starts the value (or is left out of it).
      const start = JsonMatcher.start(j.grammar);
      j.matcher = start.feed(new TextEncoder().encode(j.tail.slice(at + j.after.length))) ?? start;
      j.tail = '';
    } else {
      const bytes = j.masks.trie.bytesOf[token];
      j.matcher = (bytes === null ? null : j.matcher.feed(bytes)) ?? j.matcher;
    }
    return j.matcher.finished;
  }

  private accept(s: Sequence, token: number, logprob: number): void {
    s.tokens.push(token);
    s.logprobs.push(logprob);
    this.generatedTokens++;
    let text: string;
    let reason: FinishReason | null = null;
    let stoppedBy: string | number | null = null;
    const rest = (): string => s.stopper.push(s.decoder.flush()) + s.stopper.flush();
    if (s.stopIds.has(token)) {
      reason = 'stop';
      stoppedBy = token;
      text = rest();
    } else {
      const piece = s.decoder.push(token);
      text = s.stopper.push(piece);
      if (s.json !== null && this.advanceJson(s.json, token, piece)) {
        reason = 'stop';
        text += rest();
      } else if (s.stopper.matched !== null) {
        reason = 'stop';
        stoppedBy = s.stopper.matched;
      } else if (s.force !== null && s.tokens.length >= s.force.length) {
        reason = 'stop';
        text += rest();
      } else if (s.tokens.length >= s.maxTokens || s.prompt.length + s.tokens.length >= this.contextLength) {
        reason = 'length';
        text += rest();
      }
    }
    s.text += text;
    const event: TokenEvent = { index: s.tokens.length - 1, token, logprob, text };
    s.onToken?.(event);
    s.channel.push(event);
    if (reason !== null) this.finish(s, reason, stoppedBy);
  }

  private release(s: Sequence): boolean {
    if (s.done) return false;
    s.done = true;
    s.detach();
    s.cache?.dispose();
    s.cache = null;
    for (const list of [this.running, this.waiting]) {
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1);
    }
    return true;
  }

  private finish(s: Sequence, finishReason: FinishReason, stoppedBy: string | number | null): void {
    if (!this.release(s)) return;
    s.resolve({ promptTokens: s.prompt.length, cachedPromptTokens: s.cached, tokens: s.tokens, logprobs: s.logprobs, text: s.text, finishReason, stoppedBy });
    s.channel.end();
  }

  private fail(s: Sequence, err: unknown): void {
    if (!this.release(s)) return;
    s.reject(err);
    s.channel.end(err);
  }
}
