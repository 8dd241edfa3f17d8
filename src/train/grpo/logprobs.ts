// Teacher-forced log-probabilities of sampled completions for GRPO (the rollouts themselves come from
// infer/rollout.ts, their prompts from tasks/prompt.ts). Recomputation runs full-sequence forwards in
// micro-batches whose shapes come from a small fixed set: the tensor heap keeps freed buffers per
// exact size, so every new batch shape would reserve its own activations for the rest of the run.
import type { CausalLM } from '../../model/model.js';
import * as T from '../../tensor/index.js';

/** A prompt and its completion, as token ids. */
export interface Sequence {
  prompt: readonly number[];
  completion: readonly number[];
}

export interface MicroBatch {
  /** Indices into the sequence list, longest first. */
  members: number[];
  /** Rows of the batch; rows past members.length are padding. */
  B: number;
  T: number;
}

const ALIGN = 32;

/**
 * Groups sequences into micro-batches of about `tokens` positions: sorted longest first, each batch
 * takes T = a multiple of 32 that divides `tokens` and holds its longest sequence, and B = tokens / T
 * rows. The last batch shrinks by halving B while its sequences still fit. So B·T is `tokens` or
 * `tokens`/2^k, whatever the lengths: a handful of buffer sizes for the whole run.
 */
export function planMicroBatches(seqs: readonly Sequence[], tokens: number): MicroBatch[] {
  if (!Number.isSafeInteger(tokens) || tokens < ALIGN || tokens % ALIGN !== 0) throw new Error(`micro-batch size: ${tokens} tokens must be a positive multiple of ${ALIGN}`);
  const order = seqs.map((s, i) => ({ i, n: s.prompt.length + s.completion.length - 1 })).sort((a, b) => b.n - a.n || a.i - b.i);
  const out: MicroBatch[] = [];
  let at = 0;
  while (at < order.length) {
    const need = Math.max(1, order[at].n);
    let T = Math.ceil(need / ALIGN) * ALIGN;
    while (T <= tokens && tokens % T !== 0) T += ALIGN;
    if (T > tokens) throw new Error(`a sequence of ${need + 1} tokens does not fit a micro-batch of ${tokens} tokens; raise micro_tokens`);
    let B = tokens / T;
    const left = order.length - at;
    while (B % 2 === 0 && B / 2 >= left) B /= 2;
    const members = order.slice(at, at + B).map((o) => o.i);
    out.push({ members, B, T });
    at += members.length;
  }
  return out;
}

/** The [B, T] inputs of a micro-batch and, per member, the rows whose logits predict its completion. */
export function batchInputs(seqs: readonly Sequence[], mb: MicroBatch, padId: number): { ids: Int32Array; rows: number[]; targets: number[] } {
  const ids = new Int32Array(mb.B * mb.T).fill(padId);
  const rows: number[] = [];
  const targets: number[] = [];
  mb.members.forEach((s, b) => {
    const { prompt, completion } = seqs[s];
    const full = [...prompt, ...completion];
    for (let t = 0; t < full.length - 1; t++) ids[b * mb.T + t] = full[t];
    for (let j = 0; j < completion.length; j++) {
      rows.push(b * mb.T + prompt.length - 1 + j);
      targets.push(completion[j]);
    }
  });
  return { ids, rows, targets };
}

/** log π(completion token) for the members of one micro-batch, concatenated in member order: [N]. */
export function microBatchLogProbs(model: CausalLM, seqs: readonly Sequence[], mb: MicroBatch, padId: number): T.Tensor {
  const { ids, rows, targets } = batchInputs(seqs, mb, padId);
  const { logits } = model.forward(ids, mb.B, mb.T);
  return T.tokenLogProbs(T.gatherRows(logits, rows), targets);
}

/** Teacher-forced log-probs of every completion token (no gradients), per sequence. */
export function sequenceLogProbs(model: CausalLM, seqs: readonly Sequence[], padId: number, microTokens: number): Float64Array[] {
  const out: Float64Array[] = seqs.map((s) => new Float64Array(s.completion.length));
  T.noGrad(() => {
    for (const mb of planMicroBatches(seqs, microTokens)) {
      T.tidy(() => {
        const lp = microBatchLogProbs(model, seqs, mb, padId).data;
        let at = 0;
        for (const s of mb.members) {
          out[s].set(lp.subarray(at, at + seqs[s].completion.length));
          at += seqs[s].completion.length;
        }
      });
    }
  });
  return out;
}
