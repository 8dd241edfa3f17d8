// `nanoseek init | info | logits`: create, describe and probe checkpoints.
import type { Command } from 'commander';
import { countParameters, describeModel, formatBytes, kvCacheBytesPerToken, PRESET_NAMES, presetConfig, type PresetName } from '../../model/config.js';
import { CausalLM } from '../../model/model.js';
import { loadModel, openModelFile, saveModel, summarizeModelFile } from '../../io/model-file.js';
import { backend } from '../../kernels/backend.js';
import { noGrad, tidy } from '../../tensor/index.js';

function parseIntFlag(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got '${value}'`);
  return n;
}

export function register(program: Command): void {
  program
    .command('init')
    .description('write a randomly initialised checkpoint (Hugging Face layout)')
    .requiredOption('--preset <name>', `one of ${PRESET_NAMES.join(', ')}`)
    .requiredOption('--out <dir>', 'checkpoint directory to write')
    .option('--seed <n>', 'initialisation seed', '0')
    .option('--vocab-size <n>', 'vocabulary size (match your tokenizer)', '4096')
    .option('--mtp', 'add the multi-token-prediction module (DeepSeek presets)')
    .option('--family <llama|qwen2>', 'dense presets: which family')
    .action(async (o: { preset: string; out: string; seed: string; vocabSize: string; mtp?: boolean; family?: string }) => {
      if (!(PRESET_NAMES as readonly string[]).includes(o.preset)) throw new Error(`--preset must be one of ${PRESET_NAMES.join(', ')}, got '${o.preset}'`);
      if (o.family !== undefined && o.family !== 'llama' && o.family !== 'qwen2') throw new Error(`--family must be llama or qwen2, got '${o.family}'`);
      const cfg = presetConfig(o.preset as PresetName, { vocabSize: parseIntFlag('--vocab-size', o.vocabSize), mtp: o.mtp, denseFamily: o.family as 'llama' | 'qwen2' | undefined });
      const model = new CausalLM(cfg, { seed: parseIntFlag('--seed', o.seed) });
      await saveModel(model, o.out);
      process.stdout.write(`${describeModel(cfg)}\nwrote ${o.out}\n`);
    });

  program
    .command('info')
    .description('architecture, parameters, stored types, size on disk, memory once loaded, KV-cache bytes per token')
    .argument('<model>', 'checkpoint directory or .gguf file')
    .option('--json', 'one JSON object')
    .action(async (path: string, o: { json?: boolean }) => {
      const file = await openModelFile(path);
      await file.close();
      const cfg = file.config;
      const s = summarizeModelFile(file);
      const types = Object.entries(s.types).map(([t, n]) => `${t} ×${n}`).join(', ');
      if (o.json) {
        const p = countParameters(cfg);
        process.stdout.write(`${JSON.stringify({
          architecture: cfg.architectures[0], model_type: cfg.model_type, format: s.format, parameters: p,
          tensor_types: s.types, weight_bytes: s.weightBytes, weights_in_memory: s.weights, resident_bytes: s.residentBytes,
          kv_cache_bytes_per_token: kvCacheBytesPerToken(cfg), backend: backend().name,
        })}\n`);
      } else {
        process.stdout.write(`${describeModel(cfg)}\n`);
        process.stdout.write(`  file: ${s.format === 'gguf' ? 'GGUF' : 'Hugging Face checkpoint'}, tensors ${types}, ${formatBytes(s.weightBytes)} of weights on disk\n`);
        process.stdout.write(`  memory: ${formatBytes(s.residentBytes)} of weights once loaded (${s.weights === 'packed' ? 'matrices kept as stored' : 'float32'}) + the KV cache; backend ${backend().name}\n`);
      }
    });

  program
    .command('logits')
    .description('float32 logits for every position of a token sequence (like llama.cpp eval)')
    .requiredOption('--model <path>', 'checkpoint directory or .gguf file')
    .requiredOption('--tokens <ids>', 'comma-separated token ids, e.g. 1,2,3')
    .option('--json', 'print {"logits": [[...], ...]}')
    .action(async (o: { model: string; tokens: string; json?: boolean }) => {
      const ids = o.tokens.split(',').map((s) => {
        const n = Number(s.trim());
        if (s.trim() === '' || !Number.isInteger(n)) throw new Error(`--tokens: '${s}' is not an integer token id`);
        return n;
      });
      const { model } = await loadModel(o.model);
      const rows = noGrad(() => tidy(() => {
        const logits = model.forward(ids, 1, ids.length).logits;
        const V = model.config.vocab_size;
        return ids.map((_, t) => Array.from(logits.data.subarray(t * V, (t + 1) * V)));
      }));
      if (o.json) process.stdout.write(`${JSON.stringify({ logits: rows })}\n`);
      else rows.forEach((r, t) => {
        const best = r.indexOf(Math.max(...r));
        process.stdout.write(`position ${t} token ${ids[t]}: argmax ${best} (${r[best].toFixed(4)}), first ${r.slice(0, 4).map((v) => v.toFixed(4)).join(' ')} …\n`);
      });
    });
}
