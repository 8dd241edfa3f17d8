// The model that answers for the messages no rule settles: in this process on nanoseek's engine (any
// model loadForInference reads: a checkpoint directory or a GGUF file such as an R1 distill), or
// behind an OpenAI-compatible endpoint on this machine (nanoseek serve, llama.cpp's server, Ollama).
// Either way the answer is decoded inside the triage schema: by our engine's grammar here, by the
// server's response_format there.
import { compileJsonSchema, Engine, promptOpensThink, splitCompletion, type InferenceCheckpoint, type JsonGrammar } from '../infer/index.js';
import { applyChatTemplate, SPECIAL_TOKENS, type ChatMessage } from '../tokenizer/index.js';
import { isLoopbackHost } from './guard.js';
import { triageSchema } from './schema.js';

export interface CompleteRequest {
  messages: ChatMessage[];
  maxTokens: number;
  temperature?: number;
  seed?: number;
  /**
   * Emit exactly this answer, token by token (LocalModel only: the engine's forceTokens). For
   * benchmarks that time a model of some shape producing answers of a trained model's length.
   */
  force?: string;
}

export interface CompleteResult {
  /** The answer (JSON text, reasoning removed). */
  text: string;
  reasoning: string;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
}

export interface TriageModel {
  readonly name: string;
  /** Whether a prompt leaves room for `maxTokens` of answer in the context. */
  fits(messages: ChatMessage[], maxTokens: number): boolean;
  complete(req: CompleteRequest): Promise<CompleteResult>;
  close(): Promise<void>;
}

export interface LocalModelOptions {
  /** Let a reasoning model think before answering (default false: its think block is closed at once). */
  think?: boolean;
  /** Tokens a reasoning model may think for, on top of the answer (default 512). */
  thinkTokens?: number;
  /** Messages decoded together (default 4). */
  concurrency?: number;
  /** Decode inside the schema (default true; false only to measure what the grammar costs). */
  constrained?: boolean;
}

/** nanoseek's engine in this process. */
export class LocalModel implements TriageModel {
  readonly name: string;
  private readonly engine: Engine;
  private readonly grammar: JsonGrammar;
  private readonly context: number;

  constructor(
    private readonly ckpt: InferenceCheckpoint,
    categories: readonly string[],
    private readonly options: LocalModelOptions = {},
  ) {
    this.name = ckpt.name;
    this.engine = new Engine(ckpt.model, ckpt.tokenizer, { maxConcurrent: options.concurrency ?? 4, maxQueue: Infinity });
    this.grammar = compileJsonSchema(triageSchema(categories));
    this.context = ckpt.model.config.max_position_embeddings;
  }

  /** The prompt text, and whether the model thinks before the JSON. */
  private render(messages: ChatMessage[]): { text: string; thinks: boolean } {
    let text = applyChatTemplate(this.ckpt.tokenizer, messages);
    if (!promptOpensThink(text)) return { text, thinks: false };
    if (this.options.think) return { text, thinks: true };
    // DeepSeek-R1's way to skip thinking: an empty think block, closed at once.
    text += `\n${SPECIAL_TOKENS.thinkEnd}\n\n`;
    return { text, thinks: false };
  }

  /** The engine's counters (benchmarks). */
  stats(): { promptTokens: number; cachedPromptTokens: number; generatedTokens: number } {
    const s = this.engine.stats();
    return { promptTokens: s.promptTokens, cachedPromptTokens: s.cachedPromptTokens, generatedTokens: s.generatedTokens };
  }

  fits(messages: ChatMessage[], maxTokens: number): boolean {
    const { text, thinks } = this.render(messages);
    return this.ckpt.tokenizer.encode(text).length + maxTokens + (thinks ? (this.options.thinkTokens ?? 512) : 0) < this.context;
  }

  async complete(req: CompleteRequest): Promise<CompleteResult> {
    const { text, thinks } = this.render(req.messages);
    const prompt = this.ckpt.tokenizer.encode(text);
    const budget = req.maxTokens + (thinks ? (this.options.thinkTokens ?? 512) : 0);
    const r = await this.engine.submit(prompt, {
      temperature: req.temperature ?? 0,
      seed: req.seed,
      maxTokens: Math.max(1, Math.min(budget, this.context - prompt.length - 1)),
      logprobs: false,
      json: this.options.constrained === false ? undefined : { grammar: this.grammar, after: thinks ? SPECIAL_TOKENS.thinkEnd : undefined },
      forceTokens: req.force === undefined ? undefined : this.ckpt.tokenizer.encode(req.force),
    }).result;
    const split = thinks ? splitCompletion(r.text, true) : { reasoning: '', content: r.text.trim() };
    return { text: split.content, reasoning: split.reasoning, finishReason: r.finishReason, promptTokens: r.promptTokens, completionTokens: r.tokens.length };
  }

  async close(): Promise<void> {
    await this.engine.close({ cancel: true });
  }
}

/** An OpenAI-compatible chat endpoint on loopback. */
export class EndpointModel implements TriageModel {
  readonly name: string;
  private readonly schema: Record<string, unknown>;

  constructor(
    private readonly baseUrl: string,
    private readonly modelId: string,
    categories: readonly string[],
    private readonly apiKey?: string,
    private readonly timeoutMs = 600_000,
    private readonly context = 8192,
  ) {
    this.name = `${modelId} at ${baseUrl}`;
    this.schema = triageSchema(categories);
  }

  /** Checks the URL (loopback only: mail must not leave the machine) and finds the model id. */
  static async connect(url: string, categories: readonly string[], options: { model?: string; apiKey?: string } = {}): Promise<EndpointModel> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new Error(`--endpoint ${url}: not a URL (e.g. http://127.0.0.1:8080/v1)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--endpoint ${url}: must be http(s)`);
    if (!isLoopbackHost(u.hostname)) throw new Error(`--endpoint ${url}: the model server must be on this machine (127.0.0.1, localhost or ::1); mail is never sent elsewhere`);
    const base = url.replace(/\/+$/, '');
    let model = options.model;
    if (model === undefined) {
      const res = await fetch(`${base}/models`, { headers: options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {} }).catch((err: Error) => {
        throw new Error(`--endpoint ${url}: cannot reach the model server: ${err.message}`);
      });
      if (!res.ok) throw new Error(`--endpoint ${url}: GET /models answered ${res.status}`);
      const list = (await res.json()) as { data?: { id: string }[] };
      model = list.data?.[0]?.id;
      if (model === undefined) throw new Error(`--endpoint ${url}: the server lists no model; pass --endpoint-model`);
    }
    // The context window, where the server says (nanoseek serve and vLLM do; others: assume 8k).
    const info = (await fetch(`${base}/models/${encodeURIComponent(model)}`, { headers: options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {} })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null)) as { context_length?: number; max_model_len?: number } | null;
    const context = info?.context_length ?? info?.max_model_len ?? 8192;
    return new EndpointModel(base, model, categories, options.apiKey, 600_000, context);
  }

  fits(messages: ChatMessage[], maxTokens: number): boolean {
    // Without the server's tokenizer: about 3 characters a token, on the safe side for most text.
    const chars = messages.reduce((n, m) => n + m.content.length, 0);
    return Math.ceil(chars / 3) + 16 + maxTokens < this.context;
  }

  async complete(req: CompleteRequest): Promise<CompleteResult> {
    const res = await fetch(`${this.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {}) },
      body: JSON.stringify({
        model: this.modelId,
        messages: req.messages,
        max_tokens: req.maxTokens,
        temperature: req.temperature ?? 0,
        seed: req.seed,
        response_format: { type: 'json_schema', json_schema: { name: 'triage', strict: true, schema: this.schema } },
      }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = (await res.json().catch(() => null)) as Record<string, any> | null;
    if (!res.ok) throw new Error(`the model server answered ${res.status}: ${body?.error?.message ?? 'no error message'}`);
    const choice = body?.choices?.[0];
    const content = String(choice?.message?.content ?? '');
    // Servers that do not split reasoning leave "<think>…</think>" in content.
    const split = content.includes(SPECIAL_TOKENS.thinkEnd) ? splitCompletion(content, false) : { reasoning: String(choice?.message?.reasoning_content ?? ''), content };
    return {
      text: split.content.trim(),
      reasoning: split.reasoning,
      finishReason: String(choice?.finish_reason ?? 'stop'),
      promptTokens: Number(body?.usage?.prompt_tokens ?? 0),
      completionTokens: Number(body?.usage?.completion_tokens ?? 0),
    };
  }

  async close(): Promise<void> {}
}
