// The verifiable task suite: problem generators with a fixed held-out split, rule-based graders,
// JSONL problem files, the prompts problems are put to a model in, and pretraining / cold-start SFT text.
export type { ArithOp, ArithmeticProblem, ArithmeticSpec, CountdownProblem, CountdownSpec, Problem, Split, TaskName, TaskSpec } from './types.js';
export { TASK_NAMES } from './types.js';
export {
  EVAL_SEED,
  HELDOUT_MODULUS,
  ZERO_TEMPLATE,
  hashKey,
  heldOutSet,
  isHeldOut,
  problemId,
  problemKey,
  questionText,
  sampleProblem,
  solutionOf,
  taskPhrase,
  validateSpec,
  zeroPrompt,
} from './problems.js';
export { checkAnswer, grade, parseStructure, type Grade, type GradeOptions, type Structure } from './grade.js';
export { DEFAULT_LIMITS, evaluate, literals, parseExpr, parseInteger, type Expr, type ExprLimits, type Result } from './expr.js';
export { solveCountdown, type CountdownSolution, type CountdownStep } from './countdown.js';
export { loadProblems, problemToJson, readJsonl, toProblem, writeProblems } from './jsonl.js';
export { PROMPT_TEMPLATES, renderPrompt, type PromptTemplate, type RenderedPrompt } from './prompt.js';
export { corpusDocuments, DEFAULT_COUNTDOWN, DEFAULT_MIX, heldOutText, sftRecords, workedSolution, writeCorpus, type CorpusDocument, type CorpusMix, type CorpusOptions, type SftRecord } from './corpus.js';
