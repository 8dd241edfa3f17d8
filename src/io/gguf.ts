// GGUF (ggml's single-file model format, versions 2 and 3): strict reading with lazy tensor access
// by offset, and streamed atomic writing.
//
// Layout (little-endian): magic "GGUF" · u32 version · u64 tensor count · u64 metadata count ·
// metadata pairs (key: u64 length + UTF-8 · u32 value type · value) · tensor infos (name · u32 n_dims ·
// u64 ne[n_dims] · u32 ggml type · u64 offset relative to the data section) · zero padding to the
// alignment · tensor data, each tensor padded to the alignment. Version 2 has the same layout.
//
// Reading is strict: a file that llama.cpp would refuse, or that another reader could interpret
// differently, or that is cut short, is refused with an error whose message starts with the file
// path and names the key or tensor and the problem. The header is read incrementally through a
// buffer; every length and count is checked against the bytes left in the file before anything
// proportional to it is allocated, so a corrupt file can neither hang the reader nor make it
// allocate more than the file's size. Tensor data stays on disk until `readTensor` asks for it.
//
// Writing validates everything first (value types and ranges, names, shapes, byte lengths), then
// streams the header and each tensor's bytes, in order, through a temporary file that is renamed
// over the target only once complete (`writeStreamAtomic`).
import { constants as bufferConstants, isUtf8 } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { writeStreamAtomic } from '../util/atomic.js';
import { canMap, MappedFile } from './mapped.js';
import { GGML_TYPES, ggmlTypeById, ggmlTypeName, type GgmlType } from '../kernels/quant/types.js';

/** GGUF metadata value types, by their on-disk ids. */
export const GGUF_VALUE_TYPES = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, 'array'>;
export type GgufNumericType = Exclude<GgufScalarType, 'string' | 'bool'>;

/** "GGUF" read as a little-endian u32. */
const GGUF_MAGIC = 0x46554747;
/** The version `writeGguf` writes. `openGguf` also reads version 2 (same layout). */
export const GGUF_VERSION = 3;
/** Alignment of the data section and of every tensor when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Longest tensor name in bytes (ggml's GGML_MAX_NAME is 64, including the terminating NUL). */
export const GGUF_MAX_NAME_BYTES = 63;
/** Most dimensions a tensor may have (GGML_MAX_DIMS). */
export const GGUF_MAX_DIMS = 4;
/** llama.cpp's caps on one string's bytes and one array's items; larger is refused on read and write. */
export const GGUF_MAX_STRING_BYTES = 2 ** 30;
export const GGUF_MAX_ARRAY_ITEMS = 2 ** 30;

/**
 * One metadata value with its stored type. 64-bit integers come back as bigint only when they do not
 * fit a safe JS integer; otherwise as number (the writer takes either). Arrays hold scalars of one
 * type (GGUF has no nested arrays that llama.cpp accepts). Strings are UTF-8 decoded.
 */
export type GgufValue =
  | { type: GgufNumericType; value: number | bigint }
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
  /** rowBytes(type, ne[0]) · ne[1] · …; 0 when a dimension is 0 (llama.cpp accepts empty tensors). */
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  metadata: GgufMetadata;
  /** In file order. */
  tensors: Map<string, GgufTensorInfo>;
  /** Absolute offset of the data section (the end of the tensor infos, padded to the alignment). */
  dataStart: number;
  fileSize: number;
  /**
   * The tensor's bytes: a view on the file mapped into memory where the native addon can map it,
   * else read from disk into a fresh buffer. Either way its byte offset is a multiple of 4 when the
   * file's alignment is (32 by default), so float32 views of it work. Treat it as read-only.
   */
  readTensor(name: string): Promise<Uint8Array>;
  /**
   * Bytes [begin, end) of the tensor's data (relative to its start), e.g. one expert of a stacked
   * 3-D tensor: expert e of ne = [a, b, n] is the range [e·S, (e+1)·S) with S = byteLength / n.
   */
  readTensorRange(name: string, begin: number, end: number): Promise<Uint8Array>;
  /** Closes the file; later reads throw. Safe to call twice. */
  close(): Promise<void>;
}

export interface GgufTensorToWrite {
  name: string;
  ne: number[];
  type: GgmlType;
  /**
   * The tensor's bytes (exactly rowBytes(type, ne[0]) · ne[1] · … bytes), as a Uint8Array or any
   * typed-array view (a Float32Array for F32, raw Uint16Array bits for F16/BF16…; the host is
   * little-endian); called once, in order, while writing.
   */
  data: () => Uint8Array | ArrayBufferView | Promise<Uint8Array | ArrayBufferView>;
}

export interface WriteGgufOptions {
  /**
   * Power of two (1 is legal). Defaults to `general.alignment` from the metadata, else 32. When it
   * differs from 32 and the metadata lacks `general.alignment`, that key is appended (as u32) so
   * readers find it; a `general.alignment` that disagrees with this option is an error.
   */
  alignment?: number;
}

// ---------------------------------------------------------------------------------------------
// Value constructors and typed accessors

/**
 * Concise constructors for metadata values with the right stored type:
 * `meta.set('llama.block_count', ggufVal.u32(28))`, `ggufVal.array('string', tokens)`.
 */
export const ggufVal = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  u64: (value: number | bigint): GgufValue => ({ type: 'u64', value }),
  i64: (value: number | bigint): GgufValue => ({ type: 'i64', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  array: (itemType: GgufScalarType, value: ReadonlyArray<number | bigint | boolean | string>): GgufValue => ({ type: 'array', itemType, value: [...value] }),
} as const;

/** "u32", "string", "array of i32": for messages. */
export function ggufTypeName(v: GgufValue): string {
  return v.type === 'array' ? `array of ${v.itemType}` : v.type;
}

/** What the accessors need: an opened file, or anything with a path (for messages) and metadata. */
export type GgufMetadataSource = Pick<GgufFile, 'path' | 'metadata'>;

const NUMERIC_TYPES = new Set<string>(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'u64', 'i64', 'f64']);

function keyFail(src: GgufMetadataSource, key: string, problem: string): never {
  throw new Error(`${src.path}: key ${JSON.stringify(key)}: ${problem}`);
}

function required<T>(src: GgufMetadataSource, key: string, v: T | undefined): T {
  if (v === undefined) throw new Error(`${src.path}: key ${JSON.stringify(key)} is missing`);
  return v;
}

function safeNumber(src: GgufMetadataSource, key: string, type: string, x: number | bigint | boolean | string, what = 'value'): number {
  if (typeof x === 'number') return x;
  return keyFail(src, key, `${type} ${what} ${String(x)} does not fit a safe JS integer`);
}

/**
 * Typed accessors. `ggufX(file, key)` returns the value or throws naming the file and key when the
 * key is missing or holds another type; `ggufXOpt(file, key)` returns undefined when it is missing
 * (and still throws on a wrong type). Numbers accept every numeric type (u8 … f64); a 64-bit value
 * beyond 2^53 is an error rather than a silent rounding.
 */
export function ggufStringOpt(src: GgufMetadataSource, key: string): string | undefined {
  const v = src.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'string') keyFail(src, key, `expected a string, found ${ggufTypeName(v)}`);
  return v.value;
}
export function ggufString(src: GgufMetadataSource, key: string): string {
  return required(src, key, ggufStringOpt(src, key));
}

export function ggufNumberOpt(src: GgufMetadataSource, key: string): number | undefined {
  const v = src.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'array' || v.type === 'string' || v.type === 'bool') keyFail(src, key, `expected a number, found ${ggufTypeName(v)}`);
  return safeNumber(src, key, v.type, v.value);
}
export function ggufNumber(src: GgufMetadataSource, key: string): number {
  return required(src, key, ggufNumberOpt(src, key));
}

export function ggufBoolOpt(src: GgufMetadataSource, key: string): boolean | undefined {
  const v = src.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'bool') keyFail(src, key, `expected a bool, found ${ggufTypeName(v)}`);
  return v.value;
}
export function ggufBool(src: GgufMetadataSource, key: string): boolean {
  return required(src, key, ggufBoolOpt(src, key));
}

export function ggufStringArrayOpt(src: GgufMetadataSource, key: string): string[] | undefined {
  const v = src.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'array' || v.itemType !== 'string') keyFail(src, key, `expected an array of string, found ${ggufTypeName(v)}`);
  return v.value as string[];
}
export function ggufStringArray(src: GgufMetadataSource, key: string): string[] {
  return required(src, key, ggufStringArrayOpt(src, key));
}

export function ggufNumberArrayOpt(src: GgufMetadataSource, key: string): number[] | undefined {
  const v = src.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'array' || !NUMERIC_TYPES.has(v.itemType)) keyFail(src, key, `expected an array of numbers, found ${ggufTypeName(v)}`);
  const out = v.value as Array<number | bigint>;
  for (let i = 0; i < out.length; i++) {
    if (typeof out[i] !== 'number') safeNumber(src, key, v.itemType, out[i], `item ${i}`);
  }
  return out as number[];
}
export function ggufNumberArray(src: GgufMetadataSource, key: string): number[] {
  return required(src, key, ggufNumberArrayOpt(src, key));
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** Bytes per read or write call: well under the 2 GiB syscall limit. */
const IO_CHUNK = 1 << 26;
/** Initial size of the header read buffer (grown only for a single longer string). */
const HEADER_CHUNK = 1 << 20;

const TYPE_BY_ID: ReadonlyArray<keyof typeof GGUF_VALUE_TYPES> = (() => {
  const out: Array<keyof typeof GGUF_VALUE_TYPES> = [];
  for (const [name, id] of Object.entries(GGUF_VALUE_TYPES)) out[id] = name as keyof typeof GGUF_VALUE_TYPES;
  return out;
})();

/** On-disk size of a scalar; for strings, the least it can take (the length prefix). */
const ITEM_BYTES: Record<GgufScalarType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, u64: 8, i64: 8, f64: 8 };

const INT_RANGES: Partial<Record<GgufScalarType, readonly [bigint, bigint]>> = {
  u8: [0n, 255n], i8: [-128n, 127n], u16: [0n, 65535n], i16: [-32768n, 32767n],
  u32: [0n, 4294967295n], i32: [-2147483648n, 2147483647n],
  u64: [0n, (1n << 64n) - 1n], i64: [-(1n << 63n), (1n << 63n) - 1n],
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Loose = new TextDecoder('utf-8');
const encoder = new TextEncoder();

function fail(path: string, problem: string): never {
  throw new Error(`${path}: ${problem}`);
}

/** A key or name quoted for a message (escaped; cut short if a corrupt file made it huge). */
function q(name: string): string {
  return name.length <= 200 ? JSON.stringify(name) : `${JSON.stringify(name.slice(0, 200))}… (${name.length} characters)`;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 31;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/**
 * Bytes of a tensor of type `type` and shape `ne` (ggml order), or a string saying why there is
 * no such tensor (ne[0] not a whole number of blocks, a size beyond 2^53).
 */
function tensorBytesOrProblem(type: GgmlType, ne: readonly number[]): number | string {
  const { blockSize, typeSize } = GGML_TYPES[type];
  if (ne[0] % blockSize !== 0) return `ne[0] = ${ne[0]} is not a multiple of the ${type} block size ${blockSize}`;
  if (ne.includes(0)) return 0;
  let n = ne[0];
  let bytes = (ne[0] / blockSize) * typeSize;
  for (let i = 1; i < ne.length; i++) {
    n *= ne[i];
    bytes *= ne[i];
  }
  if (!Number.isSafeInteger(n)) return `shape [${ne.join(', ')}] has more than 2^53 elements`;
  if (!Number.isSafeInteger(bytes)) return `shape [${ne.join(', ')}] of ${type} takes more than 2^53 bytes`;
  return bytes;
}

/** Bytes of a tensor: rowBytes(type, ne[0]) · ne[1] · …; throws when ne[0] is not a whole number of blocks. */
export function ggufTensorByteLength(type: GgmlType, ne: readonly number[]): number {
  const r = tensorBytesOrProblem(type, ne);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

function errnoMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Incremental, buffered reader over the header; knows the file size, so nothing reads past it. */
class HeaderReader {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  /** File offset of buf[end]. */
  private filePos = 0;

  constructor(private readonly fh: FileHandle, private readonly path: string, readonly fileSize: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.min(HEADER_CHUNK, fileSize));
  }

  /** Absolute offset of the next unread byte. */
  get pos(): number {
    return this.filePos - (this.end - this.start);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  get available(): number {
    return this.end - this.start;
  }

  truncated(what: string): never {
    fail(this.path, `truncated: the file ends at byte ${this.fileSize} while reading ${what}`);
  }

  /** Make at least n bytes available in the buffer (n ≤ remaining, else a truncation error). */
  async fill(n: number, what: () => string): Promise<void> {
    if (this.available >= n) return;
    if (n > this.remaining) this.truncated(what());
    if (n > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(Math.max(n, 2 * this.buf.length), this.fileSize));
      this.buf.copy(grown, 0, this.start, this.end);
      this.buf = grown;
    } else {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.end -= this.start;
    this.start = 0;
    while (this.end < n) {
      const len = Math.min(this.buf.length - this.end, this.fileSize - this.filePos, IO_CHUNK);
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.fh.read(this.buf, this.end, len, this.filePos));
      } catch (err) {
        fail(this.path, `cannot read (${errnoMessage(err)}) while reading ${what()}`);
      }
      if (bytesRead === 0) fail(this.path, `truncated: the file ends at byte ${this.filePos} while reading ${what()} (it shrank while being read?)`);
      this.end += bytesRead;
      this.filePos += bytesRead;
    }
  }

  // Synchronous accessors: the caller has made the bytes available with fill().
  get buffer(): Buffer {
    return this.buf;
  }
  /** Consume n available bytes; returns their offset in `buffer`. */
  advance(n: number): number {
    const at = this.start;
    this.start += n;
    return at;
  }
  u8(): number {
    return this.buf[this.start++];
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.start);
    this.start += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.start);
    this.start += 8;
    return v;
  }
  bytes(n: number): Buffer {
    const v = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return v;
  }

  async readU32(what: () => string): Promise<number> {
    if (this.available < 4) await this.fill(4, what);
    return this.u32();
  }
  async readU64(what: () => string): Promise<bigint> {
    if (this.available < 8) await this.fill(8, what);
    return this.u64();
  }

  /** The bytes of a length-prefixed string (not decoded); the length is checked against the file first. */
  async readStringBytes(what: () => string): Promise<Buffer> {
    if (this.available < 8) await this.fill(8, what);
    const len = this.u64();
    if (len > BigInt(this.remaining)) this.truncated(`${what()} (declared as ${len} bytes)`);
    if (len > BigInt(GGUF_MAX_STRING_BYTES)) fail(this.path, `${what()}: length ${len} exceeds the limit of ${GGUF_MAX_STRING_BYTES} bytes`);
    const n = Number(len);
    if (this.available < n) await this.fill(n, what);
    return this.bytes(n);
  }
}

function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

type Scalar = number | bigint | boolean | string;

/** Decode one fixed-size scalar at the reader's position (bytes already available). */
function readFixed(r: HeaderReader, type: GgufScalarType, path: string, where: () => string): number | bigint | boolean {
  const b = r.buffer;
  switch (type) {
    case 'u8':
      return r.u8();
    case 'i8':
      return b.readInt8(r.advance(1));
    case 'u16':
      return b.readUInt16LE(r.advance(2));
    case 'i16':
      return b.readInt16LE(r.advance(2));
    case 'u32':
      return b.readUInt32LE(r.advance(4));
    case 'i32':
      return b.readInt32LE(r.advance(4));
    case 'f32':
      return b.readFloatLE(r.advance(4));
    case 'f64':
      return b.readDoubleLE(r.advance(8));
    case 'u64': {
      const v = b.readBigUInt64LE(r.advance(8));
      return v <= MAX_SAFE ? Number(v) : v;
    }
    case 'i64': {
      const v = b.readBigInt64LE(r.advance(8));
      return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v;
    }
    case 'bool': {
      const v = r.u8();
      if (v > 1) fail(path, `${where()}: bool byte ${v} is neither 0 nor 1`);
      return v === 1;
    }
    case 'string':
      throw new Error('unreachable');
  }
}

async function readScalar(r: HeaderReader, type: GgufScalarType, path: string, where: () => string): Promise<Scalar> {
  if (type === 'string') {
    const bytes = await r.readStringBytes(() => `the string ${where()}`);
    const s = decodeUtf8(bytes);
    if (s === null) fail(path, `${where()}: string is not valid UTF-8`);
    return s;
  }
  const size = ITEM_BYTES[type];
  if (r.available < size) await r.fill(size, () => `the ${type} ${where()}`);
  return readFixed(r, type, path, where);
}

async function readArray(r: HeaderReader, key: string, path: string): Promise<GgufValue> {
  const k = q(key);
  const itemTypeId = await r.readU32(() => `the array item type of key ${k}`);
  if (itemTypeId === GGUF_VALUE_TYPES.array) fail(path, `key ${k}: nested arrays are not supported`);
  const itemType = TYPE_BY_ID[itemTypeId] as GgufScalarType | undefined;
  if (itemType === undefined) fail(path, `key ${k}: unknown array item type ${itemTypeId}`);
  const count = await r.readU64(() => `the array length of key ${k}`);
  const itemBytes = ITEM_BYTES[itemType];
  if (count * BigInt(itemBytes) > BigInt(r.remaining)) {
    r.truncated(`the ${count} ${itemType} items of key ${k} (at least ${count * BigInt(itemBytes)} bytes)`);
  }
  if (count > BigInt(GGUF_MAX_ARRAY_ITEMS)) fail(path, `key ${k}: array of ${count} items exceeds the limit of ${GGUF_MAX_ARRAY_ITEMS}`);
  const n = Number(count);
  const value: Scalar[] = [];
  let i = 0;
  const where = (): string => `item ${i} of key ${k}`;
  if (itemType === 'string') {
    // Kept as UTF-8 bytes (checked here) and decoded on first use: a vocabulary is 150k strings and
    // merges as many again, tens of MB of JS heap that a run which never tokenizes (a benchmark, a
    // server handed token ids) should not pay, and that stays resident once the heap has grown.
    let packed = Buffer.allocUnsafeSlow(Math.min(r.remaining, Math.max(1024, n * 8)));
    let used = 0;
    const ends = new Uint32Array(n);
    for (; i < n; i++) {
      if (r.available < 8) await r.fill(8, () => `the string ${where()}`);
      const len = r.u64();
      if (len > BigInt(r.remaining)) r.truncated(`the string ${where()} (declared as ${len} bytes)`);
      if (len > BigInt(GGUF_MAX_STRING_BYTES)) fail(path, `${where()}: string length ${len} exceeds the limit of ${GGUF_MAX_STRING_BYTES} bytes`);
      const m = Number(len);
      if (r.available < m) await r.fill(m, () => `the string ${where()}`);
      const bytes = r.bytes(m);
      if (!isUtf8(bytes)) fail(path, `${where()}: string is not valid UTF-8`);
      if (used + m > packed.length) {
        const grown = Buffer.allocUnsafeSlow(Math.max(used + m, 2 * packed.length));
        packed.copy(grown, 0, 0, used);
        packed = grown;
      }
      bytes.copy(packed, used);
      used += m;
      ends[i] = used;
    }
    return lazyStringArray(packed.subarray(0, used), ends);
  } else {
    // Fixed-size items: fill the buffer in batches, then decode synchronously.
    const batch = Math.max(1, Math.floor(HEADER_CHUNK / itemBytes));
    while (i < n) {
      const stop = Math.min(n, i + batch);
      await r.fill((stop - i) * itemBytes, () => `the ${itemType} ${where()}`);
      for (; i < stop; i++) value.push(readFixed(r, itemType, path, where));
    }
  }
  return { type: 'array', itemType, value };
}

/** A string array value whose strings are decoded from `packed` (item i ends at ends[i]) when first read. */
function lazyStringArray(packed: Buffer, ends: Uint32Array): GgufValue {
  let value: string[] | undefined;
  return {
    type: 'array',
    itemType: 'string',
    get value(): string[] {
      if (value === undefined) {
        value = new Array<string>(ends.length);
        for (let i = 0, at = 0; i < ends.length; at = ends[i++]) value[i] = packed.toString('utf8', at, ends[i]);
      }
      return value;
    },
  };
}

async function readMetadata(r: HeaderReader, path: string, count: number): Promise<GgufMetadata> {
  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < count; i++) {
    const keyBytes = await r.readStringBytes(() => `the key of metadata entry #${i}`);
    if (keyBytes.length === 0) fail(path, `metadata entry #${i} has an empty key`);
    const key = decodeUtf8(keyBytes);
    if (key === null) fail(path, `metadata entry #${i}: key ${q(utf8Loose.decode(keyBytes))} is not valid UTF-8`);
    const k = q(key);
    if (metadata.has(key)) fail(path, `key ${k}: duplicate key (metadata entry #${i})`);
    const typeId = await r.readU32(() => `the value type of key ${k}`);
    const type = TYPE_BY_ID[typeId];
    if (type === undefined) fail(path, `key ${k}: unknown value type ${typeId}`);
    if (type === 'array') {
      metadata.set(key, await readArray(r, key, path));
    } else {
      const value = await readScalar(r, type, path, () => `value of key ${k}`);
      metadata.set(key, { type, value } as GgufValue);
    }
  }
  return metadata;
}

function alignmentOf(metadata: GgufMetadata, path: string): number {
  const v = metadata.get('general.alignment');
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== 'u32') fail(path, `key "general.alignment": must be a u32, found ${ggufTypeName(v)}`);
  const a = v.value as number;
  if (!isPowerOfTwo(a)) fail(path, `key "general.alignment": ${a} is not a power of two`);
  return a;
}

async function readTensorInfos(r: HeaderReader, path: string, count: number, alignment: number): Promise<Map<string, GgufTensorInfo>> {
  const tensors = new Map<string, GgufTensorInfo>();
  /** Each offset must be exactly this: the previous tensors' sizes, each padded to the alignment. */
  let expected = 0;
  for (let i = 0; i < count; i++) {
    const nameBytes = await r.readStringBytes(() => `the name of tensor #${i}`);
    if (nameBytes.length === 0) fail(path, `tensor #${i} has an empty name`);
    if (nameBytes.length > GGUF_MAX_NAME_BYTES) {
      const shown = nameBytes.length <= 256 ? ` ${q(utf8Loose.decode(nameBytes))}` : '';
      fail(path, `tensor #${i}: name${shown} is ${nameBytes.length} bytes, longer than the ${GGUF_MAX_NAME_BYTES}-byte limit`);
    }
    const name = decodeUtf8(nameBytes);
    if (name === null) fail(path, `tensor #${i}: name ${q(utf8Loose.decode(nameBytes))} is not valid UTF-8`);
    const t = `tensor ${q(name)}`;
    if (tensors.has(name)) fail(path, `${t}: duplicate tensor name (tensor #${i})`);

    const nDims = await r.readU32(() => `the n_dims of ${t}`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) fail(path, `${t}: n_dims ${nDims} is not in 1..${GGUF_MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = await r.readU64(() => `ne[${d}] of ${t}`);
      if (v > MAX_SAFE) fail(path, `${t}: ne[${d}] = ${v} is too large`);
      ne.push(Number(v));
    }
    const typeId = await r.readU32(() => `the type of ${t}`);
    const type = ggmlTypeById(typeId);
    if (type === undefined) {
      const known = ggmlTypeName(typeId);
      fail(path, known === `type ${typeId}` ? `${t}: unknown tensor type id ${typeId}` : `${t}: unsupported tensor type ${known}`);
    }
    const byteLength = tensorBytesOrProblem(type, ne);
    if (typeof byteLength === 'string') fail(path, `${t}: ${byteLength}`);

    const off = await r.readU64(() => `the offset of ${t}`);
    if (off % BigInt(alignment) !== 0n) fail(path, `${t}: offset ${off} is not a multiple of the alignment ${alignment}`);
    if (off !== BigInt(expected)) {
      fail(path, `${t}: offset ${off} should be ${expected} (the previous tensors' sizes, each padded to the alignment ${alignment}, in order)`);
    }
    // The data section lies inside the file, so no offset can exceed its size: this keeps every
    // sum below 2^53 and reports a cut file before the tensor infos are even finished.
    if (expected + byteLength > r.fileSize) {
      r.truncated(`the data of ${t} (${byteLength} bytes at offset ${expected} of the data section)`);
    }
    tensors.set(name, { name, ne, type, offset: expected, byteLength });
    expected += alignUp(byteLength, alignment);
  }
  return tensors;
}

class OpenGguf implements GgufFile {
  private fh: FileHandle | null;
  /** Tensors are mapped (when the native addon can), not copied. */
  private readonly mapped: MappedFile | null;

  constructor(
    fh: FileHandle,
    readonly path: string,
    readonly version: number,
    readonly alignment: number,
    readonly metadata: GgufMetadata,
    readonly tensors: Map<string, GgufTensorInfo>,
    readonly dataStart: number,
    readonly fileSize: number,
  ) {
    this.fh = fh;
    this.mapped = canMap() ? new MappedFile(path, [...tensors.values()].map((t) => [t.offset, t.offset + t.byteLength] as const)) : null;
  }

  private info(name: string): GgufTensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) fail(this.path, `no tensor ${q(name)} in this file`);
    return info;
  }

  async readTensor(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return this.readTensorRange(name, 0, info.byteLength);
  }

  async readTensorRange(name: string, begin: number, end: number): Promise<Uint8Array> {
    const info = this.info(name);
    const t = `tensor ${q(name)}`;
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin || end > info.byteLength) {
      fail(this.path, `${t}: byte range [${begin}, ${end}) is not inside its ${info.byteLength} bytes`);
    }
    const n = end - begin;
    if (n > bufferConstants.MAX_LENGTH) fail(this.path, `${t}: ${n} bytes are more than one buffer can hold; read it in ranges`);
    const fh = this.fh;
    if (fh === null) fail(this.path, `cannot read ${t}: the file is closed`);
    if (this.mapped !== null) {
      // A file cut short under a mapping would fault on access (SIGBUS): check it still holds the range.
      const size = (await fh.stat()).size;
      if (size < info.offset + end) {
        fail(this.path, `truncated: the file ends at byte ${size} while reading the data of ${t} (it shrank after opening?)`);
      }
      return this.mapped.view(info.offset + begin, info.offset + end);
    }
    const out = Buffer.allocUnsafeSlow(n);
    const position = info.offset + begin;
    let done = 0;
    while (done < n) {
      const len = Math.min(IO_CHUNK, n - done);
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(out, done, len, position + done));
      } catch (err) {
        fail(this.path, `${t}: cannot read (${errnoMessage(err)})`);
      }
      if (bytesRead === 0) {
        fail(this.path, `truncated: the file ends at byte ${position + done} while reading the data of ${t} (it shrank after opening?)`);
      }
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

/**
 * Open a GGUF file (version 2 or 3): reads and validates the header (magic, version, metadata,
 * alignment, tensor infos, offsets and sizes against the file) and keeps the file open for lazy
 * tensor reads. Close it with `close()`. Any problem is an Error whose message starts with `path`.
 */
export async function openGguf(path: string): Promise<GgufFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw Object.assign(new Error(`${path}: cannot open (${errnoMessage(err)})`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
  try {
    let fileSize: number;
    try {
      const st = await fh.stat();
      if (!st.isFile()) fail(path, 'not a regular file');
      fileSize = st.size;
    } catch (err) {
      if (err instanceof Error && err.message.startsWith(`${path}: `)) throw err;
      fail(path, `cannot stat (${errnoMessage(err)})`);
    }
    const r = new HeaderReader(fh, path, fileSize);

    await r.fill(4, () => 'the magic');
    const magic = r.bytes(4);
    if (magic.toString('latin1') !== 'GGUF') {
      const shown = [...magic].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
      fail(path, `not a GGUF file: the magic is "${shown}", expected "GGUF"`);
    }
    const version = await r.readU32(() => 'the version');
    if (version !== 2 && version !== 3) {
      if ((version & 0xffff) === 0 && version !== 0) {
        fail(path, `GGUF version 0x${version.toString(16).padStart(8, '0')} looks byte-swapped: big-endian GGUF files are not supported`);
      }
      fail(path, `GGUF version ${version} is not supported (only versions 2 and 3)`);
    }
    const tensorCount = await r.readU64(() => 'the tensor count');
    const kvCount = await r.readU64(() => 'the metadata count');
    // Smallest possible entries: a metadata pair is a 1-byte key (8 + 1), a type (4) and a 1-byte
    // value; a tensor info is a 1-byte name, n_dims, one ne, a type and an offset.
    const minBytes = kvCount * 14n + tensorCount * 33n;
    if (minBytes > BigInt(r.remaining)) {
      r.truncated(`${kvCount} metadata entries and ${tensorCount} tensor infos (the header's counts need at least ${minBytes} more bytes; corrupt counts?)`);
    }
    const metadata = await readMetadata(r, path, Number(kvCount));
    const alignment = alignmentOf(metadata, path);
    const tensors = await readTensorInfos(r, path, Number(tensorCount), alignment);
    const dataStart = alignUp(r.pos, alignment);
    for (const info of tensors.values()) {
      const begin = dataStart + info.offset;
      if (begin + info.byteLength > fileSize) {
        r.truncated(`the data of tensor ${q(info.name)} (bytes ${begin} to ${begin + info.byteLength})`);
      }
      info.offset = begin;
    }
    return new OpenGguf(fh, path, version, alignment, metadata, tensors, dataStart, fileSize);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Little-endian byte sink for the header, collected in chunks and written out at once. */
class ByteSink {
  private chunks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  length = 0;

  private room(n: number): void {
    if (this.cur.length - this.used >= n) return;
    this.chunks.push(this.cur.subarray(0, this.used));
    this.cur = Buffer.allocUnsafe(Math.max(1 << 16, n));
    this.used = 0;
  }
  u8(v: number): void {
    this.room(1);
    this.cur[this.used++] = v;
    this.length += 1;
  }
  i8(v: number): void {
    this.room(1);
    this.used = this.cur.writeInt8(v, this.used);
    this.length += 1;
  }
  u16(v: number): void {
    this.room(2);
    this.used = this.cur.writeUInt16LE(v, this.used);
    this.length += 2;
  }
  i16(v: number): void {
    this.room(2);
    this.used = this.cur.writeInt16LE(v, this.used);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.used = this.cur.writeUInt32LE(v, this.used);
    this.length += 4;
  }
  i32(v: number): void {
    this.room(4);
    this.used = this.cur.writeInt32LE(v, this.used);
    this.length += 4;
  }
  f32(v: number): void {
    this.room(4);
    this.used = this.cur.writeFloatLE(v, this.used);
    this.length += 4;
  }
  f64(v: number): void {
    this.room(8);
    this.used = this.cur.writeDoubleLE(v, this.used);
    this.length += 8;
  }
  u64(v: bigint): void {
    this.room(8);
    this.used = this.cur.writeBigUInt64LE(v, this.used);
    this.length += 8;
  }
  i64(v: bigint): void {
    this.room(8);
    this.used = this.cur.writeBigInt64LE(v, this.used);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.u64(BigInt(b.length));
    this.room(b.length);
    this.cur.set(b, this.used);
    this.used += b.length;
    this.length += b.length;
  }
  zeros(n: number): void {
    this.room(n);
    this.cur.fill(0, this.used, this.used + n);
    this.used += n;
    this.length += n;
  }
  done(): Buffer[] {
    this.chunks.push(this.cur.subarray(0, this.used));
    const out = this.chunks;
    this.chunks = [];
    return out;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;

/** UTF-8 bytes of a JS string, refusing lone surrogates (which TextEncoder would silently replace). */
function encodeString(s: string, what: () => string, path: string): Uint8Array {
  if (typeof s !== 'string') fail(path, `${what()}: expected a string, got ${typeof s}`);
  if (LONE_SURROGATE.test(s)) fail(path, `${what()}: string contains a lone UTF-16 surrogate (not encodable as UTF-8)`);
  const b = encoder.encode(s);
  if (b.length > GGUF_MAX_STRING_BYTES) fail(path, `${what()}: string of ${b.length} bytes exceeds the limit of ${GGUF_MAX_STRING_BYTES}`);
  return b;
}

/** Validate one scalar against its declared type and append it. */
function putScalar(sink: ByteSink, type: GgufScalarType, v: unknown, what: () => string, path: string): void {
  const range = INT_RANGES[type];
  if (range !== undefined) {
    let b: bigint;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) fail(path, `${what()}: ${v} is not an integer (declared ${type})`);
      b = BigInt(v);
    } else if (typeof v === 'bigint') {
      b = v;
    } else {
      fail(path, `${what()}: a ${type} value must be a number or bigint, got ${typeof v}`);
    }
    if (b < range[0] || b > range[1]) fail(path, `${what()}: ${String(v)} is out of range for ${type} [${range[0]}, ${range[1]}]`);
    switch (type) {
      case 'u8': return sink.u8(Number(b));
      case 'i8': return sink.i8(Number(b));
      case 'u16': return sink.u16(Number(b));
      case 'i16': return sink.i16(Number(b));
      case 'u32': return sink.u32(Number(b));
      case 'i32': return sink.i32(Number(b));
      case 'u64': return sink.u64(b);
      case 'i64': return sink.i64(b);
    }
    return;
  }
  switch (type) {
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') fail(path, `${what()}: a ${type} value must be a number, got ${typeof v}`);
      if (type === 'f32') {
        if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) fail(path, `${what()}: ${v} is out of range for f32`);
        sink.f32(v);
      } else {
        sink.f64(v);
      }
      return;
    case 'bool':
      if (typeof v !== 'boolean') fail(path, `${what()}: a bool value must be a boolean, got ${typeof v}`);
      sink.u8(v ? 1 : 0);
      return;
    case 'string':
      sink.bytes(encodeString(v as string, what, path));
      return;
  }
  fail(path, `${what()}: unknown value type ${q(String(type))}`);
}

function isScalarType(t: unknown): t is GgufScalarType {
  return typeof t === 'string' && t !== 'array' && Object.hasOwn(GGUF_VALUE_TYPES, t);
}

function putMetadata(sink: ByteSink, key: string, v: GgufValue, path: string): void {
  const k = q(key);
  if (typeof key !== 'string' || key.length === 0) fail(path, 'metadata keys must be non-empty strings');
  sink.bytes(encodeString(key, () => `key ${k}`, path));
  if (v === null || typeof v !== 'object') fail(path, `key ${k}: value must be a { type, value } object`);
  if (v.type === 'array') {
    const itemType: unknown = v.itemType;
    if (itemType === 'array') fail(path, `key ${k}: nested arrays are not supported`);
    if (!isScalarType(itemType)) fail(path, `key ${k}: unknown array item type ${q(String(itemType))}`);
    if (!Array.isArray(v.value)) fail(path, `key ${k}: an array value must be a JS array`);
    if (v.value.length > GGUF_MAX_ARRAY_ITEMS) fail(path, `key ${k}: array of ${v.value.length} items exceeds the limit of ${GGUF_MAX_ARRAY_ITEMS}`);
    sink.u32(GGUF_VALUE_TYPES.array);
    sink.u32(GGUF_VALUE_TYPES[itemType]);
    sink.u64(BigInt(v.value.length));
    for (let i = 0; i < v.value.length; i++) putScalar(sink, itemType, v.value[i], () => `key ${k}: item ${i}`, path);
    return;
  }
  if (!isScalarType(v.type)) fail(path, `key ${k}: unknown value type ${q(String(v.type))}`);
  sink.u32(GGUF_VALUE_TYPES[v.type]);
  putScalar(sink, v.type, v.value, () => `key ${k}`, path);
}

interface PlannedTensor {
  t: GgufTensorToWrite;
  nameBytes: Uint8Array;
  offset: number;
  byteLength: number;
}

function planTensors(path: string, tensors: readonly GgufTensorToWrite[], alignment: number): PlannedTensor[] {
  const seen = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (typeof t?.name !== 'string' || t.name.length === 0) fail(path, `tensor #${i} has no name`);
    const w = `tensor ${q(t.name)}`;
    const nameBytes = encodeString(t.name, () => `${w}: name`, path);
    if (nameBytes.length > GGUF_MAX_NAME_BYTES) fail(path, `${w}: name is ${nameBytes.length} bytes, longer than the ${GGUF_MAX_NAME_BYTES}-byte limit`);
    if (seen.has(t.name)) fail(path, `${w}: given twice`);
    seen.add(t.name);
    if (!Object.hasOwn(GGML_TYPES, t.type)) fail(path, `${w}: unknown tensor type ${q(String(t.type))}`);
    if (!Array.isArray(t.ne) || t.ne.length < 1 || t.ne.length > GGUF_MAX_DIMS) {
      fail(path, `${w}: ne must list 1 to ${GGUF_MAX_DIMS} dimensions, got ${JSON.stringify(t.ne)}`);
    }
    for (const d of t.ne) if (!Number.isSafeInteger(d) || d < 0) fail(path, `${w}: ne ${JSON.stringify(t.ne)} is not a list of non-negative integers`);
    if (typeof t.data !== 'function') fail(path, `${w}: data must be a function returning the tensor's bytes`);
    const byteLength = tensorBytesOrProblem(t.type, t.ne);
    if (typeof byteLength === 'string') fail(path, `${w}: ${byteLength}`);
    planned.push({ t, nameBytes, offset, byteLength });
    offset += alignUp(byteLength, alignment);
    if (!Number.isSafeInteger(offset)) fail(path, `${w}: the data section would exceed 2^53 bytes`);
  }
  return planned;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(IO_CHUNK, bytes.length - done));
    done += bytesWritten;
  }
}

async function writeZeros(fh: FileHandle, n: number): Promise<void> {
  const zeros = Buffer.alloc(Math.min(n, 1 << 20));
  for (let left = n; left > 0; left -= zeros.length) await writeAll(fh, zeros.subarray(0, Math.min(left, zeros.length)));
}

/**
 * Write a GGUF v3 file atomically: the header (metadata in the Map's order with their declared
 * types, then tensor infos with computed offsets), zero padding to the alignment, then each
 * tensor's bytes (from `data()`, called once per tensor, in order) padded to the alignment.
 * Everything that can be checked up front (value types and ranges, keys, names, shapes, sizes) is
 * checked before the file is created; a `data()` of the wrong byte length aborts the write. An
 * interrupted write never leaves a torn file at `path`.
 */
export async function writeGguf(path: string, metadata: GgufMetadata, tensors: GgufTensorToWrite[], opts: WriteGgufOptions = {}): Promise<void> {
  const entries = [...metadata];
  const declared = metadata.get('general.alignment');
  let alignment = opts.alignment;
  if (declared !== undefined) {
    if (declared.type !== 'u32') fail(path, `key "general.alignment": must be a u32, found ${ggufTypeName(declared)}`);
    const a = declared.value;
    if (typeof a !== 'number' || !isPowerOfTwo(a)) fail(path, `key "general.alignment": ${String(a)} is not a power of two`);
    if (alignment !== undefined && alignment !== a) fail(path, `alignment option ${alignment} disagrees with key "general.alignment" = ${a}`);
    alignment = a;
  }
  alignment ??= GGUF_DEFAULT_ALIGNMENT;
  if (!isPowerOfTwo(alignment)) fail(path, `alignment ${alignment} is not a power of two (at most 2^31)`);
  if (declared === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) entries.push(['general.alignment', ggufVal.u32(alignment)]);

  const planned = planTensors(path, tensors, alignment);
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(BigInt(planned.length));
  head.u64(BigInt(entries.length));
  for (const [key, value] of entries) putMetadata(head, key, value, path);
  for (const p of planned) {
    head.bytes(p.nameBytes);
    head.u32(p.t.ne.length);
    for (const d of p.t.ne) head.u64(BigInt(d));
    head.u32(GGML_TYPES[p.t.type].id);
    head.u64(BigInt(p.offset));
  }
  head.zeros(alignUp(head.length, alignment) - head.length);

  await writeStreamAtomic(path, async (fh) => {
    for (const chunk of head.done()) await writeAll(fh, chunk);
    for (const p of planned) {
      const w = `tensor ${q(p.t.name)}`;
      const data = await p.t.data();
      if (!ArrayBuffer.isView(data)) fail(path, `${w}: data() must return a Uint8Array or another typed array`);
      if (data.byteLength !== p.byteLength) {
        fail(path, `${w}: data() returned ${data.byteLength} bytes, but ${p.t.type} [${p.t.ne.join(', ')}] takes ${p.byteLength}`);
      }
      await writeAll(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      await writeZeros(fh, alignUp(p.byteLength, alignment) - p.byteLength);
    }
  });
}
