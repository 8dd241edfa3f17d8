// An exact float64 forward pass read straight off a GGUF file, written from the equations in
// llama.cpp's conventions (GGUF tensor names, ggml layouts, its RoPE modes) — independently of
// nanoseek's model code and of the GGUF → Hugging Face mapping, which it exists to check. Weights
// are dequantized, then everything is plain float64 math, so it is "the truth" a quantized file
// encodes: nanoseek and llama.cpp are both measured against it.
import { dequantize } from '../src/kernels/quant/index.js';
import type { GgufFile, GgufValue } from '../src/io/gguf.js';

type Vec = Float64Array;

function meta(file: GgufFile, key: string): GgufValue['value'] | undefined {
  return file.metadata.get(key)?.value;
}

function num(file: GgufFile, key: string, fallback?: number): number {
  const v = meta(file, key);
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`oracle: ${key} missing`);
    return fallback;
  }
  return Number(v);
}

/** A ggml matrix: ne = [cols, rows, (stack)], decoded to float64 rows. */
class Mat {
  constructor(readonly data: Float64Array, readonly ne: number[]) {}
  get cols(): number {
    return this.ne[0];
  }
  /** y = W·x (W rows of length cols), optionally for one slice of a 3-D stack. */
  mv(x: Vec, slice = 0): Vec {
    const cols = this.ne[0], rows = this.ne[1];
    const base = slice * rows * cols;
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = base + r * cols;
      for (let c = 0; c < cols; c++) s += this.data[o + c] * x[c];
      y[r] = s;
    }
    return y;
  }
  row(r: number): Vec {
    return this.data.subarray(r * this.ne[0], (r + 1) * this.ne[0]);
  }
}

async function load(file: GgufFile, name: string): Promise<Mat | null> {
  const info = file.tensors.get(name);
  if (info === undefined) return null;
  const n = info.ne.reduce((a, b) => a * b, 1);
  const f32 = new Float32Array(n);
  dequantize(info.type, await file.readTensor(name), f32);
  return new Mat(Float64Array.from(f32), info.ne);
}

async function need(file: GgufFile, name: string): Promise<Mat> {
  const m = await load(file, name);
  if (m === null) throw new Error(`oracle: tensor ${name} missing`);
  return m;
}

function rmsnorm(x: Vec, w: Mat, eps: number): Vec {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * s * w.data[i]);
}

const silu = (v: number): number => v / (1 + Math.exp(-v));

function addInPlace(a: Vec, b: Vec, scale = 1): void {
  for (let i = 0; i < a.length; i++) a[i] += scale * b[i];
}

interface Rope {
  /** Rotation angles for position p: theta[i] for pair i. */
  angles(p: number): Float64Array;
  /** Scale applied to cos and sin (YaRN's magnitude correction; 1 otherwise). */
  mag: number;
  /** 'norm': pairs (2i, 2i+1); 'neox': pairs (i, i + n/2). */
  mode: 'norm' | 'neox';
}

function rotate(v: Vec, off: number, n: number, p: number, rope: Rope): void {
  const th = rope.angles(p);
  for (let i = 0; i < n / 2; i++) {
    const [a, b] = rope.mode === 'norm' ? [off + 2 * i, off + 2 * i + 1] : [off + i, off + i + n / 2];
    const c = Math.cos(th[i]) * rope.mag, s = Math.sin(th[i]) * rope.mag;
    const x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

function softmaxInPlace(v: Vec): void {
  let m = -Infinity;
  for (const x of v) m = Math.max(m, x);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] = Math.exp(v[i] - m);
  for (let i = 0; i < v.length; i++) v[i] /= s;
}

/** YaRN as DeepSeek defines it (and ggml computes it): interpolate low frequencies, keep high ones. */
function yarnAngles(n: number, base: number, factor: number, origCtx: number, betaFast: number, betaSlow: number): (p: number) => Float64Array {
  const corr = (rot: number) => (n * Math.log(origCtx / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(0, Math.floor(corr(betaFast)));
  const high = Math.min(n - 1, Math.ceil(corr(betaSlow)));
  const freq = new Float64Array(n / 2);
  for (let i = 0; i < n / 2; i++) {
    const f = Math.pow(base, (-2 * i) / n);
    const ramp = Math.min(1, Math.max(0, (i - low) / Math.max(0.001, high - low)));
    freq[i] = (f / factor) * ramp + f * (1 - ramp);
  }
  return (p) => freq.map((f) => p * f);
}

/**
 * Logits at every position of `ids` (one Float64Array of the vocabulary per position) for a qwen2,
 * llama or deepseek2 GGUF file.
 */
export async function exactLogits(file: GgufFile, ids: readonly number[]): Promise<Float64Array[]> {
  const arch = String(meta(file, 'general.architecture'));
  const k = (s: string) => `${arch}.${s}`;
  const nLayer = num(file, k('block_count')) - num(file, k('nextn_predict_layers'), 0);
  const nEmbd = num(file, k('embedding_length'));
  const nHead = num(file, k('attention.head_count'));
  const nHeadKv = num(file, k('attention.head_count_kv'), nHead);
  const eps = num(file, k('attention.layer_norm_rms_epsilon'));
  const base = num(file, k('rope.freq_base'), 10000);
  const embd = await need(file, 'token_embd.weight');
  const outNorm = await need(file, 'output_norm.weight');
  const output = (await load(file, 'output.weight')) ?? embd;

  // Per-position hidden states through the stack, all positions at once (causal attention).
  let xs: Vec[] = ids.map((id) => Float64Array.from(embd.row(id)));
  const T = ids.length;

  for (let il = 0; il < nLayer; il++) {
    const t = (s: string) => `blk.${il}.${s}`;
    const attnNorm = await need(file, t('attn_norm.weight'));
    const hs = xs.map((x) => rmsnorm(x, attnNorm, eps));
    let attnOut: Vec[];

    if (arch === 'qwen2' || arch === 'llama') {
      const hd = num(file, k('attention.key_length'), nEmbd / nHead);
      const wq = await need(file, t('attn_q.weight')), wk = await need(file, t('attn_k.weight')), wv = await need(file, t('attn_v.weight'));
      const bq = await load(file, t('attn_q.bias')), bk = await load(file, t('attn_k.bias')), bv = await load(file, t('attn_v.bias'));
      const wo = await need(file, t('attn_output.weight'));
      const nRot = num(file, k('rope.dimension_count'), hd);
      const factors = await load(file, 'rope_freqs.weight');
      const freq = new Float64Array(nRot / 2).map((_, i) => Math.pow(base, (-2 * i) / nRot) / (factors ? factors.data[i] : 1));
      const rope: Rope = { angles: (p) => freq.map((f) => p * f), mag: 1, mode: arch === 'llama' ? 'norm' : 'neox' };
      const q = hs.map((h, p) => {
        const v = wq.mv(h);
        if (bq) addInPlace(v, bq.data);
        for (let hh = 0; hh < nHead; hh++) rotate(v, hh * hd, nRot, p, rope);
        return v;
      });
      const kk = hs.map((h, p) => {
        const v = wk.mv(h);
        if (bk) addInPlace(v, bk.data);
        for (let hh = 0; hh < nHeadKv; hh++) rotate(v, hh * hd, nRot, p, rope);
        return v;
      });
      const vv = hs.map((h) => {
        const v = wv.mv(h);
        if (bv) addInPlace(v, bv.data);
        return v;
      });
      const scale = 1 / Math.sqrt(hd);
      attnOut = q.map((qi, i) => {
        const o = new Float64Array(nHead * hd);
        for (let hh = 0; hh < nHead; hh++) {
          const g = Math.floor(hh / (nHead / nHeadKv));
          const s = new Float64Array(i + 1);
          for (let j = 0; j <= i; j++) {
            let d = 0;
            for (let c = 0; c < hd; c++) d += qi[hh * hd + c] * kk[j][g * hd + c];
            s[j] = d * scale;
          }
          softmaxInPlace(s);
          for (let j = 0; j <= i; j++) for (let c = 0; c < hd; c++) o[hh * hd + c] += s[j] * vv[j][g * hd + c];
        }
        return wo.mv(o);
      });
    } else if (arch === 'deepseek2') {
      const nRot = num(file, k('rope.dimension_count'));
      const kvRank = num(file, k('attention.kv_lora_rank'));
      const kMla = num(file, k('attention.key_length_mla'), num(file, k('attention.key_length'), 0));
      const vMla = num(file, k('attention.value_length_mla'), num(file, k('attention.value_length'), 0));
      const nope = kMla - nRot;
      const qa = await load(file, t('attn_q_a.weight'));
      const qaNorm = await load(file, t('attn_q_a_norm.weight'));
      const qb = qa ? await need(file, t('attn_q_b.weight')) : await need(file, t('attn_q.weight'));
      const kva = await need(file, t('attn_kv_a_mqa.weight'));
      const kvaNorm = await need(file, t('attn_kv_a_norm.weight'));
      const kvb = await load(file, t('attn_kv_b.weight'));
      const kb = kvb ? null : await need(file, t('attn_k_b.weight'));
      const vb = kvb ? null : await need(file, t('attn_v_b.weight'));
      const wo = await need(file, t('attn_output.weight'));
      const scalingType = meta(file, k('rope.scaling.type'));
      let rope: Rope;
      let kqScale = 1 / Math.sqrt(kMla);
      if (scalingType === 'yarn') {
        const factor = num(file, k('rope.scaling.factor'));
        const orig = num(file, k('rope.scaling.original_context_length'));
        const logMul = num(file, k('rope.scaling.yarn_log_multiplier'), 0); // = 0.1 · mscale_all_dim
        const m = 1 + logMul * Math.log(factor);
        kqScale *= m * m;
        rope = { angles: yarnAngles(nRot, base, factor, orig, num(file, k('rope.scaling.yarn_beta_fast'), 32), num(file, k('rope.scaling.yarn_beta_slow'), 1)), mag: 1, mode: 'norm' };
      } else {
        const freq = new Float64Array(nRot / 2).map((_, i) => Math.pow(base, (-2 * i) / nRot));
        rope = { angles: (p) => freq.map((f) => p * f), mag: 1, mode: 'norm' };
      }
      const qs = hs.map((h, p) => {
        const v = qa ? qb.mv(rmsnorm(qa.mv(h), qaNorm!, eps)) : qb.mv(h);
        for (let hh = 0; hh < nHead; hh++) rotate(v, hh * kMla + nope, nRot, p, rope);
        return v;
      });
      const lat = hs.map((h, p) => {
        const v = kva.mv(h);
        const c = rmsnorm(v.subarray(0, kvRank), kvaNorm, eps);
        const pe = Float64Array.from(v.subarray(kvRank));
        rotate(pe, 0, nRot, p, rope);
        return { c, pe };
      });
      // Per-head keys and values expanded from the latent.
      const keyNope = (h: number, c: Vec): Vec => {
        const out = new Float64Array(nope);
        if (kvb) {
          for (let j = 0; j < nope; j++) {
            const row = kvb.row(h * (nope + vMla) + j);
            let s = 0;
            for (let r = 0; r < kvRank; r++) s += row[r] * c[r];
            out[j] = s;
          }
        } else {
          // attn_k_b ne {nope, kv_lora, n_head}: element (j, r, h) at j + nope·(r + kv_lora·h).
          for (let j = 0; j < nope; j++) {
            let s = 0;
            for (let r = 0; r < kvRank; r++) s += kb!.data[j + nope * (r + kvRank * h)] * c[r];
            out[j] = s;
          }
        }
        return out;
      };
      const value = (h: number, c: Vec): Vec => {
        const out = new Float64Array(vMla);
        for (let j = 0; j < vMla; j++) {
          // legacy attn_kv_b rows h·(nope+v) + nope + j; attn_v_b ne {kv_lora, v, n_head}.
          const row = kvb ? kvb.row(h * (nope + vMla) + nope + j) : vb!.data.subarray(kvRank * (j + vMla * h), kvRank * (j + 1 + vMla * h));
          let s = 0;
          for (let r = 0; r < kvRank; r++) s += row[r] * c[r];
          out[j] = s;
        }
        return out;
      };
      const keys = lat.map(({ c }) => Array.from({ length: nHead }, (_, h) => keyNope(h, c)));
      const values = lat.map(({ c }) => Array.from({ length: nHead }, (_, h) => value(h, c)));
      attnOut = qs.map((q, i) => {
        const o = new Float64Array(nHead * vMla);
        for (let h = 0; h < nHead; h++) {
          const s = new Float64Array(i + 1);
          for (let j = 0; j <= i; j++) {
            let d = 0;
            for (let c = 0; c < nope; c++) d += q[h * kMla + c] * keys[j][h][c];
            for (let c = 0; c < nRot; c++) d += q[h * kMla + nope + c] * lat[j].pe[c];
            s[j] = d * kqScale;
          }
          softmaxInPlace(s);
          for (let j = 0; j <= i; j++) for (let c = 0; c < vMla; c++) o[h * vMla + c] += s[j] * values[j][h][c];
        }
        return wo.mv(o);
      });
    } else {
      throw new Error(`oracle: architecture ${arch} not covered`);
    }

    xs = xs.map((x, i) => {
      const y = Float64Array.from(x);
      addInPlace(y, attnOut[i]);
      return y;
    });
    const ffnNorm = await need(file, t('ffn_norm.weight'));
    const h2 = xs.map((x) => rmsnorm(x, ffnNorm, eps));
    const gateInp = await load(file, t('ffn_gate_inp.weight'));
    let ffn: Vec[];
    if (gateInp === null) {
      const g = await need(file, t('ffn_gate.weight')), u = await need(file, t('ffn_up.weight')), d = await need(file, t('ffn_down.weight'));
      ffn = h2.map((h) => {
        const a = g.mv(h), b = u.mv(h);
        return d.mv(a.map((v, i) => silu(v) * b[i]));
      });
    } else {
      const nExpert = num(file, k('expert_count'));
      const nUsed = num(file, k('expert_used_count'));
      const groups = num(file, k('expert_group_count'), 1);
      const groupsUsed = num(file, k('expert_group_used_count'), groups);
      const gating = num(file, k('expert_gating_func'), 1);
      const normW = meta(file, k('expert_weights_norm')) === true;
      const wScale = num(file, k('expert_weights_scale'), 1);
      const bias = await load(file, t('exp_probs_b.bias'));
      const ge = await need(file, t('ffn_gate_exps.weight')), ue = await need(file, t('ffn_up_exps.weight')), de = await need(file, t('ffn_down_exps.weight'));
      const gs = await load(file, t('ffn_gate_shexp.weight')), us = await load(file, t('ffn_up_shexp.weight')), ds = await load(file, t('ffn_down_shexp.weight'));
      ffn = h2.map((h) => {
        const logits = gateInp.mv(h);
        const probs = gating === 2 ? logits.map((v) => 1 / (1 + Math.exp(-v))) : (softmaxInPlace(logits), logits);
        const sel = probs.map((p, e) => p + (bias ? bias.data[e] : 0));
        if (groups > 1) {
          const per = nExpert / groups;
          const score = Array.from({ length: groups }, (_, g) => {
            const top = Array.from(sel.subarray(g * per, (g + 1) * per)).sort((a, b) => b - a);
            return top[0] + top[1];
          });
          const keep = score.map((s, g) => [s, g]).sort((a, b) => b[0] - a[0]).slice(0, groupsUsed).map(([, g]) => g);
          for (let e = 0; e < nExpert; e++) if (!keep.includes(Math.floor(e / per))) sel[e] = -Infinity;
        }
        const chosen = Array.from(sel.keys()).sort((a, b) => sel[b] - sel[a] || a - b).slice(0, nUsed);
        let w = chosen.map((e) => probs[e]);
        if (normW) {
          const s = w.reduce((a, b) => a + b, 0);
          w = w.map((v) => v / s);
        }
        w = w.map((v) => v * wScale);
        const out = new Float64Array(nEmbd);
        chosen.forEach((e, j) => {
          const a = ge.mv(h, e), b = ue.mv(h, e);
          addInPlace(out, de.mv(a.map((v, i) => silu(v) * b[i]), e), w[j]);
        });
        if (gs && us && ds) {
          const a = gs.mv(h), b = us.mv(h);
          addInPlace(out, ds.mv(a.map((v, i) => silu(v) * b[i])));
        }
        return out;
      });
    }
    xs = xs.map((x, i) => {
      const y = Float64Array.from(x);
      addInPlace(y, ffn[i]);
      return y;
    });
  }
  return xs.slice(0, T).map((x) => output.mv(rmsnorm(x, outNorm, eps)));
}

/** log-softmax of a row of logits. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(logits, (v) => v - lse);
}
