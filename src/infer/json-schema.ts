// JSON Schema as a byte-level grammar: compileJsonSchema turns a schema into a tree of nodes, and a
// JsonMatcher state says which bytes may come next, so that constrained decoding (constraint.ts) can
// keep a model's output inside the schema one token at a time.
//
// The matcher is a pushdown automaton over UTF-8 bytes. A state is a small set of alternative stacks
// (more than one only where the schema is ambiguous, such as an enum holding both 1 and 12); each
// stack is an immutable linked list of frames, so that trying a byte never disturbs the state it was
// tried on: the vocabulary walk in constraint.ts branches from one state into thousands.
//
// What is generated, so that the output always validates: every declared property of an object, in
// the declared order; strings with their length bounds; enums and consts exactly; integers, numbers,
// booleans and null; arrays within minItems/maxItems; unions (anyOf/oneOf, type lists); format
// "date" as YYYY-MM-DD; any JSON value for an object without properties (OpenAI's json_object).
// Whitespace between tokens is allowed in short runs (a model trained on pretty-printed JSON may
// indent) but bounded, so that a model cannot stall in it. Anything the grammar cannot guarantee
// (pattern, $ref, numeric bounds beyond small integer ranges, …) is refused by name at compile time
// rather than silently ignored.

/** A compiled schema node. `id` distinguishes nodes in cache keys. */
export type GrammarNode =
  | { kind: 'object'; id: number; props: { key: Uint8Array; value: GrammarNode }[] }
  | { kind: 'array'; id: number; items: GrammarNode; min: number; max: number }
  | { kind: 'string'; id: number; min: number; max: number; date: boolean }
  | { kind: 'literal'; id: number; options: Uint8Array[] }
  | { kind: 'number'; id: number; integer: boolean }
  // Any JSON value (only an object when `object`), nested at most `depth` deep.
  | { kind: 'any'; id: number; depth: number; object: boolean }
  | { kind: 'union'; id: number; options: GrammarNode[] };

export interface JsonGrammar {
  root: GrammarNode;
  /** The schema as given (for error messages and validation elsewhere). */
  schema: unknown;
}

/** A schema the grammar cannot honour; `path` names the offending keyword. */
export class SchemaError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

const MAX_WS = 8; // whitespace bytes allowed in one run between tokens
const MAX_DIGITS = 18; // digits in an integer part, fraction or exponent
const MAX_ANY_DEPTH = 16; // nesting of free-form values (json_object)
const MAX_STRING = 1 << 16; // an unbounded string still ends

const IGNORED = new Set(['title', 'description', '$schema', '$id', 'default', 'examples', '$comment', 'strict', 'readOnly', 'writeOnly', 'deprecated']);
const enc = new TextEncoder();

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Compiles a JSON Schema (the subset described above) into a grammar. `where` prefixes error paths,
 * e.g. 'response_format.json_schema.schema'.
 */
export function compileJsonSchema(schema: unknown, where = 'schema'): JsonGrammar {
  let nextId = 0;
  const id = (): number => nextId++;

  const nonNegInt = (s: Record<string, unknown>, key: string, path: string, fallback: number): number => {
    const v = s[key];
    if (v === undefined) return fallback;
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new SchemaError(`${path}.${key}`, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };

  const literal = (values: unknown[], path: string): GrammarNode => {
    if (values.length === 0) throw new SchemaError(path, 'must list at least one value');
    return { kind: 'literal', id: id(), options: values.map((v) => enc.encode(JSON.stringify(v))) };
  };

  const typed = (s: Record<string, unknown>, type: string, path: string, depth: number): GrammarNode => {
    switch (type) {
      case 'object': {
        const props = s.properties;
        if (props === undefined) {
          if (s.additionalProperties === false) return { kind: 'object', id: id(), props: [] };
          return { kind: 'any', id: id(), depth: Math.max(1, MAX_ANY_DEPTH - depth), object: true };
        }
        if (!isRecord(props)) throw new SchemaError(`${path}.properties`, 'must be an object');
        const ap = s.additionalProperties;
        if (ap !== undefined && ap !== false && !(isRecord(ap) && Object.keys(ap).length === 0)) {
          throw new SchemaError(`${path}.additionalProperties`, 'only false is supported beside properties (every declared property is generated, nothing else)');
        }
        const req = s.required;
        if (req !== undefined) {
          if (!Array.isArray(req) || !req.every((k) => typeof k === 'string')) throw new SchemaError(`${path}.required`, 'must be an array of property names');
          for (const k of req as string[]) if (!(k in props)) throw new SchemaError(`${path}.required`, `names "${k}", which is not in properties`);
        }
        return {
          kind: 'object',
          id: id(),
          props: Object.entries(props).map(([k, v]) => ({ key: enc.encode(JSON.stringify(k)), value: node(v, `${path}.properties.${k}`, depth + 1) })),
        };
      }
      case 'array': {
        if (s.items === undefined) throw new SchemaError(`${path}.items`, 'is required for an array');
        const min = nonNegInt(s, 'minItems', path, 0);
        const max = nonNegInt(s, 'maxItems', path, Number.MAX_SAFE_INTEGER);
        if (max < min) throw new SchemaError(`${path}.maxItems`, `is below minItems (${max} < ${min})`);
        return { kind: 'array', id: id(), items: node(s.items, `${path}.items`, depth + 1), min, max };
      }
      case 'string': {
        if (s.pattern !== undefined) throw new SchemaError(`${path}.pattern`, 'is not supported');
        if (s.format !== undefined && s.format !== 'date') throw new SchemaError(`${path}.format`, `only "date" (YYYY-MM-DD) is supported, got ${JSON.stringify(s.format)}`);
        const min = nonNegInt(s, 'minLength', path, 0);
        const max = nonNegInt(s, 'maxLength', path, MAX_STRING);
        if (max < min) throw new SchemaError(`${path}.maxLength`, `is below minLength (${max} < ${min})`);
        return { kind: 'string', id: id(), min, max, date: s.format === 'date' };
      }
      case 'integer':
      case 'number': {
        const lo = s.minimum;
        const hi = s.maximum;
        if (type === 'integer' && Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && (hi as number) >= (lo as number) && (hi as number) - (lo as number) <= 1000) {
          // A small range is an enum of its values: exactly the valid ones can be written.
          return literal(Array.from({ length: (hi as number) - (lo as number) + 1 }, (_, i) => (lo as number) + i), path);
        }
        for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']) {
          if (s[k] !== undefined) throw new SchemaError(`${path}.${k}`, 'is supported only as minimum and maximum of an integer range of at most 1000 values');
        }
        return { kind: 'number', id: id(), integer: type === 'integer' };
      }
      case 'boolean':
        return literal([true, false], path);
      case 'null':
        return literal([null], path);
      default:
        throw new SchemaError(`${path}.type`, `unknown type ${JSON.stringify(type)}`);
    }
  };

  const node = (s: unknown, path: string, depth: number): GrammarNode => {
    if (depth > 32) throw new SchemaError(path, 'nests deeper than 32 levels');
    if (s === true || (isRecord(s) && Object.keys(s).every((k) => IGNORED.has(k)))) return { kind: 'any', id: id(), depth: Math.max(1, MAX_ANY_DEPTH - depth), object: false };
    if (!isRecord(s)) throw new SchemaError(path, `must be a schema object, got ${JSON.stringify(s)}`);
    for (const k of ['$ref', '$defs', 'definitions', 'allOf', 'not', 'if', 'patternProperties', 'propertyNames', 'dependentRequired', 'contains', 'prefixItems', 'uniqueItems']) {
      if (s[k] !== undefined) throw new SchemaError(`${path}.${k}`, 'is not supported');
    }
    if (s.const !== undefined) return literal([s.const], `${path}.const`);
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum)) throw new SchemaError(`${path}.enum`, 'must be an array');
      return literal(s.enum, `${path}.enum`);
    }
    const alts = s.anyOf ?? s.oneOf;
    if (alts !== undefined) {
      const key = s.anyOf !== undefined ? 'anyOf' : 'oneOf';
      if (!Array.isArray(alts) || alts.length === 0) throw new SchemaError(`${path}.${key}`, 'must be a non-empty array of schemas');
      return { kind: 'union', id: id(), options: alts.map((a, i) => node(a, `${path}.${key}[${i}]`, depth + 1)) };
    }
    const t = s.type;
    if (Array.isArray(t)) {
      if (t.length === 0) throw new SchemaError(`${path}.type`, 'must not be empty');
      return { kind: 'union', id: id(), options: t.map((x) => typed(s, String(x), path, depth)) };
    }
    if (typeof t !== 'string') throw new SchemaError(`${path}.type`, 'is required (or enum, const, anyOf)');
    return typed(s, t, path, depth);
  };

  return { root: node(schema, where, 0), schema };
}

// ---------------------------------------------------------------------------------------------
// The matcher

type Frame =
  | { t: 'value'; node: GrammarNode; ws: number }
  // Object with fixed properties: phase 'key' (before key i), 'colon', 'after' (after value i).
  | { t: 'obj'; node: Extract<GrammarNode, { kind: 'object' }>; i: number; phase: 'key' | 'colon' | 'after'; ws: number }
  | { t: 'arr'; node: Extract<GrammarNode, { kind: 'array' }>; n: number; phase: 'first' | 'after'; ws: number }
  // Free-form object / array (json_object): 'first' after the bracket, 'key', 'colon', 'after'.
  | { t: 'aobj'; depth: number; phase: 'first' | 'key' | 'colon' | 'after'; ws: number }
  | { t: 'aarr'; depth: number; phase: 'first' | 'after'; ws: number }
  | { t: 'lit'; options: Uint8Array[]; pos: number }
  // String: len counts characters; esc: 0 none, 1 after '\', 2–5 hex digits of \u left + 1; cont: UTF-8 continuation bytes due.
  // lo/hi: the range of the next continuation byte (tighter after E0, ED, F0, F4: no overlongs, surrogates or > U+10FFFF).
  | { t: 'str'; min: number; max: number; date: boolean; len: number; esc: number; cont: number; lo: number; hi: number }
  // Number: phase sign|zero|int|dot|frac|e|esign|exp; digits in the current part.
  | { t: 'num'; integer: boolean; phase: 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp'; digits: number };

interface Stack {
  top: Frame;
  rest: Stack | null;
}

/** null: the value is complete. */
type Alt = Stack | null;

const WS = new Uint8Array(256);
for (const c of [0x20, 0x0a, 0x0d, 0x09]) WS[c] = 1;
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isHex = (b: number): boolean => isDigit(b) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);
const push = (top: Frame, rest: Alt): Stack => ({ top, rest });
const STRING_ANY = { min: 0, max: MAX_STRING, date: false };
const LIT_TRUE_FALSE_NULL = [enc.encode('true'), enc.encode('false'), enc.encode('null')];
const MAX_ALTS = 32;

/** The alternatives after a value of `node` starts with byte b, above `rest`. */
function startValue(node: GrammarNode, b: number, rest: Alt, out: Alt[]): void {
  switch (node.kind) {
    case 'object':
      if (b === 0x7b) out.push(push(node.props.length === 0 ? { t: 'obj', node, i: 0, phase: 'after', ws: 0 } : { t: 'obj', node, i: 0, phase: 'key', ws: 0 }, rest));
      return;
    case 'array':
      if (b === 0x5b) out.push(push({ t: 'arr', node, n: 0, phase: 'first', ws: 0 }, rest));
      return;
    case 'string':
      if (b === 0x22) out.push(push({ t: 'str', min: node.min, max: node.max, date: node.date, len: 0, esc: 0, cont: 0, lo: 0x80, hi: 0xbf }, rest));
      return;
    case 'literal':
      startLiteral(node.options, b, rest, out);
      return;
    case 'number':
      if (b === 0x2d) out.push(push({ t: 'num', integer: node.integer, phase: 'sign', digits: 0 }, rest));
      else if (b === 0x30) out.push(push({ t: 'num', integer: node.integer, phase: 'zero', digits: 1 }, rest));
      else if (isDigit(b)) out.push(push({ t: 'num', integer: node.integer, phase: 'int', digits: 1 }, rest));
      return;
    case 'union':
      for (const o of node.options) startValue(o, b, rest, out);
      return;
    case 'any':
      if (!node.object || b === 0x7b) startAny(node.depth, b, rest, out);
  }
}

function startAny(depth: number, b: number, rest: Alt, out: Alt[]): void {
  if (b === 0x7b && depth > 0) out.push(push({ t: 'aobj', depth: depth - 1, phase: 'first', ws: 0 }, rest));
  else if (b === 0x5b && depth > 0) out.push(push({ t: 'aarr', depth: depth - 1, phase: 'first', ws: 0 }, rest));
  else if (b === 0x22) out.push(push({ t: 'str', ...STRING_ANY, len: 0, esc: 0, cont: 0, lo: 0x80, hi: 0xbf }, rest));
  else if (b === 0x2d) out.push(push({ t: 'num', integer: false, phase: 'sign', digits: 0 }, rest));
  else if (b === 0x30) out.push(push({ t: 'num', integer: false, phase: 'zero', digits: 1 }, rest));
  else if (isDigit(b)) out.push(push({ t: 'num', integer: false, phase: 'int', digits: 1 }, rest));
  else startLiteral(LIT_TRUE_FALSE_NULL, b, rest, out);
}

function startLiteral(options: Uint8Array[], b: number, rest: Alt, out: Alt[]): void {
  const live = options.filter((o) => o[0] === b);
  if (live.some((o) => o.length === 1)) out.push(rest);
  const longer = live.filter((o) => o.length > 1);
  if (longer.length > 0) out.push(push({ t: 'lit', options: longer, pos: 1 }, rest));
}

/** Continues a value whose frame just ended (the stack below it), or the end of the root. */
function stepNumberEnd(rest: Alt, b: number, out: Alt[]): void {
  if (rest !== null) stepStack(rest, b, out);
}

/** The alternatives after feeding byte b to one stack. */
function stepStack(s: Stack, b: number, out: Alt[]): void {
  const f = s.top;
  const rest = s.rest;
  const ws = (frame: Frame & { ws: number }): void => {
    if (WS[b] === 1 && frame.ws < MAX_WS) out.push(push({ ...frame, ws: frame.ws + 1 } as Frame, rest));
  };
  switch (f.t) {
    case 'value':
      if (WS[b] === 1) {
        if (f.ws < MAX_WS) out.push(push({ ...f, ws: f.ws + 1 }, rest));
        return;
      }
      startValue(f.node, b, rest, out);
      return;
    case 'obj': {
      if (WS[b] === 1) return ws(f);
      const props = f.node.props;
      if (f.phase === 'key') {
        startLiteral([props[f.i].key], b, push({ ...f, phase: 'colon', ws: 0 }, rest), out);
      } else if (f.phase === 'colon') {
        if (b === 0x3a) out.push(push({ t: 'value', node: props[f.i].value, ws: 0 }, push({ ...f, phase: 'after', ws: 0 }, rest)));
      } else if (f.i + 1 < props.length) {
        if (b === 0x2c) out.push(push({ ...f, i: f.i + 1, phase: 'key', ws: 0 }, rest));
      } else if (b === 0x7d) {
        out.push(rest);
      }
      return;
    }
    case 'arr': {
      if (WS[b] === 1) return ws(f);
      if (f.phase === 'first') {
        if (b === 0x5d && f.node.min === 0) out.push(rest);
        else if (f.node.max > 0) startValue(f.node.items, b, push({ ...f, n: 1, phase: 'after', ws: 0 }, rest), out);
      } else if (b === 0x2c && f.n < f.node.max) {
        out.push(push({ t: 'value', node: f.node.items, ws: 0 }, push({ ...f, n: f.n + 1, ws: 0 }, rest)));
      } else if (b === 0x5d && f.n >= f.node.min) {
        out.push(rest);
      }
      return;
    }
    case 'aobj': {
      if (WS[b] === 1) return ws(f);
      if (f.phase === 'first' || f.phase === 'key') {
        if (b === 0x7d && f.phase === 'first') out.push(rest);
        else if (b === 0x22) out.push(push({ t: 'str', ...STRING_ANY, len: 0, esc: 0, cont: 0, lo: 0x80, hi: 0xbf }, push({ ...f, phase: 'colon', ws: 0 }, rest)));
      } else if (f.phase === 'colon') {
        if (b === 0x3a) out.push(push({ t: 'value', node: { kind: 'any', id: -1, depth: f.depth, object: false }, ws: 0 }, push({ ...f, phase: 'after', ws: 0 }, rest)));
      } else if (b === 0x2c) {
        out.push(push({ ...f, phase: 'key', ws: 0 }, rest));
      } else if (b === 0x7d) {
        out.push(rest);
      }
      return;
    }
    case 'aarr': {
      if (WS[b] === 1) return ws(f);
      if (f.phase === 'first') {
        if (b === 0x5d) out.push(rest);
        else startAny(f.depth, b, push({ ...f, phase: 'after', ws: 0 }, rest), out);
      } else if (b === 0x2c) {
        out.push(push({ t: 'value', node: { kind: 'any', id: -1, depth: f.depth, object: false }, ws: 0 }, push(f, rest)));
      } else if (b === 0x5d) {
        out.push(rest);
      }
      return;
    }
    case 'lit': {
      const live = f.options.filter((o) => o[f.pos] === b);
      if (live.some((o) => o.length === f.pos + 1)) out.push(rest);
      const longer = live.filter((o) => o.length > f.pos + 1);
      if (longer.length > 0) out.push(push({ t: 'lit', options: longer, pos: f.pos + 1 }, rest));
      return;
    }
    case 'str':
      stepString(f, b, rest, out);
      return;
    case 'num':
      stepNumber(f, b, rest, out);
  }
}

const DATE_SHAPE = 'dddd-dd-dd';

function stepString(f: Extract<Frame, { t: 'str' }>, b: number, rest: Alt, out: Alt[]): void {
  if (f.date) {
    if (f.len === DATE_SHAPE.length) {
      if (b === 0x22) out.push(rest);
    } else if (DATE_SHAPE[f.len] === 'd' ? isDigit(b) : b === 0x2d) {
      out.push(push({ ...f, len: f.len + 1 }, rest));
    }
    return;
  }
  if (f.cont > 0) {
    if (b >= f.lo && b <= f.hi) out.push(push({ ...f, cont: f.cont - 1, lo: 0x80, hi: 0xbf }, rest));
    return;
  }
  if (f.esc === 1) {
    if (b === 0x75) out.push(push({ ...f, esc: 5 }, rest));
    else if (b === 0x22 || b === 0x5c || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) out.push(push({ ...f, esc: 0 }, rest));
    return;
  }
  if (f.esc > 1) {
    if (isHex(b)) out.push(push({ ...f, esc: f.esc === 2 ? 0 : f.esc - 1 }, rest));
    return;
  }
  if (b === 0x22) {
    if (f.len >= f.min) out.push(rest);
    return;
  }
  if (f.len >= f.max || b < 0x20 || b === 0x7f) return; // control characters must be escaped; DEL is refused as noise
  if (b === 0x5c) out.push(push({ ...f, len: f.len + 1, esc: 1 }, rest));
  else if (b < 0x80) out.push(push({ ...f, len: f.len + 1 }, rest));
  else if (b >= 0xc2 && b <= 0xdf) out.push(push({ ...f, len: f.len + 1, cont: 1 }, rest));
  else if (b >= 0xe0 && b <= 0xef) out.push(push({ ...f, len: f.len + 1, cont: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf }, rest));
  else if (b >= 0xf0 && b <= 0xf4) out.push(push({ ...f, len: f.len + 1, cont: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf }, rest));
}

function stepNumber(f: Extract<Frame, { t: 'num' }>, b: number, rest: Alt, out: Alt[]): void {
  const next = (phase: typeof f.phase, digits: number): void => {
    out.push(push({ ...f, phase, digits }, rest));
  };
  const d = isDigit(b);
  switch (f.phase) {
    case 'sign':
      if (b === 0x30) next('zero', 1);
      else if (d) next('int', 1);
      return;
    case 'zero':
    case 'int':
      if (f.phase === 'int' && d && f.digits < MAX_DIGITS) return next('int', f.digits + 1);
      if (!f.integer && b === 0x2e) return next('dot', 0);
      if (!f.integer && (b === 0x65 || b === 0x45)) return next('e', 0);
      stepNumberEnd(rest, b, out);
      return;
    case 'dot':
      if (d) next('frac', 1);
      return;
    case 'frac':
      if (d && f.digits < MAX_DIGITS) return next('frac', f.digits + 1);
      if (b === 0x65 || b === 0x45) return next('e', 0);
      stepNumberEnd(rest, b, out);
      return;
    case 'e':
      if (b === 0x2b || b === 0x2d) next('esign', 0);
      else if (d) next('exp', 1);
      return;
    case 'esign':
      if (d) next('exp', 1);
      return;
    case 'exp':
      if (d && f.digits < 4) return next('exp', f.digits + 1);
      stepNumberEnd(rest, b, out);
  }
}

/** True when the stack can end here without another byte (a number followed by the end of input). */
function canEnd(s: Alt): boolean {
  if (s === null) return true;
  const f = s.top;
  return f.t === 'num' && (f.phase === 'zero' || f.phase === 'int' || f.phase === 'frac' || f.phase === 'exp') && s.rest === null;
}

/**
 * Where a generation stands in the grammar: immutable, so `feed` returns a new state (or null when
 * the byte is not allowed) and leaves this one usable.
 */
export class JsonMatcher {
  private constructor(private readonly alts: readonly Alt[]) {}

  static start(grammar: JsonGrammar): JsonMatcher {
    return new JsonMatcher([push({ t: 'value', node: grammar.root, ws: 0 }, null)]);
  }

  /** The value is complete: nothing more may follow. */
  get done(): boolean {
    return this.alts.some(canEnd);
  }

  /** No byte can follow (the value is complete and closed). */
  get finished(): boolean {
    return this.alts.every((a) => a === null);
  }

  feedByte(b: number): JsonMatcher | null {
    const out: Alt[] = [];
    for (const a of this.alts) if (a !== null) stepStack(a, b, out);
    if (out.length === 0) return null;
    return new JsonMatcher(out.length > MAX_ALTS ? out.slice(0, MAX_ALTS) : out);
  }

  feed(bytes: Uint8Array): JsonMatcher | null {
    let m: JsonMatcher | null = this;
    for (let i = 0; i < bytes.length && m !== null; i++) m = m.feedByte(bytes[i]);
    return m;
  }

  /**
   * A string that identifies the state for what can follow within `horizon` bytes: two states with
   * the same key accept the same byte strings of that length (counters beyond it are capped).
   */
  key(horizon: number): string {
    const cap = (n: number): number => Math.min(n, horizon);
    const frame = (f: Frame): string => {
      switch (f.t) {
        case 'value':
          return `v${nodeKey(f.node)}.${f.ws}`;
        case 'obj':
          return `o${f.node.id}.${f.i}${f.phase[0]}${f.ws}`;
        case 'arr':
          return `a${f.node.id}.${cap(f.n)}.${cap(f.node.max - f.n)}${f.phase[0]}${f.ws}`;
        case 'aobj':
          return `O${f.depth}${f.phase[0]}${f.ws}`;
        case 'aarr':
          return `A${f.depth}${f.phase[0]}${f.ws}`;
        case 'lit':
          return `l${f.pos}:${f.options.map((o) => o.join(',')).join('|')}`;
        case 'str':
          return `s${f.date ? `d${f.len}` : `${cap(Math.max(0, f.min - f.len))}.${cap(f.max - f.len)}.${f.esc}.${f.cont}.${f.lo}.${f.hi}`}`;
        case 'num':
          return `n${f.integer ? 'i' : 'f'}${f.phase}${f.digits}`;
      }
    };
    return this.alts
      .map((a) => {
        let k = '';
        for (let s = a; s !== null; s = s.rest) k += `${frame(s.top)};`;
        return k;
      })
      .join('|');
  }
}

function nodeKey(n: GrammarNode): string {
  return n.kind === 'any' ? `any${n.depth}${n.object ? 'o' : ''}` : String(n.id);
}

/** Checks a complete text against the grammar (tests and callers that build JSON themselves). */
export function matchesGrammar(grammar: JsonGrammar, text: string): boolean {
  const m = JsonMatcher.start(grammar).feed(enc.encode(text));
  return m !== null && m.done;
}
