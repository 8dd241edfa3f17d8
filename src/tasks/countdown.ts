// Countdown: reach a target from a few numbers, each used at most once, with + − × ÷ where every
// division must be exact. Instances are drawn at random and kept only when the solver finds a
// solution, so every generated problem is solvable under exactly the rules the grader applies.
import type { Rng } from '../util/rng.js';
import type { CountdownProblem, CountdownSpec } from './types.js';

export type CountdownOp = '+' | '-' | '*' | '/';

/** One step of a solution: left op right = result, in the order they are computed. */
export interface CountdownStep {
  left: number;
  op: CountdownOp;
  right: number;
  result: number;
}

export interface CountdownSolution {
  expr: string;
  steps: CountdownStep[];
}

export const MAX_COUNT = 6;

type Node = number | { op: CountdownOp; left: Node; right: Node };

// Precedence of a node's top operator: atoms bind tightest.
function prec(n: Node): number {
  return typeof n === 'number' ? 3 : n.op === '+' || n.op === '-' ? 1 : 2;
}

// Minimal parentheses. Dropping them around a right-hand `+`/`-` child of `+`, or a `*`/`/` child of
// `*`, keeps the value under integer-exact division too: if c divides b it divides a·b.
function render(n: Node): string {
  if (typeof n === 'number') return String(n);
  const l = render(n.left);
  const r = render(n.right);
  const lp = n.op === '*' || n.op === '/' ? prec(n.left) < 2 : false;
  const rp = n.op === '-' ? prec(n.right) < 2 : n.op === '*' ? prec(n.right) < 2 : n.op === '/' ? prec(n.right) < 3 : false;
  return `${lp ? `(${l})` : l} ${n.op} ${rp ? `(${r})` : r}`;
}

function stepsOf(n: Node, out: CountdownStep[]): number {
  if (typeof n === 'number') return n;
  const left = stepsOf(n.left, out);
  const right = stepsOf(n.right, out);
  const result = apply(left, n.op, right) as number;
  out.push({ left, op: n.op, right, result });
  return result;
}

/** Result of one step, or null when the step is not allowed or useless (negative, zero, ×1, ÷1). */
function apply(a: number, op: CountdownOp, b: number): number | null {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a > b ? a - b : null;
    case '*':
      return a === 1 || b === 1 ? null : a * b;
    case '/':
      return b !== 1 && a % b === 0 ? a / b : null;
  }
}

const OPS: CountdownOp[] = ['+', '-', '*', '/'];

/**
 * A solution using the fewest operations, or null. Intermediate results stay positive integers; any
 * solution the grader accepts can be rearranged into one of these, and the search stays small.
 */
export function solveCountdown(numbers: readonly number[], target: number): CountdownSolution | null {
  if (numbers.includes(target)) return { expr: String(target), steps: [] };
  const found = (node: Node): CountdownSolution => {
    const steps: CountdownStep[] = [];
    stepsOf(node, steps);
    return { expr: render(node), steps };
  };
  const search = (values: number[], nodes: Node[], opsLeft: number): Node | null => {
    for (let i = 0; i < values.length; i++) {
      for (let j = 0; j < values.length; j++) {
        if (i === j) continue;
        const a = values[i] as number;
        const b = values[j] as number;
        for (const op of OPS) {
          // + and × are commutative: visit each unordered pair once, larger operand first.
          if ((op === '+' || op === '*') && (a < b || (a === b && i > j))) continue;
          const r = apply(a, op, b);
          if (r === null) continue;
          const node: Node = { op, left: nodes[i] as Node, right: nodes[j] as Node };
          if (r === target) return node;
          if (opsLeft > 1) {
            const restV = values.filter((_, k) => k !== i && k !== j);
            const restN = nodes.filter((_, k) => k !== i && k !== j);
            const hit = search([...restV, r], [...restN, node], opsLeft - 1);
            if (hit !== null) return hit;
          }
        }
      }
    }
    return null;
  };
  for (let ops = 1; ops < numbers.length; ops++) {
    const hit = search([...numbers], [...numbers], ops);
    if (hit !== null) return found(hit);
  }
  return null;
}

/** Numbers and target, uniform over the spec, not yet checked for solvability. */
export function drawCountdownCandidate(spec: CountdownSpec, rng: Rng): { numbers: number[]; target: number } {
  const count = rng.int(spec.count[0], spec.count[1]);
  const numbers = Array.from({ length: count }, () => rng.int(1, spec.numberMax));
  // A target equal to one of the numbers is solved by writing it down: no search to learn from.
  let target = rng.int(1, spec.targetMax);
  while (numbers.includes(target) && spec.targetMax > count) target = rng.int(1, spec.targetMax);
  return { numbers, target };
}

/** The order of the numbers does not make a different problem. */
export function countdownKey(numbers: readonly number[], target: number): string {
  return `countdown:${[...numbers].sort((x, y) => x - y).join(',')}=${target}`;
}

export function countdownQuestion(p: CountdownProblem): string {
  return (
    `Using the numbers [${p.numbers.join(', ')}], create an equation that equals ${p.target}. ` +
    'You can use +, -, * and /, each number at most once, and every division must come out even.'
  );
}

const OP_WORDS: Record<CountdownOp, string> = { '+': 'plus', '-': 'minus', '*': 'times', '/': 'divided by' };

/** A narrated search: a few dead ends, the path that works, then a check. */
export function workedCountdown(numbers: readonly number[], target: number, solution: CountdownSolution, rng: Rng): string[] {
  const lines = [
    rng.pick([
      `Numbers: ${numbers.join(', ')}. Target: ${target}.`,
      `I need to make ${target} from ${numbers.join(', ')}, using each number at most once.`,
      `Goal ${target}, numbers ${numbers.join(', ')}.`,
    ]),
  ];
  let deadEnds = 0;
  for (let k = numbers.length > 1 ? rng.int(0, 2) : 0; k > 0; k--) {
    const pool = rng.shuffle([...numbers]);
    const [a, b, c] = pool as [number, number, number | undefined];
    const op = rng.pick(OPS);
    const r = apply(Math.max(a, b), op, Math.min(a, b));
    if (r === null || r === target) continue;
    let line = `Try ${Math.max(a, b)} ${op} ${Math.min(a, b)} = ${r}.`;
    let last = r;
    if (c !== undefined) {
      const op2 = rng.pick(OPS);
      const r2 = apply(Math.max(r, c), op2, Math.min(r, c));
      if (r2 === target) continue;
      if (r2 !== null) {
        line += ` Then ${Math.max(r, c)} ${op2} ${Math.min(r, c)} = ${r2}.`;
        last = r2;
      }
    }
    line += ` ${last} is not ${target}.`;
    lines.push(line);
    deadEnds++;
  }
  if (solution.steps.length === 0) {
    lines.push(`${target} is already one of the numbers.`);
  } else {
    const verbal = rng.next() < 0.3;
    const said = solution.steps.map((s) => (verbal ? `${s.left} ${OP_WORDS[s.op]} ${s.right} is ${s.result}.` : `${s.left} ${s.op} ${s.right} = ${s.result}.`));
    lines.push(`${deadEnds > 0 ? 'Another way: ' : rng.pick(['Try: ', 'How about: '])}${said.join(' ')}`);
    lines.push(rng.pick([`That reaches ${target}.`, `That is the target.`, `Found it.`]));
  }
  lines.push(`Check: ${solution.expr} = ${target}, and no number is used more often than it is given.`);
  return lines;
}
