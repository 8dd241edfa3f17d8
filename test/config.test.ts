// Model configuration: parsing real Hugging Face configs, validation messages, presets, sizes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  countParameters,
  describeModel,
  expectedTensors,
  isMoeLayer,
  kvCacheBytesPerToken,
  parseModelConfig,
  presetConfig,
  PRESET_NAMES,
  type ModelConfig,
} from '../src/model/config.js';

// config.json of DeepSeek-V3 (quantization_config abridged), as published.
const DEEPSEEK_V3 = {
  architectures: ['DeepseekV3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  auto_map: { AutoConfig: 'configuration_deepseek.DeepseekV3Config', AutoModel: 'modeling_deepseek.DeepseekV3Model' },
  aux_loss_alpha: 0.001,
  bos_token_id: 0,
  eos_token_id: 1,
  ep_size: 1,
  first_k_dense_replace: 3,
  hidden_act: 'silu',
  hidden_size: 7168,
  initializer_range: 0.02,
  intermediate_size: 18432,
  kv_lora_rank: 512,
  max_position_embeddings: 163840,
  model_type: 'deepseek_v3',
  moe_intermediate_size: 2048,
  moe_layer_freq: 1,
  n_group: 8,
  n_routed_experts: 256,
  n_shared_experts: 1,
  norm_topk_prob: true,
  num_attention_heads: 128,
  num_experts_per_tok: 8,
  num_hidden_layers: 61,
  num_key_value_heads: 128,
  num_nextn_predict_layers: 1,
  pretraining_tp: 1,
  q_lora_rank: 1536,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] },
  rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 1.0, mscale_all_dim: 1.0, original_max_position_embeddings: 4096, type: 'yarn' },
  rope_theta: 10000,
  routed_scaling_factor: 2.5,
  scoring_func: 'sigmoid',
  seq_aux: true,
  tie_word_embeddings: false,
  topk_group: 4,
  topk_method: 'noaux_tc',
  torch_dtype: 'bfloat16',
  transformers_version: '4.33.1',
  use_cache: true,
  v_head_dim: 128,
  vocab_size: 129280,
};

const R1_DISTILL_QWEN_1_5B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 1536,
  initializer_range: 0.02,
  intermediate_size: 8960,
  max_position_embeddings: 131072,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 12,
  num_hidden_layers: 28,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.44.0',
  use_cache: true,
  use_mrope: false,
  use_sliding_window: false,
  vocab_size: 151936,
};

const R1_DISTILL_LLAMA_8B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

const within = (x: number, target: number, rel: number) => Math.abs(x - target) <= rel * target;

describe('parseModelConfig', () => {
  test('DeepSeek-V3: parses, keeps unknown fields, and its sizes come out as published', () => {
    const cfg = parseModelConfig(DEEPSEEK_V3, 'DeepSeek-V3/config.json');
    assert.equal(cfg.model_type, 'deepseek_v3');
    if (cfg.model_type !== 'deepseek_v3') return;
    assert.deepEqual(cfg.rope_scaling, { ...DEEPSEEK_V3.rope_scaling, rope_type: 'yarn' });
    assert.deepEqual((cfg as unknown as Record<string, unknown>).quantization_config, DEEPSEEK_V3.quantization_config);
    assert.equal((cfg as unknown as Record<string, unknown>).seq_aux, true);
    const p = countParameters(cfg);
    // 671B main model + 14B MTP module, 37B activated per token (DeepSeek-V3 technical report).
    assert.ok(within(p.total, 671e9, 0.005), `total ${p.total}`);
    assert.ok(within(p.mtp, 14e9, 0.05), `mtp ${p.mtp}`);
    assert.ok(within(p.active, 37e9, 0.03), `active ${p.active}`);
    // 576 cached numbers per token per layer.
    assert.equal(kvCacheBytesPerToken(cfg, 2), 576 * 2 * 61);
    assert.ok(isMoeLayer(cfg, 3) && !isMoeLayer(cfg, 2) && isMoeLayer(cfg, 61));
  });

  test('R1-Distill-Qwen-1.5B and R1-Distill-Llama-8B parse with the published sizes', () => {
    const qwen = parseModelConfig(R1_DISTILL_QWEN_1_5B);
    assert.ok(within(countParameters(qwen).total, 1.777e9, 0.002), `${countParameters(qwen).total}`);
    assert.equal(kvCacheBytesPerToken(qwen, 2), 2 * 2 * 128 * 2 * 28);
    const llama = parseModelConfig(R1_DISTILL_LLAMA_8B);
    assert.ok(within(countParameters(llama).total, 8.03e9, 0.002), `${countParameters(llama).total}`);
    assert.equal(llama.rope_scaling?.rope_type, 'llama3');
    assert.equal(llama.model_type === 'llama' && llama.head_dim, 128);
  });

  test('parse → JSON → parse is the identity, and JSON.stringify is a valid config.json', () => {
    for (const json of [DEEPSEEK_V3, R1_DISTILL_QWEN_1_5B, R1_DISTILL_LLAMA_8B, { model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 10 }]) {
      const once = parseModelConfig(json);
      const twice = parseModelConfig(JSON.parse(JSON.stringify(once)));
      assert.deepEqual(twice, once);
    }
  });

  test('defaults are the ones transformers applies', () => {
    const cfg = parseModelConfig({ model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100 });
    assert.deepEqual(
      { ...cfg },
      {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        vocab_size: 100,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        hidden_act: 'silu',
        rms_norm_eps: 1e-6,
        rope_theta: 10000,
        rope_scaling: null,
        max_position_embeddings: 2048,
        bos_token_id: 1,
        eos_token_id: 2,
        pad_token_id: null,
        tie_word_embeddings: false,
        attention_dropout: 0,
        initializer_range: 0.02,
        use_cache: true,
        torch_dtype: 'float32',
        head_dim: 16,
        attention_bias: false,
        mlp_bias: false,
      },
    );
  });

  test('transformers 5 spellings (rope_parameters, dtype) are read', () => {
    const { rope_theta: _theta, rope_scaling: scaling, torch_dtype: _dtype, ...rest } = DEEPSEEK_V3;
    const cfg = parseModelConfig({ ...rest, dtype: 'bfloat16', rope_parameters: { rope_theta: 50000, ...scaling, rope_type: 'yarn' } });
    assert.equal(cfg.rope_theta, 50000);
    assert.equal(cfg.rope_scaling?.factor, 40);
    assert.equal(cfg.torch_dtype, 'bfloat16');
    assert.ok(!('rope_parameters' in cfg) && !('dtype' in cfg));
    const plain = parseModelConfig({ ...R1_DISTILL_QWEN_1_5B, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    assert.equal(plain.rope_theta, 1e6);
    assert.equal(plain.rope_scaling, null);
  });

  test('errors name the source, the field and the value', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ hidden_size: 0 }, /^cfg\.json: hidden_size = 0: must be >= 1$/],
      [{ hidden_size: '7168' }, /hidden_size = "7168": must be an integer/],
      [{ hidden_size: undefined }, /hidden_size = missing: required field is missing/],
      [{ model_type: 'deepseek_v2' }, /model_type = "deepseek_v2": must be one of "deepseek_v3", "llama", "qwen2"/],
      [{ architectures: ['LlamaForCausalLM'] }, /architectures = \["LlamaForCausalLM"\]: must be \["DeepseekV3ForCausalLM"\]/],
      [{ num_key_value_heads: 16 }, /num_key_value_heads = 16: must equal num_attention_heads \(128\) for MLA/],
      [{ topk_group: 9 }, /topk_group = 9: must be in \[1, 8\]/],
      [{ n_group: 7 }, /n_group = 7: must divide n_routed_experts \(256\)/],
      [{ n_group: 128, topk_group: 2 }, /num_experts_per_tok = 8: exceeds the 4 experts in the topk_group \(2\) groups/],
      [{ n_group: 256, topk_group: 8 }, /n_group = 256: noaux_tc scores a group by its top-2 experts/],
      [{ num_experts_per_tok: 300 }, /num_experts_per_tok = 300: must be in \[1, 256\]/],
      [{ scoring_func: 'relu' }, /scoring_func = "relu": must be one of "sigmoid", "softmax"/],
      [{ topk_method: 'random' }, /topk_method = "random"/],
      [{ q_lora_rank: 0 }, /q_lora_rank = 0: must be null \(no q-LoRA\) or a positive integer/],
      [{ qk_rope_head_dim: 63 }, /qk_rope_head_dim = 63: must be even/],
      [{ first_k_dense_replace: 62 }, /first_k_dense_replace = 62: must be in \[0, 61\]/],
      [{ moe_layer_freq: 2 }, /moe_layer_freq = 2: only 1 is supported/],
      [{ rms_norm_eps: -1 }, /rms_norm_eps = -1: must be > 0/],
      [{ routed_scaling_factor: Number.NaN }, /routed_scaling_factor = null: must be a finite number/],
      [{ norm_topk_prob: 1 }, /norm_topk_prob = 1: must be true or false/],
      [{ hidden_act: 'gelu' }, /hidden_act = "gelu": only "silu"/],
      [{ attention_bias: true }, /attention_bias = true: attention biases are not supported/],
      [{ eos_token_id: 129280 }, /eos_token_id = 129280: must be null or a token id in \[0, 129280\)/],
      [{ eos_token_id: [1, -2] }, /eos_token_id = \[1,-2\]: every entry must be a token id/],
      [{ rope_theta: 'big' }, /rope_theta = "big": must be a finite number > 1/],
      [{ torch_dtype: 'float8' }, /torch_dtype = "float8"/],
      [{ rope_scaling: { type: 'linear', factor: 2 } }, /rope_scaling = \{"type":"linear","factor":2\}: rope type "linear" is not supported for deepseek_v3/],
      [{ rope_scaling: { type: 'yarn', factor: 4 } }, /rope_scaling\.original_max_position_embeddings = missing: required field is missing/],
      [{ rope_scaling: { ...DEEPSEEK_V3.rope_scaling, beta_slow: 64 } }, /rope_scaling\.beta_slow = 64: must be below beta_fast \(32\)/],
      [{ rope_scaling: { ...DEEPSEEK_V3.rope_scaling, attention_factor: 2 } }, /rope_scaling = .*unsupported key\(s\) "attention_factor"/],
      [{ rope_scaling: { type: 'yarn', rope_type: 'linear' } }, /"type" and "rope_type" disagree/],
    ];
    for (const [patch, pattern] of cases) {
      assert.throws(() => parseModelConfig({ ...DEEPSEEK_V3, ...patch }, 'cfg.json'), (err: Error) => {
        assert.match(err.message, pattern);
        assert.ok(err.message.startsWith('cfg.json: '), err.message);
        return true;
      });
    }
    const dense: Array<[Record<string, unknown>, RegExp]> = [
      [{ num_key_value_heads: 5 }, /num_key_value_heads = 5: must divide num_attention_heads \(12\)/],
      [{ head_dim: 64 }, /head_dim = 64: must equal hidden_size \/ num_attention_heads \(128\) for qwen2/],
      [{ use_sliding_window: true }, /use_sliding_window = true: sliding-window attention is not supported/],
      [{ hidden_size: 1540, head_dim: undefined }, /hidden_size = 1540: is not divisible by num_attention_heads \(12\); set head_dim/],
      [{ rope_scaling: R1_DISTILL_LLAMA_8B.rope_scaling }, /rope type "llama3" is not supported for qwen2/],
    ];
    for (const [patch, pattern] of dense) assert.throws(() => parseModelConfig({ ...R1_DISTILL_QWEN_1_5B, ...patch }, 'q.json'), pattern);
    assert.throws(() => parseModelConfig({ ...R1_DISTILL_LLAMA_8B, mlp_bias: true }), /mlp_bias = true: MLP biases are not supported/);
    assert.throws(() => parseModelConfig([1], 'x.json'), /x\.json: a model config must be a JSON object, got \[1\]/);
  });
});

describe('presets', () => {
  const ranges: Record<string, [number, number]> = { nano: [1e6, 3e6], micro: [8e6, 14e6], small: [40e6, 65e6] };

  test('MoE presets are within their target sizes; dense relatives match their active size', () => {
    for (const name of ['nano', 'micro', 'small'] as const) {
      const moe = presetConfig(name);
      const p = countParameters(moe);
      const [lo, hi] = ranges[name];
      assert.ok(p.total >= lo && p.total <= hi, `${name}: ${p.total} total`);
      assert.ok(p.active < 0.7 * p.total, `${name}: a MoE activates a fraction (${p.active} of ${p.total})`);
      const dense = presetConfig(`${name}-dense`);
      const d = countParameters(dense);
      assert.equal(d.active, d.total);
      assert.ok(within(d.active, p.active, 0.05), `${name}-dense: ${d.active} vs ${p.active} active`);
      assert.ok(kvCacheBytesPerToken(moe) < kvCacheBytesPerToken(dense), `${name}: MLA caches less than GQA`);
    }
  });

  test('presets follow the scaled-down V3 recipe', () => {
    for (const name of PRESET_NAMES) {
      const cfg = presetConfig(name);
      assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(cfg))), cfg);
      if (cfg.model_type !== 'deepseek_v3') continue;
      assert.equal(cfg.scoring_func, 'sigmoid');
      assert.equal(cfg.topk_method, 'noaux_tc');
      assert.equal(cfg.first_k_dense_replace, 1);
      assert.equal(cfg.num_nextn_predict_layers, 0);
      assert.equal(cfg.n_routed_experts, 16);
      assert.equal(kvCacheBytesPerToken(cfg), (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 4 * cfg.num_hidden_layers);
    }
    const custom = presetConfig('micro', { vocabSize: 8000, bosTokenId: 5, eosTokenId: 6, mtp: true, maxPositionEmbeddings: 4096 });
    assert.equal(custom.vocab_size, 8000);
    assert.equal(custom.max_position_embeddings, 4096);
    assert.equal(custom.model_type === 'deepseek_v3' && custom.num_nextn_predict_layers, 1);
    assert.ok(countParameters(custom).mtp > 0);
    assert.equal(presetConfig('nano-dense', { denseFamily: 'qwen2' }).model_type, 'qwen2');
    assert.throws(() => presetConfig('nano', { denseFamily: 'qwen2' }), /-dense presets only/);
    assert.throws(() => presetConfig('nano', { eosTokenId: 5000 }), /eos_token_id = 5000/);
  });

  test('describeModel summarises sizes and structure', () => {
    const text = describeModel(presetConfig('micro', { mtp: true }));
    assert.match(text, /DeepseekV3ForCausalLM/);
    assert.match(text, /MLA, 8 heads, q_lora_rank 128/);
    assert.match(text, /16 routed experts \(top-4, 4 groups keep 2\) \+ 1 shared/);
    assert.match(text, /MTP modules/);
    assert.match(text, /KV cache: 2\.6 KiB per token/);
    assert.match(describeModel(presetConfig('nano-dense')), /GQA, 4 heads \/ 2 KV heads of 32/);
  });
});

describe('expectedTensors', () => {
  const names = (cfg: ModelConfig) => expectedTensors(cfg).map((t) => t.name);
  const shapeOf = (cfg: ModelConfig, name: string) => expectedTensors(cfg).find((t) => t.name === name)?.shape;

  test('DeepSeek-V3 names and shapes follow the published checkpoint', () => {
    const cfg = parseModelConfig(DEEPSEEK_V3);
    assert.deepEqual(shapeOf(cfg, 'model.layers.0.self_attn.q_a_proj.weight'), [1536, 7168]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.0.self_attn.q_b_proj.weight'), [128 * 192, 1536]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight'), [576, 7168]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.0.self_attn.kv_b_proj.weight'), [128 * 256, 512]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.0.self_attn.o_proj.weight'), [7168, 128 * 128]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.2.mlp.gate_proj.weight'), [18432, 7168]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.3.mlp.gate.weight'), [256, 7168]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.3.mlp.gate.e_score_correction_bias'), [256]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.60.mlp.experts.255.down_proj.weight'), [7168, 2048]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.3.mlp.shared_experts.up_proj.weight'), [2048, 7168]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.61.eh_proj.weight'), [7168, 14336]);
    assert.deepEqual(shapeOf(cfg, 'model.layers.61.shared_head.head.weight'), [129280, 7168]);
    assert.ok(names(cfg).includes('model.layers.61.mlp.experts.0.gate_proj.weight'));
    assert.equal(shapeOf(cfg, 'model.layers.3.mlp.gate_proj.weight'), undefined);
    assert.equal(new Set(names(cfg)).size, names(cfg).length);
  });

  test('nano: direct q_proj, no MTP, untied head; tied and qwen2 variants', () => {
    const nano = presetConfig('nano');
    const n = names(nano);
    assert.equal(n[0], 'model.embed_tokens.weight');
    assert.ok(n.includes('model.layers.0.self_attn.q_proj.weight') && !n.some((x) => x.includes('q_a_proj')));
    assert.ok(n.includes('model.layers.0.mlp.down_proj.weight') && n.includes('model.layers.1.mlp.experts.15.up_proj.weight'));
    assert.ok(n.includes('lm_head.weight') && !n.some((x) => x.startsWith('model.layers.4.')));
    const tied = parseModelConfig({ ...nano, tie_word_embeddings: true });
    assert.ok(!names(tied).includes('lm_head.weight'));
    const greedy = parseModelConfig({ ...nano, topk_method: 'greedy', scoring_func: 'softmax' });
    assert.ok(!names(greedy).some((x) => x.endsWith('e_score_correction_bias')));
    const qwen = presetConfig('nano-dense', { denseFamily: 'qwen2' });
    assert.deepEqual(shapeOf(qwen, 'model.layers.0.self_attn.k_proj.bias'), [64]);
    assert.equal(shapeOf(qwen, 'model.layers.0.self_attn.o_proj.bias'), undefined);
    assert.ok(!names(presetConfig('nano-dense')).some((x) => x.endsWith('.bias')));
  });
});
