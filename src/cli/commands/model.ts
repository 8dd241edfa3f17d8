// `nanoseek init | info | logits`: create, describe and probe checkpoints.
import type { Command } from 'commander';
import { countParameters, describeModel, formatBytes, kvCacheBytesPerToken, PRESET_NAMES, presetConfig, type PresetName } from '../../model/config.js';
import { CausalLM } from '../../model/model.js';
import { checkModelFile, loadModel, openModelFile, saveModel, summarizeModelFile } from '../../io/model-file.js';
import { backend } from '../../kernels/backend.js';
import { loadTokenizer } from '../../tokenizer/index.js';
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
    .option('--tokenizer <path>', 'copy this tokenizer (tokenizer.json or a directory) into the checkpoint; the vocabulary size follows it')
    .option('--vocab-size <n>', 'vocabulary size (default: the --tokenizer\'s, else 4096)')
    .option('--mtp', 'add the multi-token-prediction module (DeepSeek presets)')
    .option('--family <llama|qwen2>', 'dense presets: which family')
    .action(async (o: { preset: string; out: string; seed: string; tokenizer?: string; vocabSize?: string; mtp?: boolean; family?: string }) => {
      if (!(PRESET_NAMES as readonly string[]).includes(o.preset)) throw new Error(`--preset must be one of ${PRESET_NAMES.join(', ')}, got '${o.preset}'`);
      if (o.family !== undefined && o.family !== 'llama' && o.family !== 'qwen2') throw new Error(`--family must be llama or qwen2, got '${o.family}'`);
      const tokenizer = o.tokenizer === undefined ? null : await loadTokenizer(o.tokenizer);
      const vocabSize = o.vocabSize !== undefined ? parseIntFlag('--vocab-size', o.vocabSize) : (tokenizer?.vocabSize ?? 4096);
      if (tokenizer !== null && tokenizer.vocabSize > vocabSize) throw new Error(`--vocab-size ${vocabSize} is smaller than the tokenizer's ${tokenizer.vocabSize} tokens`);
      const special = tokenizer === null ? {} : { bosTokenId: tokenizer.special.bos, eosTokenId: tokenizer.special.eos };
      const cfg = presetConfig(o.preset as PresetName, { vocabSize, mtp: o.mtp, denseFamily: o.family as 'llama' | 'qwen2' | undefined, ...special });
      const model = new CausalLM(cfg, { seed: parseIntFlag('--seed', o.seed) });
      await saveModel(model, o.out);
      await tokenizer?.save(o.out);
      process.stdout.write(`${describeModel(cfg)}\nwrote ${o.out}${tokenizer === null ? ' (no tokenizer: serve, chat and info need one; init --tokenizer copies one in)' : ''}\n`);
    });

  program
    .command('info')
    .description('check a model (config, every tensor, tokenizer, card) and describe it: architecture, parameters, stored types, size, memory, KV cache; exits 1 when it is incomplete or damaged')
    .argument('<model>', 'checkpoint directory or .gguf file')
    .option('--tokenizer <path>', 'check with this tokenizer.json (or directory) instead of the model\'s own')
    .option('--no-finite-check', 'skip reading every weight to check it is finite (faster on large models)')
    .option('--json', 'one JSON object')
    .action(async (path: string, o: { json?: boolean; tokenizer?: string; finiteCheck: boolean }) => {
      const file = await openModelFile(path);
      let check;
      try {
        check = await checkModelFile(file, { tokenizer: o.tokenizer, checkFinite: o.finiteCheck });
      } finally {
        await file.close();
      }
      const cfg = file.config;
      const s = summarizeModelFile(file);
      const types = Object.entries(s.types).map(([t, n]) => `${t} ×${n}`).join(', ');
      const finite = check.tensorsChecked > 0 ? `all ${check.tensorsChecked} tensors read, every value finite` : 'weights not read (--no-finite-check)';
      if (o.json) {
        const p = countParameters(cfg);
        process.stdout.write(`${JSON.stringify({
          architecture: cfg.architectures[0], model_type: cfg.model_type, format: s.format, parameters: p,
          tensor_types: s.types, weight_bytes: s.weightBytes, weights_in_memory: s.weights, resident_bytes: s.residentBytes,
          kv_cache_bytes_per_token: kvCacheBytesPerToken(cfg), backend: backend().name,
          tokenizer_vocab: check.tokenizer.vocabSize, tensors_checked: check.tensorsChecked,
          model_card: check.card,
        })}\n`);
      } else {
        if (check.card?.description) process.stdout.write(`${check.card.description}\n`);
        process.stdout.write(`${describeModel(cfg)}\n`);
        process.stdout.write(`  file: ${s.format === 'gguf' ? 'GGUF' : 'Hugging Face checkpoint'}, tensors ${types}, ${formatBytes(s.weightBytes)} of weights on disk; ${finite}\n`);
        process.stdout.write(`  tokenizer: ${check.tokenizer.vocabSize} tokens${check.tokenizer.chatTemplate === undefined ? '' : ', with a chat template'}${check.card?.examples.length ? `; try: ${check.card.examples[0]}` : ''}\n`);
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
