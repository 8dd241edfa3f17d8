// `nanoseek mail eval`: the app (rules, then the model), the model alone, and the naive Bayes baseline
// on hand-labelled messages, each scored by eval.ts. The baseline is trained on the corpus minus the
// labelled messages, with the labels (weak labels, replaced by the recipe's hand labels where it has
// them) and the oversampling the shipped model was trained on, reading the same prompt text; so the
// comparison is between two learners given the same data.
import { readFile } from 'node:fs/promises';
import type { Tokenizer } from '../tokenizer/index.js';
import type { MailConfig } from './config.js';
import { corpusEntries, readCorpusMessage } from './corpus.js';
import { scoreTriage, type EvalPair, type EvalReport } from './eval.js';
import type { HandLabel } from './labels.js';
import type { TriageModel } from './model.js';
import { parseMessage } from './parse.js';
import { loadCorpus, oversampled, promptFor, readTrainLabels, trainBaseline, type MailRecipe } from './recipe.js';
import { fitBody } from './prompt.js';
import { answerValidator } from './schema.js';
import { groundAnswer, triageMessage } from './triage.js';

export interface EvalOptions {
  config: MailConfig;
  model: TriageModel | null;
  /** Train and score the naive Bayes baseline (needs the corpus package). */
  baseline?: boolean;
  /** Tokenizer that shapes the baseline's input like the model's. */
  tokenizer?: Tokenizer;
  /** The recipe the model was trained by: the baseline gets its prompt budget, training labels and oversampling (needed with `baseline`). */
  recipe?: Pick<MailRecipe, 'prompt_tokens' | 'oversample' | 'train_labels'>;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  app: EvalReport;
  modelOnly: EvalReport | null;
  baseline: EvalReport | null;
  /** Messages the rules settled. */
  byRules: number;
  seconds: number;
  pairs: (EvalPair & { decidedBy: string | null })[];
}

async function rawOf(l: HandLabel, corpus: Map<string, string>): Promise<Uint8Array> {
  if (l.path !== undefined) return readFile(l.path);
  const path = corpus.get(l.id);
  if (path === undefined) throw new Error(`labels: ${l.id} is not a message of the SpamAssassin corpus (use "path" for your own files)`);
  return readFile(path);
}

export async function evaluateTriage(labels: readonly HandLabel[], o: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const cats = o.config.categories;
  const needCorpus = labels.some((l) => l.path === undefined) || o.baseline;
  const corpus = new Map(needCorpus ? (await corpusEntries()).map((e) => [e.id, e.path]) : []);
  const pairs: EvalResult['pairs'] = [];
  const modelPairs: EvalPair[] = [];
  let i = 0;
  for (const l of labels) {
    const bytes = await rawOf(l, corpus);
    const ref = { folder: 'eval', key: l.id, location: l.path ?? l.id, bytes };
    const rec = await triageMessage(ref, 'eval', { config: o.config, model: o.model });
    pairs.push({ id: l.id, truth: l.category, predicted: rec.status === 'ok' ? rec.category : null, decidedBy: rec.decided_by });
    if (o.model !== null) {
      // The model's own answer, also where a rule settled the message.
      const own = rec.decided_by?.startsWith('rule:') ? await modelOnly(ref, o) : rec.status === 'ok' ? rec.category : null;
      modelPairs.push({ id: l.id, truth: l.category, predicted: own });
    }
    o.onProgress?.(++i, labels.length);
  }
  let baseline: EvalReport | null = null;
  if (o.baseline) {
    if (o.tokenizer === undefined) throw new Error('the baseline needs the tokenizer that shapes the prompts (a local --model)');
    if (o.recipe === undefined) throw new Error("the baseline needs the model's recipe (its prompt length, training labels and oversampling)");
    const held = new Set(labels.map((l) => l.id));
    const { train } = await loadCorpus(held, () => {}, await readTrainLabels(o.recipe, held));
    const promptTokens = o.recipe.prompt_tokens;
    const nb = trainBaseline(oversampled(train, o.recipe.oversample), o.tokenizer, promptTokens);
    const bp: EvalPair[] = [];
    for (const l of labels) {
      const m = await parseMessage(await rawOf(l, corpus));
      bp.push({ id: l.id, truth: l.category, predicted: nb.predict(promptFor(o.tokenizer, m, promptTokens).text) });
    }
    baseline = scoreTriage(bp, cats);
  }
  return {
    app: scoreTriage(pairs, cats),
    modelOnly: o.model === null ? null : scoreTriage(modelPairs, cats),
    baseline,
    byRules: pairs.filter((p) => p.decidedBy?.startsWith('rule:')).length,
    seconds: (performance.now() - t0) / 1000,
    pairs,
  };
}

/** The model's answer for a message that a built-in header rule would settle. */
async function modelOnly(ref: { folder: string; key: string; location: string; bytes: Uint8Array }, o: EvalOptions): Promise<string | null> {
  const m = await parseMessage(ref.bytes);
  const msgs = fitBody(m, o.config.categories, (x) => o.model!.fits(x, 160));
  const r = await o.model!.complete({ messages: msgs, maxTokens: 160 });
  try {
    const v = JSON.parse(r.text);
    if (answerValidator(o.config.categories)(v) !== null) return null;
    return groundAnswer(v, m).category;
  } catch {
    return null;
  }
}

const pct = (x: number): string => (Number.isNaN(x) ? '–' : `${(100 * x).toFixed(1)}%`);

/** A Markdown report: the headline table, per-category recall, and the app's confusion matrix. */
export function renderEvalMarkdown(r: EvalResult, categories: readonly string[], title: string): string {
  const rows: [string, EvalReport | null][] = [
    ['nanoseek mail (rules, then the model)', r.app],
    ['the model alone', r.modelOnly],
    ['naive Bayes baseline', r.baseline],
  ];
  const present = categories.filter((c) => r.app.perCategory.find((p) => p.category === c)!.n > 0);
  const lines = [`# ${title}`, '', `${r.app.n} hand-labelled messages; ${r.byRules} settled by rules. ${r.seconds.toFixed(0)} s.`, ''];
  lines.push('| | accuracy | spam/ham accuracy | spam precision | spam recall |', '|---|---|---|---|---|');
  for (const [name, e] of rows) if (e) lines.push(`| ${name} | ${pct(e.accuracy)} | ${pct(e.spamAccuracy)} | ${pct(e.spamPrecision)} | ${pct(e.spamRecall)} |`);
  lines.push('', `Recall per category (messages of that category labelled correctly):`, '', `| | ${present.map((c) => `${c} (${r.app.perCategory.find((p) => p.category === c)!.n})`).join(' | ')} |`, `|---|${present.map(() => '---').join('|')}|`);
  for (const [name, e] of rows) if (e) lines.push(`| ${name} | ${present.map((c) => pct(e.perCategory.find((p) => p.category === c)!.recall)).join(' | ')} |`);
  const cols = [...categories, 'needs review'].filter((c) => present.includes(c) || Object.values(r.app.confusion).some((row) => (row[c] ?? 0) > 0));
  lines.push('', 'Confusion matrix of the app (rows: label, columns: answer):', '', `| | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---').join('|')}|`);
  for (const c of present) lines.push(`| ${c} | ${cols.map((k) => r.app.confusion[c]?.[k] ?? 0).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}
