// SIMD helpers every kernel family shares (AssemblyScript, inlined where used).

/** a·b + c on four lanes: one fused instruction with relaxed SIMD, a multiply and an add without. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** The byte address of float (or 32-bit word) `index` of an array at byte address `base`. */
@inline export function at(base: usize, index: usize): usize {
  return base + (index << 2);
}

/** The sum of the four lanes. */
@inline export function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
}
