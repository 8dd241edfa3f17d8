// The model configuration IS the Hugging Face config.json: same field names, same meanings, so a
// checkpoint directory loads in transformers and vLLM as it is. Three families:
// DeepseekV3ForCausalLM (MLA + DeepSeekMoE), LlamaForCausalLM and Qwen2ForCausalLM (dense, GQA).
//
// `parseModelConfig` is the only way in: it checks every field nanoseek reads (type, range,
// cross-field consistency), fills the defaults transformers would apply, and keeps fields it does
// not know (HF configs carry many) untouched so a load → save round trip loses nothing. Features
// nanoseek does not implement (sliding windows, extra biases, other activations, exotic RoPE knobs)
// are refused here rather than silently ignored later.

import { isRecord, JsonFields, show } from '../util/json-fields.js';

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

/** YaRN context extension. Both `type` (DeepSeek's code) and `rope_type` (transformers) are written. */
export interface YarnRopeScaling {
  type: 'yarn';
  rope_type: 'yarn';
  factor: number;
  original_max_position_embeddings: number;
  beta_fast: number;
  beta_slow: number;
  mscale: number;
  /** Non-zero: softmax scale is multiplied by m², m = 0.1·mscale_all_dim·ln(factor) + 1. */
  mscale_all_dim: number;
}

/** Llama 3.1's frequency-dependent rescaling (used by R1-Distill-Llama). */
export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

export type RopeScaling = YarnRopeScaling | Llama3RopeScaling;

interface CommonConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  hidden_act: 'silu';
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  max_position_embeddings: number;
  vocab_size: number;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  tie_word_embeddings: boolean;
  attention_dropout: number;
  initializer_range: number;
  use_cache: boolean;
  torch_dtype: TorchDtype;
}

export interface DeepseekV3Config extends CommonConfig {
  architectures: ['DeepseekV3ForCausalLM'];
  model_type: 'deepseek_v3';
  moe_intermediate_size: number;
  /** null: queries are projected directly (q_proj); otherwise through a rank-q_lora_rank bottleneck. */
  q_lora_rank: number | null;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  n_routed_experts: number;
  n_shared_experts: number;
  num_experts_per_tok: number;
  n_group: number;
  topk_group: number;
  routed_scaling_factor: number;
  scoring_func: 'sigmoid' | 'softmax';
  topk_method: 'noaux_tc' | 'greedy' | 'group_limited_greedy';
  norm_topk_prob: boolean;
  first_k_dense_replace: number;
  /** Always 1: transformers' DeepseekV3 makes every layer from first_k_dense_replace on MoE. */
  moe_layer_freq: 1;
  num_nextn_predict_layers: number;
  /** true: RoPE rotates adjacent pairs (x[2i], x[2i+1]), as DeepSeek's weights expect. */
  rope_interleave: boolean;
  attention_bias: false;
}

export interface LlamaConfig extends CommonConfig {
  architectures: ['LlamaForCausalLM'];
  model_type: 'llama';
  head_dim: number;
  attention_bias: false;
  mlp_bias: false;
}

/** Qwen2 is Llama with biases on the q/k/v projections. */
export interface Qwen2Config extends CommonConfig {
  architectures: ['Qwen2ForCausalLM'];
  model_type: 'qwen2';
  head_dim: number;
  use_sliding_window: false;
  sliding_window: number | null;
  max_window_layers: number;
}

/**
 * A parsed config.json. The object may also carry fields nanoseek does not interpret (kept for
 * the round trip); `JSON.stringify(config)` is the config.json to write.
 */
export type ModelConfig = DeepseekV3Config | LlamaConfig | Qwen2Config;
export type DenseConfig = LlamaConfig | Qwen2Config;
export type ModelType = ModelConfig['model_type'];

const ARCHITECTURE: Record<ModelType, string> = {
  deepseek_v3: 'DeepseekV3ForCausalLM',
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
};

// ---------------------------------------------------------------------------------------------
// Parsing

/** config.json fields, plus the checks only a model config needs. */
class Fields extends JsonFields {
  /** A field nanoseek only supports at one value (a feature our model code does not implement). */
  only<T extends boolean | string | number>(field: string, value: T, why: string): T {
    if (this.take(field, value) !== value) this.fail(field, why);
    return value;
  }

  tokenId(field: string, vocab: number, fallback: number | null, allowMinusOne = false): number | null {
    const v = this.take(field, fallback);
    if (v === null || (allowMinusOne && v === -1)) return v;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= vocab) {
      this.fail(field, `must be null or a token id in [0, ${vocab})`);
    }
    return v;
  }

  tokenIds(field: string, vocab: number, fallback: number | null): number | number[] | null {
    const v = this.obj[field];
    if (!Array.isArray(v)) return this.tokenId(field, vocab, fallback);
    this.used.add(field);
    if (v.length === 0) this.fail(field, 'must not be an empty list');
    for (const id of v) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id >= vocab) {
        this.fail(field, `every entry must be a token id in [0, ${vocab})`);
      }
    }
    return [...(v as number[])];
  }
}

function parseRopeScaling(f: Fields, source: string, model: ModelType, rs: unknown): RopeScaling | null {
  if (rs === null || rs === undefined) return null;
  // The value may come from rope_parameters, so it is passed to fail() explicitly.
  if (!isRecord(rs)) f.fail('rope_scaling', 'must be null or an object', rs);
  const kind = rs.rope_type ?? rs.type;
  if (rs.type !== undefined && rs.rope_type !== undefined && rs.type !== rs.rope_type) {
    f.fail('rope_scaling', '"type" and "rope_type" disagree', rs);
  }
  if (kind === 'default') return null;
  const r: Fields = new Fields(rs, source, 'rope_scaling.');
  r.raw('type');
  r.raw('rope_type');
  let out: RopeScaling;
  if (kind === 'yarn') {
    const factor = r.num('factor', 1);
    const original = r.int('original_max_position_embeddings', 1);
    const betaFast = r.num('beta_fast', 0, 32, Infinity, true);
    const betaSlow = r.num('beta_slow', 0, 1, Infinity, true);
    if (betaSlow >= betaFast) r.fail('beta_slow', `must be below beta_fast (${betaFast})`);
    out = {
      type: 'yarn',
      rope_type: 'yarn',
      factor,
      original_max_position_embeddings: original,
      beta_fast: betaFast,
      beta_slow: betaSlow,
      mscale: r.num('mscale', 0, 1),
      mscale_all_dim: r.num('mscale_all_dim', 0, 0),
    };
  } else if (kind === 'llama3' && model === 'llama') {
    const low = r.num('low_freq_factor', 0, undefined, Infinity, true);
    const high = r.num('high_freq_factor', 0, undefined, Infinity, true);
    if (high <= low) r.fail('high_freq_factor', `must exceed low_freq_factor (${low})`);
    out = {
      rope_type: 'llama3',
      factor: r.num('factor', 1),
      low_freq_factor: low,
      high_freq_factor: high,
      original_max_position_embeddings: r.int('original_max_position_embeddings', 1),
    };
  } else {
    const allowed = model === 'llama' ? '"yarn" or "llama3"' : '"yarn"';
    f.fail('rope_scaling', `rope type ${show(kind)} is not supported for ${model} (use null, ${allowed})`, rs);
  }
  // Extra YaRN/llama3 knobs (attention_factor, truncate, …) change the numerics; refusing them
  // beats running a model that differs from what transformers computes.
  const unknown = Object.keys(r.extras());
  if (unknown.length > 0) f.fail('rope_scaling', `unsupported key(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}`, rs);
  return out;
}

/**
 * Validate a config.json object and return it with defaults filled in. `source` (a file path or a
 * description) starts every error message, which also names the field and its value.
 */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (!isRecord(json)) throw new Error(`${source}: a model config must be a JSON object, got ${show(json)}`);
  const f: Fields = new Fields(json, source);
  const modelType = f.oneOf<ModelType>('model_type', ['deepseek_v3', 'llama', 'qwen2']);
  const arch = ARCHITECTURE[modelType];
  const archs = f.raw('architectures');
  if (archs !== undefined && !(Array.isArray(archs) && archs.length === 1 && archs[0] === arch)) {
    f.fail('architectures', `must be ["${arch}"] for model_type "${modelType}"`);
  }

  // transformers 5 folds rope_theta/rope_scaling into rope_parameters; we write the older pair,
  // which both generations read, so that is what the parsed config carries.
  let ropeTheta = f.raw('rope_theta');
  let ropeScaling = f.raw('rope_scaling');
  const ropeParams = f.raw('rope_parameters');
  if (ropeParams !== undefined && ropeParams !== null) {
    if (!isRecord(ropeParams)) f.fail('rope_parameters', 'must be an object');
    const { rope_theta: paramsTheta, ...scaling } = ropeParams;
    ropeTheta ??= paramsTheta;
    ropeScaling ??= scaling;
  }
  ropeTheta ??= 10000;
  if (typeof ropeTheta !== 'number' || !Number.isFinite(ropeTheta) || ropeTheta <= 1) {
    f.fail('rope_theta', 'must be a finite number > 1', ropeTheta);
  }
  // transformers 5 renamed torch_dtype to dtype; we write the old name, which both read.
  const newDtype = f.raw('dtype');
  const dtype = f.raw('torch_dtype') ?? newDtype;

  const vocab = f.int('vocab_size', 1);
  const hidden = f.int('hidden_size', 1);
  const heads = f.int('num_attention_heads', 1);

  const common: CommonConfig = {
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: f.int('intermediate_size', 1),
    num_hidden_layers: f.int('num_hidden_layers', 1),
    num_attention_heads: heads,
    num_key_value_heads: f.int('num_key_value_heads', 1, heads),
    hidden_act: f.only('hidden_act', 'silu', 'only "silu" (SwiGLU MLPs) is supported'),
    rms_norm_eps: f.num('rms_norm_eps', 0, 1e-6, 0.1, true),
    rope_theta: ropeTheta,
    rope_scaling: parseRopeScaling(f, source, modelType, ropeScaling),
    max_position_embeddings: f.int('max_position_embeddings', 1, modelType === 'deepseek_v3' ? 4096 : modelType === 'llama' ? 2048 : 32768),
    bos_token_id: f.tokenId('bos_token_id', vocab, modelType === 'deepseek_v3' ? 0 : modelType === 'llama' ? 1 : null),
    eos_token_id: f.tokenIds('eos_token_id', vocab, modelType === 'deepseek_v3' ? 1 : modelType === 'llama' ? 2 : null),
    // Older Llama configs use -1 for "no pad token".
    pad_token_id: f.tokenId('pad_token_id', vocab, null, true),
    tie_word_embeddings: f.bool('tie_word_embeddings', false),
    attention_dropout: f.num('attention_dropout', 0, 0, 0.99),
    initializer_range: f.num('initializer_range', 0, 0.02),
    use_cache: f.bool('use_cache', true),
    torch_dtype: 'float32',
  };
  if (dtype !== undefined && dtype !== null) {
    if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
      f.fail(json.torch_dtype !== undefined ? 'torch_dtype' : 'dtype', 'must be "float32", "float16" or "bfloat16"');
    }
    common.torch_dtype = dtype;
  }

  let cfg: ModelConfig;
  if (modelType === 'deepseek_v3') cfg = parseDeepseek(f, common);
  else cfg = parseDense(f, common, modelType);
  return { ...cfg, ...f.extras() } as ModelConfig;
}

function parseDeepseek(f: Fields, c: CommonConfig): DeepseekV3Config {
  // MLA expands the shared latent into a key and value for every head; transformers'
  // implementation breaks if num_key_value_heads says otherwise.
  if (c.num_key_value_heads !== c.num_attention_heads) {
    f.fail('num_key_value_heads', `must equal num_attention_heads (${c.num_attention_heads}) for MLA`);
  }
  const qLora = f.raw('q_lora_rank');
  if (qLora === undefined) f.fail('q_lora_rank', 'required field is missing (null = no q-LoRA)');
  if (qLora !== null && !(typeof qLora === 'number' && Number.isSafeInteger(qLora) && qLora >= 1)) {
    f.fail('q_lora_rank', 'must be null (no q-LoRA) or a positive integer');
  }
  const ropeDim = f.int('qk_rope_head_dim', 2);
  if (ropeDim % 2 !== 0) f.fail('qk_rope_head_dim', 'must be even (RoPE rotates pairs)');
  const layers = c.num_hidden_layers;
  const experts = f.int('n_routed_experts', 1);
  const topk = f.int('num_experts_per_tok', 1, undefined, experts);
  const groups = f.int('n_group', 1);
  if (experts % groups !== 0) f.fail('n_group', `must divide n_routed_experts (${experts})`);
  const topkGroup = f.int('topk_group', 1, undefined, groups);
  const method = f.oneOf('topk_method', ['noaux_tc', 'greedy', 'group_limited_greedy'] as const, 'noaux_tc');
  const perGroup = experts / groups;
  if (method !== 'greedy') {
    if (topk > topkGroup * perGroup) {
      f.fail('num_experts_per_tok', `exceeds the ${topkGroup * perGroup} experts in the topk_group (${topkGroup}) groups kept by ${method} routing`);
    }
    if (method === 'noaux_tc' && perGroup < 2) {
      f.fail('n_group', `noaux_tc scores a group by its top-2 experts, so each group needs >= 2 (n_routed_experts / n_group = ${perGroup})`);
    }
  }
  const cfg: DeepseekV3Config = {
    architectures: ['DeepseekV3ForCausalLM'],
    model_type: 'deepseek_v3',
    ...c,
    moe_intermediate_size: f.int('moe_intermediate_size', 1),
    q_lora_rank: qLora,
    kv_lora_rank: f.int('kv_lora_rank', 1),
    qk_nope_head_dim: f.int('qk_nope_head_dim', 1),
    qk_rope_head_dim: ropeDim,
    v_head_dim: f.int('v_head_dim', 1),
    n_routed_experts: experts,
    n_shared_experts: f.int('n_shared_experts', 0, 1),
    num_experts_per_tok: topk,
    n_group: groups,
    topk_group: topkGroup,
    routed_scaling_factor: f.num('routed_scaling_factor', 0, 2.5, Infinity, true),
    scoring_func: f.oneOf('scoring_func', ['sigmoid', 'softmax'] as const, 'sigmoid'),
    topk_method: method,
    norm_topk_prob: f.bool('norm_topk_prob', true),
    first_k_dense_replace: f.int('first_k_dense_replace', 0, undefined, layers),
    moe_layer_freq: f.only('moe_layer_freq', 1, 'only 1 is supported (transformers ignores it and makes every layer from first_k_dense_replace on MoE)'),
    num_nextn_predict_layers: f.int('num_nextn_predict_layers', 0, 0),
    rope_interleave: f.bool('rope_interleave', true),
    attention_bias: f.only('attention_bias', false, 'attention biases are not supported for deepseek_v3'),
  };
  return cfg;
}

function parseDense(f: Fields, c: CommonConfig, modelType: 'llama' | 'qwen2'): DenseConfig {
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    f.fail('num_key_value_heads', `must divide num_attention_heads (${c.num_attention_heads})`);
  }
  const implied = c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(implied) && !f.has('head_dim')) {
    f.fail('hidden_size', `is not divisible by num_attention_heads (${c.num_attention_heads}); set head_dim`);
  }
  const headDim = f.int('head_dim', 2, implied);
  if (headDim % 2 !== 0) f.fail('head_dim', 'must be even (RoPE rotates pairs)');
  if (modelType === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...c,
      head_dim: headDim,
      attention_bias: f.only('attention_bias', false, 'attention biases are not supported for llama (use qwen2 for q/k/v biases)'),
      mlp_bias: f.only('mlp_bias', false, 'MLP biases are not supported'),
    };
  }
  // Older transformers derive Qwen2's head size from hidden_size and ignore head_dim.
  if (headDim !== implied) f.fail('head_dim', `must equal hidden_size / num_attention_heads (${implied}) for qwen2`);
  const sliding = f.raw('sliding_window');
  if (sliding !== undefined && sliding !== null && !(typeof sliding === 'number' && Number.isSafeInteger(sliding) && sliding >= 1)) {
    f.fail('sliding_window', 'must be null or a positive integer');
  }
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    ...c,
    head_dim: headDim,
    use_sliding_window: f.only('use_sliding_window', false, 'sliding-window attention is not supported'),
    sliding_window: sliding === undefined ? 4096 : sliding,
    max_window_layers: f.int('max_window_layers', 0, 28),
  };
}

// ---------------------------------------------------------------------------------------------
// Structure

/** Whether decoder layer `layer` (MTP layers count from num_hidden_layers) uses a MoE MLP. */
export function isMoeLayer(cfg: ModelConfig, layer: number): boolean {
  return cfg.model_type === 'deepseek_v3' && layer >= cfg.first_k_dense_replace;
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

type Role = 'embedding' | 'routed' | 'mtp' | 'other';

interface RoleSpec extends TensorSpec {
  role: Role;
}

function decoderLayer(cfg: ModelConfig, i: number, role: Role, out: RoleSpec[]): void {
  const p = `model.layers.${i}.`;
  const D = cfg.hidden_size;
  const add = (name: string, shape: number[], r: Role = role) => out.push({ name: p + name, shape, role: r });
  add('input_layernorm.weight', [D]);
  if (cfg.model_type === 'deepseek_v3') {
    const H = cfg.num_attention_heads;
    const qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim;
    if (cfg.q_lora_rank === null) add('self_attn.q_proj.weight', [H * qk, D]);
    else {
      add('self_attn.q_a_proj.weight', [cfg.q_lora_rank, D]);
      add('self_attn.q_a_layernorm.weight', [cfg.q_lora_rank]);
      add('self_attn.q_b_proj.weight', [H * qk, cfg.q_lora_rank]);
    }
    add('self_attn.kv_a_proj_with_mqa.weight', [cfg.kv_lora_rank + cfg.qk_rope_head_dim, D]);
    add('self_attn.kv_a_layernorm.weight', [cfg.kv_lora_rank]);
    add('self_attn.kv_b_proj.weight', [H * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank]);
    add('self_attn.o_proj.weight', [D, H * cfg.v_head_dim]);
  } else {
    const q = cfg.num_attention_heads * cfg.head_dim;
    const kv = cfg.num_key_value_heads * cfg.head_dim;
    const bias = cfg.model_type === 'qwen2';
    add('self_attn.q_proj.weight', [q, D]);
    if (bias) add('self_attn.q_proj.bias', [q]);
    add('self_attn.k_proj.weight', [kv, D]);
    if (bias) add('self_attn.k_proj.bias', [kv]);
    add('self_attn.v_proj.weight', [kv, D]);
    if (bias) add('self_attn.v_proj.bias', [kv]);
    add('self_attn.o_proj.weight', [D, q]);
  }
  add('post_attention_layernorm.weight', [D]);
  const mlp = (prefix: string, width: number, r: Role = role) => {
    add(`${prefix}.gate_proj.weight`, [width, D], r);
    add(`${prefix}.up_proj.weight`, [width, D], r);
    add(`${prefix}.down_proj.weight`, [D, width], r);
  };
  if (cfg.model_type === 'deepseek_v3' && isMoeLayer(cfg, i)) {
    const E = cfg.n_routed_experts;
    add('mlp.gate.weight', [E, D]);
    // Only noaux_tc routing has the load-balancing bias (vLLM creates it for that method alone).
    if (cfg.topk_method === 'noaux_tc') add('mlp.gate.e_score_correction_bias', [E]);
    for (let e = 0; e < E; e++) mlp(`mlp.experts.${e}`, cfg.moe_intermediate_size, role === 'mtp' ? 'mtp' : 'routed');
    if (cfg.n_shared_experts > 0) mlp('mlp.shared_experts', cfg.moe_intermediate_size * cfg.n_shared_experts);
  } else {
    mlp('mlp', cfg.intermediate_size);
  }
}

function tensorSpecs(cfg: ModelConfig): RoleSpec[] {
  const D = cfg.hidden_size;
  const V = cfg.vocab_size;
  const out: RoleSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, D], role: 'embedding' }];
  for (let i = 0; i < cfg.num_hidden_layers; i++) decoderLayer(cfg, i, 'other', out);
  out.push({ name: 'model.norm.weight', shape: [D], role: 'other' });
  if (!cfg.tie_word_embeddings) out.push({ name: 'lm_head.weight', shape: [V, D], role: 'other' });
  if (cfg.model_type === 'deepseek_v3') {
    // MTP modules, laid out as DeepSeek-V3's checkpoint does (vLLM's MTP loader reads this). Each
    // stores its own copy of the embedding and head, which training keeps equal to the main ones.
    for (let j = 0; j < cfg.num_nextn_predict_layers; j++) {
      const i = cfg.num_hidden_layers + j;
      const p = `model.layers.${i}.`;
      const add = (name: string, shape: number[]) => out.push({ name: p + name, shape, role: 'mtp' });
      add('embed_tokens.weight', [V, D]);
      add('enorm.weight', [D]);
      add('hnorm.weight', [D]);
      add('eh_proj.weight', [D, 2 * D]);
      decoderLayer(cfg, i, 'mtp', out);
      add('shared_head.norm.weight', [D]);
      add('shared_head.head.weight', [V, D]);
    }
  }
  return out;
}

/** Every tensor a checkpoint of this config holds, with Hugging Face names and [out, in] shapes. */
export function expectedTensors(cfg: ModelConfig): TensorSpec[] {
  return tensorSpecs(cfg).map(({ name, shape }) => ({ name, shape }));
}

export interface ParameterCounts {
  /** All parameters of the main model (MTP modules excluded). */
  total: number;
  /** Used per token: everything but the routed experts, plus num_experts_per_tok of them per MoE layer. */
  active: number;
  /** The input embedding matrix alone (included in total and active). */
  embedding: number;
  /** The MTP modules (not in total). */
  mtp: number;
}

export function countParameters(cfg: ModelConfig): ParameterCounts {
  const counts: Record<Role, number> = { embedding: 0, routed: 0, mtp: 0, other: 0 };
  for (const t of tensorSpecs(cfg)) counts[t.role] += t.shape.reduce((a, b) => a * b, 1);
  const total = counts.embedding + counts.routed + counts.other;
  const routedActive = cfg.model_type === 'deepseek_v3' ? (counts.routed / cfg.n_routed_experts) * cfg.num_experts_per_tok : 0;
  return { total, active: total - counts.routed + routedActive, embedding: counts.embedding, mtp: counts.mtp };
}

/**
 * KV-cache bytes per token across all layers (MTP excluded). MLA caches only the latent and the
 * shared rope key, (kv_lora_rank + qk_rope_head_dim) numbers per layer; GQA caches a key and a value
 * per KV head.
 */
export function kvCacheBytesPerToken(cfg: ModelConfig, bytesPerElement = 4): number {
  const perLayer =
    cfg.model_type === 'deepseek_v3'
      ? cfg.kv_lora_rank + cfg.qk_rope_head_dim
      : 2 * cfg.num_key_value_heads * cfg.head_dim;
  return perLayer * bytesPerElement * cfg.num_hidden_layers;
}

// ---------------------------------------------------------------------------------------------
// Presets

export const PRESET_NAMES = ['nano', 'micro', 'small', 'nano-dense', 'micro-dense', 'small-dense'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface PresetOptions {
  /** Depends on the tokenizer; the presets' sizes are quoted for the default, 4096. */
  vocabSize?: number;
  bosTokenId?: number;
  eosTokenId?: number;
  maxPositionEmbeddings?: number;
  /** DeepSeek presets: add one multi-token-prediction module (num_nextn_predict_layers = 1). */
  mtp?: boolean;
  /** Dense presets: which family (qwen2 adds q/k/v biases). */
  denseFamily?: 'llama' | 'qwen2';
}

interface MoeShape {
  hidden: number;
  layers: number;
  heads: number;
  qLora: number | null;
  kvLora: number;
  nope: number;
  rope: number;
  v: number;
  denseInter: number;
  expertInter: number;
  context: number;
}

interface DenseShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
  context: number;
}

// Scaled-down DeepSeek-V3: same ratios where they survive shrinking (decoupled rope dim = half the
// nope dim, v = nope, first layer dense, 16 fine-grained routed experts in 4 groups of which 2 are
// kept, top-4, 1 shared). nano skips q-LoRA (a 128-wide model gains nothing from a bottleneck);
// micro and small use it like V3.
const MOE_PRESETS: Record<'nano' | 'micro' | 'small', MoeShape> = {
  nano: { hidden: 128, layers: 4, heads: 4, qLora: null, kvLora: 64, nope: 32, rope: 16, v: 32, denseInter: 384, expertInter: 64, context: 512 },
  micro: { hidden: 256, layers: 6, heads: 8, qLora: 128, kvLora: 96, nope: 32, rope: 16, v: 32, denseInter: 768, expertInter: 96, context: 1024 },
  small: { hidden: 512, layers: 8, heads: 8, qLora: 256, kvLora: 128, nope: 64, rope: 32, v: 64, denseInter: 1536, expertInter: 192, context: 2048 },
};

// Dense relatives sized to about the same ACTIVE parameters as the MoE preset of the same name,
// the fair comparison for compute per token.
const DENSE_PRESETS: Record<'nano-dense' | 'micro-dense' | 'small-dense', DenseShape> = {
  'nano-dense': { hidden: 128, layers: 4, heads: 4, kvHeads: 2, inter: 384, context: 512 },
  'micro-dense': { hidden: 256, layers: 6, heads: 8, kvHeads: 4, inter: 576, context: 1024 },
  'small-dense': { hidden: 512, layers: 8, heads: 8, kvHeads: 4, inter: 1024, context: 2048 },
};

export function presetConfig(name: PresetName, opts: PresetOptions = {}): ModelConfig {
  const vocab = opts.vocabSize ?? 4096;
  const source = `preset "${name}"`;
  const tokens = { vocab_size: vocab, bos_token_id: opts.bosTokenId ?? 0, eos_token_id: opts.eosTokenId ?? 1 };
  if (name === 'nano' || name === 'micro' || name === 'small') {
    if (opts.denseFamily) throw new Error(`${source}: denseFamily applies to the -dense presets only`);
    const s = MOE_PRESETS[name];
    return parseModelConfig(
      {
        architectures: ['DeepseekV3ForCausalLM'],
        model_type: 'deepseek_v3',
        ...tokens,
        hidden_size: s.hidden,
        intermediate_size: s.denseInter,
        moe_intermediate_size: s.expertInter,
        num_hidden_layers: s.layers,
        num_attention_heads: s.heads,
        num_key_value_heads: s.heads,
        q_lora_rank: s.qLora,
        kv_lora_rank: s.kvLora,
        qk_nope_head_dim: s.nope,
        qk_rope_head_dim: s.rope,
        v_head_dim: s.v,
        n_routed_experts: 16,
        n_shared_experts: 1,
        num_experts_per_tok: 4,
        n_group: 4,
        topk_group: 2,
        routed_scaling_factor: 2.5,
        scoring_func: 'sigmoid',
        topk_method: 'noaux_tc',
        norm_topk_prob: true,
        first_k_dense_replace: 1,
        moe_layer_freq: 1,
        num_nextn_predict_layers: opts.mtp ? 1 : 0,
        max_position_embeddings: opts.maxPositionEmbeddings ?? s.context,
        rope_theta: 10000,
        rope_scaling: null,
        rope_interleave: true,
        rms_norm_eps: 1e-6,
        tie_word_embeddings: false,
        torch_dtype: 'float32',
      },
      source,
    );
  }
  if (opts.mtp) throw new Error(`${source}: mtp applies to the DeepSeek presets only`);
  const s = DENSE_PRESETS[name];
  const family = opts.denseFamily ?? 'llama';
  return parseModelConfig(
    {
      architectures: [ARCHITECTURE[family]],
      model_type: family,
      ...tokens,
      hidden_size: s.hidden,
      intermediate_size: s.inter,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      num_key_value_heads: s.kvHeads,
      head_dim: s.hidden / s.heads,
      max_position_embeddings: opts.maxPositionEmbeddings ?? s.context,
      rope_theta: 10000,
      rope_scaling: null,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
    },
    source,
  );
}

// ---------------------------------------------------------------------------------------------
// Description

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

function describeRope(cfg: ModelConfig): string {
  const layout = cfg.model_type === 'deepseek_v3' && cfg.rope_interleave ? 'interleaved' : 'rotate-half';
  const rs = cfg.rope_scaling;
  const scaling = rs ? `, ${rs.rope_type} ×${rs.factor} over ${rs.original_max_position_embeddings}` : '';
  return `RoPE θ=${cfg.rope_theta} ${layout}${scaling}`;
}

/** Human-readable summary for `nanoseek info`. */
export function describeModel(cfg: ModelConfig): string {
  const p = countParameters(cfg);
  const kv = kvCacheBytesPerToken(cfg);
  const lines = [`${cfg.architectures[0]} (model_type ${cfg.model_type})`];
  const params = `  parameters: ${formatCount(p.total)} total, ${formatCount(p.active)} active per token, embedding ${formatCount(p.embedding)}`;
  lines.push(p.mtp > 0 ? `${params}, MTP modules ${formatCount(p.mtp)} more` : params);
  const L = cfg.num_hidden_layers;
  const tied = cfg.tie_word_embeddings ? 'tied' : 'untied';
  if (cfg.model_type === 'deepseek_v3') {
    const dense = Math.min(cfg.first_k_dense_replace, L);
    lines.push(`  layers: ${L} (${dense} dense + ${L - dense} MoE), hidden ${cfg.hidden_size}, vocab ${cfg.vocab_size} (${tied} head), context ${cfg.max_position_embeddings}`);
    const q = cfg.q_lora_rank === null ? 'direct q_proj' : `q_lora_rank ${cfg.q_lora_rank}`;
    lines.push(
      `  attention: MLA, ${cfg.num_attention_heads} heads, ${q}, kv_lora_rank ${cfg.kv_lora_rank}, ` +
        `qk ${cfg.qk_nope_head_dim}+${cfg.qk_rope_head_dim} (nope+rope), v ${cfg.v_head_dim}, ${describeRope(cfg)}`,
    );
    const groups = cfg.topk_method === 'greedy' ? '' : `, ${cfg.n_group} groups keep ${cfg.topk_group}`;
    lines.push(
      `  MoE: ${cfg.n_routed_experts} routed experts (top-${cfg.num_experts_per_tok}${groups}) + ${cfg.n_shared_experts} shared, ` +
        `width ${cfg.moe_intermediate_size}; ${cfg.scoring_func} scores, ${cfg.topk_method}, ` +
        `${cfg.norm_topk_prob ? 'normalised' : 'raw'} weights ×${cfg.routed_scaling_factor}; dense MLP width ${cfg.intermediate_size}`,
    );
    if (cfg.num_nextn_predict_layers > 0) lines.push(`  MTP: ${cfg.num_nextn_predict_layers} module(s) predicting further tokens`);
  } else {
    lines.push(`  layers: ${L} dense, hidden ${cfg.hidden_size}, vocab ${cfg.vocab_size} (${tied} head), context ${cfg.max_position_embeddings}`);
    const bias = cfg.model_type === 'qwen2' ? ', q/k/v bias' : '';
    lines.push(
      `  attention: GQA, ${cfg.num_attention_heads} heads / ${cfg.num_key_value_heads} KV heads of ${cfg.head_dim}${bias}, ${describeRope(cfg)}`,
    );
    lines.push(`  MLP: SwiGLU width ${cfg.intermediate_size}`);
  }
  lines.push(
    `  KV cache: ${formatBytes(kv)} per token (f32), ${formatBytes(kv * cfg.max_position_embeddings)} at the full ${cfg.max_position_embeddings}-token context`,
  );
  return lines.join('\n');
}
