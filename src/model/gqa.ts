// Grouped-query attention of the dense relatives (Llama, Qwen2): per-head keys and values, fewer kv
// heads than query heads, rotate-half RoPE, optional q/k/v bias (Qwen2).
import type { RopeTable, Tensor } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { Segment } from './cache.js';
import { rowRange } from './mla.js';
import type { ParamStore } from './params.js';

export class GQA {
  readonly H: number;
  readonly Hk: number;
  readonly hd: number;
  private readonly q: Tensor;
  private readonly k: Tensor;
  private readonly v: Tensor;
  private readonly o: Tensor;
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
    this.q = p.create(`${prefix}.q_proj.weight`, [this.H * this.hd, D], normal);
    this.k = p.create(`${prefix}.k_proj.weight`, [this.Hk * this.hd, D], normal);
    this.v = p.create(`${prefix}.v_proj.weight`, [this.Hk * this.hd, D], normal);
    this.o = p.create(`${prefix}.o_proj.weight`, [D, this.H * this.hd], normal);
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

  forwardCached(x: Tensor, segments: readonly Segment[], layer: number): Tensor {
    const outs: Tensor[] = [];
    const kw = this.Hk * this.hd;
    for (const seg of segments) {
      const n = seg.length;
      const xs = T.reshape(T.gatherRows(x, rowRange(seg.start, n)), [1, n, x.shape[1]]);
      const { q, k, v } = this.project(xs, seg.table, [1, n]);
      const p0 = seg.cache.length, S = p0 + n;
      const keys = seg.cache.keys[layer], values = seg.cache.values[layer]!;
      keys.reserve(S, p0);
      values.reserve(S, p0);
      keys.data.set(k.data, p0 * kw);
      values.data.set(v.data, p0 * kw);
      const kAll = T.Tensor.wrap(keys.rows(S), [1, S, this.Hk, this.hd]);
      const vAll = T.Tensor.wrap(values.rows(S), [1, S, this.Hk, this.hd]);
      outs.push(T.reshape(T.attention(q, kAll, vAll, { scale: this.scale, causal: true }), [n, this.H * this.hd]));
    }
    return T.linear(outs.length === 1 ? outs[0] : T.concat(outs, 0), this.o);
  }
}

export function headDim(cfg: ModelConfig): number {
  return 'head_dim' in cfg && cfg.head_dim ? cfg.head_dim : cfg.hidden_size / cfg.num_attention_heads;
}
