// Multi-head Latent Attention (DeepSeek-V2/V3).
//
// Keys and values are rebuilt from a small latent ckv = RMSNorm(W_kv_a·x)[:c] plus ONE rotary key k_pe
// shared by all heads. Training uses the naive path (expand the latent into per-head k and v). Decoding
// uses the absorbed path: W_UK is folded into the query and W_UV into the output, so attention runs
// directly against the cached latents and the cache holds only c + dr numbers per token.
import { gemmArgs } from '../kernels/backend.js';
import type { RopeTable, Tensor, Weight } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import { softmaxRow } from '../tensor/index.js';
import type { DeepseekV3Config } from './config.js';
import type { Segment } from './cache.js';
import type { ParamStore } from './params.js';

export class MLA {
  readonly H: number;
  readonly dn: number;
  readonly dr: number;
  readonly dv: number;
  readonly c: number;
  readonly qRank: number;
  readonly scale: number;
  readonly style: 'interleaved' | 'half';
  private readonly qA: Weight | null;
  private readonly qANorm: Tensor | null;
  private readonly qB: Weight;
  private readonly kvA: Weight;
  private readonly kvANorm: Tensor;
  /** Float always: the absorbed decoding path slices it per head. */
  private readonly kvB: Tensor;
  private readonly o: Weight;

  constructor(p: ParamStore, prefix: string, private readonly cfg: DeepseekV3Config, std: number, softmaxScale: number) {
    const D = cfg.hidden_size;
    this.H = cfg.num_attention_heads;
    this.dn = cfg.qk_nope_head_dim;
    this.dr = cfg.qk_rope_head_dim;
    this.dv = cfg.v_head_dim;
    this.c = cfg.kv_lora_rank;
    this.qRank = cfg.q_lora_rank ?? 0;
    this.scale = softmaxScale;
    this.style = cfg.rope_interleave === false ? 'half' : 'interleaved';
    const dq = this.H * (this.dn + this.dr);
    const normal = { kind: 'normal', std } as const;
    if (this.qRank > 0) {
      this.qA = p.matrix(`${prefix}.q_a_proj.weight`, [this.qRank, D], normal);
      this.qANorm = p.create(`${prefix}.q_a_layernorm.weight`, [this.qRank], { kind: 'ones' });
      this.qB = p.matrix(`${prefix}.q_b_proj.weight`, [dq, this.qRank], normal);
    } else {
      this.qA = null;
      this.qANorm = null;
      this.qB = p.matrix(`${prefix}.q_proj.weight`, [dq, D], normal);
    }
    this.kvA = p.matrix(`${prefix}.kv_a_proj_with_mqa.weight`, [this.c + this.dr, D], normal);
    this.kvANorm = p.create(`${prefix}.kv_a_layernorm.weight`, [this.c], { kind: 'ones' });
    this.kvB = p.create(`${prefix}.kv_b_proj.weight`, [this.H * (this.dn + this.dv), this.c], normal);
    this.o = p.matrix(`${prefix}.o_proj.weight`, [D, this.H * this.dv], normal);
  }

  /** Queries [..., H, dn + dr] with the rope part rotated. */
  private queries(x: Tensor, table: RopeTable, lead: number[]): { nope: Tensor; pe: Tensor } {
    const eps = this.cfg.rms_norm_eps;
    const q = this.qA === null ? T.linear(x, this.qB) : T.linear(T.rmsnorm(T.linear(x, this.qA), this.qANorm!, eps), this.qB);
    const [nope, pe] = T.split(T.reshape(q, [...lead, this.H, this.dn + this.dr]), [this.dn, this.dr], -1);
    return { nope, pe: T.rope(pe, table, this.style) };
  }

  /** The latent ckv (normalised) and the rotated shared key, [..., c] and [..., 1, dr]. */
  private latent(x: Tensor, table: RopeTable, lead: number[]): { ckv: Tensor; kpe: Tensor } {
    const [ckv, kpe] = T.split(T.linear(x, this.kvA), [this.c, this.dr], -1);
    return { ckv: T.rmsnorm(ckv, this.kvANorm, this.cfg.rms_norm_eps), kpe: T.rope(T.reshape(kpe, [...lead, 1, this.dr]), table, this.style) };
  }

  /** Naive path over full sequences: x [B, T, D] → [B, T, D]. */
  forward(x: Tensor, table: RopeTable): Tensor {
    const [B, Tn] = x.shape;
    const { nope, pe } = this.queries(x, table, [B, Tn]);
    const { ckv, kpe } = this.latent(x, table, [B, Tn]);
    const [kNope, v] = T.split(T.reshape(T.linear(ckv, this.kvB), [B, Tn, this.H, this.dn + this.dv]), [this.dn, this.dv], -1);
    const q = T.concat([nope, pe], -1);
    const k = T.concat([kNope, T.expand(kpe, 2, this.H)], -1);
    const o = T.attention(q, k, v, { scale: this.scale, causal: true });
    return T.linear(T.reshape(o, [B, Tn, this.H * this.dv]), this.o);
  }

  /**
   * Absorbed path for rows x [M, D] belonging to several sequences (segments), each attending to its
   * own cache plus its new tokens; `table` holds every row's rotary position. Appends the new latents
   * to the caches (of layer `layer`). Projections and the W_UK / W_UV products run once over all rows;
   * only the attention against each sequence's cache is per sequence.
   */
  forwardCached(x: Tensor, segments: readonly Segment[], layer: number, table: RopeTable): Tensor {
    const { H, dn, dr, dv, c } = this;
    const [M, D] = x.shape;
    const rows = T.reshape(x, [1, M, D]);
    const { nope, pe } = this.queries(rows, table, [1, M]); // [1, M, H, dn], [1, M, H, dr]
    const { ckv, kpe } = this.latent(rows, table, [1, M]); // [1, M, c], [1, M, 1, dr]
    const be = T.kernels(x);
    const kvB = this.kvB.data;
    // q̃[i, h] = q_nope[i, h] · W_UK,h: per-head queries in latent space, [M·H, c].
    const qLat = T.empty([M * H, c], x.dtype);
    for (let h = 0; h < H; h++) {
      be.gemm(gemmArgs({ m: M, n: c, k: dn, a: nope.data, aOff: h * dn, lda: H * dn, b: kvB, bOff: h * (dn + dv) * c, ldb: c, c: qLat.data, cOff: h * c, ldc: H * c }));
    }
    const oLat = T.empty([M * H, c], x.dtype);
    const w = c + dr;
    for (const seg of segments) {
      const n = seg.length;
      const p0 = seg.cache.length;
      const S = p0 + n;
      const store = seg.cache.keys[layer];
      store.reserve(S, p0);
      const cache = store.data;
      for (let i = 0; i < n; i++) {
        const r = seg.start + i;
        cache.set(ckv.data.subarray(r * c, (r + 1) * c), (p0 + i) * w);
        cache.set(kpe.data.subarray(r * dr, (r + 1) * dr), (p0 + i) * w + c);
      }
      // All heads share the latent cache, so scores for every (token, head) row come from two GEMMs.
      const scores = T.empty([n * H, S], x.dtype);
      const P = scores.data;
      be.gemm(gemmArgs({ m: n * H, n: S, k: c, a: qLat.data, aOff: seg.start * H * c, b: cache, ldb: w, transB: true, c: P, alpha: this.scale }));
      be.gemm(gemmArgs({ m: n * H, n: S, k: dr, a: pe.data, aOff: seg.start * H * dr, b: cache, bOff: c, ldb: w, transB: true, c: P, alpha: this.scale, beta: 1 }));
      for (let i = 0; i < n; i++) {
        for (let h = 0; h < H; h++) {
          const row = (i * H + h) * S;
          const visible = p0 + i + 1;
          softmaxRow(P, P, row, visible);
          P.fill(0, row + visible, row + S);
        }
      }
      be.gemm(gemmArgs({ m: n * H, n: c, k: S, a: P, b: cache, ldb: w, c: oLat.data, cOff: seg.start * H * c }));
      scores.dispose();
    }
    // o[i, h] = W_UV,h · oLat[i, h] for all rows at once.
    const out = T.empty([M, H * dv], x.dtype);
    for (let h = 0; h < H; h++) {
      be.gemm(gemmArgs({ m: M, n: dv, k: c, a: oLat.data, aOff: h * c, lda: H * c, b: kvB, bOff: (h * (dn + dv) + dn) * c, ldb: c, transB: true, c: out.data, cOff: h * dv, ldc: H * dv }));
    }
    return T.linear(out, this.o);
  }
}
