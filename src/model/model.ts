// The causal language model: DeepSeek-V3 (MLA + DeepSeekMoE + optional MTP) and its dense relatives
// (Llama, Qwen2), one class, chosen by config.json. Parameters carry Hugging Face names.
import type { RopeTable, Tensor, DType, Weight } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import { IGNORE_INDEX } from '../tensor/index.js';
import { KVCache, type Segment } from './cache.js';
import { isMoeLayer, type DeepseekV3Config, type ModelConfig, type YarnRopeScaling } from './config.js';
import { GQA, headDim } from './gqa.js';
import { MLA } from './mla.js';
import { SwiGLU } from './mlp.js';
import { MoE } from './moe.js';
import { ParamStore, type TrainableParam } from './params.js';
import { inverseFrequencies, positionTable, yarnMscale } from './rope.js';
import type { WeightMode, WeightSource } from './weights.js';

export function isDeepseek(cfg: ModelConfig): cfg is DeepseekV3Config {
  return cfg.model_type === 'deepseek_v3';
}

/** One pre-norm decoder block: h = x + Attn(RMSNorm(x)); out = h + FFN(RMSNorm(h)). */
class DecoderLayer {
  readonly inputNorm: Tensor;
  readonly postNorm: Tensor;
  readonly attn: MLA | GQA;
  readonly mlp: SwiGLU | MoE;

  constructor(p: ParamStore, prefix: string, cfg: ModelConfig, useMoE: boolean, std: number, scale: number) {
    this.inputNorm = p.create(`${prefix}.input_layernorm.weight`, [cfg.hidden_size], { kind: 'ones' });
    this.attn = isDeepseek(cfg)
      ? new MLA(p, `${prefix}.self_attn`, cfg, std, scale)
      : new GQA(p, `${prefix}.self_attn`, cfg, std, scale, cfg.model_type === 'qwen2');
    this.postNorm = p.create(`${prefix}.post_attention_layernorm.weight`, [cfg.hidden_size], { kind: 'ones' });
    this.mlp = useMoE && isDeepseek(cfg) ? new MoE(p, `${prefix}.mlp`, cfg, std) : new SwiGLU(p, `${prefix}.mlp`, cfg.hidden_size, cfg.intermediate_size, std);
  }

  forward(x: Tensor, table: RopeTable, eps: number, alpha: number): { out: Tensor; balanceLoss: Tensor | null } {
    const [B, Tn, D] = x.shape;
    const h = T.add(x, this.attn.forward(T.rmsnorm(x, this.inputNorm, eps), table));
    const normed = T.reshape(T.rmsnorm(h, this.postNorm, eps), [B * Tn, D]);
    if (this.mlp instanceof MoE) {
      const r = this.mlp.forward(normed, alpha > 0 ? { B, T: Tn, alpha } : undefined);
      return { out: T.add(h, T.reshape(r.out, [B, Tn, D])), balanceLoss: r.balanceLoss };
    }
    return { out: T.add(h, T.reshape(this.mlp.forward(normed), [B, Tn, D])), balanceLoss: null };
  }

  forwardCached(x: Tensor, segments: readonly Segment[], layer: number, eps: number, table: RopeTable): Tensor {
    const h = T.add(x, this.attn.forwardCached(T.rmsnorm(x, this.inputNorm, eps), segments, layer, table));
    const normed = T.rmsnorm(h, this.postNorm, eps);
    return T.add(h, this.mlp instanceof MoE ? this.mlp.forward(normed).out : this.mlp.forward(normed));
  }
}

/** DeepSeek-V3's multi-token prediction module (depth 1): predicts token t+2 from h_t and token t+1. */
class MTPModule {
  readonly enorm: Tensor;
  readonly hnorm: Tensor;
  readonly ehProj: Tensor;
  readonly block: DecoderLayer;
  readonly norm: Tensor;
  readonly head: Tensor;

  constructor(p: ParamStore, prefix: string, cfg: DeepseekV3Config, std: number, scale: number) {
    const D = cfg.hidden_size;
    this.enorm = p.create(`${prefix}.enorm.weight`, [D], { kind: 'ones' });
    this.hnorm = p.create(`${prefix}.hnorm.weight`, [D], { kind: 'ones' });
    this.ehProj = p.create(`${prefix}.eh_proj.weight`, [D, 2 * D], { kind: 'normal', std });
    this.block = new DecoderLayer(p, prefix, cfg, isMoeLayer(cfg, cfg.num_hidden_layers), std, scale);
    this.norm = p.create(`${prefix}.shared_head.norm.weight`, [D], { kind: 'ones' });
    this.head = p.create(`${prefix}.shared_head.head.weight`, [cfg.vocab_size, D], { kind: 'normal', std });
  }
}

export interface ForwardOptions {
  /** Also run the MTP module (needs `targets`: its input at position t is the token at t+1). */
  mtpTargets?: ArrayLike<number>;
  /** Weight α of the sequence-wise balance loss (0 = off). */
  balanceAlpha?: number;
}

export interface ForwardResult {
  /** [B·T, V] */
  logits: Tensor;
  /** [B·T, V] when MTP ran. */
  mtpLogits: Tensor | null;
  /** Summed over MoE layers, when asked for. */
  balanceLoss: Tensor | null;
}

export interface LossResult {
  loss: Tensor;
  ce: number;
  mtpCe: number | null;
  balance: number | null;
}

export interface ModelOptions {
  dtype?: DType;
  /** Seed of the random initialisation (ignored with a source). */
  seed?: number;
  /** Read every weight from here instead of initialising it. */
  source?: WeightSource;
  /** How loaded weights are held (default 'f32'); 'packed' needs a source. */
  weights?: WeightMode;
}

export class CausalLM {
  readonly params: ParamStore;
  readonly embed: Weight;
  readonly layers: DecoderLayer[];
  readonly norm: Tensor;
  readonly lmHead: Weight;
  readonly mtp: MTPModule | null;
  readonly dtype: DType;
  private readonly invFreq: Float64Array;
  private readonly yarn: YarnRopeScaling | null;

  constructor(readonly config: ModelConfig, opts: ModelOptions = {}) {
    const cfg = config;
    this.dtype = opts.dtype ?? 'f32';
    const p = (this.params = new ParamStore(this.dtype, opts.seed ?? 0, opts.source ?? null, opts.weights ?? 'f32'));
    const std = cfg.initializer_range ?? 0.02;
    const ds = isDeepseek(cfg);
    this.yarn = yarnOf(cfg);
    const ropeDim = ds ? cfg.qk_rope_head_dim : headDim(cfg);
    this.invFreq = inverseFrequencies(ropeDim, cfg.rope_theta, cfg.rope_scaling);
    let scale = ds ? 1 / Math.sqrt(cfg.qk_nope_head_dim + cfg.qk_rope_head_dim) : 1 / Math.sqrt(headDim(cfg));
    if (ds && this.yarn !== null && this.yarn.mscale_all_dim) {
      const m = yarnMscale(this.yarn.factor, this.yarn.mscale_all_dim);
      scale *= m * m;
    }
    this.embed = p.matrix('model.embed_tokens.weight', [cfg.vocab_size, cfg.hidden_size], { kind: 'normal', std });
    this.layers = [];
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      this.layers.push(new DecoderLayer(p, `model.layers.${i}`, cfg, isMoeLayer(cfg, i), std, scale));
    }
    this.norm = p.create('model.norm.weight', [cfg.hidden_size], { kind: 'ones' });
    this.lmHead = cfg.tie_word_embeddings ? this.embed : p.matrix('lm_head.weight', [cfg.vocab_size, cfg.hidden_size], { kind: 'normal', std });
    this.mtp = ds && (cfg.num_nextn_predict_layers ?? 0) > 0 ? new MTPModule(p, `model.layers.${cfg.num_hidden_layers}`, cfg, std, scale) : null;
  }

  /**
   * Checkpoint names that are copies of another tensor of ours: DeepSeek-V3 files store the MTP
   * module's (shared) embedding again under its own layer prefix.
   */
  aliases(): Map<string, string> {
    const m = new Map<string, string>();
    if (this.mtp !== null) m.set(`model.layers.${this.config.num_hidden_layers}.embed_tokens.weight`, 'model.embed_tokens.weight');
    return m;
  }

  /** The MoE layers, the MTP block's included (for load statistics and the bias update). */
  moeLayers(): MoE[] {
    const blocks = this.mtp === null ? this.layers : [...this.layers, this.mtp.block];
    return blocks.map((l) => l.mlp).filter((m): m is MoE => m instanceof MoE);
  }

  /** The decoder-layer index of each of moeLayers() (the MTP block counts as layer num_hidden_layers). */
  moeLayerIds(): number[] {
    const ids = this.layers.flatMap((l, i) => (l.mlp instanceof MoE ? [i] : []));
    if (this.mtp !== null && this.mtp.block.mlp instanceof MoE) ids.push(this.config.num_hidden_layers);
    return ids;
  }

  /** Trainable parameters with their weight-decay flag (matrices decay; norms, biases, embeddings don't). */
  trainableParams(): TrainableParam[] {
    return this.params.trainable().map((t) => ({ tensor: t, decay: t.rank === 2 && t !== this.embed }));
  }

  table(positions: ArrayLike<number>): RopeTable {
    return positionTable(positions, this.invFreq, this.yarn);
  }

  private checkIds(ids: ArrayLike<number>): void {
    T.checkIndices('model input', ids, this.config.vocab_size);
  }

  /** Full-sequence forward (training, scoring): ids [B·T] row-major → logits [B·T, V]. */
  forward(ids: ArrayLike<number>, B: number, Tn: number, opts: ForwardOptions = {}): ForwardResult {
    const cfg = this.config;
    if (ids.length !== B * Tn) throw new Error(`model.forward: ${ids.length} ids do not form a [${B}, ${Tn}] batch`);
    if (Tn > cfg.max_position_embeddings) throw new Error(`model.forward: sequence length ${Tn} exceeds max_position_embeddings ${cfg.max_position_embeddings}`);
    this.checkIds(ids);
    const eps = cfg.rms_norm_eps;
    const table = this.table(range(Tn));
    const alpha = opts.balanceAlpha ?? 0;
    let x = T.reshape(T.embedding(this.embed, ids), [B, Tn, cfg.hidden_size]);
    let balanceLoss: Tensor | null = null;
    const addBalance = (l: Tensor | null): void => {
      if (l !== null) balanceLoss = balanceLoss === null ? l : T.add(balanceLoss, l);
    };
    for (const layer of this.layers) {
      const r = layer.forward(x, table, eps, alpha);
      x = r.out;
      addBalance(r.balanceLoss);
    }
    const logits = T.linear(T.reshape(T.rmsnorm(x, this.norm, eps), [B * Tn, cfg.hidden_size]), this.lmHead);
    let mtpLogits: Tensor | null = null;
    if (this.mtp !== null && opts.mtpTargets !== undefined) {
      const m = this.mtp;
      const next = Array.from(opts.mtpTargets, (t) => (t >= 0 ? t : 0));
      this.checkIds(next);
      const e = T.reshape(T.embedding(this.embed, next), [B, Tn, cfg.hidden_size]);
      const h = T.linear(T.concat([T.rmsnorm(e, m.enorm, eps), T.rmsnorm(x, m.hnorm, eps)], -1), m.ehProj);
      const r = m.block.forward(h, table, eps, alpha);
      addBalance(r.balanceLoss);
      mtpLogits = T.linear(T.reshape(T.rmsnorm(r.out, m.norm, eps), [B * Tn, cfg.hidden_size]), m.head);
    }
    return { logits, mtpLogits, balanceLoss };
  }

  /**
   * Next-token loss over a batch: cross-entropy on `targets` (IGNORE_INDEX rows skipped), plus
   * mtpWeight × the MTP loss on the token after next, plus the balance loss.
   */
  loss(ids: ArrayLike<number>, targets: ArrayLike<number>, B: number, Tn: number, opts: { mtpWeight?: number; balanceAlpha?: number } = {}): LossResult {
    const mtpWeight = opts.mtpWeight ?? 0;
    const useMtp = this.mtp !== null && mtpWeight > 0;
    const r = this.forward(ids, B, Tn, { mtpTargets: useMtp ? targets : undefined, balanceAlpha: opts.balanceAlpha });
    const ce = T.crossEntropy(r.logits, targets);
    let loss = ce;
    let mtpCe: number | null = null;
    if (r.mtpLogits !== null) {
      const shifted = new Int32Array(B * Tn).fill(IGNORE_INDEX);
      for (let b = 0; b < B; b++) for (let t = 0; t + 1 < Tn; t++) shifted[b * Tn + t] = targets[b * Tn + t + 1];
      const m = T.crossEntropy(r.mtpLogits, shifted);
      mtpCe = m.item();
      loss = T.add(loss, T.scale(m, mtpWeight));
    }
    let balance: number | null = null;
    if (r.balanceLoss !== null) {
      balance = r.balanceLoss.item();
      loss = T.add(loss, r.balanceLoss);
    }
    return { loss, ce: ce.item(), mtpCe, balance };
  }

  /** An empty KV cache with room for `capacity` tokens (it grows past them by doubling). */
  newCache(capacity?: number): KVCache {
    const cfg = this.config;
    if (isDeepseek(cfg)) return new KVCache(cfg.num_hidden_layers, cfg.kv_lora_rank + cfg.qk_rope_head_dim, 0, this.dtype, capacity);
    const w = cfg.num_key_value_heads * headDim(cfg);
    return new KVCache(cfg.num_hidden_layers, w, w, this.dtype, capacity);
  }

  /**
   * Incremental forward for several sequences at once (prefill chunks and decode steps alike): each
   * entry's new tokens attend to its cache, which is extended. Projections and experts run batched over
   * all rows. Returns logits [Σ new tokens, V] (allPositions) or one row per sequence (its last token).
   */
  forwardCached(seqs: readonly { ids: ArrayLike<number>; cache: KVCache }[], allPositions = false): Tensor {
    const cfg = this.config;
    const eps = cfg.rms_norm_eps;
    const flat: number[] = [];
    const positions: number[] = [];
    const segments: Segment[] = [];
    for (const s of seqs) {
      if (s.ids.length === 0) throw new Error('model.forwardCached: a sequence has no new tokens');
      const p0 = s.cache.length;
      if (p0 + s.ids.length > cfg.max_position_embeddings) {
        throw new Error(`model.forwardCached: position ${p0 + s.ids.length} exceeds max_position_embeddings ${cfg.max_position_embeddings}`);
      }
      segments.push({ start: flat.length, length: s.ids.length, cache: s.cache });
      for (let i = 0; i < s.ids.length; i++) {
        flat.push(s.ids[i]);
        positions.push(p0 + i);
      }
    }
    this.checkIds(flat);
    const table = this.table(positions);
    let x = T.embedding(this.embed, flat);
    // Without a tape a layer's intermediates are dead once it returns, so each layer frees its own,
    // and its input too: a 256-token prefill of a 1.5B model then holds one layer's activations and
    // one residual stream, not all 28 of either (1.3 GB, then 100 MB of float32 heap at the peak;
    // now 59 MB).
    const tape = T.isGradEnabled();
    this.layers.forEach((layer, i) => {
      if (tape) {
        x = layer.forwardCached(x, segments, i, eps, table);
      } else {
        const next = T.tidy(() => layer.forwardCached(x, segments, i, eps, table));
        x.dispose();
        x = next;
      }
    });
    for (const s of seqs) s.cache.length += s.ids.length;
    const rows = allPositions ? x : T.gatherRows(x, segments.map((s) => s.start + s.length - 1));
    return T.linear(T.rmsnorm(rows, this.norm, eps), this.lmHead);
  }

  /** Sets every router correction bias (and MoE load counter) back to zero. */
  resetRouterState(): void {
    for (const m of this.moeLayers()) {
      m.bias?.data.fill(0);
      m.pendingLoad.fill(0);
    }
  }
}

/** YaRN's scaling, which also changes the rotation's magnitude and the softmax scale (else null). */
function yarnOf(cfg: ModelConfig): YarnRopeScaling | null {
  const r = cfg.rope_scaling;
  return r !== null && r !== undefined && r.rope_type === 'yarn' ? r : null;
}

export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
