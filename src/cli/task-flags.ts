// The flags that choose a task and its difficulty (`eval`, `grpo reject-sample`, `tasks sample|sft|
// corpus`) and the prompt format, with a model card's as defaults, and the integer and number flag parsers the commands share. A flag of the other task is
// an error, not silently ignored.
import type { Command } from 'commander';
import type { ModelCard } from '../io/model-card.js';
import { PROMPT_TEMPLATES, TASK_NAMES, validateSpec, type ArithOp, type CountdownSpec, type PromptTemplate, type TaskName, type TaskSpec } from '../tasks/index.js';

export interface TaskSpecFlags {
  digits?: string;
  ops?: string;
  count?: string;
  numberMax?: string;
  targetMax?: string;
}

export function intFlag(flag: string, text: string, lo: number, hi = Number.MAX_SAFE_INTEGER): number {
  const v = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new Error(`${flag}: expected an integer in ${lo}..${hi}, got ${JSON.stringify(text)}`);
  return v;
}

export function numFlag(flag: string, text: string, lo: number, hi: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < lo || v > hi) throw new Error(`${flag}: expected a number in [${lo}, ${hi}], got ${JSON.stringify(text)}`);
  return v;
}

function intList(flag: string, text: string, lo: number, hi: number): number[] {
  return text.split(',').map((part) => intFlag(flag, part, lo, hi));
}

/** `what` names the flag or argument in errors: '--task', '<task>'. */
export function taskNameFrom(what: string, text: string): TaskName {
  if (!(TASK_NAMES as readonly string[]).includes(text)) throw new Error(`${what}: expected one of ${TASK_NAMES.join(', ')}, got ${JSON.stringify(text)}`);
  return text as TaskName;
}

export function opsFrom(text: string): ArithOp[] {
  const ops = text.split(',').map((op) => op.trim());
  for (const op of ops) if (!['+', '-', '*'].includes(op)) throw new Error(`--ops: expected a comma-separated list of +, -, *, got ${JSON.stringify(text)}`);
  return ops as ArithOp[];
}

export function countdownSpecFrom(f: TaskSpecFlags): CountdownSpec {
  const count = intList('--count', f.count ?? '3,4', 2, 6);
  if (count.length > 2) throw new Error(`--count: expected N or MIN,MAX, got ${JSON.stringify(f.count)}`);
  const [min, max] = [count[0] as number, count[1] ?? (count[0] as number)];
  if (max < min) throw new Error(`--count: MIN must not exceed MAX, got ${JSON.stringify(f.count)}`);
  return {
    task: 'countdown',
    count: [min, max],
    numberMax: intFlag('--number-max', f.numberMax ?? '25', 1, 1_000_000),
    targetMax: intFlag('--target-max', f.targetMax ?? '100', 1, 1_000_000_000),
  };
}

/**
 * The spec the flags describe; `defaultOps` is what arithmetic uses without --ops. `fallback` (a
 * model's own task, from its card) is the spec when it is of this task and no spec flag is given.
 */
export function taskSpecFromFlags(task: TaskName, f: TaskSpecFlags, defaultOps = '+', fallback: TaskSpec | null = null): TaskSpec {
  const foreign = task === 'arithmetic' ? (['count', 'numberMax', 'targetMax'] as const) : (['digits', 'ops'] as const);
  for (const k of foreign) if (f[k] !== undefined) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} does not apply to ${task}`);
  const own = task === 'arithmetic' ? (['digits', 'ops'] as const) : (['count', 'numberMax', 'targetMax'] as const);
  if (fallback !== null && fallback.task === task && own.every((k) => f[k] === undefined)) return fallback;
  let spec: TaskSpec;
  if (task === 'arithmetic') {
    const digits = intList('--digits', f.digits ?? '3,3', 1, 40);
    // One number alone means two operands of that width.
    spec = { task, digits: digits.length === 1 ? [digits[0] as number, digits[0] as number] : digits, ops: opsFrom(f.ops ?? defaultOps) };
  } else {
    spec = countdownSpecFrom(f);
  }
  validateSpec(spec);
  return spec;
}

/** The task a model card names, checked as a task spec (null when the card names none). */
export function cardTaskSpec(card: ModelCard | null, where: string): TaskSpec | null {
  if (card?.task == null) return null;
  const spec = structuredClone(card.task) as unknown as TaskSpec;
  try {
    validateSpec(spec);
  } catch (err) {
    throw new Error(`${where}: task: ${(err as Error).message}`);
  }
  return spec;
}

/** The flags that give a spec: --digits 1,1,1 --ops + (to tell people what a default was). */
export function specFlags(spec: TaskSpec): string {
  return spec.task === 'arithmetic'
    ? `--digits ${spec.digits.join(',')} --ops ${spec.ops.join(',')}`
    : `--count ${spec.count.join(',')} --number-max ${spec.numberMax} --target-max ${spec.targetMax}`;
}

/** How problems are put to the model: the flags, else the model card's prompt, else r1-zero. */
export function promptFrom(o: { template?: string; openThink?: boolean }, card: ModelCard | null): { template: PromptTemplate; openThink: boolean; from: string } {
  if (o.template !== undefined && !(PROMPT_TEMPLATES as readonly string[]).includes(o.template)) {
    throw new Error(`--template: expected one of ${PROMPT_TEMPLATES.join(', ')}, got ${JSON.stringify(o.template)}`);
  }
  const own = card?.prompt ?? null;
  const template = (o.template ?? own?.template ?? 'r1-zero') as PromptTemplate;
  const sameAsCard = own !== null && own.template === template;
  const openThink = o.openThink ?? (sameAsCard ? own.open_think : false);
  if (openThink && template !== 'r1-zero') throw new Error('--open-think applies to the r1-zero template only');
  const from = o.template !== undefined || o.openThink !== undefined ? 'flags' : own !== null ? 'the model card' : 'the default: no model card';
  return { template, openThink, from };
}

/** What to try when no completion had the think/answer format: the flag that most likely fixes it. */
export function formatHint(template: PromptTemplate, openThink: boolean): string {
  if (template === 'r1') return 'if the model was trained on the R1-Zero prompt, try --template r1-zero --open-think';
  return openThink
    ? 'if the model was fine-tuned in its chat format (SFT with format r1), try --template r1'
    : 'models trained with open_think (the shipped ones, configs/r1zero.json) need --open-think; SFT models in the chat format need --template r1';
}

/** A task spec as a short name: arithmetic 3x3 +-, countdown 3-4 numbers ≤25 target ≤100. */
export function describeSpec(spec: TaskSpec): string {
  return spec.task === 'arithmetic'
    ? `arithmetic ${spec.digits.join('x')} ${spec.ops.join('')}`
    : `countdown ${spec.count[0]}-${spec.count[1]} numbers ≤${spec.numberMax} target ≤${spec.targetMax}`;
}

export function withTaskSpecFlags(cmd: Command, defaultOps = '+'): Command {
  return cmd
    .option('--digits <a,b,…>', 'arithmetic: digits of each operand, two or more (one number N means N,N; default: the model card\'s task, else 3,3)')
    .option('--ops <list>', `arithmetic: operators from +,-,* (default ${defaultOps})`)
    .option('--count <n|min,max>', 'countdown: how many numbers (default 3,4)')
    .option('--number-max <n>', 'countdown: largest number (default 25)')
    .option('--target-max <n>', 'countdown: largest target (default 100)');
}
