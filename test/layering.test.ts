// The layers of src/ and the rule between them: a module imports only from its own layer or from
// layers below it. The order is written here and nowhere else (README's Layout section explains it);
// the test reads every import under src/ (type-only, re-exports and dynamic imports included) and
// fails on one that points up, on a folder missing from the order, and on an exception that is no
// longer needed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The layers of src/, lowest first: each may import from itself and from those before it. */
export const LAYERS = [
  'util', // json fields, RNG, atomic file writes: nothing of nanoseek's
  'report', // the metrics.jsonl log, inline-SVG charts and HTML pages (used by train, eval and later reports)
  'kernels', // compute backends (reference, WASM SIMD), the WASM heap, quantization types
  'tensor', // tensors and autodiff
  'model', // config.json schema and presets, the model (MLA, MoE, GQA, MTP), KV caches
  'tokenizer', // BPE, tokenizer.json, chat templates
  'io', // file formats: safetensors, GGUF, checkpoint directories
  'infer', // sampling, the batching engine, rollouts, loading a model for inference
  'tasks', // verifiable tasks, graders, prompts, corpora
  'eval', // evaluation metrics and reports
  'experts', // expert load recording, EPLB, placements and SGLang export, expert parallelism, the V3-scale simulator
  'train', // pretraining, SFT, GRPO
  'serve', // the OpenAI-compatible server
  'mail', // the email triage app: a client of the library's public API, with its page in serve
  'cli', // the `nanoseek` command
] as const;

/**
 * Folders outside src/ that src/ may import, each with the lowest layer allowed to: bench/ holds the
 * benchmarks behind `nanoseek bench`. (bench/ and test/ themselves import anything.)
 */
const OUTSIDE_SRC: Record<string, (typeof LAYERS)[number]> = { bench: 'cli' };

export interface Exception {
  from: string;
  to: string;
}

/**
 * Imports that break the order for now. Each is temporary and says what removes it; the test fails
 * once it is no longer needed, so that it is deleted then. Add no others: fix the import instead.
 */
export const EXCEPTIONS: readonly Exception[] = [];

/** The source with comments blanked out (string and template literals kept). */
function stripComments(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c === '/' && source[i + 1] === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
      out += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === '\\' ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module specifier a source imports: static, type-only, side-effect, re-exports, dynamic. */
export function importsOf(source: string): string[] {
  const code = stripComments(source);
  const out: string[] = [];
  for (const re of [/\bfrom\s*(['"])([^'"\n]+)\1/g, /\bimport\s*(['"])([^'"\n]+)\1/g, /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g]) {
    for (const m of code.matchAll(re)) out.push(m[2]);
  }
  return out;
}

/** The file a relative specifier names, from the repository root ('./x.js' is './x.ts' in source). */
function resolve(from: string, spec: string): string {
  const path = posix.normalize(posix.join(posix.dirname(from), spec));
  if (path.endsWith('.js')) return `${path.slice(0, -3)}.ts`;
  return /\.[a-z]+$/.test(path) ? path : `${path}.ts`; // AssemblyScript imports leave the extension out
}

/** The rank of a file's layer: files directly in src/ (a package entry) sit above every layer. */
function rankOf(path: string): number | string {
  const parts = path.split('/');
  if (parts.length === 2) return LAYERS.length;
  const rank = (LAYERS as readonly string[]).indexOf(parts[1]);
  return rank >= 0 ? rank : `folder src/${parts[1]} is in no layer: add it to LAYERS in test/layering.test.ts`;
}

function layerName(rank: number): string {
  return rank === LAYERS.length ? 'the package entry' : LAYERS[rank];
}

/**
 * Checks the imports of `files` (repository-relative path → source; paths under src/ are checked) and
 * returns one line per problem, [] when the layering holds.
 */
export function checkLayers(files: ReadonlyMap<string, string>, exceptions: readonly Exception[] = EXCEPTIONS): string[] {
  const problems: string[] = [];
  const used = new Set<Exception>();
  for (const [from, source] of files) {
    if (!from.startsWith('src/')) continue;
    const own = rankOf(from);
    if (typeof own === 'string') {
      problems.push(`${from}: ${own}`);
      continue;
    }
    for (const spec of importsOf(source)) {
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue; // node: and packages
      const to = resolve(from, spec);
      if (!to.startsWith('src/')) {
        const lowest = OUTSIDE_SRC[to.split('/')[0]];
        if (lowest === undefined || own < LAYERS.indexOf(lowest)) {
          problems.push(`${from} imports ${to}, outside src/: ${lowest === undefined ? 'no layer may' : `only ${lowest} may`}`);
        }
        continue;
      }
      const target = rankOf(to);
      if (typeof target === 'string' || target <= own) continue; // an unknown folder is reported for its own files
      const exception = exceptions.find((e) => e.from === from && e.to === to);
      if (exception !== undefined) {
        used.add(exception);
        continue;
      }
      problems.push(`${from} imports ${to}: ${layerName(own)} is below ${layerName(target)} (order: ${LAYERS.join(' < ')})`);
    }
  }
  for (const e of exceptions) {
    if (!used.has(e)) problems.push(`the exception ${e.from} → ${e.to} is no longer needed: delete it from EXCEPTIONS in test/layering.test.ts`);
  }
  return problems;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath ?? entry.path, entry.name);
    out.set(relative(root, path).split('\\').join('/'), readFileSync(path, 'utf8'));
  }
  return out;
}

describe('layering', () => {
  it('every import under src/ points to its own layer or one below', () => {
    const files = sources('src');
    assert.ok(files.size > 50, `read only ${files.size} files under ${join(root, 'src')}`);
    assert.deepEqual(checkLayers(files), []);
  });

  it('the checker catches an upward import, in every import form, and only those', () => {
    const files = new Map([
      ['src/model/a.ts', "import { b } from '../train/b.js';"],
      ['src/model/type-only.ts', "import type { B } from '../train/b.js';"],
      ['src/model/multi.ts', "import {\n  b,\n  type B,\n} from '../eval/c.js';"],
      ['src/model/reexport.ts', "export * from '../serve/d.js';"],
      ['src/model/side-effect.ts', "import '../kernels/../cli/e.js';"],
      ['src/model/dynamic.ts', "const m = await import('../infer/f.js');"],
      ['src/model/fine.ts', "import { t } from '../tensor/index.js';\nimport { c } from './config.js';\nimport x from 'commander';\n// import { b } from '../train/b.js';\n/* export * from '../cli/x.js'; */\nconst s = '// not a comment'; import { u } from '../util/rng.js';"],
      ['src/kernels/asm/k.ts', "import { madd } from './simd';"],
      ['src/cli/bench.ts', "import { benchGemm } from '../../bench/gemm.js';"],
      ['src/train/bench.ts', "import { benchGemm } from '../../bench/gemm.js';"],
      ['src/train/test.ts', "import { noise } from '../../test/helpers.js';"],
      ['src/plugins/app.ts', "import { t } from '../tensor/index.js';"],
      ['test/anything.ts', "import { c } from '../src/cli/main.js';"],
    ]);
    assert.deepEqual(checkLayers(files, []), [
      'src/model/a.ts imports src/train/b.ts: model is below train (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/model/type-only.ts imports src/train/b.ts: model is below train (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/model/multi.ts imports src/eval/c.ts: model is below eval (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/model/reexport.ts imports src/serve/d.ts: model is below serve (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/model/side-effect.ts imports src/cli/e.ts: model is below cli (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/model/dynamic.ts imports src/infer/f.ts: model is below infer (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
      'src/train/bench.ts imports bench/gemm.ts, outside src/: only cli may',
      'src/train/test.ts imports test/helpers.ts, outside src/: no layer may',
      'src/plugins/app.ts: folder src/plugins is in no layer: add it to LAYERS in test/layering.test.ts',
    ]);
  });

  it('an exception lets exactly its import through, and fails once nothing needs it', () => {
    const files = new Map([['src/model/persist.ts', "import { load } from '../io/checkpoint.js';\nimport { x } from '../io/gguf.js';"]]);
    const exception = [{ from: 'src/model/persist.ts', to: 'src/io/checkpoint.ts' }];
    assert.deepEqual(checkLayers(files, exception), [
      'src/model/persist.ts imports src/io/gguf.ts: model is below io (order: util < report < kernels < tensor < model < tokenizer < io < infer < tasks < eval < experts < train < serve < mail < cli)',
    ]);
    assert.deepEqual(checkLayers(new Map([['src/model/persist.ts', '']]), exception), [
      'the exception src/model/persist.ts → src/io/checkpoint.ts is no longer needed: delete it from EXCEPTIONS in test/layering.test.ts',
    ]);
  });
});
