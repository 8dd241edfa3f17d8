// Validation of JSON configuration objects (config.json, training configs): each field is read with
// its expected type and range, and every error names the file, the field path and the bad value.
import { isAbsolute, resolve } from 'node:path';

export type Json = Record<string, unknown>;

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as it appears in an error message (long values shortened). */
export function show(v: unknown): string {
  if (v === undefined) return 'missing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A bad config field: the message names the file, the field and the value; the parts stay readable. */
export class ConfigFieldError extends Error {
  constructor(
    readonly source: string,
    /** Dotted path of the field (data.seed). */
    readonly field: string,
    readonly value: unknown,
    readonly problem: string,
  ) {
    super(`${source}: ${field} = ${show(value)}: ${problem}`);
  }
}

/**
 * Resolves the relative paths at the dotted `fields` of a config against `baseDir` (the config
 * file's directory), returning a copy: a config means the same files from wherever it is used.
 */
export function resolvePathFields(json: unknown, fields: readonly string[], baseDir: string): unknown {
  if (!isRecord(json)) return json;
  const out = structuredClone(json);
  for (const field of fields) {
    const keys = field.split('.');
    let node: unknown = out;
    for (const k of keys.slice(0, -1)) node = isRecord(node) ? node[k] : undefined;
    const last = keys[keys.length - 1];
    if (isRecord(node) && typeof node[last] === 'string' && node[last] !== '' && !isAbsolute(node[last])) node[last] = resolve(baseDir, node[last]);
  }
  return out;
}

/**
 * Reads the fields of one object. A fallback of `undefined` makes the field required. `done()`
 * refuses whatever was not read; `extras()` returns it instead (for formats that carry foreign keys).
 */
export class JsonFields {
  protected readonly used = new Set<string>();

  constructor(
    readonly obj: Json,
    protected readonly source: string,
    protected readonly prefix = '',
  ) {}

  fail(field: string, problem: string, value: unknown = this.obj[field]): never {
    throw new ConfigFieldError(this.source, `${this.prefix}${field}`, value, problem);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined;
  }

  raw(field: string): unknown {
    this.used.add(field);
    return this.obj[field];
  }

  protected take(field: string, fallback: unknown): unknown {
    const v = this.raw(field);
    if (v !== undefined) return v;
    if (fallback === undefined) this.fail(field, 'required field is missing');
    return fallback;
  }

  int(field: string, min: number, fallback?: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.take(field, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(field, 'must be an integer');
    if (v < min || v > max) this.fail(field, max === Number.MAX_SAFE_INTEGER ? `must be >= ${min}` : `must be in [${min}, ${max}]`);
    return v;
  }

  /** A finite number in [min, max] ((min, max] with `above`). */
  num(field: string, min: number, fallback?: number, max = Infinity, above = false): number {
    const v = this.take(field, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, 'must be a finite number');
    if (above ? v <= min : v < min) this.fail(field, `must be ${above ? '>' : '>='} ${min}`);
    if (v > max) this.fail(field, `must be <= ${max}`);
    return v;
  }

  bool(field: string, fallback?: boolean): boolean {
    const v = this.take(field, fallback);
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false');
    return v;
  }

  str(field: string, fallback?: string): string {
    const v = this.take(field, fallback);
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be a non-empty string');
    return v;
  }

  optStr(field: string): string | null {
    const v = this.raw(field);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be null or a non-empty string');
    return v;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], fallback?: T): T {
    const v = this.take(field, fallback);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(field, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    }
    return v as T;
  }

  object(field: string): JsonFields {
    const v = this.raw(field);
    if (!isRecord(v)) this.fail(field, v === undefined ? 'required section is missing' : 'must be an object');
    return new JsonFields(v, this.source, `${this.prefix}${field}.`);
  }

  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.used.has(k)) this.fail(k, `unknown field (known: ${[...this.used].join(', ')})`);
    }
  }

  /** Fields of the object that were never read, in their original order. */
  extras(): Json {
    const out: Json = {};
    for (const [k, v] of Object.entries(this.obj)) if (!this.used.has(k)) out[k] = v;
    return out;
  }
}
