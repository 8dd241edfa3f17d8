// nanoseek mail: private email triage on this machine. Sources (IMAP, Maildir, mbox, .eml) → parsing →
// rules → a model decoding inside a JSON schema → validated records in SQLite → terminal, JSONL,
// HTML digest and the /mail page; --apply files mail into folders. See README "Mail triage".
export { applyPlan, describeStep, planActions, type ApplyResult, type PlanStep } from './apply.js';
export { NaiveBayes } from './baseline.js';
export { cleanLink, extractLinks, trimBody } from './body.js';
export { DEFAULT_CATEGORIES, DEFAULT_MAIL_MODEL, defaultConfig, loadMailConfig, parseMailConfig, type MailConfig, type Rule } from './config.js';
export { corpusDir, corpusEntries, readCorpusMessage, writeSampleMaildir, CORPUS_GROUPS, type CorpusEntry } from './corpus.js';
export { describeDate, resolveDue, validDate } from './dates.js';
export { scoreTriage, type EvalPair, type EvalReport } from './eval.js';
export { evaluateTriage, renderEvalMarkdown, type EvalResult } from './evaluate.js';
export { isLoopbackHost, NetworkGuard, PrivacyError } from './guard.js';
export { htmlToText } from './html.js';
export { readLabels, weakLabel, type HandLabel } from './labels.js';
export { EndpointModel, LocalModel, type CompleteRequest, type CompleteResult, type LocalModelOptions, type TriageModel } from './model.js';
export { renderDigest } from './outputs/digest.js';
export { progressLine, tableHeader, tableRow } from './outputs/table.js';
export { MAX_PARSE_BYTES, parseMessage, type Attachment, type ParsedMessage } from './parse.js';
export { defuse, FENCE_CLOSE, FENCE_OPEN, triageMessages } from './prompt.js';
export { MAIL_CHAT_TEMPLATE, parseRecipe, readTrainLabels, runMailRecipe, type MailRecipe } from './recipe.js';
export { decideByRules, priorityOf, type RuleDecision } from './rules.js';
export { runTriage, type RunOptions, type RunProgress, type RunSummary } from './run.js';
export { answerValidator, triageSchema, type ModelAnswer } from './schema.js';
export * from './sources/index.js';
export { MailState, type Correction } from './state.js';
export { cleanSubject, groundAnswer, summaryGrounded, triageMessage, type TriageContext, type TriageRecord, type TriageStatus } from './triage.js';
export { mailRoutes } from './web.js';
