// Multi-digit integer arithmetic: one operation applied left to right over two or more operands,
// whose difficulty is set by the number of operands and the digit count of each. Worked solutions of
// two operands follow the school algorithms (columns, carries, borrows, partial products); longer
// expressions are reduced one operation at a time (see reductionChain), so a small model can learn
// the steps, not just the answers.
import type { Rng } from '../util/rng.js';
import type { ArithOp, ArithmeticProblem, ArithmeticSpec } from './types.js';

/** terms[0] op terms[1] op … op terms[n-1], evaluated left to right. */
export interface ArithmeticItem {
  terms: bigint[];
  op: ArithOp;
}

export const MAX_DIGITS = 40;
/** Most operands in one problem. */
export const MAX_TERMS = 12;

function operand(digits: number, rng: Rng): bigint {
  if (digits === 1) return BigInt(rng.int(0, 9));
  let s = String(rng.int(1, 9));
  for (let i = 1; i < digits; i++) s += String(rng.int(0, 9));
  return BigInt(s);
}

export function drawArithmetic(spec: ArithmeticSpec, rng: Rng): ArithmeticItem {
  const op = rng.pick(spec.ops);
  return { terms: spec.digits.map((d) => operand(d, rng)), op };
}

function apply(x: bigint, op: ArithOp, y: bigint): bigint {
  return op === '+' ? x + y : op === '-' ? x - y : x * y;
}

export function arithmeticValue({ terms, op }: ArithmeticItem): bigint {
  return terms.slice(1).reduce((acc, t) => apply(acc, op, t), terms[0] as bigint);
}

export function expressionText({ terms, op }: ArithmeticItem): string {
  return terms.join(` ${op} `);
}

export function arithmeticProblem(item: ArithmeticItem): ArithmeticProblem {
  return { task: 'arithmetic', question: `What is ${expressionText(item)}?`, answer: arithmeticValue(item).toString() };
}

const QUESTION = new RegExp(`^What is (\\d{1,${MAX_DIGITS}}(?: ([-+*]) \\d{1,${MAX_DIGITS}}){1,${MAX_TERMS - 1}})\\?$`);

/** Recovers the operands from a question in the generator's own form; null for any other text. */
export function parseArithmeticQuestion(question: string): ArithmeticItem | null {
  const m = QUESTION.exec(question.trim());
  if (!m) return null;
  const op = m[2] as ArithOp;
  const parts = (m[1] as string).split(' ');
  // One operator per problem: every odd part must be the same one.
  if (parts.some((t, i) => i % 2 === 1 && t !== op)) return null;
  return { terms: parts.filter((_, i) => i % 2 === 0).map((t) => BigInt(t)), op };
}

const byValue = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);

/**
 * Problems equal up to reordering share a key, so "3 + 4" being held out also keeps "4 + 3" out of
 * training: any order of a sum or product, and any order of what a difference subtracts.
 */
export function arithmeticKey({ terms, op }: ArithmeticItem): string {
  const sorted = op === '-' ? [terms[0] as bigint, ...terms.slice(1).sort(byValue)] : [...terms].sort(byValue);
  return `arithmetic:${sorted.join(op)}`;
}

const PLACES = ['ones', 'tens', 'hundreds', 'thousands', 'ten-thousands', 'hundred-thousands', 'millions'];

function digitsLowFirst(n: bigint): number[] {
  return [...n.toString()].reverse().map(Number);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Column names vary between documents so the model does not tie the method to one wording. */
function placeNamer(rng: Rng): (i: number) => string {
  return rng.int(0, 1) === 0
    ? (i) => capitalize(PLACES[i] ?? `digit ${i + 1} from the right`)
    : (i) => `Column ${i + 1}`;
}

function workedAdd(a: bigint, b: bigint, rng: Rng): string[] {
  const place = placeNamer(rng);
  const da = digitsLowFirst(a);
  const db = digitsLowFirst(b);
  const lines = [rng.pick([`Add ${a} and ${b} column by column, starting from the right.`, `${a} + ${b}, one column at a time:`])];
  let carry = 0;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const terms = [da[i], db[i], carry || undefined].filter((t): t is number => t !== undefined);
    const sum = terms.reduce((s, t) => s + t, 0);
    carry = Math.floor(sum / 10);
    const what = terms.length === 1 ? `just ${sum}` : `${terms.join(' + ')} = ${sum}`;
    lines.push(`${place(i)}: ${what}, write ${sum % 10}${carry ? `, carry ${carry}` : ''}.`);
  }
  if (carry) lines.push(`The last carry ${carry} becomes the leading digit.`);
  return lines;
}

function workedSubtract(a: bigint, b: bigint, rng: Rng): string[] {
  if (a < b) {
    return [`${a} is smaller than ${b}, so the result is negative: work out ${b} - ${a} and put a minus sign in front.`, ...workedSubtract(b, a, rng)];
  }
  const place = placeNamer(rng);
  const da = digitsLowFirst(a);
  const db = digitsLowFirst(b);
  const lines = [rng.pick([`Subtract ${b} from ${a} column by column, starting from the right.`, `${a} - ${b}, one column at a time:`])];
  let borrow = 0;
  for (let i = 0; i < da.length; i++) {
    const top = (da[i] as number) - borrow;
    const bottom = db[i] ?? 0;
    const topText = borrow ? `${da[i]} - 1` : `${da[i]}`;
    // Past the end of the shorter number there is nothing to subtract but the borrow.
    const minus = i < db.length ? ` - ${bottom}` : '';
    if (top < bottom) {
      const r = top + 10 - bottom;
      const why = i < db.length ? `${topText} is less than ${bottom}` : `${topText} is below zero`;
      lines.push(`${place(i)}: ${why}, so borrow: ${(da[i] as number) + 10}${borrow ? ' - 1' : ''}${minus} = ${r}, write ${r}.`);
      borrow = 1;
    } else {
      lines.push(`${place(i)}: ${minus || borrow ? `${topText}${minus} = ${top - bottom}` : `just ${top}`}, write ${top - bottom}.`);
      borrow = 0;
    }
  }
  if (a - b !== 0n && da.length > 1 && (a - b).toString().length < da.length) lines.push('Drop the leading zeros.');
  return lines;
}

function workedMultiply(a: bigint, b: bigint, rng: Rng): string[] {
  if (a === 0n || b === 0n) return ['Anything times 0 is 0.'];
  if (b >= 10n && a < 10n) return [`Swap the factors: ${a} * ${b} = ${b} * ${a}.`, ...workedMultiply(b, a, rng)];
  if (b < 10n) {
    const place = placeNamer(rng);
    const d = Number(b);
    const lines = [rng.pick([`Multiply ${a} by ${d} digit by digit, starting from the right.`, `${a} * ${d}, one digit at a time:`])];
    let carry = 0;
    digitsLowFirst(a).forEach((digit, i) => {
      const p = digit * d + carry;
      lines.push(`${place(i)}: ${digit} * ${d}${carry ? ` + ${carry}` : ''} = ${p}, write ${p % 10}${p >= 10 ? `, carry ${Math.floor(p / 10)}` : ''}.`);
      carry = Math.floor(p / 10);
    });
    if (carry) lines.push(`The last carry ${carry} becomes the leading digit.`);
    return lines;
  }
  const parts = digitsLowFirst(b)
    .map((digit, k) => ({ factor: BigInt(digit) * 10n ** BigInt(k), digit }))
    .filter((p) => p.digit !== 0)
    .reverse();
  const lines = [`Split ${b} into ${parts.map((p) => p.factor).join(' + ')} and multiply ${a} by each part.`];
  for (const p of parts) lines.push(`${a} * ${p.factor} = ${a * p.factor}.`);
  let total = a * (parts[0] as { factor: bigint }).factor;
  for (const p of parts.slice(1)) {
    const next = total + a * p.factor;
    lines.push(`${total} + ${a * p.factor} = ${next}.`);
    total = next;
  }
  return lines;
}

/**
 * A long expression reduced one operation at a time, each line the one before with its first two
 * operands replaced by their result: "3 + 5 + 8 + 2", "= 8 + 8 + 2", "= 16 + 2", "= 18". Every step
 * reads only the start of the line above it and copies the rest, so no step has to find an operand
 * far back in the text; the only new fact a step needs is one two-operand result.
 */
export function reductionChain(item: ArithmeticItem): string[] {
  const lines = [expressionText(item)];
  for (let terms = item.terms; terms.length > 1; ) {
    terms = [apply(terms[0] as bigint, item.op, terms[1] as bigint), ...terms.slice(2)];
    lines.push(`= ${expressionText({ terms, op: item.op })}`);
  }
  return lines;
}

/** The steps of a worked solution, one sentence per line, ending with the result. */
export function workedArithmetic(item: ArithmeticItem, rng: Rng): string[] {
  const { terms, op } = item;
  if (terms.length > 2) return reductionChain(item);
  const [a, b] = terms as [bigint, bigint];
  const c = arithmeticValue(item);
  const lines = op === '+' ? workedAdd(a, b, rng) : op === '-' ? workedSubtract(a, b, rng) : workedMultiply(a, b, rng);
  lines.push(`So ${a} ${op} ${b} = ${c}.`);
  // Checking the result by the inverse operation is the habit R1-style training hopes to bring out.
  if (rng.next() < 0.3) {
    if (op === '+') lines.push(`Check: ${c} - ${b} = ${a}. Correct.`);
    else if (op === '-') lines.push(`Check: ${c} + ${b} = ${a}. Correct.`);
    else if (b !== 0n) lines.push(`Check: ${c} / ${b} = ${a}. Correct.`);
  }
  return lines;
}
