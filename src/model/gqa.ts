// Grouped-query attention of the dense relatives (Llama, Qwen2): per-head keys and values, fewer kv
// heads than query heads, rotate-half RoPE, optional q/k/v bias (Qwen2).
import type { RopeTable, Tensor, Weight } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { Segment } from './cache.js';
import type { ParamStore } from './params.js';

export class GQA {
  readonly H: number;
  readonly Hk: number;
  readonly hd: number;
  private readonly q: Weight;
  private readonly k: Weight;
  private readonly v: Weight;
  private readonly o: Weight;
  private readonly qb: Tensor | null;
  private readonly kb: Tensor | null;
  private readonly vb: Tensor | null;
  private readonly style = 'half' as const;

  constructor(p: ParamStore, prefix: string, cfg: ModelConfig, std: number, private readonly scale: number, bias: boolean) {
    const D = cfg.hidden_size;
    this.H = cfg.num_attention_heads;
    this.Hk = cfg.num_key_value_heads;
    this.hd = headDim(cfg);
    const normal = { kind: 'normal', std } as const;
    this.q = p.matrix(`${prefix}.q_proj.weight`, [this.H * this.hd, D], normal);
    this.k = p.matrix(`${prefix}.k_proj.weight`, [this.Hk * this.hd, D], normal);
    this.v = p.matrix(`${prefix}.v_proj.weight`, [this.Hk * this.hd, D], normal);
    this.o = p.matrix(`${prefix}.o_proj.weight`, [D, this.H * this.hd], normal);
    this.qb = bias ? p.create(`${prefix}.q_proj.bias`, [this.H * this.hd], { kind: 'zeros' }) : null;
    this.kb = bias ? p.create(`${prefix}.k_proj.bias`, [this.Hk * this.hd], { kind: 'zeros' }) : null;
    this.vb = bias ? p.create(`${prefix}.v_proj.bias`, [this.Hk * this.hd], { kind: 'zeros' }) : null;
  }

  private project(x: Tensor, table: RopeTable, lead: number[]): { q: Tensor; k: Tensor; v: Tensor } {
    return {
      q: T.rope(T.reshape(T.linear(x, this.q, this.qb), [...lead, this.H, this.hd]), table, this.style),
      k: T.rope(T.reshape(T.linear(x, this.k, this.kb), [...lead, this.Hk, this.hd]), table, this.style),
      v: T.reshape(T.linear(x, this.v, this.vb), [...lead, this.Hk, this.hd]),
    };
  }

  forward(x: Tensor, table: RopeTable): Tensor {
    const [B, Tn] = x.shape;
    const { q, k, v } = this.project(x, table, [B, Tn]);
    const o = T.attention(q, k, v, { scale: this.scale, causal: true });
    return T.linear(T.reshape(o, [B, Tn, this.H * this.hd]), this.o);
  }

  /** Rows x [M, D] of several sequences; projections run once over all rows, attention per sequence. */
  forwardCached(x: Tensor, segments: readonly Segment[], layer: number, table: RopeTable): Tensor {
    const [M, D] = x.shape;
    const { q, k, v } = this.project(T.reshape(x, [1, M, D]), table, [1, M]);
    const kw = this.Hk * this.hd, qw = this.H * this.hd;
    const out = T.empty([M, qw], x.dtype);
    for (const seg of segments) {
      const n = seg.length;
      const p0 = seg.cache.length, S = p0 + n;
      const keys = seg.cache.keys[layer], values = seg.cache.values[layer]!;
      keys.reserve(S, p0);
      values.reserve(S, p0);
      keys.data.set(k.data.subarray(seg.start * kw, (seg.start + n) * kw), p0 * kw);
      values.data.set(v.data.subarray(seg.start * kw, (seg.start + n) * kw), p0 * kw);
      const qs = T.Tensor.wrap(q.data.subarray(seg.start * qw, (seg.start + n) * qw), [1, n, this.H, this.hd]);
      const kAll = T.Tensor.wrap(keys.rows(S), [1, S, this.Hk, this.hd]);
      const vAll = T.Tensor.wrap(values.rows(S), [1, S, this.Hk, this.hd]);
      const o = T.attention(qs, kAll, vAll, { scale: this.scale, causal: true });
      out.data.set(o.data, seg.start * qw);
      o.dispose();
    }
    return T.linear(out, this.o);
  }
}

export function headDim(cfg: ModelConfig): number {
  return 'head_dim' in cfg && cfg.head_dim ? cfg.head_dim : cfg.hidden_size / cfg.num_attention_heads;
}
