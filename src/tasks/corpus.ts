// Training text built from generated problems, never from held-out ones (every problem comes from
// sampleProblem's 'train' split).
//
// Pretraining corpus: documents in plain text, separated by one blank line (no document contains
// one). The mix (CorpusMix): lists of questions with direct answers, worked arithmetic narrated the
// school way, terse column scratch work, place-value drills, narrated Countdown searches with dead
// ends and a check, Countdown statements with a solution, and single problems laid out as
// `<think>…</think> <answer>…</answer>`, as chain-of-thought text on the web is. Surface forms vary.
// It never contains the R1-Zero template (nor its "User:"/"Assistant:" frame): RL has to connect
// that prompt to the layout.
//
// The tagged documents are mostly direct answers (an empty think) and less often worked solutions,
// so a base model trained on this mix mostly answers directly when sampled. Where the direct answer
// is beyond a small model and the working is not (a sum of six one-digit numbers in one go, against
// five additions of a one-digit number), that leaves the room R1-Zero's growth of reasoning needs,
// at a size a CPU can train. The questions come bare, labelled, after instructions or as a line of
// dialogue, so an unseen prompt around them still reads as a question and its reply.
//
// SFT / cold start: the same worked solutions as {prompt, completion} with the completion in the
// `<think>steps</think> <answer>x</answer>` format, which grades as format 1, accuracy 1.
import { Rng } from '../util/rng.js';
import { parseArithmeticQuestion, workedArithmetic, type ArithmeticItem } from './arithmetic.js';
import { solveCountdown, workedCountdown } from './countdown.js';
import { writeChunksAtomic } from '../util/atomic.js';
import { EVAL_SEED, questionText, sampleProblem, solutionOf, validateSpec, zeroPrompt } from './problems.js';
import type { ArithOp, ArithmeticProblem, ArithmeticSpec, CountdownProblem, CountdownSpec, Problem, TaskSpec } from './types.js';

/** Relative weights of the document kinds (they need not sum to 1). */
export interface CorpusMix {
  /** Lists of arithmetic questions with direct answers. */
  facts: number;
  /** Worked arithmetic in plain text, narrated the school way. */
  worked: number;
  /**
   * Worked problems as terse scratch work, plain text: two-operand sums and differences column by
   * column (products narrated), longer expressions reduced one operation per line.
   */
  scratch: number;
  /** Place-value drills: numbers read digit by digit from the right, two numbers column by column. */
  columns: number;
  /** One arithmetic or Countdown problem in the think/answer layout. */
  tagged: number;
  /** Narrated Countdown searches. */
  countdown: number;
  /** Lists of Countdown problems with a solution each. */
  countdownFacts: number;
}

export const DEFAULT_MIX: CorpusMix = { facts: 0.2, worked: 0.2, scratch: 0.1, columns: 0.05, tagged: 0.15, countdown: 0.22, countdownFacts: 0.08 };

export interface CorpusOptions {
  seed?: number;
  /** Each arithmetic operand gets 1..maxDigits digits, drawn independently; default 4. */
  maxDigits?: number;
  /** Default all three. */
  ops?: ArithOp[];
  /**
   * Draw arithmetic from these specs instead (one picked at random per problem), in place of
   * maxDigits and ops: operands of a fixed width, as the task will pose them.
   */
  arithmetic?: ArithmeticSpec[];
  /** Default 3–4 numbers up to 25, targets up to 100. */
  countdown?: CountdownSpec;
  /** Default DEFAULT_MIX. */
  mix?: Partial<CorpusMix>;
  /** Share of tagged documents whose think block holds a worked solution (the rest answer directly); default 0.3. */
  taggedWorked?: number;
}

export interface CorpusDocument {
  text: string;
  /** The problems the document is about (all from the training split). */
  problems: Problem[];
}

export const DEFAULT_COUNTDOWN: CountdownSpec = { task: 'countdown', count: [3, 4], numberMax: 25, targetMax: 100 };

/** Worked solution of a generated problem: the reasoning lines and the final answer text. */
export function workedSolution(p: Problem, rng: Rng): { steps: string[]; answer: string } {
  if (p.task === 'arithmetic') {
    const item = parseArithmeticQuestion(p.question);
    if (!item) throw new Error(`no worked solution for a question not in the generator's form: ${JSON.stringify(p.question)}`);
    return { steps: workedArithmetic(item, rng), answer: p.answer };
  }
  const solution = solveCountdown(p.numbers, p.target);
  if (!solution) throw new Error(`countdown problem ${JSON.stringify(p.numbers)} -> ${p.target} has no solution`);
  return { steps: workedCountdown(p.numbers, p.target, solution, rng), answer: solution.expr };
}

const OP_WORD: Record<ArithOp, string> = { '+': 'plus', '-': 'minus', '*': 'times' };

function factLine(p: ArithmeticProblem, form: number, rng: Rng): string {
  const item = parseArithmeticQuestion(p.question);
  if (!item) throw new Error('unreachable: generated question not in generator form');
  const { terms, op } = item;
  const sym = op === '*' ? rng.pick(['*', '×']) : op;
  switch (form) {
    case 0:
      return `${terms.join(` ${sym} `)} = ${p.answer}`;
    case 1:
      return `Q: ${p.question}\nA: ${p.answer}`;
    case 2:
      return `${terms.join(` ${OP_WORD[op]} `)} is ${p.answer}.`;
    default:
      return `${p.question} ${p.answer}`;
  }
}

function countdownLine(p: CountdownProblem, rng: Rng): string {
  return rng.pick([
    `Numbers ${p.numbers.join(', ')}, target ${p.target}: ${p.solution} = ${p.target}`,
    `${questionText(p)}\nAnswer: ${p.solution}`,
    `Make ${p.target} from ${p.numbers.join(' ')}. Solution: ${p.solution}`,
  ]);
}

const lowFirst = (n: bigint): number[] => [...n.toString()].reverse().map(Number);

const PLACE = ['ones', 'tens', 'hundreds', 'thousands', 'ten-thousands', 'hundred-thousands', 'millions'];
const placeName = (i: number): string => PLACE[i] ?? `digit ${i + 1}`;

/**
 * Sums and differences as terse scratch work, one line per column, named by its place, with its
 * carry or borrow and the result so far, the way reasoning inside think tags tends to be written.
 * The place name tells the model which digit of each operand to fetch; carrying the partial result
 * down the lines means no step looks further back than the line before for the digits already
 * written, and the answer is the last of them. Null for products (they keep the narration) and for
 * more than two operands (they are reduced one operation per line).
 */
function scratchpad(item: ArithmeticItem): string[] | null {
  const { terms, op } = item;
  if (op === '*' || terms.length > 2) return null;
  const [a, b] = terms as [bigint, bigint];
  const lines: string[] = [];
  let written = '';
  const column = (work: string, digit: number, note: string) => {
    lines.push(`${placeName(written.length)}: ${work}${note}, so far ${digit}${written}`);
    written = `${digit}${written}`;
  };
  if (op === '+') {
    const [da, db] = [lowFirst(a), lowFirst(b)];
    let carry = 0;
    for (let i = 0; i < Math.max(da.length, db.length); i++) {
      const terms = [da[i], db[i], carry || undefined].filter((t): t is number => t !== undefined);
      const sum = terms.reduce((x, y) => x + y, 0);
      carry = Math.floor(sum / 10);
      column(`${terms.join(' + ')} = ${sum}`, sum % 10, carry ? `, carry ${carry}` : '');
    }
    if (carry) lines.push(`carry ${carry} in front: ${carry}${written}`);
  } else {
    const [hi, lo] = a < b ? [b, a] : [a, b];
    if (a < b) lines.push(`${a} < ${b}, so work out ${b} - ${a} and negate`);
    const [dh, dl] = [lowFirst(hi), lowFirst(lo)];
    let borrow = 0;
    for (let i = 0; i < dh.length; i++) {
      const top = dh[i] - borrow;
      const bottom = dl[i] ?? 0;
      borrow = top < bottom ? 1 : 0;
      column(`${top + 10 * borrow} - ${bottom} = ${top + 10 * borrow - bottom}`, top + 10 * borrow - bottom, borrow ? ', borrow 1' : '');
    }
    const diff = hi - lo;
    if (diff.toString() !== written) lines.push(`without leading zeros: ${diff}`);
    if (a < b) lines.push(`negate: ${-diff}`);
  }
  return lines;
}


/** A number read from the right: the skill column arithmetic rests on, drilled on its own. */
function digitLine(n: bigint, rng: Rng): string {
  const d = lowFirst(n);
  if (rng.next() < 0.5) return `${n} from the right: ${d.join(', ')}`;
  return `${n}: ${d.map((x, i) => `${placeName(i)} ${x}`).join(', ')}`;
}

/** Two numbers lined up column by column from the right (once one runs out, the other's digits alone). */
function columnLine(a: bigint, b: bigint): string {
  const [da, db] = [lowFirst(a), lowFirst(b)];
  const cols = Array.from({ length: Math.max(da.length, db.length) }, (_, i) => (da[i] === undefined ? `${db[i]}` : db[i] === undefined ? `${da[i]}` : `${da[i]} and ${db[i]}`));
  return `${a} and ${b} column by column: ${cols.join(', ')}`;
}

/** A problem's worked solution: scratch work where there is one, else the narrated steps. */
function workedSteps(p: Problem, rng: Rng): string[] {
  const item = p.task === 'arithmetic' ? parseArithmeticQuestion(p.question) : null;
  return (item && scratchpad(item)) ?? workedSolution(p, rng).steps;
}

/**
 * What comes between a question and its working. Varying it moves the working by a few tokens, so a
 * model cannot find the operands' digits by a fixed distance and learns to find them by content,
 * which is what still works under a prompt it has never seen (the R1-Zero template).
 */
const SEPARATORS = [' ', '\n', '\nA: ', '\nSolution: ', '\nWorking: ', '\n\t'];

/**
 * Lines that may come before a tagged problem, as instructions, exercise headers and format notes do
 * in text on the web. Some describe the think/answer layout in their own words; none is the R1-Zero
 * prompt.
 */
const PREAMBLES = [
  'Solve the following problem.',
  'Exercise. Think it through, then answer.',
  'Practice question. Show your steps before the answer.',
  'Answer the question below.',
  'Put the working inside <think> </think> and the result inside <answer> </answer>.',
  'Format: <think> steps </think> <answer> result </answer>',
  'The reply has two parts: the thinking between think tags, then the answer between answer tags.',
  'Here is a question from a quiz, with a reply.',
];

/** Two speakers of a dialogue, other than the R1-Zero prompt's own pair. */
const SPEAKERS: [string, string][] = [
  ['Student', 'Tutor'],
  ['Learner', 'Teacher'],
  ['Human', 'AI'],
  ['Asker', 'Helper'],
  ['Customer', 'Agent'],
];

/**
 * The question as one of the ways text on the web poses it: bare, labelled, after a preamble, or as
 * a line of dialogue whose reply starts on the next line. A prompt the model has never seen (the
 * R1-Zero template) then still reads as a question and a reply to it, so the reply can find the
 * question's numbers by what they are rather than by where they sit.
 */
function questionFrame(q: string, rng: Rng): string {
  const u = rng.next();
  if (u < 0.5) return `${rng.pick([q, `Q: ${q}`, `Problem: ${q}`, `Question: ${q}`])}${rng.pick(SEPARATORS)}`;
  const preamble = u < 0.75 ? `${rng.pick(PREAMBLES)}\n` : '';
  const [asker, answerer] = rng.pick(SPEAKERS);
  return `${preamble}${asker}: ${q}\n${answerer}: `;
}

/** One problem in the think/answer layout; `worked` puts a worked solution in the think block. */
function taggedDocument(p: Problem, worked: boolean, rng: Rng): string {
  const answer = solutionOf(p)!;
  // A direct answer's think block is always the same empty one, so choosing between answering and
  // working it out is a single decision at the first token after <think> (a space or a newline).
  const body = worked ? `<think>\n${workedSteps(p, rng).join('\n')}\n</think>\n<answer>${answer}</answer>` : `<think> </think> <answer>${answer}</answer>`;
  return `${questionFrame(questionText(p), rng)}${body}`;
}

/** An endless, deterministic stream of corpus documents. */
export function* corpusDocuments(opts: CorpusOptions = {}): Generator<CorpusDocument> {
  const rng = new Rng(opts.seed ?? 0);
  const maxDigits = opts.maxDigits ?? 4;
  const ops = opts.ops ?? ['+', '-', '*'];
  const countdown = opts.countdown ?? DEFAULT_COUNTDOWN;
  const mix = { ...DEFAULT_MIX, ...opts.mix };
  const taggedWorked = opts.taggedWorked ?? 0.3;
  validateSpec({ task: 'arithmetic', digits: [maxDigits, maxDigits], ops });
  const specs = opts.arithmetic;
  if (specs !== undefined) {
    if (!Array.isArray(specs) || specs.length === 0) throw new Error('arithmetic: expected a non-empty list of arithmetic task specs');
    specs.forEach((spec, i) => {
      if (spec?.task !== 'arithmetic') throw new Error(`arithmetic[${i}]: expected task "arithmetic", got ${JSON.stringify(spec?.task)}`);
      validateSpec(spec);
    });
  }
  validateSpec(countdown);
  const weights = [mix.facts, mix.worked, mix.scratch, mix.columns, mix.tagged, mix.countdown, mix.countdownFacts];
  if (!weights.every((w) => Number.isFinite(w) && w >= 0) || weights.every((w) => w === 0)) {
    throw new Error(`mix: expected non-negative weights, not all zero, got ${JSON.stringify(mix)}`);
  }
  if (!(taggedWorked >= 0 && taggedWorked <= 1)) throw new Error(`taggedWorked: expected a share in [0, 1], got ${taggedWorked}`);
  const total = weights.reduce((a, b) => a + b, 0);
  // Tagged documents follow the arithmetic : Countdown balance of the rest of the mix.
  const arith = mix.facts + mix.worked + mix.scratch + mix.columns;
  const arithShare = arith + mix.countdown + mix.countdownFacts === 0 ? 1 : arith / (arith + mix.countdown + mix.countdownFacts);
  const arithmetic = (): ArithmeticProblem => {
    const spec: TaskSpec = specs ? rng.pick(specs) : { task: 'arithmetic', digits: [rng.int(1, maxDigits), rng.int(1, maxDigits)], ops };
    return sampleProblem(spec, rng) as ArithmeticProblem;
  };
  for (;;) {
    let u = rng.next() * total;
    let kind = 0;
    // Rounding can leave u a hair above the last weight: the last kind with any weight takes it.
    for (let k = 0; k < weights.length; k++) {
      if (weights[k] === 0) continue;
      kind = k;
      if ((u -= weights[k]) < 0) break;
    }
    if (kind === 0) {
      const form = rng.int(0, 3);
      const problems = Array.from({ length: rng.int(4, 12) }, arithmetic);
      yield { text: problems.map((p) => factLine(p, form, rng)).join('\n'), problems };
    } else if (kind === 1) {
      const p = arithmetic();
      const { steps, answer } = workedSolution(p, rng);
      const head = rng.pick([`Problem: ${p.question}`, `${p.question}`, `Q: ${p.question}`, 'Worked example.']);
      const tail = rng.pick([`Answer: ${answer}`, `The answer is ${answer}.`, '']);
      yield { text: [head, ...steps, tail].filter((l) => l !== '').join('\n'), problems: [p] };
    } else if (kind === 2) {
      const p = arithmetic();
      const head = rng.pick([`Q: ${p.question}`, p.question, `Problem: ${p.question}`]);
      yield { text: `${head}${rng.pick(SEPARATORS)}${[...workedSteps(p, rng), `Answer: ${p.answer}`].join('\n')}`, problems: [p] };
    } else if (kind === 3) {
      const lines = Array.from({ length: rng.int(3, 6) }, () => {
        const [a, b] = parseArithmeticQuestion(arithmetic().question)!.terms as [bigint, bigint];
        return rng.next() < 0.5 ? digitLine(a, rng) : columnLine(a, b);
      });
      yield { text: lines.join('\n'), problems: [] };
    } else if (kind === 4) {
      const p = rng.next() < arithShare ? arithmetic() : sampleProblem(countdown, rng);
      yield { text: taggedDocument(p, rng.next() < taggedWorked, rng), problems: [p] };
    } else if (kind === 5) {
      const p = sampleProblem(countdown, rng) as CountdownProblem;
      const { steps, answer } = workedSolution(p, rng);
      const head = rng.pick([questionText(p), `Countdown puzzle: reach ${p.target} with ${p.numbers.join(', ')}.`, '']);
      yield { text: [head, ...steps, `Answer: ${answer}`].filter((l) => l !== '').join('\n'), problems: [p] };
    } else {
      const problems = Array.from({ length: rng.int(2, 5) }, () => sampleProblem(countdown, rng) as CountdownProblem);
      yield { text: problems.map((p) => countdownLine(p, rng)).join('\n'), problems };
    }
  }
}

/** Writes documents until at least `bytes` bytes (atomically); returns what was written. */
export async function writeCorpus(file: string, bytes: number, opts: CorpusOptions = {}): Promise<{ bytes: number; documents: number; problems: number }> {
  let documents = 0;
  let problems = 0;
  const chunks = function* (): Generator<string> {
    let written = 0;
    for (const doc of corpusDocuments(opts)) {
      if (written >= bytes) return;
      const chunk = `${doc.text}\n\n`;
      written += Buffer.byteLength(chunk);
      documents++;
      problems += doc.problems.length;
      yield chunk;
    }
  };
  const total = await writeChunksAtomic(file, chunks());
  return { bytes: total, documents, problems };
}

export interface SftRecord {
  prompt: string;
  completion: string;
  problem: Problem;
}

/**
 * An endless, deterministic stream of cold-start SFT records for one task spec. The prompt is the
 * bare question (for a chat template to wrap) or, with `zero`, the full R1-Zero prompt.
 */
export function* sftRecords(spec: TaskSpec, opts: { seed?: number; zero?: boolean } = {}): Generator<SftRecord> {
  validateSpec(spec);
  const rng = new Rng(opts.seed ?? 0);
  for (;;) {
    const problem = sampleProblem(spec, rng);
    const { steps, answer } = workedSolution(problem, rng);
    // The R1-Zero prompt ends in "Assistant:"; the space keeps prompt + completion readable.
    const completion = `${opts.zero ? ' ' : ''}<think>\n${steps.join('\n')}\n</think>\n<answer>${answer}</answer>`;
    yield { prompt: opts.zero ? zeroPrompt(problem) : questionText(problem), completion, problem };
  }
}

/**
 * At least `chars` characters of corpus documents from the stream validation uses by default
 * (EVAL_SEED, which training streams never draw): held-out text for perplexity measurements.
 */
export function heldOutText(chars: number, opts: Omit<CorpusOptions, 'seed'> = {}): string {
  const parts: string[] = [];
  let n = 0;
  for (const d of corpusDocuments({ ...opts, seed: EVAL_SEED })) {
    parts.push(d.text);
    n += d.text.length + 2;
    if (n >= chars) break;
  }
  return parts.join('\n\n');
}
