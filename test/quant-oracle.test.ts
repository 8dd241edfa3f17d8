// Bit-exactness against llama.cpp itself: node-llama-cpp (a devDependency) ships the prebuilt
// libggml-base.so with ggml's own quantize/dequantize code. test/ggml-oracle/quant-oracle.c is a
// small bridge to it, compiled here with the system C compiler; every row is encoded and decoded
// by both and compared byte for byte / bit for bit. Skipped where there is no such library (not
// linux-x64) or no C compiler.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { dequantize, GGML_TYPES, type GgmlType, quantize } from '../src/kernels/quant/index.js';
import { mulberry32 as rng } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url)); // dist/test/ → repository root
const libDir = join(root, 'node_modules/@node-llama-cpp/linux-x64/bins/linux-x64');
const source = join(root, 'test/ggml-oracle/quant-oracle.c');

function findCompiler(): string | undefined {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (cc && spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  }
  return undefined;
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `no prebuilt linux-x64 ggml for ${process.platform}-${process.arch}`;
  if (!existsSync(join(libDir, 'libggml-base.so'))) return `${libDir}/libggml-base.so not installed`;
  if (!findCompiler()) return 'no C compiler (cc, gcc or clang)';
  return undefined;
}

const skip = skipReason();
let dir = '';
let oracle = '';

function build(): string {
  if (!oracle) {
    dir = mkdtempSync(join(tmpdir(), 'nanoseek-quant-oracle-'));
    oracle = join(dir, 'quant-oracle');
    execFileSync(findCompiler()!, ['-O2', '-o', oracle, source, `-L${libDir}`, '-l:libggml-base.so', `-Wl,-rpath,${libDir}`], { stdio: 'pipe' });
  }
  return oracle;
}

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ggmlQuantize(type: GgmlType, x: Float32Array): Uint8Array {
  return execFileSync(build(), ['q', String(GGML_TYPES[type].id), String(x.length)], {
    input: Buffer.from(x.buffer, x.byteOffset, x.byteLength), maxBuffer: 1 << 28,
  });
}

function ggmlDequantize(type: GgmlType, q: Uint8Array, n: number): Float32Array {
  const out = execFileSync(build(), ['d', String(GGML_TYPES[type].id), String(n)], { input: q, maxBuffer: 1 << 28 });
  return new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

/** Rows that exercise the searches: ordinary, skewed, sparse, constant, tiny, huge, integer-valued. */
function dataset(kind: string, n: number, seed: number): Float32Array {
  const u = rng(seed);
  const g = (): number => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'gaussian': x[i] = g(); break;
      case 'uniform': x[i] = 2 * u() - 1; break;
      case 'heavy-tailed': x[i] = g() * Math.exp(1.5 * g()); break;
      case 'positive': x[i] = Math.abs(g()) + 0.1; break;
      case 'negative': x[i] = -Math.abs(g()) - 0.1; break;
      case 'outliers': x[i] = i % 211 === 5 ? 500 * (u() < 0.5 ? -1 : 1) : g(); break;
      case 'sparse': x[i] = u() < 0.85 ? 0 : g(); break;
      case 'integers': x[i] = Math.round(4 * g()); break;
      case 'constant-runs': x[i] = Math.floor(i / 48) % 3 === 0 ? 0.25 : g(); break;
      case 'tiny': x[i] = g() * 1e-5; break;
      case 'huge': x[i] = g() * 3e4; break;
      case 'zeros': x[i] = 0; break;
      default: throw new Error(kind);
    }
  }
  return x;
}

const KINDS = ['gaussian', 'uniform', 'heavy-tailed', 'positive', 'negative', 'outliers', 'sparse', 'integers', 'constant-runs', 'tiny', 'huge', 'zeros'];
const TYPES: GgmlType[] = ['F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('bit-exact with llama.cpp (libggml-base from node-llama-cpp)', { skip }, () => {
  for (const type of TYPES) {
    test(`${type}: quantize gives ggml's bytes, dequantize its floats`, () => {
      const n = 256 * 128;
      const { blockSize, typeSize } = GGML_TYPES[type];
      for (const [k, kind] of KINDS.entries()) {
        const x = dataset(kind, n, 100 * k + GGML_TYPES[type].id);
        const ours = quantize(type, x);
        const theirs = ggmlQuantize(type, x);
        const at = firstDifference(ours, theirs);
        if (at >= 0) {
          const b = Math.floor(at / typeSize);
          assert.fail(`${type} ${kind}: byte ${at} (block ${b}, values ${b * blockSize}…) differs: ours ${ours[at]}, ggml ${theirs[at]}`);
        }
        const a = new Float32Array(n);
        dequantize(type, theirs, a);
        const want = ggmlDequantize(type, theirs, n);
        assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(want.buffer), `${type} ${kind}: decoded floats`);
      }
    });
  }

  test('dequantize of arbitrary bytes (any f16 scale, NaN and Inf included) at an odd offset', () => {
    const u = rng(7);
    for (const type of ['F32', ...TYPES] as GgmlType[]) {
      const { blockSize, typeSize } = GGML_TYPES[type];
      const blocks = 4096 / blockSize + 64;
      const file = Buffer.alloc(blocks * typeSize + 1);
      for (let i = 0; i < file.length; i++) file[i] = Math.floor(u() * 256);
      const src = file.subarray(1);
      const n = blocks * blockSize;
      const ours = new Float32Array(n);
      dequantize(type, src, ours);
      const theirs = ggmlDequantize(type, src, n);
      const a = new Uint32Array(ours.buffer);
      const b = new Uint32Array(theirs.buffer);
      for (let i = 0; i < n; i++) {
        // NaN payloads may differ: ggml's f16→f32 quiets signalling NaNs, ours keeps the bits.
        if (a[i] !== b[i] && !(Number.isNaN(ours[i]) && Number.isNaN(theirs[i]))) {
          assert.fail(`${type} value ${i}: ours ${ours[i]}, ggml ${theirs[i]}`);
        }
      }
    }
  });
});
