// The classical baseline the shipped model is measured against: multinomial naive Bayes over word
// counts (Laplace smoothing, log space), trained on the same split and the same labels, reading the
// same prompt text the model reads.

const WORD = /[\p{L}\p{N}][\p{L}\p{N}'._@-]{0,30}/gu;

export function tokenizeWords(text: string): string[] {
  return (text.toLowerCase().match(WORD) ?? []).slice(0, 2000);
}

export class NaiveBayes {
  private readonly docs = new Map<string, number>();
  private readonly words = new Map<string, Map<string, number>>();
  private readonly totals = new Map<string, number>();
  private readonly vocab = new Set<string>();
  private n = 0;

  train(text: string, label: string): void {
    this.n++;
    this.docs.set(label, (this.docs.get(label) ?? 0) + 1);
    let w = this.words.get(label);
    if (w === undefined) this.words.set(label, (w = new Map()));
    for (const t of tokenizeWords(text)) {
      w.set(t, (w.get(t) ?? 0) + 1);
      this.totals.set(label, (this.totals.get(label) ?? 0) + 1);
      this.vocab.add(t);
    }
  }

  predict(text: string): string {
    const tokens = tokenizeWords(text);
    const V = this.vocab.size;
    let best = '';
    let bestScore = -Infinity;
    for (const [label, count] of this.docs) {
      const w = this.words.get(label)!;
      const total = this.totals.get(label) ?? 0;
      let s = Math.log(count / this.n);
      for (const t of tokens) s += Math.log(((w.get(t) ?? 0) + 1) / (total + V));
      if (s > bestScore) {
        bestScore = s;
        best = label;
      }
    }
    return best;
  }
}
