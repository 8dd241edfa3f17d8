// safetensors: `u64le header length N` · `N bytes of JSON` · tensor data (row-major, little-endian).
// Reading is strict: a file that any other reader could interpret differently, or that is cut
// short, is refused with an error naming the file and the problem, never loaded half-way.
// Writing streams tensor by tensor through an atomic temp file, so a large model never needs
// one giant buffer and a crash never leaves a torn file.
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { writeStreamAtomic } from '../util/atomic.js';
import { canMap, MappedFile } from './mapped.js';
import { decodeHalf, encodeHalf } from '../kernels/quant/half.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'I8';
export type WritableDtype = 'F32' | 'F16' | 'BF16' | 'I32';

/** F16/BF16 come back as raw bits (Uint16Array) unless `loadAs: 'f32'` decodes them. */
export type TensorArray = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, I8: 1 };

/** The reference implementation's cap: a larger header is corruption, not a model. */
const MAX_HEADER_BYTES = 100_000_000;
/** Bytes per write or read call; keeps each syscall well under the 2 GiB limit. */
const IO_CHUNK = 1 << 26;
/** Elements converted per step when encoding halves, so conversion needs no full-size copy. */
const ENCODE_CHUNK = 1 << 18;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors: this code maps file bytes straight onto typed arrays and needs a little-endian host');
}

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** In file order (ascending offsets). */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data section. */
  dataStart: number;
}

export interface LoadedTensor {
  /** The dtype stored in the file; `data`'s array type follows `loadAs`. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorArray;
}

export interface SafetensorsContents {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /** 'f32' decodes F16/BF16 (and passes F32) as Float32Array; integer tensors are unaffected. */
  loadAs?: 'raw' | 'f32';
  /** Allocates the Float32Array for each float tensor, e.g. inside a shared WASM heap. */
  allocF32?: (n: number) => Float32Array;
}

export interface TensorToWrite {
  /** Defaults to F32 for Float32Array and I32 for Int32Array; F16/BF16 encode a Float32Array or take raw Uint16Array bits. */
  dtype?: WritableDtype;
  shape: readonly number[];
  data: Float32Array | Int32Array | Uint16Array;
}

function fail(path: string, problem: string): never {
  throw new Error(`${path}: ${problem}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDtype(v: unknown): v is SafetensorsDtype {
  return typeof v === 'string' && Object.hasOwn(DTYPE_BYTES, v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Element count of a shape, or null when it is not a list of non-negative integers or overflows. */
function numelOf(shape: unknown): number | null {
  if (!Array.isArray(shape)) return null;
  let n = 1;
  for (const d of shape) {
    if (!isCount(d)) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

function parseHeader(path: string, bytes: Uint8Array, dataStart: number, dataLength: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail(path, 'safetensors header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(path, `safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(json)) fail(path, 'safetensors header is not a JSON object');

  const metadata: Record<string, string> = {};
  const found: Array<[string, TensorInfo]> = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(entry)) fail(path, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(path, `__metadata__ value for "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isRecord(entry)) fail(path, `${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) fail(path, `${where}: unknown or unsupported dtype ${JSON.stringify(dtype)}`);
    const numel = numelOf(shape);
    if (numel === null) fail(path, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1])) {
      fail(path, `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(path, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
    const need = numel * DTYPE_BYTES[dtype];
    if (end - begin !== need) {
      fail(path, `${where}: shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    found.push([name, { dtype, shape: [...(shape as number[])], begin, end }]);
  }

  // The data section must be tiled exactly: no overlaps (two tensors aliasing bytes), no holes
  // (hidden data), nothing after the last tensor, nothing missing at the end (a truncated file).
  found.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let pos = 0;
  let prev = '';
  for (const [name, info] of found) {
    if (info.begin < pos) fail(path, `tensor "${name}": data_offsets [${info.begin}, ${info.end}] overlap tensor "${prev}" (which ends at ${pos})`);
    if (info.begin > pos) fail(path, `tensor "${name}": data_offsets begin at ${info.begin}, leaving a hole after byte ${pos} of the data section`);
    if (info.end > dataLength) {
      fail(path, `tensor "${name}": data_offsets [${info.begin}, ${info.end}] run past the end of the data section (${dataLength} bytes): file truncated?`);
    }
    pos = info.end;
    prev = name;
  }
  if (pos < dataLength) fail(path, `${dataLength - pos} trailing bytes after the last tensor's data`);
  return { tensors: new Map(found), metadata, dataStart };
}

async function readFully(fh: FileHandle, path: string, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const len = Math.min(IO_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) fail(path, `unexpected end of file at byte ${position + done} (file shrank while being read?)`);
    done += bytesRead;
  }
}

async function readHeaderFrom(fh: FileHandle, path: string): Promise<SafetensorsHeader> {
  const size = (await fh.stat()).size;
  if (size < 8) fail(path, `file is ${size} bytes, too short for a safetensors header length`);
  const prefix = new Uint8Array(8);
  await readFully(fh, path, prefix, 0);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n > BigInt(size - 8)) fail(path, `safetensors header length ${n} runs past the end of the file (${size} bytes)`);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(path, `safetensors header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerBytes = new Uint8Array(Number(n));
  await readFully(fh, path, headerBytes, 8);
  const dataStart = 8 + headerBytes.length;
  return parseHeader(path, headerBytes, dataStart, size - dataStart);
}

/** Read and validate only the header: names, dtypes, shapes, offsets and `__metadata__`. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, 'r');
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

async function readTensor(fh: FileHandle, path: string, dataStart: number, info: TensorInfo, opts: ReadSafetensorsOptions): Promise<TensorArray> {
  const n = (info.end - info.begin) / DTYPE_BYTES[info.dtype];
  const wantF32 = opts.loadAs === 'f32' && (info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16');
  const alloc = opts.allocF32 ?? ((k: number) => new Float32Array(k));
  const position = dataStart + info.begin;
  if (info.dtype === 'F32' && wantF32) {
    const out = alloc(n);
    if (out.length !== n) fail(path, `allocF32 returned ${out.length} elements, asked for ${n}`);
    await readFully(fh, path, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), position);
    return out;
  }
  // A fresh buffer per tensor: typed-array views need element-aligned offsets, which file
  // offsets do not guarantee.
  const bytes = new Uint8Array(info.end - info.begin);
  await readFully(fh, path, bytes, position);
  switch (info.dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer);
    case 'F16':
    case 'BF16': {
      const raw = new Uint16Array(bytes.buffer);
      if (!wantF32) return raw;
      const out = alloc(n);
      if (out.length !== n) fail(path, `allocF32 returned ${out.length} elements, asked for ${n}`);
      return decodeHalf(info.dtype, raw, out);
    }
    case 'I32':
      return new Int32Array(bytes.buffer);
    case 'I64':
      return new BigInt64Array(bytes.buffer);
    case 'U8':
      return bytes;
    case 'I8':
      return new Int8Array(bytes.buffer);
  }
}

/** An open safetensors file whose tensors are read one at a time, on demand. */
export interface SafetensorsFile {
  path: string;
  header: SafetensorsHeader;
  /** The stored bytes of one tensor (a fresh buffer). */
  readBytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Opens and validates a safetensors file without reading its tensors. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await open(path, 'r');
  let header: SafetensorsHeader;
  try {
    header = await readHeaderFrom(fh, path);
  } catch (err) {
    await fh.close();
    throw err;
  }
  // Mapped where the native addon can: tensors are then views on the page cache, not copies.
  const mapped = canMap() ? new MappedFile(path, [...header.tensors.values()].map((t) => [header.dataStart + t.begin, header.dataStart + t.end] as const)) : null;
  return {
    path,
    header,
    async readBytes(name: string): Promise<Uint8Array> {
      const info = header.tensors.get(name);
      if (info === undefined) fail(path, `no tensor "${name}"`);
      const begin = header.dataStart + info.begin, end = header.dataStart + info.end;
      if (mapped !== null) {
        // A file cut short under a mapping would fault on access: check it still holds the range.
        if ((await fh.stat()).size < end) fail(path, `unexpected end of file at byte ${end} (file shrank while being read?)`);
        return mapped.view(begin, end);
      }
      const bytes = new Uint8Array(end - begin);
      await readFully(fh, path, bytes, begin);
      return bytes;
    },
    close: () => fh.close(),
  };
}

/** Read a whole safetensors file, validating it first. */
export async function readSafetensors(path: string, opts: ReadSafetensorsOptions = {}): Promise<SafetensorsContents> {
  const fh = await open(path, 'r');
  try {
    const header = await readHeaderFrom(fh, path);
    const tensors = new Map<string, LoadedTensor>();
    for (const [name, info] of header.tensors) {
      tensors.set(name, { dtype: info.dtype, shape: info.shape, data: await readTensor(fh, path, header.dataStart, info, opts) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    await fh.close();
  }
}

export interface ShardedContents extends SafetensorsContents {
  /** Which shard file each tensor came from (for error messages). */
  fileOf: Map<string, string>;
}

/** model.safetensors.index.json: the tensor names each shard (a file beside the index) must hold. */
async function readShardIndex(indexPath: string): Promise<Map<string, Set<string>>> {
  const fh = await open(indexPath, 'r');
  let text: string;
  try {
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(indexPath, `not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(json) || !isRecord(json.weight_map)) fail(indexPath, 'missing "weight_map" object');
  const byShard = new Map<string, Set<string>>();
  for (const [name, shard] of Object.entries(json.weight_map)) {
    // Shards must sit beside the index: a path elsewhere is either a mistake or an attack.
    if (typeof shard !== 'string' || shard === '' || isAbsolute(shard) || shard !== basename(shard) || shard === '.' || shard === '..') {
      fail(indexPath, `weight_map["${name}"] = ${JSON.stringify(shard)} is not a file name beside the index`);
    }
    let names = byShard.get(shard);
    if (!names) byShard.set(shard, (names = new Set()));
    names.add(name);
  }
  return byShard;
}

/** Every tensor in the weight map must be in its shard, and every tensor in a shard listed there. */
function checkShard(indexPath: string, shardPath: string, listed: Set<string>, present: Iterable<string>): void {
  const found = new Set(present);
  for (const name of listed) {
    if (!found.has(name)) fail(shardPath, `tensor "${name}" is listed in ${basename(indexPath)} but not in this shard`);
  }
  for (const name of found) {
    if (!listed.has(name)) fail(shardPath, `tensor "${name}" is in this shard but ${basename(indexPath)} does not map it here`);
  }
}

/** A checkpoint's tensors across one file or several shards, read one at a time on demand. */
export interface SafetensorsCollection {
  /** Name → dtype, shape and the file holding it. */
  tensors: Map<string, TensorInfo & { file: string }>;
  metadata: Record<string, string>;
  readBytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Opens a sharded checkpoint through its index, validating every shard's header (no tensor is read). */
export async function openShardedSafetensors(indexPath: string): Promise<SafetensorsCollection> {
  const byShard = await readShardIndex(indexPath);
  const files: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  const tensors = new Map<string, TensorInfo & { file: string }>();
  const metadata: Record<string, string> = {};
  try {
    for (const [shard, listed] of byShard) {
      const f = await openSafetensors(join(dirname(indexPath), shard));
      files.push(f);
      checkShard(indexPath, f.path, listed, f.header.tensors.keys());
      for (const [name, info] of f.header.tensors) {
        tensors.set(name, { ...info, file: f.path });
        owner.set(name, f);
      }
      Object.assign(metadata, f.header.metadata);
    }
  } catch (err) {
    await Promise.all(files.map((f) => f.close()));
    throw err;
  }
  return {
    tensors,
    metadata,
    readBytes: (name) => {
      const f = owner.get(name);
      if (f === undefined) fail(indexPath, `no tensor "${name}"`);
      return f.readBytes(name);
    },
    close: async () => {
      await Promise.all(files.map((f) => f.close()));
    },
  };
}

/** The same view of a single-file checkpoint. */
export async function openSafetensorsCollection(path: string): Promise<SafetensorsCollection> {
  const f = await openSafetensors(path);
  return {
    tensors: new Map([...f.header.tensors].map(([name, info]) => [name, { ...info, file: path }])),
    metadata: f.header.metadata,
    readBytes: (name) => f.readBytes(name),
    close: () => f.close(),
  };
}

/**
 * Read a sharded checkpoint through its `model.safetensors.index.json`. Every tensor in the
 * weight map must be in its shard, and every tensor in a shard must be listed there.
 * `metadata` merges the shards' `__metadata__`.
 */
export async function readShardedSafetensors(indexPath: string, opts: ReadSafetensorsOptions = {}): Promise<ShardedContents> {
  const byShard = await readShardIndex(indexPath);
  const dir = dirname(indexPath);
  const tensors = new Map<string, LoadedTensor>();
  const fileOf = new Map<string, string>();
  const metadata: Record<string, string> = {};
  for (const [shard, listed] of byShard) {
    const shardPath = join(dir, shard);
    const contents = await readSafetensors(shardPath, opts);
    checkShard(indexPath, shardPath, listed, contents.tensors.keys());
    for (const [name, tensor] of contents.tensors) {
      tensors.set(name, tensor);
      fileOf.set(name, shardPath);
    }
    Object.assign(metadata, contents.metadata);
  }
  return { tensors, metadata, fileOf };
}

interface PlannedTensor {
  name: string;
  dtype: WritableDtype;
  data: Float32Array | Int32Array | Uint16Array;
  begin: number;
  end: number;
  shape: number[];
}

function planTensor(path: string, name: string, t: TensorToWrite, begin: number): PlannedTensor {
  const where = `tensor "${name}"`;
  if (name === '__metadata__') fail(path, 'a tensor cannot be named "__metadata__"');
  const dtype = t.dtype ?? (t.data instanceof Float32Array ? 'F32' : t.data instanceof Int32Array ? 'I32' : null);
  if (dtype === null) fail(path, `${where}: raw Uint16Array data needs an explicit dtype (F16 or BF16)`);
  const ok =
    dtype === 'F32' ? t.data instanceof Float32Array
    : dtype === 'I32' ? t.data instanceof Int32Array
    : t.data instanceof Float32Array || t.data instanceof Uint16Array;
  if (!ok) fail(path, `${where}: cannot write ${t.data.constructor.name} as ${dtype}`);
  const n = numelOf(t.shape);
  if (n === null) fail(path, `${where}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
  if (n !== t.data.length) fail(path, `${where}: shape [${t.shape.join(', ')}] has ${n} elements but the data has ${t.data.length}`);
  const end = begin + n * DTYPE_BYTES[dtype];
  return { name, dtype, data: t.data, begin, end, shape: [...t.shape] };
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(IO_CHUNK, bytes.length - done));
    done += bytesWritten;
  }
}

function byteView(a: Float32Array | Int32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function writeTensorData(fh: FileHandle, t: PlannedTensor): Promise<void> {
  if (t.dtype === 'F32' || t.dtype === 'I32' || t.data instanceof Uint16Array) {
    await writeFully(fh, byteView(t.data));
    return;
  }
  const src = t.data as Float32Array;
  const buf = new Uint16Array(Math.min(ENCODE_CHUNK, src.length));
  for (let i = 0; i < src.length; i += ENCODE_CHUNK) {
    const part = src.subarray(i, i + ENCODE_CHUNK);
    const out = buf.subarray(0, part.length);
    encodeHalf(t.dtype, part, out);
    await writeFully(fh, byteView(out));
  }
}

/**
 * Write tensors (in iteration order) and optional `__metadata__` to `path`, atomically.
 * The header is space-padded so the data section starts on an 8-byte boundary.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<readonly [string, TensorToWrite]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail(path, `__metadata__ value for "${k}" is not a string`);
  }
  const planned: PlannedTensor[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const [name, t] of tensors) {
    if (seen.has(name)) fail(path, `tensor "${name}" given twice`);
    seen.add(name);
    const p = planTensor(path, name, t, offset);
    planned.push(p);
    offset = p.end;
  }
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  for (const p of planned) header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [p.begin, p.end] };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);

  await writeStreamAtomic(path, async (fh) => {
    await writeFully(fh, head);
    for (const p of planned) await writeTensorData(fh, p);
  });
}
