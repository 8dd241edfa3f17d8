// The OpenAI-compatible request bodies: validation into what the engine needs, with errors in
// OpenAI's shape ({error: {message, type, param, code}}) that name the offending field.
import { compileJsonSchema, SchemaError, type JsonGrammar, type SamplingOptions } from '../infer/index.js';
import type { ChatMessage } from '../tokenizer/index.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status >= 500 ? 'server_error' : status === 429 ? 'rate_limit_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface RequestLimits {
  /** The model's context window: prompt plus completion. */
  contextLength: number;
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
}

/** Sampling defaults from the checkpoint's generation_config.json; requests override them. */
export type SamplingDefaults = Pick<SamplingOptions, 'temperature' | 'topP' | 'topK' | 'repetitionPenalty'>;

interface Common {
  model: string | undefined;
  stream: boolean;
  /** Requested max_tokens, if any (the server fills in the rest of the context otherwise). */
  maxTokens: number | undefined;
  sampling: SamplingOptions;
  stop: string[];
  /** vLLM's extension: keep generating past EOS (benchmarks). */
  ignoreEos: boolean;
}

export interface ChatRequest extends Common {
  messages: ChatMessage[];
  /** response_format json_schema / json_object: the grammar the answer must follow. */
  json: JsonGrammar | undefined;
}

export interface CompletionRequest extends Common {
  prompt: string | number[];
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);
const MAX_STOP = 16;

function bad(param: string, message: string): ApiError {
  return new ApiError(400, `${param}: ${message}`, param);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, `the request body must be a JSON object, got ${typeName(body)}`);
  return body as Record<string, unknown>;
}

/** An optional number field (null counts as absent, as OpenAI treats it). */
function num(o: Record<string, unknown>, key: string, lo: number, hi: number, opts: { integer?: boolean; loOpen?: boolean } = {}): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(key, `must be a number, got ${typeName(v)}`);
  if (opts.integer && !Number.isSafeInteger(v)) throw bad(key, `must be an integer, got ${v}`);
  if ((opts.loOpen ? v <= lo : v < lo) || v > hi) throw bad(key, `must be in ${opts.loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
  return v;
}

function bool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(key, `must be a boolean, got ${typeName(v)}`);
  return v;
}

/** Fields that would change the meaning of the response and that this server does not implement. */
function refuseUnsupported(o: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of keys) {
    const v = o[k];
    if (v !== undefined && v !== null && v !== false) throw new ApiError(400, `${k} is not supported by this server`, k, 'unsupported_parameter');
  }
}

function common(o: Record<string, unknown>, limits: RequestLimits, defaults: SamplingDefaults): Common {
  const model = o.model;
  if (model !== undefined && typeof model !== 'string') throw bad('model', `must be a string, got ${typeName(model)}`);
  const n = num(o, 'n', 1, Number.MAX_SAFE_INTEGER, { integer: true });
  if (n !== undefined && n !== 1) throw bad('n', 'only n = 1 is supported');
  const maxTokens = num(o, 'max_completion_tokens', 1, limits.maxTokens, { integer: true }) ?? num(o, 'max_tokens', 1, limits.maxTokens, { integer: true });

  let stop: string[] = [];
  const s = o.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s)) stop = s;
  else if (s !== undefined && s !== null) throw bad('stop', `must be a string or an array of strings, got ${typeName(s)}`);
  if (stop.length > MAX_STOP) throw bad('stop', `at most ${MAX_STOP} stop strings, got ${stop.length}`);
  stop.forEach((x, i) => {
    if (typeof x !== 'string' || x.length === 0) throw bad(`stop[${i}]`, 'must be a non-empty string');
  });

  const stream = bool(o, 'stream') ?? false;
  const so = o.stream_options;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) throw bad('stream_options', `must be an object, got ${typeName(so)}`);
    if (!stream) throw bad('stream_options', 'is only allowed with stream: true');
  }

  const topK = num(o, 'top_k', -1, 1e9, { integer: true });
  const topP = num(o, 'top_p', 0, 1);
  const sampling: SamplingOptions = {
    temperature: num(o, 'temperature', 0, 2) ?? defaults.temperature,
    // top_p 0 asks for the single most likely token; the sampler's nucleus wants a positive mass.
    topP: topP === undefined ? defaults.topP : Math.max(topP, Number.MIN_VALUE),
    topK: topK === undefined ? defaults.topK : Math.max(topK, 0),
    repetitionPenalty: num(o, 'repetition_penalty', 0, 10, { loOpen: true }) ?? defaults.repetitionPenalty,
    presencePenalty: num(o, 'presence_penalty', -2, 2),
    frequencyPenalty: num(o, 'frequency_penalty', -2, 2),
    seed: num(o, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, { integer: true }),
  };
  return { model, stream, maxTokens, sampling, stop, ignoreEos: bool(o, 'ignore_eos') ?? false };
}

function messageContent(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((part, j) => {
        const p = part as Record<string, unknown> | null;
        if (typeof p !== 'object' || p === null || p.type !== 'text' || typeof p.text !== 'string') {
          throw bad(`${param}[${j}]`, 'only text parts ({"type": "text", "text": "…"}) are supported');
        }
        return p.text;
      })
      .join('');
  }
  throw bad(param, `must be a string or an array of text parts, got ${typeName(v)}`);
}

export function parseChatRequest(body: unknown, limits: RequestLimits, defaults: SamplingDefaults): ChatRequest {
  const o = asObject(body);
  refuseUnsupported(o, ['tools', 'functions', 'logprobs', 'top_logprobs', 'audio', 'prediction']);
  const json = responseFormat(o.response_format);
  const m = o.messages;
  if (m === undefined) throw bad('messages', 'is required');
  if (!Array.isArray(m)) throw bad('messages', `must be an array, got ${typeName(m)}`);
  if (m.length === 0) throw bad('messages', 'must not be empty');
  const messages = m.map((raw, i): ChatMessage => {
    const param = `messages[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(param, `must be an object, got ${typeName(raw)}`);
    const msg = raw as Record<string, unknown>;
    if (typeof msg.role !== 'string') throw bad(`${param}.role`, `must be a string, got ${typeName(msg.role)}`);
    if (!ROLES.has(msg.role)) throw bad(`${param}.role`, `unknown role '${msg.role}' (expected system, developer, user or assistant)`);
    // OpenAI's newer name for the system role; chat templates know only "system".
    return { role: msg.role === 'developer' ? 'system' : msg.role, content: messageContent(msg.content, `${param}.content`) };
  });
  return { ...common(o, limits, defaults), messages, json };
}

// Compiled grammars by schema text: clients send the same schema with every request, and requests
// that share a grammar share its cache of token masks.
const grammars = new Map<string, JsonGrammar>();
const ANY_OBJECT = { type: 'object' };

/**
 * response_format: {type: "text"}, {type: "json_object"} (any JSON object) or {type: "json_schema",
 * json_schema: {name, schema, strict?, description?}} (the answer follows the schema).
 */
function responseFormat(rf: unknown): JsonGrammar | undefined {
  if (rf === undefined || rf === null) return undefined;
  if (typeof rf !== 'object' || Array.isArray(rf)) throw bad('response_format', `must be an object, got ${typeName(rf)}`);
  const r = rf as Record<string, unknown>;
  if (r.type === 'text') return undefined;
  let schema: unknown = ANY_OBJECT;
  if (r.type === 'json_schema') {
    const js = r.json_schema as Record<string, unknown> | undefined;
    if (typeof js !== 'object' || js === null || Array.isArray(js)) throw bad('response_format.json_schema', 'is required: {"name": ..., "schema": {...}}');
    if (typeof js.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(js.name)) throw bad('response_format.json_schema.name', 'must be 1 to 64 letters, digits, _ or -');
    if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean') throw bad('response_format.json_schema.strict', `must be a boolean, got ${typeName(js.strict)}`);
    if (js.schema !== undefined) schema = js.schema;
  } else if (r.type !== 'json_object') {
    throw bad('response_format.type', `must be "text", "json_object" or "json_schema", got ${JSON.stringify(r.type)}`);
  }
  const key = JSON.stringify(schema);
  let g = grammars.get(key);
  if (g === undefined) {
    try {
      g = compileJsonSchema(schema, 'response_format.json_schema.schema');
    } catch (err) {
      if (err instanceof SchemaError) throw new ApiError(400, err.message, err.path, 'unsupported_schema');
      throw err;
    }
    if (grammars.size >= 64) grammars.delete(grammars.keys().next().value!);
    grammars.set(key, g);
  }
  return g;
}

export function parseCompletionRequest(body: unknown, limits: RequestLimits, defaults: SamplingDefaults): CompletionRequest {
  const o = asObject(body);
  refuseUnsupported(o, ['suffix', 'echo', 'logprobs']);
  const bestOf = num(o, 'best_of', 1, Number.MAX_SAFE_INTEGER, { integer: true });
  if (bestOf !== undefined && bestOf !== 1) throw bad('best_of', 'only best_of = 1 is supported');
  let prompt: string | number[];
  const p = o.prompt;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => Number.isSafeInteger(x))) prompt = p as number[];
  else if (p === undefined) throw bad('prompt', 'is required');
  else throw bad('prompt', 'must be a string, a one-element array of strings or an array of token ids');
  const c = common(o, limits, defaults);
  // OpenAI's default for this endpoint.
  return { ...c, maxTokens: c.maxTokens ?? Math.min(16, limits.maxTokens), prompt };
}

/**
 * The completion budget for a prompt of `promptTokens`: what the request asked for, or what the
 * context and the server's cap leave. Errors in OpenAI's wording when the prompt does not fit.
 */
export function completionBudget(promptTokens: number, requested: number | undefined, limits: RequestLimits, promptParam: string): number {
  const ctx = limits.contextLength;
  if (promptTokens >= ctx) {
    throw new ApiError(400, `This model's maximum context length is ${ctx} tokens; the prompt alone has ${promptTokens}.`, promptParam, 'context_length_exceeded');
  }
  if (requested !== undefined && promptTokens + requested > ctx) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx} tokens. However, you requested ${promptTokens + requested} tokens (${promptTokens} in the prompt, ${requested} for the completion). Please reduce the prompt or max_tokens.`,
      'max_tokens',
      'context_length_exceeded',
    );
  }
  return requested ?? Math.min(limits.maxTokens, ctx - promptTokens);
}
