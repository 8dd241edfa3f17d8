// What stage "distill" adds to the pretraining/SFT trainer: the teacher in this process, the choice
// of each step's batches (the SFT data's, or with probability λ the student's own samples of
// training problems: on-policy, as GKD and Qwen3's small models), and the step itself, which scores
// every reply token with the teacher's logits on the fly and minimises α·CE + (1 − α)·τ²·D.
// The choice and the problems are drawn from seeded RNGs whose states go into each checkpoint, so a
// resumed run takes the same batches and ends with the same weights.
import { loadModel, loadModelTokenizer } from '../../io/model-file.js';
import type { CausalLM } from '../../model/model.js';
import { sampleCompletions } from '../../infer/index.js';
import { renderPrompt, type Problem } from '../../tasks/index.js';
import * as T from '../../tensor/index.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import { Rng, type RngState } from '../../util/rng.js';
import type { DistillSpec, SftFormat } from '../config.js';
import { collateSft, type Stream } from '../data.js';
import { TaskProblemStream } from '../grpo/trainer.js';
import type { AdamW } from '../optim.js';
import { countTargets, type Batch, type StepOptions, type StepStats } from '../step.js';
import { distillLoss } from './loss.js';

/** The first difference between two tokenizers that would make their logits incomparable, or null. */
export function tokenizerDifference(teacher: Tokenizer, student: Tokenizer): string | null {
  if (teacher.vocabSize !== student.vocabSize) return `the teacher's vocabulary has ${teacher.vocabSize} tokens, the student's ${student.vocabSize}`;
  for (let id = 0; id < teacher.vocabSize; id++) {
    const a = teacher.idToToken(id), b = student.idToToken(id);
    if (a !== b) return `token ${id} is ${JSON.stringify(a)} in the teacher's vocabulary and ${JSON.stringify(b)} in the student's`;
  }
  // Equal vocabularies with different merges still split text differently (BPE tokenizers only).
  const merges = (t: Tokenizer) => (t as { mergePairs?: () => [string, string][] }).mergePairs?.() ?? [];
  const ma = merges(teacher), mb = merges(student);
  if (ma.length !== mb.length) return `the teacher's tokenizer has ${ma.length} merges, the student's ${mb.length}`;
  for (let i = 0; i < ma.length; i++) {
    if (ma[i][0] !== mb[i][0] || ma[i][1] !== mb[i][1]) return `merge ${i} is ${JSON.stringify(ma[i].join(' '))} in the teacher's tokenizer and ${JSON.stringify(mb[i].join(' '))} in the student's`;
  }
  return null;
}

export interface DistillStats extends StepStats {
  /** τ²·D on the reply tokens (mean over the micro-batches, by token share). */
  kd: number;
  onPolicy: boolean;
}

export class Distiller {
  private constructor(
    private readonly spec: DistillSpec,
    readonly teacher: CausalLM,
    private readonly format: SftFormat,
    private readonly policyRng: Rng,
    private readonly problems: Stream<Problem> | null,
  ) {}

  /**
   * Loads the teacher and checks it against the student: the same tokenizer (else logits over
   * different tokens would be compared) and the same number of logits.
   */
  static async open(spec: DistillSpec, student: CausalLM, tokenizer: Tokenizer, format: SftFormat, seed: number, rng: Record<string, RngState> | undefined, source: string): Promise<Distiller> {
    const teacherTokenizer = await loadModelTokenizer(spec.teacher);
    const diff = tokenizerDifference(teacherTokenizer, tokenizer);
    if (diff !== null) {
      throw new Error(
        `${source}: distill.teacher ${spec.teacher}: its tokenizer is not the student's (${diff}). Logit distillation compares the two models' ` +
          'next-token distributions over one vocabulary, so they must share a tokenizer: start the student from a checkpoint with the teacher\'s tokenizer ' +
          '(nanoseek init --tokenizer <teacher>), or distil across tokenizers at the sequence level (nanoseek distill traces, then nanoseek train sft)',
      );
    }
    const teacher = (await loadModel(spec.teacher, { weights: 'f32' })).model;
    if (teacher.config.vocab_size !== student.config.vocab_size) {
      throw new Error(`${source}: distill.teacher ${spec.teacher} has ${teacher.config.vocab_size} output logits, the student ${student.config.vocab_size}: they must be equal (one tokenizer, one vocabulary size)`);
    }
    const policyRng = new Rng(seed ^ 0x6b64);
    if (rng?.policy !== undefined) policyRng.setState(rng.policy);
    const problems = spec.tasks.length > 0 ? new TaskProblemStream(spec.tasks, seed ^ 0x70b1, rng?.problems === undefined ? undefined : { rng: rng.problems }) : null;
    return new Distiller(spec, teacher, format, policyRng, problems);
  }

  /** RNG states for the checkpoint. */
  rngState(): Record<string, RngState> {
    const out: Record<string, RngState> = { policy: this.policyRng.getState() };
    if (this.problems !== null) out.problems = (this.problems.state() as { rng: RngState }).rng;
    return out;
  }

  /**
   * The next step's micro-batches: `offPolicy()` ones from the SFT data, or (with probability λ) the
   * student's own samples of `count` training problems, collated the same way.
   */
  async nextBatches(student: CausalLM, tokenizer: Tokenizer, grad: { accum: number; batch: number; seqLen: number; padId: number }, offPolicy: () => Batch): Promise<{ micro: Batch[]; onPolicy: boolean }> {
    const onPolicy = this.spec.lambda > 0 && this.policyRng.next() < this.spec.lambda;
    if (!onPolicy) return { micro: Array.from({ length: grad.accum }, offPolicy), onPolicy };
    const n = grad.accum * grad.batch;
    const problems = Array.from({ length: n }, () => this.problems!.next()!);
    const prompts = problems.map((p) => renderPrompt(tokenizer, p, this.format === 'r1' ? 'r1' : 'r1-zero', false).ids);
    const done = await sampleCompletions(student, tokenizer, prompts, {
      samples: 1,
      maxNewTokens: this.spec.max_new_tokens,
      temperature: this.spec.sample_temperature,
      topP: this.spec.top_p,
      seed: this.policyRng.int(0, 2 ** 48),
    });
    const examples = done.map((c) => ({ tokens: [...prompts[c.promptIndex], ...c.tokens], promptLength: prompts[c.promptIndex].length }));
    const micro: Batch[] = [];
    for (let i = 0; i < n; i += grad.batch) micro.push(collateSft(examples.slice(i, i + grad.batch), grad.seqLen, grad.padId));
    return { micro, onPolicy };
  }

  /**
   * One optimizer step: per micro-batch, the teacher's logits (no gradients) and the student's on
   * the reply rows, the distillation loss, backward weighted by the micro-batch's share of reply
   * tokens; then AdamW and the MoE bias rule, as trainStep. On-policy batches use the divergence
   * alone (α = 0): cross-entropy on the student's own samples would teach it to repeat itself.
   */
  step(student: CausalLM, opt: AdamW, micro: readonly Batch[], onPolicy: boolean, o: StepOptions): DistillStats {
    const counts = micro.map((b) => countTargets(b));
    const tokens = counts.reduce((s, n) => s + n, 0);
    if (tokens === 0) throw new Error('distill: no micro-batch has a reply token');
    const alpha = onPolicy ? 0 : this.spec.alpha;
    opt.zeroGrad();
    let loss = 0, ce = 0, kd = 0;
    micro.forEach((b, i) => {
      const w = counts[i] / tokens;
      if (w === 0) return;
      const rows: number[] = [];
      const targets: number[] = [];
      for (let r = 0; r < b.targets.length; r++) {
        if (b.targets[r] === T.IGNORE_INDEX) continue;
        rows.push(r);
        targets.push(b.targets[r]);
      }
      const teacherRows = T.noGrad(() => T.tidy(() => Float32Array.from(T.gatherRows(this.teacher.forward(b.ids, b.B, b.T).logits, rows).data)));
      const r = T.tidy(() => {
        const logits = T.gatherRows(student.forward(b.ids, b.B, b.T).logits, rows);
        const out = distillLoss(logits, teacherRows, targets, { alpha, divergence: this.spec.divergence, beta: this.spec.beta, temperature: this.spec.temperature });
        const value = out.loss.item();
        if (!Number.isFinite(value)) throw new Error(`distill: loss is ${value}`);
        T.backward(out.loss, w);
        return { value, ce: out.ce, kd: out.kd };
      });
      loss += r.value * w;
      ce += r.ce * w;
      kd += r.kd * w;
    });
    const gradNorm = opt.update(o.lr);
    const expertLoad = student.moeLayers().map((m) => {
      const load = Array.from(m.pendingLoad);
      m.updateBias(o.biasUpdateSpeed ?? 0);
      return load;
    });
    return { loss, ce, mtpCe: null, balance: null, gradNorm, tokens, expertLoad, kd, onPolicy };
  }
}
