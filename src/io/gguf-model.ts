// GGUF files as models. llama.cpp names its architectures (qwen2, llama, deepseek2), metadata keys
// and tensors its own way and stores some tensors in another layout; this file is the one place
// that maps them onto nanoseek's configs (Hugging Face config.json fields) and tensors (HF names,
// [out, in] row-major), in both directions:
// - `ggufLayout(config)` lists every GGUF tensor a model has and how it is made from HF tensors
//   (a plain copy — ggml's ne = [in, out] is the same bytes —, rows permuted, experts stacked into
//   one 3-D tensor, or MLA's kv_b split into k_b and v_b);
// - `configFromGguf` reads the architecture keys back into a config, `ggufArchitectureMetadata`
//   writes them;
// - `openGgufModel` opens a file as a ModelFile whose tensors come back under HF names.
import { open } from 'node:fs/promises';
import { dequantize } from '../kernels/quant/index.js';
import { rowBytes, type GgmlType } from '../kernels/quant/types.js';
import { isMoeLayer, parseModelConfig, type DeepseekV3Config, type Llama3RopeScaling, type ModelConfig } from '../model/config.js';
import { llama3Divisor } from '../model/rope.js';
import type { StoredTensor } from '../model/weights.js';
import type { GenerationConfig } from './checkpoint.js';
import {
  ggufBoolOpt, ggufNumber, ggufNumberOpt, ggufString, ggufStringOpt, ggufVal, openGguf,
  type GgufFile, type GgufMetadata, type GgufMetadataSource,
} from './gguf.js';
import type { ModelFile, TensorEntry } from './model-file.js';

export type GgufArch = 'qwen2' | 'llama' | 'deepseek2';

const ARCH_OF: Record<ModelConfig['model_type'], GgufArch> = { qwen2: 'qwen2', llama: 'llama', deepseek_v3: 'deepseek2' };

export function ggufArchOf(cfg: ModelConfig): GgufArch {
  return ARCH_OF[cfg.model_type];
}

// ---------------------------------------------------------------------------------------------
// Tensor layout

/** How one GGUF tensor is made from Hugging Face tensors. */
export type GgufPiece =
  /** The same matrix (rows optionally permuted: GGUF row r is HF row perm[r]). */
  | { kind: 'copy'; hf: string; perm?: Int32Array }
  /** A 3-D stack: slice e is HF tensor hf[e] (MoE experts). */
  | { kind: 'experts'; hf: string[] }
  /** MLA's W_UK per head, transposed: ne {nope, kv_lora, heads}, from kv_b_proj. */
  | { kind: 'k_b'; hf: string }
  /** MLA's W_UV per head: ne {kv_lora, v_head, heads}, from kv_b_proj. */
  | { kind: 'v_b'; hf: string }
  /** A zero-width tensor llama.cpp requires anyway (deepseek2's shared experts when there are none). */
  | { kind: 'empty' };

export interface GgufTensorPlan {
  name: string;
  /** ggml shape: ne[0] is the row length. */
  ne: number[];
  piece: GgufPiece;
}

/**
 * llama.cpp's llama rotates adjacent pairs, so its converter reorders each head's q/k rows from
 * rotate-half order: GGUF row h·d + 2i + j holds HF row h·d + j·d/2 + i.
 */
function halfToInterleaved(heads: number, dim: number, headStride = dim, offset = 0, total = heads * headStride): Int32Array {
  const perm = Int32Array.from({ length: total }, (_, r) => r);
  for (let h = 0; h < heads; h++) {
    const base = h * headStride + offset;
    for (let i = 0; i < dim / 2; i++) {
      for (let j = 0; j < 2; j++) perm[base + 2 * i + j] = base + j * (dim / 2) + i;
    }
  }
  return perm;
}

/** MLA layouts: the current converter's split k_b/v_b, or the legacy single kv_b (older R1 GGUFs). */
export type MlaLayout = 'split' | 'legacy';

/** Every GGUF tensor of a model of this config, in llama.cpp's order and naming. */
export function ggufLayout(cfg: ModelConfig, mla: MlaLayout = 'split'): GgufTensorPlan[] {
  const D = cfg.hidden_size;
  const V = cfg.vocab_size;
  const out: GgufTensorPlan[] = [];
  const mat = (name: string, hf: string, inDim: number, outDim: number, perm?: Int32Array) =>
    out.push({ name, ne: [inDim, outDim], piece: { kind: 'copy', hf, perm } });
  const vec = (name: string, hf: string, n: number) => out.push({ name, ne: [n], piece: { kind: 'copy', hf } });

  mat('token_embd.weight', 'model.embed_tokens.weight', D, V);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    const b = `blk.${i}.`;
    vec(`${b}attn_norm.weight`, `${p}input_layernorm.weight`, D);
    if (cfg.model_type === 'deepseek_v3') {
      const H = cfg.num_attention_heads;
      const nope = cfg.qk_nope_head_dim, dr = cfg.qk_rope_head_dim, dv = cfg.v_head_dim, c = cfg.kv_lora_rank;
      const qk = nope + dr;
      // llama.cpp's deepseek2 rotates adjacent pairs; a rotate-half model gets its rope rows reordered.
      const qPerm = cfg.rope_interleave ? undefined : halfToInterleaved(H, dr, qk, nope);
      const kvPerm = cfg.rope_interleave ? undefined : halfToInterleaved(1, dr, c + dr, c);
      if (cfg.q_lora_rank === null) {
        mat(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, D, H * qk, qPerm);
      } else {
        mat(`${b}attn_q_a.weight`, `${p}self_attn.q_a_proj.weight`, D, cfg.q_lora_rank);
        vec(`${b}attn_q_a_norm.weight`, `${p}self_attn.q_a_layernorm.weight`, cfg.q_lora_rank);
        mat(`${b}attn_q_b.weight`, `${p}self_attn.q_b_proj.weight`, cfg.q_lora_rank, H * qk, qPerm);
      }
      mat(`${b}attn_kv_a_mqa.weight`, `${p}self_attn.kv_a_proj_with_mqa.weight`, D, c + dr, kvPerm);
      vec(`${b}attn_kv_a_norm.weight`, `${p}self_attn.kv_a_layernorm.weight`, c);
      const kvb = `${p}self_attn.kv_b_proj.weight`;
      if (mla === 'split') {
        out.push({ name: `${b}attn_k_b.weight`, ne: [nope, c, H], piece: { kind: 'k_b', hf: kvb } });
        out.push({ name: `${b}attn_v_b.weight`, ne: [c, dv, H], piece: { kind: 'v_b', hf: kvb } });
      } else {
        mat(`${b}attn_kv_b.weight`, kvb, c, H * (nope + dv));
      }
      mat(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, H * dv, D);
    } else {
      const H = cfg.num_attention_heads, Hk = cfg.num_key_value_heads, hd = cfg.head_dim;
      const llama = cfg.model_type === 'llama';
      mat(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, D, H * hd, llama ? halfToInterleaved(H, hd) : undefined);
      if (!llama) vec(`${b}attn_q.bias`, `${p}self_attn.q_proj.bias`, H * hd);
      mat(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, D, Hk * hd, llama ? halfToInterleaved(Hk, hd) : undefined);
      if (!llama) vec(`${b}attn_k.bias`, `${p}self_attn.k_proj.bias`, Hk * hd);
      mat(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`, D, Hk * hd);
      if (!llama) vec(`${b}attn_v.bias`, `${p}self_attn.v_proj.bias`, Hk * hd);
      mat(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, H * hd, D);
    }
    vec(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`, D);
    if (cfg.model_type === 'deepseek_v3' && isMoeLayer(cfg, i)) {
      const E = cfg.n_routed_experts, F = cfg.moe_intermediate_size;
      mat(`${b}ffn_gate_inp.weight`, `${p}mlp.gate.weight`, D, E);
      if (cfg.topk_method === 'noaux_tc') vec(`${b}exp_probs_b.bias`, `${p}mlp.gate.e_score_correction_bias`, E);
      const experts = (w: string) => Array.from({ length: E }, (_, e) => `${p}mlp.experts.${e}.${w}.weight`);
      out.push({ name: `${b}ffn_gate_exps.weight`, ne: [D, F, E], piece: { kind: 'experts', hf: experts('gate_proj') } });
      out.push({ name: `${b}ffn_up_exps.weight`, ne: [D, F, E], piece: { kind: 'experts', hf: experts('up_proj') } });
      out.push({ name: `${b}ffn_down_exps.weight`, ne: [F, D, E], piece: { kind: 'experts', hf: experts('down_proj') } });
      const S = F * cfg.n_shared_experts;
      if (S > 0) {
        mat(`${b}ffn_gate_shexp.weight`, `${p}mlp.shared_experts.gate_proj.weight`, D, S);
        mat(`${b}ffn_up_shexp.weight`, `${p}mlp.shared_experts.up_proj.weight`, D, S);
        mat(`${b}ffn_down_shexp.weight`, `${p}mlp.shared_experts.down_proj.weight`, S, D);
      } else {
        // llama.cpp creates the shared-expert tensors unconditionally; without shared experts they are empty.
        for (const [w, ne] of [['gate', [D, 0]], ['up', [D, 0]], ['down', [0, D]]] as const) {
          out.push({ name: `${b}ffn_${w}_shexp.weight`, ne: [...ne], piece: { kind: 'empty' } });
        }
      }
    } else {
      const F = cfg.intermediate_size;
      mat(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`, D, F);
      mat(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`, D, F);
      mat(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`, F, D);
    }
  }
  vec('output_norm.weight', 'model.norm.weight', D);
  if (!cfg.tie_word_embeddings) mat('output.weight', 'lm_head.weight', D, V);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Configs from and to metadata

/** A value in llama.cpp's `general.file_type` (LLAMA_FTYPE_*). */
export const FILE_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q4_K_M: 15, Q5_K_M: 17, Q6_K: 18, BF16: 32 } as const;

function fail(path: string, key: string, problem: string): never {
  throw new Error(`${path}: ${key}: ${problem}`);
}

/**
 * Llama 3.1's rope scaling from llama.cpp's `rope_freqs` divisors. GGUF keeps only the divisors, so
 * the parameters are recovered by trying Llama 3.x's published values (low 1, high 4, original
 * context 8192) with the factor the divisors show, and accepted only when they reproduce every divisor.
 */
export function llama3ScalingFromFactors(path: string, factors: Float32Array, headDim: number, theta: number): Llama3RopeScaling {
  const factor = Math.max(...factors);
  const candidates: Llama3RopeScaling[] = [8192, 4096, 16384, 2048].flatMap((orig) =>
    [[1, 4], [1, 2], [1, 8]].map(([low, high]) => ({ rope_type: 'llama3' as const, factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: orig })),
  );
  for (const s of candidates) {
    let ok = true;
    for (let i = 0; i < factors.length && ok; i++) {
      const f = Math.pow(theta, (-2 * i) / headDim);
      ok = Math.abs(llama3Divisor(f, s) - factors[i]) <= 1e-5 * factor;
    }
    if (ok) return s;
  }
  return fail(path, 'rope_freqs.weight', 'the frequency divisors do not match Llama 3 rope scaling with any known low/high/original-context values');
}

/**
 * The Hugging Face config a GGUF file's metadata and tensor shapes describe. A llama file's
 * `rope_freqs` tensor (Llama 3.1 scaling) must be passed in as read.
 */
export function configFromGguf(file: GgufFile, ropeFreqs?: Float32Array): { config: ModelConfig; arch: GgufArch; mla: MlaLayout } {
  const path = file.path;
  const archName = ggufString(file, 'general.architecture');
  if (archName !== 'qwen2' && archName !== 'llama' && archName !== 'deepseek2') {
    fail(path, 'general.architecture', `"${archName}" is not supported (nanoseek runs qwen2, llama and deepseek2)`);
  }
  const arch: GgufArch = archName;
  const key = (k: string) => `${arch}.${k}`;
  const n = (k: string) => ggufNumber(file, key(k));
  const nOpt = (k: string) => ggufNumberOpt(file, key(k));
  const embd = file.tensors.get('token_embd.weight');
  if (embd === undefined) fail(path, 'token_embd.weight', 'tensor is missing');
  const hidden = n('embedding_length');
  if (embd.ne.length !== 2 || embd.ne[0] !== hidden) fail(path, 'token_embd.weight', `shape [${embd.ne}] does not have ${key('embedding_length')} = ${hidden} columns`);
  const vocab = embd.ne[1];
  // llama.cpp sizes the embedding by the token list; a file whose two disagree cannot run anywhere.
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  if (tokens?.type === 'array' && tokens.value.length !== vocab) {
    fail(path, 'tokenizer.ggml.tokens', `${tokens.value.length} tokens, but token_embd.weight has ${vocab} rows`);
  }
  const declaredVocab = nOpt('vocab_size');
  if (declaredVocab !== undefined && declaredVocab !== vocab) fail(path, key('vocab_size'), `${declaredVocab} disagrees with token_embd.weight's ${vocab} rows`);
  const heads = n('attention.head_count');
  const nextn = nOpt('nextn_predict_layers') ?? 0;
  const layers = n('block_count') - nextn;
  const tied = !file.tensors.has('output.weight');
  const tok = (k: string) => ggufNumberOpt(file, `tokenizer.ggml.${k}`);
  const scalingType = ggufStringOpt(file, key('rope.scaling.type'));
  const common = {
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    rms_norm_eps: n('attention.layer_norm_rms_epsilon'),
    rope_theta: nOpt('rope.freq_base') ?? 10000,
    max_position_embeddings: n('context_length'),
    tie_word_embeddings: tied,
    bos_token_id: tok('bos_token_id') ?? null,
    eos_token_id: tok('eos_token_id') ?? null,
    pad_token_id: tok('padding_token_id') ?? null,
    hidden_act: 'silu',
    torch_dtype: dominantDtype(file),
  };
  const source = `${path} (GGUF ${arch} metadata)`;

  if (arch === 'qwen2' || arch === 'llama') {
    if (scalingType !== undefined && scalingType !== 'none') fail(path, key('rope.scaling.type'), `"${scalingType}" is not supported for ${arch}`);
    const headDim = nOpt('attention.key_length') ?? hidden / heads;
    const valueDim = nOpt('attention.value_length') ?? headDim;
    if (valueDim !== headDim) fail(path, key('attention.value_length'), `${valueDim} differs from the key length ${headDim}`);
    const rot = nOpt('rope.dimension_count') ?? headDim;
    if (rot !== headDim) fail(path, key('rope.dimension_count'), `${rot}: partial rotary embeddings are not supported (head size ${headDim})`);
    const theta = nOpt('rope.freq_base') ?? 10000;
    let ropeScaling: Llama3RopeScaling | null = null;
    if (file.tensors.has('rope_freqs.weight')) {
      if (arch !== 'llama') fail(path, 'rope_freqs.weight', `is not used by ${arch}`);
      const info = file.tensors.get('rope_freqs.weight')!;
      if (info.type !== 'F32' || info.ne.length !== 1 || info.ne[0] !== headDim / 2) {
        fail(path, 'rope_freqs.weight', `must be F32 of ${headDim / 2} values, got ${info.type} [${info.ne.join(', ')}]`);
      }
      if (ropeFreqs === undefined) throw new Error(`${path}: configFromGguf needs the rope_freqs.weight values`);
      ropeScaling = llama3ScalingFromFactors(path, ropeFreqs, headDim, theta);
    }
    const cfg = {
      ...common,
      model_type: arch,
      architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
      intermediate_size: n('feed_forward_length'),
      num_key_value_heads: nOpt('attention.head_count_kv') ?? heads,
      head_dim: headDim,
      rope_scaling: ropeScaling,
    };
    return { config: parseModelConfig(cfg, source), arch, mla: 'legacy' };
  }

  // deepseek2
  const ropeDim = n('rope.dimension_count');
  const kvLora = n('attention.kv_lora_rank');
  const kMla = nOpt('attention.key_length_mla');
  const vMla = nOpt('attention.value_length_mla');
  const mla: MlaLayout = kMla !== undefined && vMla !== undefined ? 'split' : 'legacy';
  const qkHead = mla === 'split' ? kMla! : n('attention.key_length');
  const vHead = mla === 'split' ? vMla! : n('attention.value_length');
  const qLora = nOpt('attention.q_lora_rank') ?? 0;
  const experts = nOpt('expert_count') ?? 0;
  const dense = nOpt('leading_dense_block_count') ?? 0;
  if (experts === 0 && dense < layers) fail(path, key('expert_count'), 'missing although some layers are MoE');
  const gating = nOpt('expert_gating_func') ?? 1;
  if (gating !== 1 && gating !== 2) fail(path, key('expert_gating_func'), `${gating} is not supported (1 softmax, 2 sigmoid)`);
  const groups = nOpt('expert_group_count') ?? 1;
  const groupsUsed = nOpt('expert_group_used_count') ?? groups;
  const hasBias = [...file.tensors.keys()].some((t) => t.endsWith('.exp_probs_b.bias'));
  let ropeScaling: unknown = null;
  if (scalingType === 'yarn') {
    const logMul = nOpt('rope.scaling.yarn_log_multiplier') ?? 0;
    // llama.cpp reads 0.1·mscale_all_dim and assumes mscale = mscale_all_dim (the rotation's
    // magnitude correction cancels): the DeepSeek-V2/V3 configs have them equal.
    const mscaleAll = logMul / 0.1;
    ropeScaling = {
      type: 'yarn',
      rope_type: 'yarn',
      factor: n('rope.scaling.factor'),
      original_max_position_embeddings: n('rope.scaling.original_context_length'),
      beta_fast: nOpt('rope.scaling.yarn_beta_fast') ?? 32,
      beta_slow: nOpt('rope.scaling.yarn_beta_slow') ?? 1,
      mscale: mscaleAll,
      mscale_all_dim: mscaleAll,
    };
  } else if (scalingType !== undefined && scalingType !== 'none') {
    fail(path, key('rope.scaling.type'), `"${scalingType}" is not supported for deepseek2 (none or yarn)`);
  }
  const moe = experts > 0;
  const cfg = {
    ...common,
    model_type: 'deepseek_v3',
    architectures: ['DeepseekV3ForCausalLM'],
    num_key_value_heads: heads,
    intermediate_size: nOpt('feed_forward_length') ?? n('expert_feed_forward_length'),
    moe_intermediate_size: moe ? n('expert_feed_forward_length') : 1,
    q_lora_rank: qLora > 0 ? qLora : null,
    kv_lora_rank: kvLora,
    qk_nope_head_dim: qkHead - ropeDim,
    qk_rope_head_dim: ropeDim,
    v_head_dim: vHead,
    n_routed_experts: moe ? experts : 1,
    n_shared_experts: ggufNumberOpt(file, key('expert_shared_count')) ?? 0,
    num_experts_per_tok: moe ? n('expert_used_count') : 1,
    n_group: groups,
    topk_group: groupsUsed,
    // Absent or 0 means no scaling in llama.cpp.
    routed_scaling_factor: nOpt('expert_weights_scale') || 1,
    scoring_func: gating === 2 ? 'sigmoid' : 'softmax',
    // llama.cpp scores a group by its two best experts, which is DeepSeek-V3's noaux_tc rule.
    topk_method: hasBias ? 'noaux_tc' : groups > 1 ? 'noaux_tc' : 'greedy',
    norm_topk_prob: ggufBoolOpt(file, key('expert_weights_norm')) ?? false,
    first_k_dense_replace: moe ? dense : layers,
    moe_layer_freq: 1,
    num_nextn_predict_layers: 0,
    rope_interleave: true,
    rope_scaling: ropeScaling,
    attention_bias: false,
  };
  return { config: parseModelConfig(cfg, source), arch, mla };
}

/** The torch_dtype a GGUF's weights suggest (for configs written out of it). */
function dominantDtype(file: GgufFile): 'float32' | 'float16' | 'bfloat16' {
  const t = file.tensors.get('token_embd.weight')?.type;
  return t === 'F16' ? 'float16' : t === 'BF16' ? 'bfloat16' : 'float32';
}

/** The `{arch}.*` keys llama.cpp reads for this config (general.* and tokenizer.* are separate). */
export function ggufArchitectureMetadata(cfg: ModelConfig, mla: MlaLayout = 'split'): GgufMetadata {
  const arch = ggufArchOf(cfg);
  const m: GgufMetadata = new Map();
  const u32 = (k: string, v: number) => m.set(`${arch}.${k}`, ggufVal.u32(v));
  const f32 = (k: string, v: number) => m.set(`${arch}.${k}`, ggufVal.f32(v));
  const where = `${cfg.architectures[0]} config`;
  u32('block_count', cfg.num_hidden_layers);
  u32('context_length', cfg.max_position_embeddings);
  u32('embedding_length', cfg.hidden_size);
  u32('feed_forward_length', cfg.intermediate_size);
  u32('attention.head_count', cfg.num_attention_heads);
  f32('rope.freq_base', cfg.rope_theta);
  f32('attention.layer_norm_rms_epsilon', cfg.rms_norm_eps);
  u32('vocab_size', cfg.vocab_size);
  if (cfg.model_type === 'deepseek_v3') {
    writeDeepseek(cfg, mla, u32, f32, (k, v) => m.set(`${arch}.${k}`, ggufVal.bool(v)), (k, v) => m.set(`${arch}.${k}`, ggufVal.string(v)), where);
    return m;
  }
  u32('attention.head_count_kv', cfg.num_key_value_heads);
  u32('rope.dimension_count', cfg.head_dim);
  if (cfg.head_dim !== cfg.hidden_size / cfg.num_attention_heads) {
    u32('attention.key_length', cfg.head_dim);
    u32('attention.value_length', cfg.head_dim);
  }
  const rs = cfg.rope_scaling;
  // Llama 3.1's scaling travels as the rope_freqs tensor (see ggufLayoutExtras), not as keys.
  if (rs !== null && !(cfg.model_type === 'llama' && rs.rope_type === 'llama3')) {
    throw new Error(`${where}: rope_scaling ${rs.rope_type} cannot be written for ${arch} (llama.cpp would not apply it the same way)`);
  }
  return m;
}

function writeDeepseek(
  cfg: DeepseekV3Config,
  mla: MlaLayout,
  u32: (k: string, v: number) => void,
  f32: (k: string, v: number) => void,
  bool: (k: string, v: boolean) => void,
  str: (k: string, v: string) => void,
  where: string,
): void {
  const qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim;
  u32('leading_dense_block_count', cfg.first_k_dense_replace);
  // q_lora_rank 0 selects the direct q projection (llama.cpp requires the key unless the model is "lite").
  u32('attention.q_lora_rank', cfg.q_lora_rank ?? 0);
  u32('attention.kv_lora_rank', cfg.kv_lora_rank);
  if (mla === 'split') {
    // MLA as MQA over the latent: one KV head of (latent + rope) keys and latent values.
    u32('attention.head_count_kv', 1);
    u32('attention.key_length', cfg.kv_lora_rank + cfg.qk_rope_head_dim);
    u32('attention.value_length', cfg.kv_lora_rank);
    u32('attention.key_length_mla', qk);
    u32('attention.value_length_mla', cfg.v_head_dim);
  } else {
    u32('attention.head_count_kv', cfg.num_attention_heads);
    u32('attention.key_length', qk);
    u32('attention.value_length', cfg.v_head_dim);
  }
  u32('rope.dimension_count', cfg.qk_rope_head_dim);
  const moe = cfg.first_k_dense_replace < cfg.num_hidden_layers;
  u32('expert_feed_forward_length', cfg.moe_intermediate_size);
  u32('expert_shared_count', moe ? cfg.n_shared_experts : 0);
  if (moe) {
    u32('expert_count', cfg.n_routed_experts);
    u32('expert_used_count', cfg.num_experts_per_tok);
    f32('expert_weights_scale', cfg.routed_scaling_factor);
    bool('expert_weights_norm', cfg.norm_topk_prob && cfg.num_experts_per_tok > 1);
    u32('expert_gating_func', cfg.scoring_func === 'sigmoid' ? 2 : 1);
    if (cfg.topk_method !== 'greedy' && cfg.n_group > 1 && cfg.topk_group < cfg.n_group) {
      if (cfg.topk_method !== 'noaux_tc') {
        throw new Error(`${where}: topk_method "${cfg.topk_method}" scores a group by its best expert; llama.cpp scores groups by their two best (noaux_tc), so the file would route differently`);
      }
      u32('expert_group_count', cfg.n_group);
      u32('expert_group_used_count', cfg.topk_group);
    }
  }
  const rs = cfg.rope_scaling;
  if (rs !== null) {
    if (rs.rope_type !== 'yarn') throw new Error(`${where}: rope_scaling ${rs.rope_type} cannot be written for deepseek2`);
    if (rs.mscale !== rs.mscale_all_dim) {
      throw new Error(`${where}: YaRN with mscale ${rs.mscale} ≠ mscale_all_dim ${rs.mscale_all_dim} cannot be written: llama.cpp assumes they are equal`);
    }
    str('rope.scaling.type', 'yarn');
    f32('rope.scaling.factor', rs.factor);
    u32('rope.scaling.original_context_length', rs.original_max_position_embeddings);
    f32('rope.scaling.yarn_beta_fast', rs.beta_fast);
    f32('rope.scaling.yarn_beta_slow', rs.beta_slow);
    // The converter's convention: 0.1 · mscale_all_dim (llama.cpp divides by 0.1 again).
    f32('rope.scaling.yarn_log_multiplier', 0.1 * rs.mscale_all_dim);
  }
}

/** Sampling defaults as llama.cpp's general.sampling.* keys. */
export function ggufSamplingMetadata(g: GenerationConfig | null): GgufMetadata {
  const m: GgufMetadata = new Map();
  if (g === null) return m;
  const greedy = g.do_sample === false;
  if (greedy) m.set('general.sampling.top_k', ggufVal.i32(1));
  else {
    if (g.temperature !== undefined) m.set('general.sampling.temp', ggufVal.f32(g.temperature));
    if (g.top_p !== undefined) m.set('general.sampling.top_p', ggufVal.f32(g.top_p));
    if (g.top_k !== undefined) m.set('general.sampling.top_k', ggufVal.i32(g.top_k));
  }
  if (g.repetition_penalty !== undefined) m.set('general.sampling.penalty_repeat', ggufVal.f32(g.repetition_penalty));
  return m;
}

function generationFromGguf(src: GgufMetadataSource, cfg: ModelConfig): GenerationConfig | null {
  const temp = ggufNumberOpt(src, 'general.sampling.temp');
  const topP = ggufNumberOpt(src, 'general.sampling.top_p');
  const topK = ggufNumberOpt(src, 'general.sampling.top_k');
  const rep = ggufNumberOpt(src, 'general.sampling.penalty_repeat');
  if (temp === undefined && topP === undefined && topK === undefined && rep === undefined) return null;
  const g: GenerationConfig = { bos_token_id: cfg.bos_token_id, eos_token_id: cfg.eos_token_id };
  if (topK === 1 && temp === undefined) g.do_sample = false;
  else {
    g.do_sample = true;
    if (temp !== undefined) g.temperature = temp;
    if (topP !== undefined) g.top_p = topP;
    if (topK !== undefined && topK > 0) g.top_k = topK;
  }
  if (rep !== undefined) g.repetition_penalty = rep;
  return g;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Whether the file starts with the GGUF magic. */
export async function isGgufFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46;
  } finally {
    await fh.close();
  }
}

export interface GgufModelFile extends ModelFile {
  format: 'gguf';
  gguf: GgufFile;
  arch: GgufArch;
  mla: MlaLayout;
}

/** Permutes whole rows of `rowLen` bytes (any encoding): out row r = in row perm[r] (inverse: out row perm[r] = in row r). */
export function permuteRows(bytes: Uint8Array, perm: Int32Array, rowLen: number, inverse = false): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < perm.length; r++) {
    const [dst, src] = inverse ? [perm[r], r] : [r, perm[r]];
    out.set(bytes.subarray(src * rowLen, (src + 1) * rowLen), dst * rowLen);
  }
  return out;
}

function toFloat32(type: GgmlType, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantize(type, bytes, out);
  return out;
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Opens a GGUF file as a model: config from its metadata, every tensor checked against the layout
 * that config implies (names, shapes, no extras), tensors read on demand under HF names.
 */
export async function openGgufModel(path: string): Promise<GgufModelFile> {
  const gguf = await openGguf(path);
  try {
    const freqs = gguf.tensors.get('rope_freqs.weight');
    const factors = freqs?.type === 'F32' ? toFloat32('F32', await gguf.readTensor('rope_freqs.weight'), freqs.ne[0]) : undefined;
    const { config, arch, mla } = configFromGguf(gguf, factors);

    const plan = ggufLayout(config, mla);
    const problems: string[] = [];
    const planned = new Set<string>();
    for (const t of plan) {
      planned.add(t.name);
      const info = gguf.tensors.get(t.name);
      if (info === undefined) problems.push(`tensor ${t.name} is missing`);
      else if (info.ne.length !== t.ne.length || info.ne.some((d, i) => d !== t.ne[i])) {
        problems.push(`tensor ${t.name} has shape [${info.ne.join(', ')}], the metadata implies [${t.ne.join(', ')}]`);
      }
    }
    const nextn = ggufNumberOpt(gguf, `${arch}.nextn_predict_layers`) ?? 0;
    for (const name of gguf.tensors.keys()) {
      if (planned.has(name) || name === 'rope_freqs.weight') continue;
      // Multi-token-prediction layers (after the main stack) are for speculative decoding; not used here.
      const m = /^blk\.(\d+)\./.exec(name);
      if (m !== null && nextn > 0 && Number(m[1]) >= config.num_hidden_layers) continue;
      problems.push(`unexpected tensor ${name}`);
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 8);
      if (problems.length > 8) shown.push(`… and ${problems.length - 8} more`);
      throw new Error(`${path}: tensors do not match the ${arch} metadata: ${shown.join('; ')}`);
    }

    // HF name → where it comes from.
    const recipes = new Map<string, { plan: GgufTensorPlan; expert?: number }>();
    const kvParts = new Map<string, { k?: GgufTensorPlan; v?: GgufTensorPlan }>();
    for (const t of plan) {
      const p = t.piece;
      if (p.kind === 'copy') recipes.set(p.hf, { plan: t });
      else if (p.kind === 'experts') p.hf.forEach((hf, e) => recipes.set(hf, { plan: t, expert: e }));
      else if (p.kind === 'empty') continue;
      else {
        const parts = kvParts.get(p.hf) ?? {};
        parts[p.kind === 'k_b' ? 'k' : 'v'] = t;
        kvParts.set(p.hf, parts);
      }
    }
    const tensors = new Map<string, TensorEntry>();
    for (const [hf, r] of recipes) {
      const info = gguf.tensors.get(r.plan.name)!;
      const shape = r.plan.ne.length === 1 ? [r.plan.ne[0]] : [r.plan.ne[1], r.plan.ne[0]];
      tensors.set(hf, { type: info.type, shape });
    }
    const cfgDs = config.model_type === 'deepseek_v3' ? config : null;
    for (const hf of kvParts.keys()) {
      const c = cfgDs!;
      tensors.set(hf, { type: 'F32', shape: [c.num_attention_heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank] });
    }
    let weightBytes = 0;
    for (const info of gguf.tensors.values()) weightBytes += info.byteLength;

    const read = async (hf: string): Promise<StoredTensor> => {
      const entry = tensors.get(hf);
      if (entry === undefined) throw new Error(`${path}: no tensor "${hf}"`);
      const r = recipes.get(hf);
      if (r !== undefined) {
        const info = gguf.tensors.get(r.plan.name)!;
        if (r.expert !== undefined) {
          const sliceBytes = info.byteLength / r.plan.ne[2];
          const bytes = await gguf.readTensorRange(r.plan.name, r.expert * sliceBytes, (r.expert + 1) * sliceBytes);
          return { type: info.type, shape: entry.shape, bytes };
        }
        let bytes = await gguf.readTensor(r.plan.name);
        const p = r.plan.piece as Extract<GgufPiece, { kind: 'copy' }>;
        if (p.perm !== undefined) bytes = permuteRows(bytes, p.perm, rowBytes(info.type, r.plan.ne[0]), true);
        return { type: info.type, shape: entry.shape, bytes };
      }
      // MLA's kv_b_proj, rebuilt from attn_k_b (W_UK transposed per head) and attn_v_b.
      const c = cfgDs!;
      const { k, v } = kvParts.get(hf)!;
      const H = c.num_attention_heads, nope = c.qk_nope_head_dim, dv = c.v_head_dim, C = c.kv_lora_rank;
      const kInfo = gguf.tensors.get(k!.name)!, vInfo = gguf.tensors.get(v!.name)!;
      const kb = toFloat32(kInfo.type, await gguf.readTensor(k!.name), nope * C * H);
      const vb = toFloat32(vInfo.type, await gguf.readTensor(v!.name), C * dv * H);
      const out = new Float32Array(H * (nope + dv) * C);
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < nope; j++) {
          const row = (h * (nope + dv) + j) * C;
          for (let r = 0; r < C; r++) out[row + r] = kb[j + nope * (r + C * h)];
        }
        out.set(vb.subarray(h * dv * C, (h + 1) * dv * C), (h * (nope + dv) + nope) * C);
      }
      return { type: 'F32', shape: entry.shape, bytes: f32Bytes(out) };
    };

    return {
      path,
      format: 'gguf',
      config,
      generationConfig: generationFromGguf(gguf, config),
      tensors,
      weightBytes,
      metadata: {},
      read,
      close: () => gguf.close(),
      gguf,
      arch,
      mla,
    };
  } catch (err) {
    await gguf.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing helpers

/** A GGUF tensor's float32 contents (ggml order) made from HF tensors given as float32. */
export function buildGgufTensor(cfg: ModelConfig, t: GgufTensorPlan, get: (hf: string) => Float32Array): Float32Array {
  const p = t.piece;
  if (p.kind === 'copy') {
    const src = get(p.hf);
    if (p.perm === undefined) return src;
    const cols = t.ne[0];
    const out = new Float32Array(src.length);
    for (let r = 0; r < p.perm.length; r++) out.set(src.subarray(p.perm[r] * cols, (p.perm[r] + 1) * cols), r * cols);
    return out;
  }
  if (p.kind === 'empty') return new Float32Array(0);
  if (p.kind === 'experts') {
    const per = t.ne[0] * t.ne[1];
    const out = new Float32Array(per * p.hf.length);
    p.hf.forEach((name, e) => out.set(get(name), e * per));
    return out;
  }
  const c = cfg as DeepseekV3Config;
  const H = c.num_attention_heads, nope = c.qk_nope_head_dim, dv = c.v_head_dim, C = c.kv_lora_rank;
  const kvb = get(p.hf);
  if (p.kind === 'k_b') {
    const out = new Float32Array(nope * C * H);
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < nope; j++) {
        const row = (h * (nope + dv) + j) * C;
        for (let r = 0; r < C; r++) out[j + nope * (r + C * h)] = kvb[row + r];
      }
    }
    return out;
  }
  const out = new Float32Array(C * dv * H);
  for (let h = 0; h < H; h++) out.set(kvb.subarray((h * (nope + dv) + nope) * C, (h * (nope + dv) + nope + dv) * C), h * dv * C);
  return out;
}

/** llama.cpp's rope_freqs tensor for a Llama 3.1 config (null when the model has no such scaling). */
export function ropeFreqsTensor(cfg: ModelConfig): Float32Array | null {
  if (cfg.model_type !== 'llama' || cfg.rope_scaling === null || cfg.rope_scaling.rope_type !== 'llama3') return null;
  const s = cfg.rope_scaling;
  const d = cfg.head_dim;
  return Float32Array.from({ length: d / 2 }, (_, i) => llama3Divisor(Math.pow(cfg.rope_theta, (-2 * i) / d), s));
}
