// GGUF v3 (ggml's single-file model format): reading with strict validation and lazy tensor
// access by offset, and streamed atomic writing. CONTRACT SKELETON: the implementation is being
// written; the exported types and signatures below are what the rest of nanoseek codes against.
import type { GgmlType } from '../kernels/quant/types.js';

/** GGUF metadata value types, by their on-disk ids. */
export const GGUF_VALUE_TYPES = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, 'array'>;

/**
 * One metadata value with its stored type. 64-bit integers come back as bigint only when they do not
 * fit a safe JS integer; otherwise as number. Arrays hold scalars of one type (GGUF has no nested
 * arrays that llama.cpp accepts). Strings are UTF-8 decoded.
 */
export type GgufValue =
  | { type: Exclude<GgufScalarType, 'string' | 'bool'>; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: Array<number | bigint | boolean | string> };

/** Metadata in file order. */
export type GgufMetadata = Map<string, GgufValue>;

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] is the fastest-varying axis (a HF [out, in] matrix has ne = [in, out]). */
  ne: number[];
  type: GgmlType;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  metadata: GgufMetadata;
  /** In file order. */
  tensors: Map<string, GgufTensorInfo>;
  /** Absolute offset of the data section. */
  dataStart: number;
  fileSize: number;
  /** The tensor's bytes, read from disk on demand (a fresh buffer of exactly byteLength bytes). */
  readTensor(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface GgufTensorToWrite {
  name: string;
  ne: number[];
  type: GgmlType;
  /** The tensor's bytes (exactly rowBytes(type, ne[0]) · ne[1] · … bytes); called once, in order, while writing. */
  data: () => Uint8Array | Promise<Uint8Array>;
}

export async function openGguf(_path: string): Promise<GgufFile> {
  throw new Error('gguf: not implemented yet');
}

export async function writeGguf(_path: string, _metadata: GgufMetadata, _tensors: GgufTensorToWrite[], _opts: { alignment?: number } = {}): Promise<void> {
  throw new Error('gguf: not implemented yet');
}
