// 16-bit float conversions (IEEE half and bfloat16), bit-exact in both directions. Everything works
// on raw bit patterns through Uint32Array views: a float32 NaN read into a JS number may lose its
// payload, and bit-exact round trips are the point.

/** float32 bits → bfloat16 bits, round to nearest, ties to even; NaN stays NaN (quieted). */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits >>> 0) + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // < 2^32 for every non-NaN input
}

/** float32 bits → IEEE half bits, round to nearest, ties to even; overflow → ±Inf, NaN stays NaN. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is subnormal (or zero). Below half the smallest subnormal everything rounds to 0.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) !== 0)) h++; // a carry lands on the smallest normal, as it should
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent may give Inf: correct
  return sign | h;
}

/** IEEE half bits → float32 bits (exact: every half is a float32). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal half: normalise into float32's wider exponent range.
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | null = null;

function f16DecodeTable(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Bits(h);
  }
  return f16Table;
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Decode 16-bit floats into `out` (allocated when omitted). */
export function decodeHalf(kind: 'F16' | 'BF16', src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`decodeHalf: ${src.length} inputs but ${out.length} outputs`);
  const dst = bitsOf(out);
  if (kind === 'BF16') {
    for (let i = 0; i < src.length; i++) dst[i] = src[i] << 16;
  } else {
    const table = f16DecodeTable();
    for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  }
  return out;
}

/** Encode float32 values as 16-bit floats into `out` (allocated when omitted), round to nearest even. */
export function encodeHalf(kind: 'F16' | 'BF16', src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new Error(`encodeHalf: ${src.length} inputs but ${out.length} outputs`);
  const bits = bitsOf(src);
  const convert = kind === 'BF16' ? f32BitsToBf16 : f32BitsToF16;
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]);
  return out;
}
