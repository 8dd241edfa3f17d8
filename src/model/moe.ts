// DeepSeekMoE: always-on shared experts plus fine-grained routed experts chosen per token.
//
// Router (V3): s = σ(x·Gᵀ). Experts are SELECTED on s + b, where b (e_score_correction_bias) is nudged
// after every optimizer step towards balanced load (auxiliary-loss-free balancing), but the gate WEIGHTS
// are the raw s of the chosen experts (normalised over the top-k, times routed_scaling_factor), so the
// bias steers traffic without distorting the output. Selection can be group-limited: only experts in
// the best `topk_group` of `n_group` groups are eligible.
import type { Tensor } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import type { DeepseekV3Config } from './config.js';
import { SwiGLU } from './mlp.js';
import type { ParamStore } from './params.js';

export interface MoEForward {
  out: Tensor;
  /** The complementary sequence-wise balance loss α·Σ f_i·P_i (only when asked for and α > 0). */
  balanceLoss: Tensor | null;
  /** Chosen experts, [N·K] row-major. */
  indices: Int32Array;
  /** Their gate weights [N, K] (raw scores, normalised over the top-k, times routed_scaling_factor). */
  weights: Tensor;
}

/**
 * Runs a layer's routed experts somewhere other than in place: expert parallelism (src/experts) spreads
 * them over devices. Called only while gradients are off (inference).
 */
export interface ExpertRunner {
  /**
   * x [M, D]: the batch's routed rows grouped by expert (counts[e] rows for expert e, experts in index
   * order, each token's rows in token order). Returns the experts' outputs [M, D], row for row.
   */
  run(moe: MoE, x: Tensor, counts: Int32Array): Tensor;
}

/** Told of every routing decision: counts[e] rows went to expert e, from `tokens` tokens. */
export type RouteObserver = (moe: MoE, counts: Int32Array, tokens: number) => void;

export class MoE {
  readonly E: number;
  readonly K: number;
  readonly gate: Tensor;
  /** e_score_correction_bias: state, not a trained parameter (null without noaux_tc). */
  readonly bias: Tensor | null;
  readonly experts: SwiGLU[];
  readonly shared: SwiGLU | null;
  /** Tokens routed to each expert since the last bias update (training forwards only). */
  readonly pendingLoad: Float64Array;
  /** Tokens routed to each expert in the most recent forward. */
  readonly lastLoad: Float64Array;
  /** Where the routed experts run when gradients are off (null: here, expert by expert). */
  runner: ExpertRunner | null = null;
  /** Sees every forward's routing (load recording). */
  observer: RouteObserver | null = null;

  constructor(p: ParamStore, prefix: string, private readonly cfg: DeepseekV3Config, std: number) {
    const D = cfg.hidden_size;
    this.E = cfg.n_routed_experts;
    this.K = cfg.num_experts_per_tok;
    this.gate = p.create(`${prefix}.gate.weight`, [this.E, D], { kind: 'normal', std });
    this.bias = cfg.topk_method === 'noaux_tc' ? p.create(`${prefix}.gate.e_score_correction_bias`, [this.E], { kind: 'zeros' }, false) : null;
    this.experts = Array.from({ length: this.E }, (_, e) => new SwiGLU(p, `${prefix}.experts.${e}`, D, cfg.moe_intermediate_size, std));
    this.shared = cfg.n_shared_experts > 0 ? new SwiGLU(p, `${prefix}.shared_experts`, D, cfg.n_shared_experts * cfg.moe_intermediate_size, std) : null;
    this.pendingLoad = new Float64Array(this.E);
    this.lastLoad = new Float64Array(this.E);
  }

  /** Router scores [N, E]: sigmoid (V3) or softmax (V2) of the gate logits. */
  scores(x: Tensor): Tensor {
    const logits = T.linear(x, this.gate);
    return this.cfg.scoring_func === 'softmax' ? T.softmax(logits) : T.sigmoid(logits);
  }

  /** Chooses K experts per row from scores [N, E]: biased, group-limited top-k. Returns [N·K] indices. */
  select(scores: ArrayLike<number>, N: number): Int32Array {
    const { E, K } = this;
    const groups = this.cfg.n_group ?? 1;
    const keepGroups = this.cfg.topk_group ?? groups;
    const b = this.bias?.data;
    const choice = new Float64Array(N * E);
    for (let i = 0; i < N * E; i++) choice[i] = scores[i] + (b ? b[i % E] : 0);
    // 'greedy' is plain top-k over all experts; the other methods first keep the best groups.
    if (this.cfg.topk_method !== 'greedy' && groups > 1 && keepGroups < groups) {
      const per = E / groups;
      const groupScore = new Float64Array(N * groups);
      for (let n = 0; n < N; n++) {
        for (let g = 0; g < groups; g++) {
          // With the bias (noaux_tc) a group is as good as its two best experts; otherwise its best one.
          const top = T.topk(choice.subarray(n * E + g * per, n * E + (g + 1) * per), 1, per, b && per >= 2 ? 2 : 1);
          groupScore[n * groups + g] = top.values.reduce((s, v) => s + v, 0);
        }
      }
      const best = T.topk(groupScore, N, groups, keepGroups).indices;
      for (let n = 0; n < N; n++) {
        const keep = new Uint8Array(groups);
        for (let j = 0; j < keepGroups; j++) keep[best[n * keepGroups + j]] = 1;
        for (let e = 0; e < E; e++) if (!keep[Math.floor(e / per)]) choice[n * E + e] = -Infinity;
      }
    }
    return T.topk(choice, N, E, K).indices;
  }

  /**
   * x [N, D] → [N, D]. `sequences` (B sequences of T rows each, in order) enables the balance loss,
   * which is computed per sequence as in DeepSeek-V3.
   */
  forward(x: Tensor, balance?: { B: number; T: number; alpha: number }): MoEForward {
    const { E, K } = this;
    const N = x.shape[0];
    const scores = this.scores(x);
    const idx = this.select(scores.data, N);
    let weights = T.gatherCols(scores, idx, K);
    if (this.cfg.norm_topk_prob && K > 1) weights = T.normalizeRows(weights);
    const scaling = this.cfg.routed_scaling_factor ?? 1;
    if (scaling !== 1) weights = T.scale(weights, scaling);

    // Group the (token, slot) pairs by expert so each expert runs one GEMM over all its tokens.
    const counts = new Int32Array(E);
    for (let i = 0; i < N * K; i++) counts[idx[i]]++;
    const starts = new Int32Array(E + 1);
    for (let e = 0; e < E; e++) starts[e + 1] = starts[e] + counts[e];
    const fill = starts.slice(0, E);
    const slotOf = new Int32Array(N * K); // position in expert order → flat (token, slot)
    const tokenOf = new Int32Array(N * K);
    for (let i = 0; i < N * K; i++) {
      const at = fill[idx[i]]++;
      slotOf[at] = i;
      tokenOf[at] = Math.floor(i / K);
    }
    this.lastLoad.set(counts);
    if (T.isGradEnabled()) for (let e = 0; e < E; e++) this.pendingLoad[e] += counts[e];
    this.observer?.(this, counts, N);

    const routedIn = T.gatherRows(x, tokenOf);
    let stacked: Tensor;
    if (this.runner !== null && !T.isGradEnabled()) {
      stacked = this.runner.run(this, routedIn, counts);
    } else {
      const active = [...counts.keys()].filter((e) => counts[e] > 0);
      const pieces = T.split(routedIn, active.map((e) => counts[e]), 0);
      const expertOut = active.map((e, j) => this.experts[e].forward(pieces[j]));
      stacked = expertOut.length === 1 ? expertOut[0] : T.concat(expertOut, 0);
    }
    const w = T.reshape(T.gatherRows(T.reshape(weights, [N * K, 1]), slotOf), [N * K]);
    let out = T.scatterAddRows(stacked, tokenOf, N, w);
    if (this.shared !== null) out = T.add(out, this.shared.forward(x));

    let balanceLoss: Tensor | null = null;
    if (balance !== undefined && balance.alpha > 0) balanceLoss = this.sequenceBalanceLoss(scores, idx, balance);
    return { out, balanceLoss, indices: idx, weights };
  }

  /** α·Σ_i f_i·P_i per sequence, averaged over sequences; f counts top-k hits, P averages normalised scores. */
  private sequenceBalanceLoss(scores: Tensor, idx: Int32Array, { B, T: Tn, alpha }: { B: number; T: number; alpha: number }): Tensor {
    const { E, K } = this;
    const f = new Float64Array(B * E);
    for (let i = 0; i < idx.length; i++) {
      const b = Math.floor(Math.floor(i / K) / Tn);
      f[b * E + idx[i]] += E / (K * Tn);
    }
    const normalised = this.cfg.scoring_func === 'softmax' ? scores : T.normalizeRows(scores);
    const P = T.mean(T.reshape(normalised, [B, Tn, E]), 1); // [B, E]
    const fT = T.fromArray(f, [B, E], scores.dtype);
    return T.scale(T.sum(T.mul(P, fT)), alpha / B);
  }

  /** b_i ← b_i + γ·sign(mean load − load_i) over the tokens seen since the last call. Returns max/mean load. */
  updateBias(gamma: number): number {
    const load = this.pendingLoad;
    const total = load.reduce((s, v) => s + v, 0);
    const mean = total / this.E;
    const imbalance = mean > 0 ? Math.max(...load) / mean : 0;
    if (this.bias !== null && total > 0) {
      const b = this.bias.data;
      for (let e = 0; e < this.E; e++) b[e] += gamma * Math.sign(mean - load[e]);
    }
    load.fill(0);
    return imbalance;
  }
}
