// What every long-running command shares: reading its JSON config (paths in it relative to the file),
// flag and `--set key=value` overrides whose errors name the flag, fitting the warmup to a shortened
// run, and Ctrl-C handling (the first stops at the next step boundary with a checkpoint, the second
// quits).
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { packageRoot } from '../infer/index.js';
import { overrideValue } from '../train/index.js';
import { ConfigFieldError, isRecord, resolvePathFields, show } from '../util/json-fields.js';

/**
 * A JSON config file. Relative paths inside it (at `pathFields`) are relative to the file itself, so
 * a config means the same files from any directory; a relative `path` that is not in the current
 * directory but is one of the package's own (configs/r1zero.json) is read from the package.
 * Errors name the file.
 */
export async function readJsonConfig(path: string, pathFields: readonly string[] = [], notice: (line: string) => void = () => {}): Promise<{ json: unknown; path: string }> {
  let file = path;
  if (!(await stat(file).then((s) => s.isFile(), () => false)) && !isAbsolute(path)) {
    const shipped = join(await packageRoot(), path);
    if (await stat(shipped).then((s) => s.isFile(), () => false)) {
      file = shipped;
      notice(`--config ${path}: not in the current directory; using the package's ${shipped}`);
    }
  }
  const text = await readFile(file, 'utf8').catch(() => {
    throw new Error(`--config ${path}: no such file (the shipped configs are in configs/)`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return { json: resolvePathFields(json, pathFields, dirname(file)), path: file };
}

/** Config fields set on the command line: their values, and how each was written (for errors). */
export class Overrides {
  readonly values: Record<string, unknown> = {};
  /** Field (dotted path) → the flag that set it, as typed: "--steps 4", "--set data.seed=3". */
  readonly flags = new Map<string, string>();

  set(field: string, value: unknown, flag: string): void {
    this.values[field] = value;
    this.flags.set(field, flag);
  }

  has(field: string): boolean {
    return field in this.values;
  }

  /** Flags that each set one top-level field ({flag key: field}), values parsed as JSON. */
  fromFlags<K extends string>(flags: Partial<Record<NoInfer<K>, string>>, fields: Readonly<Record<K, string>>): this {
    for (const key of Object.keys(fields) as K[]) {
      const v = flags[key];
      if (v !== undefined) this.set(fields[key], overrideValue(v), `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${v}`);
    }
    return this;
  }

  /** `--set a.b=value` flags as dotted-path overrides (values parsed as JSON where they are JSON). */
  fromSet(pairs: readonly string[], example: string): this {
    for (const kv of pairs) {
      const at = kv.indexOf('=');
      if (at <= 0) throw new Error(`--set ${kv}: expected key=value, e.g. --set ${example}`);
      this.set(kv.slice(0, at), overrideValue(kv.slice(at + 1)), `--set ${kv}`);
    }
    return this;
  }

  /**
   * Runs `fn` (parsing or checking a config with these overrides applied); an error about a field a
   * flag set names the flag and the problem, not the config file it did not come from.
   */
  async naming<T>(fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ConfigFieldError) {
        const flag = this.flags.get(err.field) ?? (err.field.includes('.') ? this.flags.get(err.field.split('.')[0]) : undefined);
        if (flag !== undefined) throw new Error(`${flag}: ${err.field} = ${show(err.value)}: ${err.problem}`);
      }
      throw err;
    }
  }
}

/**
 * Keeps the learning-rate schedule's shape when --steps changes the run's length: a run resumed
 * keeps the warmup it started with (`saved`); a fresh run shorter than its config scales the
 * config's warmup down in proportion (30 of 300 steps → 3 of 30), saying so. --warmup (or
 * --set warmup=…) always wins; a longer run keeps the config's warmup.
 */
export function fitWarmup(raw: unknown, ov: Overrides, source: string, saved: { warmup: number } | null, notice: (line: string) => void): void {
  if (ov.has('warmup') || !ov.has('steps') || !isRecord(raw)) return;
  if (saved !== null) {
    ov.set('warmup', saved.warmup, `the run's warmup ${saved.warmup}`);
    return;
  }
  const steps = ov.values.steps, fileSteps = raw.steps, fileWarmup = raw.warmup;
  if (typeof steps !== 'number' || typeof fileSteps !== 'number' || typeof fileWarmup !== 'number') return;
  if (!(steps >= 1 && steps < fileSteps && fileWarmup > 0)) return;
  const warmup = Math.min(steps - 1, Math.round((fileWarmup * steps) / fileSteps));
  ov.set('warmup', warmup, `--steps ${steps} (warmup ${warmup}, scaled from ${source})`);
  notice(`--steps ${steps}: warmup ${warmup} (${source} warms up for ${fileWarmup} of ${fileSteps} steps; --warmup sets it)`);
}

/** The repeatable `--set` option's accumulator. */
export const collect = (v: string, acc: string[]): string[] => [...acc, v];

/**
 * Runs `fn` with an AbortSignal that SIGINT / SIGTERM abort (the work stops at its next step and
 * saves); a second signal exits at once with status 130.
 */
export async function withStopSignal<T>(log: (line: string) => void, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    log('stopping after this step and saving a checkpoint (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
