// Throughput of the reference quantization codecs (src/kernels/quant): values per second of
// dequantize and quantize for every type, and of firstNonFinite (the finite check loading runs on
// every stored tensor, compared with decoding it), on random Gaussian data, best of a few runs. Timed by the
// process's CPU time (user + system), which on a shared machine does not count the time other
// jobs hold the core; the codecs are single-threaded, so that is their own time. (Wall-clock
// figures on a loaded machine are lower by the load factor.)
//   node dist/bench/quant.js [--n 16777216] [--reps 3] [--types Q4_K,Q8_0]
import { dequantize, firstNonFinite, GGML_TYPE_NAMES, type GgmlType, quantize } from '../src/kernels/quant/index.js';

export interface QuantBenchRow {
  type: GgmlType;
  dequantizePerSec: number;
  quantizePerSec: number;
  /** firstNonFinite over the stored bytes. */
  finiteCheckPerSec: number;
}

function gaussian(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i++) x[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return x;
}

function best(reps: number, f: () => void): number {
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    t = Math.min(t, (c.user + c.system) / 1e6);
  }
  return t;
}

export function benchQuant(n: number, reps: number, types: readonly GgmlType[] = GGML_TYPE_NAMES): QuantBenchRow[] {
  const x = gaussian(n, 1);
  const y = new Float32Array(n);
  const rows: QuantBenchRow[] = [];
  for (const type of types) {
    const q = quantize(type, x); // also warms the encoder up
    const tq = best(reps, () => quantize(type, x, q));
    dequantize(type, q, y);
    const td = best(reps, () => dequantize(type, q, y));
    if (firstNonFinite(type, q) !== -1) throw new Error(`${type}: random data read as non-finite`);
    const tc = best(reps, () => firstNonFinite(type, q));
    rows.push({ type, dequantizePerSec: n / td, quantizePerSec: n / tq, finiteCheckPerSec: n / tc });
  }
  return rows;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(arg('n') ?? 16 * 1024 * 1024);
  const reps = Number(arg('reps') ?? 3);
  const types = (arg('types')?.split(',') ?? GGML_TYPE_NAMES) as GgmlType[];
  console.log(`${n} values, best of ${reps} by CPU time; values/s`);
  console.log('type   dequantize   quantize  finite check');
  for (const r of benchQuant(n, reps, types)) {
    const m = (v: number): string => `${(v / 1e6).toFixed(1)} M`.padStart(10);
    console.log(`${r.type.padEnd(5)} ${m(r.dequantizePerSec)} ${m(r.quantizePerSec)} ${m(r.finiteCheckPerSec)}`);
  }
}
