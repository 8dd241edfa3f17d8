// The problem records every part of nanoseek exchanges (JSONL files, eval, GRPO rollouts) and the
// difficulty knobs of the generators.

export type ArithOp = '+' | '-' | '*';

/** `question` is the full text shown to the model; `answer` is an integer in decimal. */
export interface ArithmeticProblem {
  task: 'arithmetic';
  question: string;
  answer: string;
  id?: string;
}

/** Reach `target` from `numbers` (each at most once) with + − × and integer-exact ÷. */
export interface CountdownProblem {
  task: 'countdown';
  numbers: number[];
  target: number;
  id?: string;
  /** One known solution; informative only, any valid expression is accepted. */
  solution?: string;
}

export type Problem = ArithmeticProblem | CountdownProblem;
export type TaskName = Problem['task'];
export const TASK_NAMES: readonly TaskName[] = ['arithmetic', 'countdown'];

/**
 * One operand per entry of `digits` (two or more), operand i with exactly digits[i] digits (1 digit
 * includes 0); the operator, drawn from `ops`, joins them all, applied left to right.
 */
export interface ArithmeticSpec {
  task: 'arithmetic';
  digits: number[];
  ops: ArithOp[];
}

/** count: [min, max] numbers per problem, each in 1..numberMax; targets in 1..targetMax. */
export interface CountdownSpec {
  task: 'countdown';
  count: [number, number];
  numberMax: number;
  targetMax: number;
}

export type TaskSpec = ArithmeticSpec | CountdownSpec;

/** 'train': everything outside the held-out split; 'heldout': only the held-out split. */
export type Split = 'train' | 'heldout';
