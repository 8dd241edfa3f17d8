// nanoseek against an independent PyTorch implementation written from the equations
// (bench/torch_reference.py): the same initial weights (our random init, saved as safetensors) and
// the same batches on both sides, then the logits of one forward pass and the loss at every one of
// 20 AdamW steps. PyTorch is a required test dependency (scripts/install-system-deps.sh installs it):
// without it these tests fail rather than skip, so a CI run can never pass by not checking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseModelConfig, presetConfig, type ModelConfig } from '../src/model/config.js';
import { CausalLM } from '../src/model/model.js';
import { loadModel, saveModel } from '../src/io/model-file.js';
import * as T from '../src/tensor/index.js';
import { defaultRecipe, peerLogits, peerTrain, syntheticBatches, torchUnavailable, trainOurs } from '../bench/train.js';
import { noise } from './helpers.js';

const unavailable = torchUnavailable();

async function withDir<R>(fn: (dir: string) => Promise<R>): Promise<R> {
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-parity-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const FORWARD_CASES: Array<[string, ModelConfig]> = [
  ['micro (q-LoRA, MTP)', presetConfig('micro', { vocabSize: 256, mtp: true })],
  [
    'nano with YaRN, rotate-half RoPE, V2-style softmax routing',
    parseModelConfig({
      ...presetConfig('nano', { vocabSize: 256 }),
      rope_interleave: false,
      rope_scaling: { type: 'yarn', rope_type: 'yarn', factor: 4, original_max_position_embeddings: 8, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 0.5 },
      scoring_func: 'softmax',
      topk_method: 'group_limited_greedy',
      norm_topk_prob: false,
    }),
  ],
  ['micro-dense Llama', presetConfig('micro-dense', { vocabSize: 256 })],
  ['micro-dense Qwen2', presetConfig('micro-dense', { vocabSize: 256, denseFamily: 'qwen2' })],
];

test('forward logits equal the PyTorch reference (MLA ± q-LoRA, MoE routing, MTP, YaRN, GQA ± bias)', async (t) => {
  assert.equal(unavailable, null, unavailable ?? '');
  await withDir(async (dir) => {
    for (const [i, [label, cfg]] of FORWARD_CASES.entries()) {
      const model = new CausalLM(cfg, { seed: 20 + i });
      // Non-zero correction biases and Qwen2 biases, so selection on biased scores and the bias adds are exercised.
      for (const m of model.moeLayers()) if (m.bias) for (let e = 0; e < m.E; e++) m.bias.data[e] = 0.02 * noise(e, i);
      for (const [name, p] of model.params.tensors) if (name.endsWith('_proj.bias')) for (let j = 0; j < p.size; j++) p.data[j] = 0.1 * noise(j, i + 50);
      const path = join(dir, String(i));
      await saveModel(model, path);
      const b = syntheticBatches(1, 1, 2, 24, cfg.vocab_size, 30 + i)[0][0];
      const ours = T.noGrad(() => T.tidy(() => {
        const r = model.forward(b.ids, b.B, b.T, { mtpTargets: model.mtp ? b.targets : undefined });
        return { logits: Float32Array.from(r.logits.data), mtp: r.mtpLogits && Float32Array.from(r.mtpLogits.data) };
      }));
      const peer = await peerLogits(path, b);
      const diff = maxAbsDiff(ours.logits, peer.logits);
      const scale = Math.max(...Array.from(ours.logits, Math.abs));
      t.diagnostic(`${label}: max |logit diff| ${diff.toExponential(2)} (max |logit| ${scale.toFixed(2)})`);
      assert.ok(diff <= 1e-4 * Math.max(1, scale), `${label}: logits differ from PyTorch by up to ${diff}`);
      assert.equal(ours.mtp === null, peer.mtpLogits === null, `${label}: MTP logits on one side only`);
      if (ours.mtp !== null) {
        const mtpDiff = maxAbsDiff(ours.mtp, peer.mtpLogits!);
        assert.ok(mtpDiff <= 1e-4 * Math.max(1, scale), `${label}: MTP logits differ from PyTorch by up to ${mtpDiff}`);
      }
    }
  });
});

async function trainingParity(t: { diagnostic(message: string): void }, label: string, cfg: ModelConfig, alpha: number): Promise<void> {
  const steps = 20;
  const model = new CausalLM(cfg, { seed: 7 });
  await withDir(async (dir) => {
    await saveModel(model, dir);
    const batches = syntheticBatches(steps, 1, 4, 32, cfg.vocab_size, 8);
    const recipe = { ...defaultRecipe(steps), balanceAlpha: alpha };
    const rows = trainOurs(model, batches, recipe);
    const peer = await peerTrain(dir, batches, recipe);
    assert.equal(peer.length, steps);
    let worst = 0;
    rows.forEach((r, i) => {
      const rel = Math.abs(r.loss - peer[i].loss) / Math.abs(peer[i].loss);
      const relCe = Math.abs(r.ce - peer[i].ce) / Math.abs(peer[i].ce);
      worst = Math.max(worst, rel, relCe);
      assert.ok(rel <= 1e-3 && relCe <= 1e-3, `${label} step ${i + 1}: loss ${r.loss} (ce ${r.ce}) vs PyTorch ${peer[i].loss} (ce ${peer[i].ce})`);
      assert.equal(r.mtpCe === null, peer[i].mtp_ce === null);
      assert.equal(r.balance === null, peer[i].balance === null);
    });
    t.diagnostic(`${label}: losses ${rows[0].loss.toFixed(4)} → ${rows[steps - 1].loss.toFixed(4)}, max relative difference from PyTorch ${worst.toExponential(2)}`);
  });
}

test('20 training steps of micro DeepSeek-V3 (MoE bias updates, balance loss, MTP) track PyTorch within 1e-3', async (t) => {
  assert.equal(unavailable, null, unavailable ?? '');
  await trainingParity(t, 'micro', presetConfig('micro', { vocabSize: 512, mtp: true }), 0.01);
});

test('20 training steps of micro-dense Qwen2 track PyTorch within 1e-3', async (t) => {
  assert.equal(unavailable, null, unavailable ?? '');
  await trainingParity(t, 'micro-dense', presetConfig('micro-dense', { vocabSize: 512, denseFamily: 'qwen2' }), 0);
});

test('in float64, 20 steps of nano DeepSeek-V3 (MTP, balance loss, bias updates) equal PyTorch to 1e-9: same semantics, not just close', async (t) => {
  assert.equal(unavailable, null, unavailable ?? '');
  // In float32 a routing decision can flip on a last-bit difference between two GEMMs, after which
  // the runs drift apart legitimately; in float64 nothing is that close, so any drift is a real difference.
  const steps = 20;
  await withDir(async (dir) => {
    await saveModel(new CausalLM(presetConfig('nano', { vocabSize: 128, mtp: true }), { seed: 9 }), dir);
    const { model } = await loadModel(dir, { dtype: 'f64' });
    const batches = syntheticBatches(steps, 2, 2, 12, 128, 10); // two micro-batches: gradient accumulation too
    const recipe = { ...defaultRecipe(steps), peakLr: 3e-3, balanceAlpha: 0.01 };
    const rows = trainOurs(model, batches, recipe);
    const peer = await peerTrain(dir, batches, recipe, { dtype: 'float64' });
    let worst = 0;
    rows.forEach((r, i) => {
      for (const [ours, theirs] of [[r.loss, peer[i].loss], [r.gradNorm, peer[i].grad_norm], [r.mtpCe!, peer[i].mtp_ce!], [r.balance!, peer[i].balance!]]) {
        const rel = Math.abs(ours - theirs) / Math.abs(theirs);
        worst = Math.max(worst, rel);
        assert.ok(rel <= 1e-9, `step ${i + 1}: ${ours} vs PyTorch ${theirs}`);
      }
    });
    t.diagnostic(`nano f64: losses ${rows[0].loss.toFixed(4)} → ${rows[steps - 1].loss.toFixed(4)}, max relative difference (loss, grad norm, MTP, balance) ${worst.toExponential(2)}`);
  });
});
