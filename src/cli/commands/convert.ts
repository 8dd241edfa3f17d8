// `nanoseek convert`: Hugging Face directory ⇄ GGUF file, in any type nanoseek writes.
import type { Command } from 'commander';
import { convertModel } from '../../io/convert.js';
import { FILE_TYPE_NAMES, parseFileType } from '../../io/quant-mix.js';
import { formatBytes } from '../../model/config.js';

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a model: Hugging Face directory or GGUF in, GGUF file (for llama.cpp, Ollama, …) or Hugging Face directory out')
    .argument('<input>', 'checkpoint directory or .gguf file')
    .requiredOption('--out <path>', 'output: a path ending in .gguf, or a directory')
    .option('--type <type>', `${FILE_TYPE_NAMES.join(' | ')} (directories: f32, f16, bf16)`)
    .option('--name <name>', 'general.name written into a GGUF (default: the input name)')
    .option('--quiet', 'no progress lines')
    .action(async (input: string, o: { out: string; type?: string; name?: string; quiet?: boolean }) => {
      const t0 = performance.now();
      const type = o.type === undefined ? undefined : parseFileType(o.type);
      const r = await convertModel(input, o.out, {
        type,
        name: o.name,
        onTensor: o.quiet ? undefined : (name, t, done, total) => process.stderr.write(`[${done}/${total}] ${name} ${t}\n`),
      });
      const census = Object.entries(r.types).map(([t, n]) => `${t} ×${n}`).join(', ');
      process.stdout.write(`wrote ${o.out}: ${r.format === 'gguf' ? 'GGUF' : 'Hugging Face checkpoint'} ${r.type}, ${census}, ${formatBytes(r.bytes)} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    });
}
