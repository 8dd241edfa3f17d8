// An OpenAI-compatible HTTP server over the continuous-batching engine (node:http, no framework).
//
//   GET  /                       the chat page
//   GET  /health                 liveness, load and memory (no key needed)
//   GET  /v1/models              the one model served
//   GET  /v1/models/{id}         it, with architecture, parameter counts and limits
//   POST /v1/chat/completions    chat, streaming (SSE) or not; reasoning_content beside content
//   POST /v1/completions         plain text completion
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Engine, EngineBusyError, EngineClosedError, ReasoningSplitter, promptOpensThink, splitCompletion, type EngineOptions, type Generation, type GenerationResult } from '../infer/index.js';
import { heapStats } from '../kernels/memory.js';
import { countParameters, describeModel } from '../model/config.js';
import type { ModelCard } from '../io/model-card.js';
import type { CausalLM } from '../model/model.js';
import { applyChatTemplate, SPECIAL_TOKENS, type Tokenizer } from '../tokenizer/index.js';
import { ApiError, completionBudget, parseChatRequest, parseCompletionRequest, type RequestLimits, type SamplingDefaults } from './api.js';
import { CHAT_PAGE } from './page.js';
import { isLoopbackHost } from '../util/net.js';

export interface ServerOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The name clients pass as `model`. */
  modelId: string;
  /** Requests must carry `Authorization: Bearer <apiKey>` (all /v1 routes). */
  apiKey?: string;
  /** Largest max_tokens a request may ask for (default: the context window). */
  maxTokens?: number;
  engine?: EngineOptions;
  samplingDefaults?: SamplingDefaults;
  /** Where the checkpoint came from, shown by /v1/models/{id}. */
  checkpointDir?: string;
  /** What the checkpoint says about itself (description, example questions): shown by the chat page. */
  card?: ModelCard | null;
  /** One line per request and lifecycle event; default: silent. */
  log?: (line: string) => void;
  /** Pages and APIs of applications above the server (e.g. /mail), tried before the API routes. */
  routes?: readonly ExtraRoute[];
}

/** A path prefix an application serves: `handle` gets every request for the prefix and below. */
export interface ExtraRoute {
  prefix: string;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;


function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  const headers: Record<string, string> = err.status === 429 ? { 'Retry-After': '1' } : {};
  if (err.status === 401) headers['WWW-Authenticate'] = 'Bearer';
  sendJson(res, err.status, err.body(), headers);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new ApiError(413, `the request body exceeds ${MAX_BODY_BYTES} bytes`, null, 'request_too_large');
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(400, `the request body could not be read: ${(err as Error).message}`);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'the request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `malformed JSON in the request body: ${(err as Error).message}`);
  }
}

function usage(r: GenerationResult, reasoningTokens?: number): Record<string, unknown> {
  const u: Record<string, unknown> = {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.tokens.length,
    total_tokens: r.promptTokens + r.tokens.length,
    // OpenAI's field for prompt tokens served from a cache: here, KV rows copied from the prefix cache.
    prompt_tokens_details: { cached_tokens: r.cachedPromptTokens },
  };
  if (reasoningTokens !== undefined) u.completion_tokens_details = { reasoning_tokens: reasoningTokens };
  return u;
}

/** An SSE response: `data: {json}` events, then `data: [DONE]`. */
class EventStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(data: unknown): void {
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.open) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}

export class InferenceServer {
  readonly engine: Engine;
  readonly http: Server;
  readonly modelId: string;
  readonly limits: RequestLimits;
  private readonly keyDigest: Buffer | null;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly started = Date.now();
  private closing = false;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ServerOptions) {
    const { model, tokenizer } = options;
    this.modelId = options.modelId;
    this.engine = new Engine(model, tokenizer, options.engine);
    const contextLength = model.config.max_position_embeddings;
    const maxTokens = options.maxTokens ?? contextLength;
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
    this.limits = { contextLength, maxTokens: Math.min(maxTokens, contextLength - 1) };
    if (options.apiKey !== undefined && options.apiKey.length === 0) throw new Error('the API key must not be empty');
    this.keyDigest = options.apiKey === undefined ? null : sha256(options.apiKey);
    this.log = options.log ?? (() => {});
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`internal error: ${(err as Error).stack ?? err}`);
        if (!res.headersSent) sendError(res, new ApiError(500, 'internal server error'));
        else res.destroy();
      });
    });
  }

  /** Starts listening; port 0 picks a free port. Refuses a non-loopback host without an API key. */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    if (!isLoopbackHost(host) && this.keyDigest === null) {
      return Promise.reject(new Error(`refusing to serve on ${host} without an API key: anyone who can reach it could use the model (pass --api-key or set NANOSEEK_API_KEY, or bind to 127.0.0.1)`));
    }
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: stop accepting connections, let running generations finish for up to `graceMs`,
   * cancel whatever is left, and resolve once every connection is closed.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => this.engine.cancelAll(), options.graceMs ?? 10_000);
    await this.engine.close();
    clearTimeout(timer);
    // Responses finish writing a moment after their generation ends; then their connections are idle.
    await new Promise((resolve) => setImmediate(resolve));
    this.http.closeIdleConnections();
    const force = setTimeout(() => this.http.closeAllConnections(), 1000);
    await closed;
    clearTimeout(force);
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.keyDigest === null) return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(sha256(m[1].trim()), this.keyDigest);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    res.on('close', () => {
      const outcome = res.writableFinished ? String(res.statusCode) : `${res.statusCode} (client went away)`;
      this.log(`${req.method} ${path} ${outcome} ${(performance.now() - t0).toFixed(0)} ms`);
    });
    try {
      if (this.closing) {
        res.setHeader('Connection', 'close');
        throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
      }
      await this.route(req, res, path);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (res.headersSent) return;
      if (err.status === 413) res.setHeader('Connection', 'close'); // the rest of the body is not read
      sendError(res, err);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const allow = (...methods: string[]): void => {
      if (!methods.includes(method)) {
        res.setHeader('Allow', methods.join(', '));
        throw new ApiError(405, `${method} is not allowed on ${path} (use ${methods.join(' or ')})`, null, 'method_not_allowed');
      }
    };
    if (path === '/' || path === '/index.html') {
      allow('GET', 'HEAD');
      // Everything the page needs is inline; the policy keeps it from loading anything else.
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:",
      });
      res.end(method === 'HEAD' ? undefined : CHAT_PAGE);
      return;
    }
    if (path === '/health') {
      allow('GET');
      sendJson(res, 200, this.health());
      return;
    }
    for (const r of this.options.routes ?? []) {
      if (path === r.prefix || path.startsWith(`${r.prefix}/`)) {
        await r.handle(req, res, path);
        return;
      }
    }
    if (!path.startsWith('/v1/')) throw new ApiError(404, `no route ${path}`, null, 'not_found');
    if (!this.authorized(req)) throw new ApiError(401, 'missing or wrong API key: send "Authorization: Bearer <key>"', null, 'invalid_api_key');
    if (path === '/v1/models') {
      allow('GET');
      sendJson(res, 200, { object: 'list', data: [this.modelCard()] });
      return;
    }
    if (path.startsWith('/v1/models/')) {
      allow('GET');
      let id: string;
      try {
        id = decodeURIComponent(path.slice('/v1/models/'.length));
      } catch {
        throw new ApiError(400, 'malformed model id in the path');
      }
      this.checkModel(id, null);
      sendJson(res, 200, this.modelDetails());
      return;
    }
    if (path === '/v1/chat/completions') {
      allow('POST');
      await this.chat(req, res);
      return;
    }
    if (path === '/v1/completions') {
      allow('POST');
      await this.complete(req, res);
      return;
    }
    throw new ApiError(404, `no route ${path}`, null, 'not_found');
  }

  private checkModel(id: string | undefined, param: string | null): void {
    if (id !== undefined && id !== this.modelId) {
      throw new ApiError(404, `The model '${id}' does not exist; this server serves '${this.modelId}'`, param, 'model_not_found');
    }
  }

  health(): Record<string, unknown> {
    const s = this.engine.stats();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      status: this.closing ? 'shutting_down' : 'ok',
      model: this.modelId,
      running: s.running,
      queued: s.queued,
      max_concurrent: s.maxConcurrent,
      max_queue: s.maxQueue === Infinity ? null : s.maxQueue,
      steps: s.steps,
      prompt_tokens: s.promptTokens,
      cached_prompt_tokens: s.cachedPromptTokens,
      generated_tokens: s.generatedTokens,
      prefix_cache: { entries: s.prefixCacheEntries, bytes: s.prefixCacheBytes },
      uptime_s: Math.round((Date.now() - this.started) / 1000),
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      rss_bytes: mem.rss,
      // maxRSS is in KiB.
      peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      wasm_heap: heapStats(),
    };
  }

  private modelCard(): Record<string, unknown> {
    return { id: this.modelId, object: 'model', created: this.created, owned_by: 'nanoseek' };
  }

  private modelDetails(): Record<string, unknown> {
    const cfg = this.options.model.config;
    const p = countParameters(cfg);
    const d = this.options.samplingDefaults ?? {};
    return {
      ...this.modelCard(),
      architecture: cfg.architectures[0],
      model_type: cfg.model_type,
      parameters: { total: p.total, active: p.active },
      context_length: cfg.max_position_embeddings,
      vocab_size: cfg.vocab_size,
      description: describeModel(cfg),
      checkpoint: this.options.checkpointDir ?? null,
      model_card: this.options.card ? { description: this.options.card.description, examples: this.options.card.examples } : null,
      chat_template: this.options.tokenizer.chatTemplate === undefined ? 'deepseek-r1 (built in)' : 'tokenizer_config.json',
      limits: { max_tokens: this.limits.maxTokens, max_concurrent: this.engine.maxConcurrent, max_queue: this.engine.maxQueue === Infinity ? null : this.engine.maxQueue },
      defaults: { temperature: d.temperature ?? 1, top_p: d.topP ?? 1, top_k: d.topK ?? 0, repetition_penalty: d.repetitionPenalty ?? 1 },
    };
  }

  /** Submits to the engine, cancelling when the client goes away; busy and closed become 429 and 503. */
  private submit(res: ServerResponse, prompt: number[], options: Parameters<Engine['submit']>[1]): Generation {
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    try {
      // The API returns no log-probs, so the engine need not compute them.
      return this.engine.submit(prompt, { ...options, logprobs: false, signal: abort.signal });
    } catch (err) {
      if (err instanceof EngineBusyError) throw new ApiError(429, `the server is busy: ${err.message}; retry shortly`, null, 'server_busy');
      if (err instanceof EngineClosedError) throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
      if (err instanceof RangeError) throw new ApiError(400, err.message);
      throw err;
    }
  }

  private async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const r = parseChatRequest(body, this.limits, this.options.samplingDefaults ?? {});
    this.checkModel(r.model, 'model');
    let text: string;
    try {
      text = applyChatTemplate(this.options.tokenizer, r.messages);
    } catch (err) {
      throw new ApiError(400, `messages: the chat template failed: ${(err as Error).message}`, 'messages');
    }
    const prompt = this.options.tokenizer.encode(text);
    const maxTokens = completionBudget(prompt.length, r.maxTokens, this.limits, 'messages');
    const opened = promptOpensThink(text);
    // A reasoning model thinks freely; the schema holds from its '</think>' on.
    const json = r.json === undefined ? undefined : { grammar: r.json, after: opened ? SPECIAL_TOKENS.thinkEnd : undefined };
    const gen = this.submit(res, prompt, { ...r.sampling, maxTokens, stop: r.stop, stopTokenIds: r.ignoreEos ? [] : undefined, json });
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const splitter = new ReasoningSplitter(opened);
    let reasoningTokens = 0;

    if (!r.stream) {
      for await (const e of gen) if (splitter.push(e.text).inReasoning) reasoningTokens++;
      const result = await gen.result;
      if (result.finishReason === 'cancelled') {
        if (!res.destroyed) throw new ApiError(503, 'the generation was cancelled: the server is shutting down', null, 'shutting_down');
        return;
      }
      const { reasoning, content } = splitCompletion(result.text, opened);
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: this.modelId,
        choices: [{ index: 0, message: { role: 'assistant', content, reasoning_content: reasoning }, logprobs: null, finish_reason: result.finishReason }],
        usage: usage(result, reasoningTokens),
      });
      return;
    }

    const sse = new EventStream(res);
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null, extra: Record<string, unknown> = {}) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.modelId,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...extra,
    });
    const sendParts = (p: { reasoning: string; content: string }): void => {
      if (p.reasoning !== '') sse.send(chunk({ reasoning_content: p.reasoning, content: null }));
      if (p.content !== '') sse.send(chunk({ content: p.content, reasoning_content: null }));
    };
    sse.send(chunk({ role: 'assistant', content: '', reasoning_content: null }));
    try {
      for await (const e of gen) {
        const p = splitter.push(e.text);
        if (p.inReasoning) reasoningTokens++;
        sendParts(p);
      }
    } catch (err) {
      this.log(`generation failed: ${(err as Error).stack ?? err}`);
      sse.send(new ApiError(500, `generation failed: ${(err as Error).message}`).body());
      sse.end();
      return;
    }
    sendParts(splitter.flush());
    const result = await gen.result;
    if (result.finishReason === 'cancelled') {
      sse.send(new ApiError(503, 'the generation was cancelled: the server is shutting down', null, 'shutting_down').body());
    } else {
      sse.send(chunk({}, result.finishReason, { usage: usage(result, reasoningTokens) }));
    }
    sse.end();
  }

  private async complete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const r = parseCompletionRequest(body, this.limits, this.options.samplingDefaults ?? {});
    this.checkModel(r.model, 'model');
    const tok = this.options.tokenizer;
    let prompt: number[];
    if (typeof r.prompt === 'string') {
      // Documents start with BOS in training; add it unless the text already spells it.
      const bos = tok.special.bos;
      const bosText = bos === undefined ? undefined : tok.idToToken(bos);
      prompt = tok.encode(r.prompt, { addBos: bosText !== undefined && !r.prompt.startsWith(bosText) });
    } else {
      prompt = r.prompt;
      const V = this.options.model.config.vocab_size;
      prompt.forEach((id, i) => {
        if (id < 0 || id >= V) throw new ApiError(400, `prompt[${i}]: token id ${id} is outside the vocabulary [0, ${V})`, `prompt[${i}]`);
      });
    }
    const maxTokens = completionBudget(prompt.length, r.maxTokens, this.limits, 'prompt');
    const gen = this.submit(res, prompt, { ...r.sampling, maxTokens, stop: r.stop, stopTokenIds: r.ignoreEos ? [] : undefined });
    const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const envelope = (text: string, finishReason: string | null, extra: Record<string, unknown> = {}) => ({
      id,
      object: 'text_completion',
      created,
      model: this.modelId,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
      ...extra,
    });

    if (!r.stream) {
      const result = await gen.result;
      if (result.finishReason === 'cancelled') {
        if (!res.destroyed) throw new ApiError(503, 'the generation was cancelled: the server is shutting down', null, 'shutting_down');
        return;
      }
      sendJson(res, 200, envelope(result.text, result.finishReason, { usage: usage(result) }));
      return;
    }
    const sse = new EventStream(res);
    try {
      for await (const e of gen) if (e.text !== '') sse.send(envelope(e.text, null));
    } catch (err) {
      sse.send(new ApiError(500, `generation failed: ${(err as Error).message}`).body());
      sse.end();
      return;
    }
    const result = await gen.result;
    if (result.finishReason === 'cancelled') sse.send(new ApiError(503, 'the generation was cancelled: the server is shutting down', null, 'shutting_down').body());
    else sse.send(envelope('', result.finishReason, { usage: usage(result) }));
    sse.end();
  }
}
