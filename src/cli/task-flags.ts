// The flags that choose a task and its difficulty (`eval`, `grpo reject-sample`, `tasks sample|sft|
// corpus`), and the integer and number flag parsers the commands share. A flag of the other task is
// an error, not silently ignored.
import type { Command } from 'commander';
import { TASK_NAMES, validateSpec, type ArithOp, type CountdownSpec, type TaskName, type TaskSpec } from '../tasks/index.js';

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

/** The spec the flags describe; `defaultOps` is what arithmetic uses without --ops. */
export function taskSpecFromFlags(task: TaskName, f: TaskSpecFlags, defaultOps = '+'): TaskSpec {
  const foreign = task === 'arithmetic' ? (['count', 'numberMax', 'targetMax'] as const) : (['digits', 'ops'] as const);
  for (const k of foreign) if (f[k] !== undefined) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} does not apply to ${task}`);
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

/** A task spec as a short name: arithmetic 3x3 +-, countdown 3-4 numbers ≤25 target ≤100. */
export function describeSpec(spec: TaskSpec): string {
  return spec.task === 'arithmetic'
    ? `arithmetic ${spec.digits.join('x')} ${spec.ops.join('')}`
    : `countdown ${spec.count[0]}-${spec.count[1]} numbers ≤${spec.numberMax} target ≤${spec.targetMax}`;
}

export function withTaskSpecFlags(cmd: Command, defaultOps = '+'): Command {
  return cmd
    .option('--digits <a,b,…>', 'arithmetic: digits of each operand, two or more (default 3,3; one number N means N,N)')
    .option('--ops <list>', `arithmetic: operators from +,-,* (default ${defaultOps})`)
    .option('--count <n|min,max>', 'countdown: how many numbers (default 3,4)')
    .option('--number-max <n>', 'countdown: largest number (default 25)')
    .option('--target-max <n>', 'countdown: largest target (default 100)');
}
