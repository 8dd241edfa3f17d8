// What every long-running command shares: reading its JSON config, `--set key=value` overrides, and
// Ctrl-C handling (the first stops at the next step boundary with a checkpoint, the second quits).
import { readFile } from 'node:fs/promises';
import { overrideValue } from '../train/index.js';

/** A JSON config file; errors name the file. */
export async function readJsonConfig(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new Error(`--config ${path}: no such file`);
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** `--set a.b=value` flags as dotted-path overrides (values parsed as JSON where they are JSON). */
export function setOverrides(pairs: readonly string[], example: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of pairs) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`--set ${kv}: expected key=value, e.g. --set ${example}`);
    out[kv.slice(0, at)] = overrideValue(kv.slice(at + 1));
  }
  return out;
}

/** Flags that each set one top-level config field ({flag key: field}), as overrides (values parsed as JSON). */
export function flagOverrides<K extends string>(flags: Partial<Record<NoInfer<K>, string>>, fields: Readonly<Record<K, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields) as K[]) {
    const v = flags[key];
    if (v !== undefined) out[fields[key]] = overrideValue(v);
  }
  return out;
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
