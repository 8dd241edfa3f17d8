// Problem files: one JSON object per line.
//   {"task": "countdown", "numbers": [3, 5, 7], "target": 22, "id": "...", "solution": "3 * 5 + 7"}
//   {"task": "arithmetic", "question": "What is 12 + 30?", "answer": "42", "id": "..."}
// `id` is optional everywhere, `solution` optional for Countdown (checked when present). Unknown
// fields are errors, so a typo like "nums" is reported rather than silently ignored. Blank lines are
// skipped. Every error names file:line and the field.
import { createReadStream } from 'node:fs';
import { writeChunksAtomic } from '../util/atomic.js';
import { createInterface } from 'node:readline';
import { parseInteger } from './expr.js';
import { checkAnswer } from './grade.js';
import { MAX_COUNT } from './countdown.js';
import type { Problem } from './types.js';

const MAX_NUMBER = 1_000_000;
const MAX_FIELD_CHARS = 10_000;

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Validates one parsed JSON value as a problem; errors start with `where` and name the field. */
export function toProblem(value: unknown, where: string): Problem {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${where}: field "${field}": ${msg}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected a JSON object, got ${show(value)}`);
  const r = value as Record<string, unknown>;
  const allowed = r.task === 'countdown' ? ['task', 'numbers', 'target', 'id', 'solution'] : ['task', 'question', 'answer', 'id'];
  if (r.task !== 'countdown' && r.task !== 'arithmetic') fail('task', `expected "arithmetic" or "countdown", got ${show(r.task)}`);
  for (const k of Object.keys(r)) if (!allowed.includes(k)) fail(k, `unknown field for task "${r.task}" (allowed: ${allowed.join(', ')})`);
  if ('id' in r && (typeof r.id !== 'string' || r.id === '' || r.id.length > 200)) fail('id', `expected a non-empty string, got ${show(r.id)}`);
  const id = r.id as string | undefined;

  if (r.task === 'arithmetic') {
    if (typeof r.question !== 'string' || r.question.trim() === '' || r.question.length > MAX_FIELD_CHARS) {
      fail('question', `expected a non-empty string, got ${show(r.question)}`);
    }
    const answer = typeof r.answer === 'string' ? parseInteger(r.answer, 100) : null;
    // Only the plain form ("-42"), so that the stored answer round-trips exactly.
    if (!answer?.ok || answer.value.toString() !== r.answer) fail('answer', `expected an integer as a string, like "-42", got ${show(r.answer)}`);
    const p: Problem = { task: 'arithmetic', question: r.question as string, answer: r.answer as string };
    return id === undefined ? p : { ...p, id };
  }

  const numbers = r.numbers;
  if (!Array.isArray(numbers) || numbers.length < 1 || numbers.length > MAX_COUNT || !numbers.every((n) => Number.isInteger(n) && n >= 1 && n <= MAX_NUMBER)) {
    fail('numbers', `expected an array of 1 to ${MAX_COUNT} integers in 1..${MAX_NUMBER}, got ${show(numbers)}`);
  }
  if (!Number.isSafeInteger(r.target)) fail('target', `expected an integer, got ${show(r.target)}`);
  const p: Problem = { task: 'countdown', numbers: numbers as number[], target: r.target as number };
  if (id !== undefined) p.id = id;
  if ('solution' in r) {
    if (typeof r.solution !== 'string') fail('solution', `expected a string, got ${show(r.solution)}`);
    const check = checkAnswer(p, r.solution as string);
    if (!check.correct) fail('solution', `${show(r.solution)} is not a solution: ${check.reason}`);
    p.solution = r.solution as string;
  }
  return p;
}

/** Every non-blank line of a JSONL file, parsed, with its 1-based line number. */
export async function* readJsonl(file: string): AsyncGenerator<{ value: unknown; line: number }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}:${line}: invalid JSON (${(err as Error).message})`);
    }
    yield { value, line };
  }
}

export async function loadProblems(file: string): Promise<Problem[]> {
  const out: Problem[] = [];
  for await (const { value, line } of readJsonl(file)) out.push(toProblem(value, `${file}:${line}`));
  return out;
}

/** One JSONL line, fields in the documented order. */
export function problemToJson(p: Problem): string {
  const { id, ...rest } = p;
  return JSON.stringify(id === undefined ? rest : { ...rest, id });
}

export function writeProblems(file: string, problems: Iterable<Problem>): Promise<number> {
  return writeChunksAtomic(file, (function* () {
    for (const p of problems) yield `${problemToJson(p)}\n`;
  })());
}
