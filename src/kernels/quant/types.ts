// The ggml tensor types nanoseek reads and writes: their numeric ids (as GGUF stores them), block
// sizes and bytes per block. A row of n values (n a multiple of the block size) takes
// n / blockSize · typeSize bytes; blocks never span rows. The block layouts themselves are
// defined, one type per file, beside this one.

export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4 },
  F16: { id: 1, blockSize: 1, typeSize: 2 },
  Q4_0: { id: 2, blockSize: 32, typeSize: 18 },
  Q4_1: { id: 3, blockSize: 32, typeSize: 20 },
  Q5_0: { id: 6, blockSize: 32, typeSize: 22 },
  Q5_1: { id: 7, blockSize: 32, typeSize: 24 },
  Q8_0: { id: 8, blockSize: 32, typeSize: 34 },
  Q4_K: { id: 12, blockSize: 256, typeSize: 144 },
  Q5_K: { id: 13, blockSize: 256, typeSize: 176 },
  Q6_K: { id: 14, blockSize: 256, typeSize: 210 },
  BF16: { id: 30, blockSize: 1, typeSize: 2 },
} as const;

export type GgmlType = keyof typeof GGML_TYPES;

export const GGML_TYPE_NAMES = Object.keys(GGML_TYPES) as GgmlType[];

const BY_ID = new Map<number, GgmlType>(GGML_TYPE_NAMES.map((t) => [GGML_TYPES[t].id, t]));

/**
 * Names of ggml type ids nanoseek does not handle, so errors can say what a file holds
 * (from ggml.h; ids 4 and 5 were removed formats).
 */
const UNSUPPORTED_NAMES: Record<number, string> = {
  9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL',
  21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** The type with ggml id `id`, or undefined when nanoseek does not support it. */
export function ggmlTypeById(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

/** A readable name for any type id (for error messages). */
export function ggmlTypeName(id: number): string {
  return BY_ID.get(id) ?? UNSUPPORTED_NAMES[id] ?? `type ${id}`;
}

export function isQuantized(type: GgmlType): boolean {
  return GGML_TYPES[type].blockSize > 1;
}

/** Bytes of a row of n values; throws when n is not a whole number of blocks. */
export function rowBytes(type: GgmlType, n: number): number {
  const { blockSize, typeSize } = GGML_TYPES[type];
  if (!Number.isSafeInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new Error(`${type}: a row of ${n} values is not a whole number of ${blockSize}-value blocks`);
  }
  return (n / blockSize) * typeSize;
}
