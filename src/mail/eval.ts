// Accuracy of triage against hand labels: per category, a confusion matrix, and spam precision and
// recall (spam is the positive class; a ham message called spam is the costly mistake).

export interface EvalPair {
  id: string;
  truth: string;
  /** null: no valid answer (needs review) — counted as wrong. */
  predicted: string | null;
}

export interface EvalReport {
  n: number;
  accuracy: number;
  /** Spam vs not spam. */
  spamAccuracy: number;
  spamPrecision: number;
  spamRecall: number;
  perCategory: { category: string; n: number; correct: number; recall: number; precision: number }[];
  /** confusion[truth][predicted]; predicted includes "needs review". */
  confusion: Record<string, Record<string, number>>;
}

export function scoreTriage(pairs: readonly EvalPair[], categories: readonly string[]): EvalReport {
  const confusion: Record<string, Record<string, number>> = {};
  for (const c of categories) confusion[c] = Object.fromEntries([...categories, 'needs review'].map((p) => [p, 0]));
  let correct = 0;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let spamRight = 0;
  for (const p of pairs) {
    const pred = p.predicted ?? 'needs review';
    confusion[p.truth] ??= {};
    confusion[p.truth][pred] = (confusion[p.truth][pred] ?? 0) + 1;
    if (pred === p.truth) correct++;
    const isSpam = p.truth === 'spam';
    const saidSpam = pred === 'spam';
    if (isSpam && saidSpam) tp++;
    else if (!isSpam && saidSpam) fp++;
    else if (isSpam && !saidSpam) fn++;
    if (isSpam === saidSpam) spamRight++;
  }
  const perCategory = categories.map((c) => {
    const n = pairs.filter((p) => p.truth === c).length;
    const right = pairs.filter((p) => p.truth === c && p.predicted === c).length;
    const said = pairs.filter((p) => p.predicted === c).length;
    return { category: c, n, correct: right, recall: n === 0 ? NaN : right / n, precision: said === 0 ? NaN : right / said };
  });
  const n = pairs.length;
  return {
    n,
    accuracy: n === 0 ? NaN : correct / n,
    spamAccuracy: n === 0 ? NaN : spamRight / n,
    spamPrecision: tp + fp === 0 ? NaN : tp / (tp + fp),
    spamRecall: tp + fn === 0 ? NaN : tp / (tp + fn),
    perCategory,
    confusion,
  };
}
