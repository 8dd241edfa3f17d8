// GGUF container: round trips, an independent reader (node-llama-cpp), one test per class of bad
// input (files built by hand from the format description), writer validation and atomicity, and a
// seeded fuzz of truncations and corruptions.
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  GGUF_VALUE_TYPES,
  ggufBool,
  ggufBoolOpt,
  ggufNumber,
  ggufNumberArray,
  ggufNumberArrayOpt,
  ggufNumberOpt,
  ggufString,
  ggufStringArray,
  ggufStringArrayOpt,
  ggufStringOpt,
  ggufTensorByteLength,
  ggufVal,
  openGguf,
  writeGguf,
  type GgufFile,
  type GgufMetadata,
  type GgufScalarType,
  type GgufTensorToWrite,
  type GgufValue,
} from '../src/io/gguf.js';
import { GGML_TYPES, GGML_TYPE_NAMES, rowBytes, type GgmlType } from '../src/kernels/quant/types.js';
import { mulberry32 as rng } from './helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-gguf-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  return out;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** What the reader gives back for a written scalar: 64-bit ints as number when safe, f32 rounded. */
function expectedScalar(type: GgufScalarType, v: number | bigint | boolean | string): number | bigint | boolean | string {
  if (type === 'u64' || type === 'i64') {
    const b = BigInt(v as number | bigint);
    return b <= MAX_SAFE && b >= -MAX_SAFE ? Number(b) : b;
  }
  if (type === 'f32') return Math.fround(v as number);
  return v;
}

function expectedValue(v: GgufValue): GgufValue {
  if (v.type === 'array') return { type: 'array', itemType: v.itemType, value: v.value.map((x) => expectedScalar(v.itemType, x)) };
  return { type: v.type, value: expectedScalar(v.type, v.value) } as GgufValue;
}

/** Every value type with edge values, and arrays of every scalar type (empty and not). */
function allTypesMetadata(): GgufMetadata {
  const m: GgufMetadata = new Map();
  m.set('general.architecture', ggufVal.string('llama'));
  m.set('general.name', ggufVal.string('héllo ✓ 𝄞 ｜ <｜User｜>'));
  m.set('rt.u8_min', ggufVal.u8(0));
  m.set('rt.u8_max', ggufVal.u8(255));
  m.set('rt.i8_min', ggufVal.i8(-128));
  m.set('rt.i8_max', ggufVal.i8(127));
  m.set('rt.u16_max', ggufVal.u16(65535));
  m.set('rt.i16_min', ggufVal.i16(-32768));
  m.set('rt.u32_max', ggufVal.u32(4294967295));
  m.set('rt.i32_min', ggufVal.i32(-2147483648));
  m.set('rt.i32_max', ggufVal.i32(2147483647));
  m.set('rt.u64_small', ggufVal.u64(7n));
  m.set('rt.u64_unsafe', ggufVal.u64(2n ** 53n + 1n));
  m.set('rt.u64_max', ggufVal.u64(2n ** 64n - 1n));
  m.set('rt.u64_num', ggufVal.u64(2 ** 60));
  m.set('rt.i64_min', ggufVal.i64(-(2n ** 63n)));
  m.set('rt.i64_unsafe', ggufVal.i64(-(2n ** 53n) - 1n));
  m.set('rt.i64_neg', ggufVal.i64(-5));
  m.set('rt.f32_nan', ggufVal.f32(NaN));
  m.set('rt.f32_negzero', ggufVal.f32(-0));
  m.set('rt.f32_inf', ggufVal.f32(-Infinity));
  m.set('rt.f32_third', ggufVal.f32(1 / 3));
  m.set('rt.f32_max', ggufVal.f32(3.4028234663852886e38));
  m.set('rt.f64_nan', ggufVal.f64(NaN));
  m.set('rt.f64_negzero', ggufVal.f64(-0));
  m.set('rt.f64_pi', ggufVal.f64(Math.PI));
  m.set('rt.f64_tiny', ggufVal.f64(Number.MIN_VALUE));
  m.set('rt.bool_t', ggufVal.bool(true));
  m.set('rt.bool_f', ggufVal.bool(false));
  m.set('rt.str_empty', ggufVal.string(''));
  m.set('rt.str_uni', ggufVal.string('▁the 中文 \u0000 nul and emoji 🤖'));
  const arrays: Record<GgufScalarType, Array<number | bigint | boolean | string>> = {
    u8: [0, 1, 255], i8: [-128, 0, 127], u16: [0, 65535], i16: [-32768, 32767], u32: [0, 4294967295], i32: [-2147483648, 1, 2147483647],
    f32: [NaN, -0, 0.1, Infinity], bool: [true, false, true], string: ['', 'a b', 'Ġthe', '𝄞'],
    u64: [0n, 2n ** 53n + 1n, 2n ** 64n - 1n, 5], i64: [-(2n ** 63n), -1, 2n ** 63n - 1n], f64: [NaN, -0, 1e-300, -Infinity],
  };
  for (const [t, values] of Object.entries(arrays) as Array<[GgufScalarType, typeof arrays.u8]>) {
    m.set(`rt.arr.${t}`, ggufVal.array(t, values));
    m.set(`rt.empty.${t}`, ggufVal.array(t, []));
  }
  return m;
}

/** One tensor per ggml type nanoseek supports, in several shapes (1-D to 4-D). */
function tensorsOfEveryType(seed: number): Array<GgufTensorToWrite & { bytes: Uint8Array }> {
  const shapes: number[][] = [[1], [2, 3], [1, 2, 2], [1, 1, 2, 2]];
  return GGML_TYPE_NAMES.map((type, i) => {
    const shape = shapes[i % shapes.length];
    const ne = [GGML_TYPES[type].blockSize * (1 + (i % 3)), ...shape.slice(1)];
    const n = rowBytes(type, ne[0]) * ne.slice(1).reduce((a, b) => a * b, 1);
    const bytes = randomBytes(n, seed + i);
    return { name: `blk.${i}.${type.toLowerCase()}.weight`, ne, type, bytes, data: () => bytes };
  });
}

function assertCleanError(err: unknown, path: string): asserts err is Error {
  assert.ok(err instanceof Error, `not an Error: ${String(err)}`);
  assert.equal(Object.getPrototypeOf(err), Error.prototype, `a ${err.constructor.name} escaped: ${err.message}`);
  assert.ok(err.message.startsWith(`${path}: `), `message does not start with the path: ${err.message}`);
}

async function withOpen<T>(path: string, fn: (f: GgufFile) => Promise<T>): Promise<T> {
  const f = await openGguf(path);
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}

describe('gguf round trip', () => {
  for (const alignment of [1, 32, 64, 256]) {
    test(`every value type and tensor type survive write → read (alignment ${alignment})`, async () => {
      const path = join(dir, `rt-${alignment}.gguf`);
      const meta = allTypesMetadata();
      const tensors = tensorsOfEveryType(alignment);
      await writeGguf(path, meta, tensors, { alignment });
      await withOpen(path, async (f) => {
        assert.equal(f.version, 3);
        assert.equal(f.alignment, alignment);
        const expectedMeta = new Map([...meta].map(([k, v]) => [k, expectedValue(v)]));
        if (alignment !== 32) expectedMeta.set('general.alignment', ggufVal.u32(alignment));
        assert.deepEqual([...f.metadata.keys()], [...expectedMeta.keys()], 'metadata order');
        assert.deepEqual(f.metadata, expectedMeta);
        assert.deepEqual([...f.tensors.keys()], tensors.map((t) => t.name), 'tensor order');
        assert.equal(f.dataStart % alignment, 0);
        let expectedOffset = f.dataStart;
        for (const t of tensors) {
          const info = f.tensors.get(t.name)!;
          assert.deepEqual(info.ne, t.ne);
          assert.equal(info.type, t.type);
          assert.equal(info.offset, expectedOffset);
          assert.equal(info.byteLength, t.bytes.length);
          assert.equal(info.byteLength, ggufTensorByteLength(t.type, t.ne));
          const back = await f.readTensor(t.name);
          assert.deepEqual(new Uint8Array(back), t.bytes, t.name);
          // A view on the mapped file or a fresh buffer; aligned for float32 views when the file is.
          if (alignment % 4 === 0) assert.equal(back.byteOffset % 4, 0);
          assert.equal(back.length, t.bytes.length);
          expectedOffset += Math.ceil(t.bytes.length / alignment) * alignment;
        }
        assert.equal(f.fileSize, expectedOffset, 'each tensor, the last included, is padded to the alignment');
        assert.equal((await stat(path)).size, f.fileSize);
      });
    });
  }

  test('readTensorRange pulls one expert out of a stacked 3-D tensor', async () => {
    const path = join(dir, 'experts.gguf');
    const ne = [64, 3, 5]; // 5 experts of [3 rows × 64] Q8_0
    const bytes = randomBytes(ggufTensorByteLength('Q8_0', ne), 11);
    await writeGguf(path, new Map([['general.architecture', ggufVal.string('deepseek2')]]), [
      { name: 'blk.1.ffn_up_exps.weight', ne, type: 'Q8_0', data: () => bytes },
    ]);
    await withOpen(path, async (f) => {
      const per = bytes.length / 5;
      for (let e = 0; e < 5; e++) {
        const part = await f.readTensorRange('blk.1.ffn_up_exps.weight', e * per, (e + 1) * per);
        assert.deepEqual(new Uint8Array(part), bytes.subarray(e * per, (e + 1) * per));
      }
      assert.equal((await f.readTensorRange('blk.1.ffn_up_exps.weight', 7, 7)).length, 0);
    });
  });

  test('typed data views, empty metadata, no tensors, zero-element tensors, version 2', async () => {
    const path = join(dir, 'misc.gguf');
    const f32 = new Float32Array([1.5, -2, 3]);
    await writeGguf(path, new Map(), [
      { name: 'a', ne: [3], type: 'F32', data: () => f32 },
      { name: 'empty', ne: [0, 4], type: 'Q4_0', data: () => new Uint8Array(0) },
      { name: 'b', ne: [2], type: 'F16', data: () => new Uint16Array([0x3c00, 0xc000]) },
    ]);
    await withOpen(path, async (f) => {
      assert.equal(f.metadata.size, 0);
      const a = await f.readTensor('a');
      assert.deepEqual(new Float32Array(a.buffer, a.byteOffset, 3), f32);
      assert.equal(f.tensors.get('empty')!.byteLength, 0);
      assert.equal((await f.readTensor('empty')).length, 0);
      assert.equal(f.tensors.get('b')!.offset, f.tensors.get('a')!.offset + 32);
    });
    // Version 2 has the same layout.
    const bytes = await readFile(path);
    bytes.writeUInt32LE(2, 4);
    await writeFile(path, bytes);
    await withOpen(path, async (f) => assert.equal(f.version, 2));

    const none = join(dir, 'none.gguf');
    await writeGguf(none, new Map([['k', ggufVal.u8(1)]]), []);
    await withOpen(none, async (f) => {
      assert.equal(f.tensors.size, 0);
      assert.equal(f.dataStart % 32, 0);
      assert.equal(f.fileSize, f.dataStart);
    });
  });

  test('the header is read incrementally: opening a large file allocates far less than its size', async () => {
    const path = join(dir, 'lazy.gguf');
    const big = new Uint8Array(8 << 20);
    const tokens = Array.from({ length: 50_000 }, (_, i) => `tok${i}`);
    await writeGguf(path, new Map([['tokenizer.ggml.tokens', ggufVal.array('string', tokens)]]), [
      { name: 'big', ne: [big.length / 4], type: 'F32', data: () => big },
    ]);
    const sizes: number[] = [];
    const orig = Buffer.allocUnsafeSlow;
    Buffer.allocUnsafeSlow = (n: number) => {
      sizes.push(n);
      return orig(n);
    };
    const t0 = performance.now();
    let f: GgufFile;
    try {
      f = await openGguf(path);
    } finally {
      Buffer.allocUnsafeSlow = orig;
    }
    const ms = performance.now() - t0;
    try {
      assert.ok(Math.max(...sizes) <= 1 << 20, `allocated ${Math.max(...sizes)} bytes while opening`);
      assert.ok(ms < 2000, `opening took ${ms} ms`);
      assert.deepEqual(ggufStringArray(f, 'tokenizer.ggml.tokens'), tokens);
      assert.equal((await f.readTensor('big')).length, big.length);
    } finally {
      await f.close();
    }
  });

  test('typed accessors return values and name the file and key on a missing key or wrong type', async () => {
    const path = join(dir, 'acc.gguf');
    await writeGguf(path, new Map([
      ['s', ggufVal.string('x')],
      ['n', ggufVal.u32(28)],
      ['f', ggufVal.f32(0.5)],
      ['big', ggufVal.u64(2n ** 60n)],
      ['b', ggufVal.bool(true)],
      ['sa', ggufVal.array('string', ['a', 'b'])],
      ['na', ggufVal.array('i32', [1, -2])],
      ['bigarr', ggufVal.array('u64', [1, 2n ** 60n])],
    ]), []);
    await withOpen(path, async (f) => {
      assert.equal(ggufString(f, 's'), 'x');
      assert.equal(ggufNumber(f, 'n'), 28);
      assert.equal(ggufNumber(f, 'f'), 0.5);
      assert.equal(ggufBool(f, 'b'), true);
      assert.deepEqual(ggufStringArray(f, 'sa'), ['a', 'b']);
      assert.deepEqual(ggufNumberArray(f, 'na'), [1, -2]);
      assert.equal(ggufStringOpt(f, 'nope'), undefined);
      assert.equal(ggufNumberOpt(f, 'nope'), undefined);
      assert.equal(ggufBoolOpt(f, 'nope'), undefined);
      assert.equal(ggufStringArrayOpt(f, 'nope'), undefined);
      assert.equal(ggufNumberArrayOpt(f, 'nope'), undefined);
      const bad: Array<[() => unknown, RegExp]> = [
        [() => ggufString(f, 'nope'), /key "nope" is missing/],
        [() => ggufNumber(f, 'nope'), /key "nope" is missing/],
        [() => ggufString(f, 'n'), /key "n": expected a string, found u32/],
        [() => ggufStringOpt(f, 'n'), /key "n": expected a string, found u32/],
        [() => ggufNumber(f, 's'), /key "s": expected a number, found string/],
        [() => ggufNumber(f, 'big'), /key "big": u64 value 1152921504606846976 does not fit a safe JS integer/],
        [() => ggufBool(f, 'n'), /key "n": expected a bool, found u32/],
        [() => ggufStringArray(f, 'na'), /key "na": expected an array of string, found array of i32/],
        [() => ggufNumberArray(f, 'sa'), /key "sa": expected an array of numbers, found array of string/],
        [() => ggufNumberArray(f, 'bigarr'), /key "bigarr": u64 item 1 1152921504606846976 does not fit/],
      ];
      for (const [fn, re] of bad) {
        assert.throws(fn, (e: unknown) => {
          assertCleanError(e, path);
          assert.match(e.message, re);
          return true;
        });
      }
    });
  });
});

describe('gguf against an independent reader (node-llama-cpp)', () => {
  test('readGgufFileInfo reads our metadata and tensor infos identically', async () => {
    const { readGgufFileInfo } = await import('node-llama-cpp');
    for (const alignment of [32, 64]) {
      const path = join(dir, `nlc-${alignment}.gguf`);
      const meta = allTypesMetadata();
      const tensors = tensorsOfEveryType(7);
      await writeGguf(path, meta, tensors, { alignment });
      const info = await readGgufFileInfo(path, { logWarnings: false });
      const ours = await withOpen(path, async (f) => f);
      assert.equal(info.version, 3);
      assert.equal(Number(info.tensorCount), tensors.length);
      assert.equal(info.infoEndOffset, ours.dataStart);

      // Their metadata is nested by the dots in keys and reads 64-bit integers as bigint.
      const lookup = (key: string): unknown => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], info.metadata);
      const norm = (type: string, x: unknown): unknown => (type === 'u64' || type === 'i64' ? BigInt(x as number | bigint) : x);
      for (const [key, v] of ours.metadata) {
        const theirs = lookup(key);
        if (v.type === 'array') {
          assert.ok(Array.isArray(theirs), key);
          assert.deepEqual(theirs.map((x) => norm(v.itemType, x)), v.value.map((x) => norm(v.itemType, x)), key);
        } else {
          assert.deepEqual(norm(v.type, theirs), norm(v.type, v.value), key);
        }
      }
      assert.deepEqual(
        info.tensorInfo!.map((t) => ({ name: t.name, ne: t.dimensions.map(Number), type: t.ggmlType, fileOffset: Number(t.fileOffset) })),
        [...ours.tensors.values()].map((t) => ({ name: t.name, ne: t.ne, type: GGML_TYPES[t.type].id, fileOffset: t.offset })),
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built files, straight from the format description, to feed the reader bad input.

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const u64 = (v: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
  return b;
};
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([u64(b.length), b]);
};
const T = GGUF_VALUE_TYPES;
const kvU32 = (key: string | Buffer, v: number): Buffer => Buffer.concat([str(key), u32(T.u32), u32(v)]);
const kvStr = (key: string | Buffer, v: string | Buffer): Buffer => Buffer.concat([str(key), u32(T.string), str(v)]);
const kvRaw = (key: string | Buffer, type: number, value: Buffer): Buffer => Buffer.concat([str(key), u32(type), value]);
const tinfo = (name: string | Buffer, ne: Array<number | bigint>, type: number, offset: number | bigint): Buffer =>
  Buffer.concat([str(name), u32(ne.length), ...ne.map(u64), u32(type), u64(offset)]);

interface HandMade {
  kvs?: Buffer[];
  tensors?: Buffer[];
  data?: Buffer;
  alignment?: number;
  version?: number;
  nTensors?: number | bigint;
  nKv?: number | bigint;
  magic?: string;
}

function handMade(o: HandMade): Buffer {
  const kvs = o.kvs ?? [];
  const tensors = o.tensors ?? [];
  const head = Buffer.concat([
    Buffer.from(o.magic ?? 'GGUF', 'latin1'), u32(o.version ?? 3), u64(o.nTensors ?? tensors.length), u64(o.nKv ?? kvs.length), ...kvs, ...tensors,
  ]);
  const a = o.alignment ?? 32;
  const pad = Buffer.alloc((a - (head.length % a)) % a);
  return Buffer.concat([head, pad, o.data ?? Buffer.alloc(0)]);
}

/** A valid hand-made file with two F32 tensors (16 and 8 bytes), used as the base for bad variants. */
function validTensors(): HandMade {
  return { kvs: [kvStr('general.architecture', 'llama')], tensors: [tinfo('a', [4], 0, 0), tinfo('b', [2], 0, 32)], data: Buffer.alloc(40) };
}

async function expectReject(name: string, bytes: Buffer, pattern: RegExp): Promise<void> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  await assert.rejects(openGguf(path), (e: unknown) => {
    assertCleanError(e, path);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('gguf reader refuses bad input, naming the file and what is wrong', () => {
  test('the hand-made base file is valid', async () => {
    const path = join(dir, 'base.gguf');
    await writeFile(path, handMade(validTensors()));
    await withOpen(path, async (f) => {
      assert.deepEqual([...f.tensors.keys()], ['a', 'b']);
      assert.equal(f.tensors.get('b')!.offset, f.dataStart + 32);
    });
  });

  test('missing file, empty file, bad magic, unsupported versions', async () => {
    await assert.rejects(openGguf(join(dir, 'absent.gguf')), (e: unknown) => {
      assertCleanError(e, join(dir, 'absent.gguf'));
      assert.match(e.message, /cannot open .*ENOENT/);
      return true;
    });
    await expectReject('empty.gguf', Buffer.alloc(0), /truncated: the file ends at byte 0 while reading the magic/);
    await expectReject('magic.gguf', handMade({ magic: 'GGML' }), /not a GGUF file: the magic is "GGML"/);
    await expectReject('v1.gguf', handMade({ version: 1 }), /GGUF version 1 is not supported/);
    await expectReject('v4.gguf', handMade({ version: 4 }), /GGUF version 4 is not supported/);
    await expectReject('v0.gguf', handMade({ version: 0 }), /GGUF version 0 is not supported/);
    await expectReject('swapped.gguf', handMade({ version: 0x03000000 }), /looks byte-swapped/);
  });

  test('absurd counts are refused before anything proportional is allocated', async () => {
    await expectReject('ntensors.gguf', handMade({ nTensors: 2n ** 62n }), /truncated: the file ends at byte \d+ while reading 0 metadata entries and 4611686018427387904 tensor infos/);
    await expectReject('nkv.gguf', handMade({ nKv: 2n ** 64n - 1n }), /truncated: .* while reading 18446744073709551615 metadata entries/);
    await expectReject('nkv2.gguf', handMade({ kvs: [kvU32('a', 1)], nKv: 2, alignment: 1 }), /truncated: .*ends at byte 41 while reading .*2 metadata entries/);
  });

  test('keys: empty, duplicate, invalid UTF-8', async () => {
    await expectReject('emptykey.gguf', handMade({ kvs: [kvU32('', 1)] }), /metadata entry #0 has an empty key/);
    await expectReject('dupkey.gguf', handMade({ kvs: [kvU32('a.b', 1), kvU32('a.b', 2)] }), /key "a\.b": duplicate key/);
    await expectReject('utf8key.gguf', handMade({ kvs: [kvU32('ok', 1), kvU32(Buffer.from([0x61, 0xc3, 0x28]), 1)] }), /metadata entry #1: key .* is not valid UTF-8/);
    await expectReject('longkey.gguf', handMade({ kvs: [Buffer.concat([u64(2n ** 40n), Buffer.from('abc')])] }), /truncated: .* while reading the key of metadata entry #0 \(declared as 1099511627776 bytes\)/);
  });

  test('values: invalid UTF-8, bools other than 0/1, unknown types, nested arrays, huge arrays', async () => {
    await expectReject('utf8val.gguf', handMade({ kvs: [kvStr('general.name', Buffer.from([0xed, 0xa0, 0x80]))] }), /value of key "general\.name": string is not valid UTF-8/);
    await expectReject('utf8item.gguf', handMade({ kvs: [kvRaw('toks', T.array, Buffer.concat([u32(T.string), u64(2), str('ok'), str(Buffer.from([0xff]))]))] }), /item 1 of key "toks": string is not valid UTF-8/);
    await expectReject('bool.gguf', handMade({ kvs: [kvRaw('flag', T.bool, Buffer.from([2]))] }), /value of key "flag": bool byte 2 is neither 0 nor 1/);
    await expectReject('boolarr.gguf', handMade({ kvs: [kvRaw('flags', T.array, Buffer.concat([u32(T.bool), u64(3), Buffer.from([1, 0, 7])]))] }), /item 2 of key "flags": bool byte 7/);
    await expectReject('type13.gguf', handMade({ kvs: [kvRaw('weird', 13, u32(0))] }), /key "weird": unknown value type 13/);
    await expectReject('nested.gguf', handMade({ kvs: [kvRaw('nest', T.array, Buffer.concat([u32(T.array), u64(1), u32(T.u8), u64(0)]))] }), /key "nest": nested arrays are not supported/);
    await expectReject('itemtype.gguf', handMade({ kvs: [kvRaw('arr', T.array, Buffer.concat([u32(99), u64(0)]))] }), /key "arr": unknown array item type 99/);
    await expectReject('hugearr.gguf', handMade({ kvs: [kvRaw('arr', T.array, Buffer.concat([u32(T.u64), u64(2n ** 61n)]))] }), /truncated: .* while reading the 2305843009213693952 u64 items of key "arr"/);
    await expectReject('hugestr.gguf', handMade({ kvs: [kvRaw('s', T.string, u64(2n ** 63n))] }), /truncated: .* while reading the string value of key "s" \(declared as 9223372036854775808 bytes\)/);
  });

  test('general.alignment must be a u32 power of two', async () => {
    await expectReject('align-type.gguf', handMade({ kvs: [kvRaw('general.alignment', T.i32, u32(32))] }), /key "general\.alignment": must be a u32, found i32/);
    await expectReject('align-48.gguf', handMade({ kvs: [kvU32('general.alignment', 48)] }), /key "general\.alignment": 48 is not a power of two/);
    await expectReject('align-0.gguf', handMade({ kvs: [kvU32('general.alignment', 0)] }), /key "general\.alignment": 0 is not a power of two/);
  });

  test('tensor names: empty, too long, duplicate, invalid UTF-8', async () => {
    const base = validTensors();
    await expectReject('tname-empty.gguf', handMade({ ...base, tensors: [tinfo('', [4], 0, 0)] }), /tensor #0 has an empty name/);
    await expectReject('tname-long.gguf', handMade({ ...base, tensors: [tinfo('x'.repeat(64), [4], 0, 0)] }), /tensor #0: name "x{64}" is 64 bytes, longer than the 63-byte limit/);
    await expectReject('tname-dup.gguf', handMade({ ...base, tensors: [tinfo('a', [4], 0, 0), tinfo('a', [2], 0, 32)] }), /tensor "a": duplicate tensor name \(tensor #1\)/);
    await expectReject('tname-utf8.gguf', handMade({ ...base, tensors: [tinfo(Buffer.from([0x80]), [4], 0, 0)] }), /tensor #0: name .* is not valid UTF-8/);
    // 63 bytes is the longest legal name.
    const ok = join(dir, 'tname-63.gguf');
    await writeFile(ok, handMade({ ...base, tensors: [tinfo('y'.repeat(63), [4], 0, 0)] }));
    await withOpen(ok, async (f) => assert.ok(f.tensors.has('y'.repeat(63))));
  });

  test('tensor shapes and types', async () => {
    const base = validTensors();
    const one = (name: string, t: Buffer) => handMade({ ...base, tensors: [t] });
    await expectReject('ndims0.gguf', one('a', tinfo('a', [], 0, 0)), /tensor "a": n_dims 0 is not in 1\.\.4/);
    await expectReject('ndims5.gguf', one('a', tinfo('a', [1, 1, 1, 1, 1], 0, 0)), /tensor "a": n_dims 5 is not in 1\.\.4/);
    await expectReject('ne-huge.gguf', one('a', tinfo('a', [2n ** 60n], 0, 0)), /tensor "a": ne\[0\] = 1152921504606846976 is too large/);
    await expectReject('ne-overflow.gguf', one('a', tinfo('a', [2 ** 30, 2 ** 30], 0, 0)), /tensor "a": shape \[1073741824, 1073741824\] has more than 2\^53 elements/);
    await expectReject('bytes-overflow.gguf', one('a', tinfo('a', [2 ** 26, 2 ** 26], 0, 0)), /tensor "a": shape .* of F32 takes more than 2\^53 bytes/);
    await expectReject('q3k.gguf', one('a', tinfo('a', [256], 11, 0)), /tensor "a": unsupported tensor type Q3_K/);
    await expectReject('type99.gguf', one('a', tinfo('a', [256], 99, 0)), /tensor "a": unknown tensor type id 99/);
    await expectReject('block.gguf', one('a', tinfo('a', [48, 2], GGML_TYPES.Q8_0.id, 0)), /tensor "a": ne\[0\] = 48 is not a multiple of the Q8_0 block size 32/);
  });

  test('zero-sized dimensions are accepted, as llama.cpp does', async () => {
    const path = join(dir, 'ne0.gguf');
    await writeFile(path, handMade({ tensors: [tinfo('z', [0, 3], 0, 0), tinfo('a', [4], 0, 0)], data: Buffer.alloc(16) }));
    await withOpen(path, async (f) => {
      assert.equal(f.tensors.get('z')!.byteLength, 0);
      assert.equal(f.tensors.get('a')!.offset, f.dataStart);
    });
  });

  test('tensor offsets: alignment, exact packing in info order, data inside the file', async () => {
    const base = validTensors();
    await expectReject('off-align.gguf', handMade({ ...base, tensors: [tinfo('a', [4], 0, 0), tinfo('b', [2], 0, 33)] }), /tensor "b": offset 33 is not a multiple of the alignment 32/);
    await expectReject('off-gap.gguf', handMade({ ...base, tensors: [tinfo('a', [4], 0, 0), tinfo('b', [2], 0, 64)], data: Buffer.alloc(72) }), /tensor "b": offset 64 should be 32/);
    await expectReject('off-first.gguf', handMade({ ...base, tensors: [tinfo('a', [4], 0, 32), tinfo('b', [2], 0, 0)], data: Buffer.alloc(72) }), /tensor "a": offset 32 should be 0/);
    await expectReject('off-overlap.gguf', handMade({ ...base, tensors: [tinfo('a', [4], 0, 0), tinfo('b', [2], 0, 0)] }), /tensor "b": offset 0 should be 32/);
    await expectReject('off-align64.gguf', handMade({ ...base, kvs: [kvU32('general.alignment', 64)], alignment: 64, tensors: [tinfo('a', [4], 0, 0), tinfo('b', [2], 0, 32)] }), /tensor "b": offset 32 is not a multiple of the alignment 64/);
    await expectReject('data-short.gguf', handMade({ ...base, data: Buffer.alloc(39) }), /truncated: the file ends at byte \d+ while reading the data of tensor "b"/);
    await expectReject('data-huge.gguf', handMade({ ...base, tensors: [tinfo('a', [2 ** 40], 0, 0)], data: Buffer.alloc(16) }), /truncated: .* while reading the data of tensor "a" \(4398046511104 bytes/);
  });

  test('truncation inside the header names what was being read', async () => {
    const full = handMade(validTensors());
    await expectReject('cut-version.gguf', full.subarray(0, 6), /truncated: the file ends at byte 6 while reading the version/);
    await expectReject('cut-count.gguf', full.subarray(0, 12), /truncated: the file ends at byte 12 while reading the tensor count/);
    const keyEnd = 24 + 8 + 'general.architecture'.length;
    await expectReject('cut-type.gguf', full.subarray(0, keyEnd + 2), /while reading .*value type of key "general\.architecture"|while reading \d+ metadata entries/);
  });

  test('tensor reads: unknown names, bad ranges, closed files', async () => {
    const path = join(dir, 'reads.gguf');
    await writeFile(path, handMade(validTensors()));
    const f = await openGguf(path);
    const bad: Array<[() => Promise<unknown>, RegExp]> = [
      [() => f.readTensor('nope'), /no tensor "nope" in this file/],
      [() => f.readTensorRange('a', 0, 17), /tensor "a": byte range \[0, 17\) is not inside its 16 bytes/],
      [() => f.readTensorRange('a', 5, 4), /tensor "a": byte range \[5, 4\)/],
      [() => f.readTensorRange('a', -1, 4), /tensor "a": byte range \[-1, 4\)/],
      [() => f.readTensorRange('a', 0.5, 4), /tensor "a": byte range/],
    ];
    for (const [fn, re] of bad) {
      await assert.rejects(fn(), (e: unknown) => {
        assertCleanError(e, path);
        assert.match(e.message, re);
        return true;
      });
    }
    // The file shrinking after opening is reported as truncation, not a short buffer.
    await writeFile(path, (await readFile(path)).subarray(0, f.tensors.get('b')!.offset + 3));
    await assert.rejects(f.readTensor('b'), /truncated: the file ends at byte \d+ while reading the data of tensor "b"/);
    await f.close();
    await f.close();
    await assert.rejects(f.readTensor('a'), (e: unknown) => {
      assertCleanError(e, path);
      assert.match(e.message, /cannot read tensor "a": the file is closed/);
      return true;
    });
  });
});

describe('gguf writer', () => {
  const t1 = (): GgufTensorToWrite[] => [{ name: 'w', ne: [4], type: 'F32', data: () => new Float32Array(4) }];

  async function expectWriteReject(meta: GgufMetadata, tensors: GgufTensorToWrite[], pattern: RegExp, opts: { alignment?: number } = {}): Promise<void> {
    const path = join(dir, 'w-bad.gguf');
    await assert.rejects(writeGguf(path, meta, tensors, opts), (e: unknown) => {
      assertCleanError(e, path);
      assert.match(e.message, pattern);
      return true;
    });
    await assert.rejects(stat(path), /ENOENT/);
  }

  test('metadata values are validated against their declared types before anything is written', async () => {
    const cases: Array<[GgufValue, RegExp]> = [
      [ggufVal.u8(256), /key "k": 256 is out of range for u8/],
      [ggufVal.u8(-1), /out of range for u8/],
      [ggufVal.i8(-129), /-129 is out of range for i8/],
      [ggufVal.u16(65536), /out of range for u16/],
      [ggufVal.i16(32768), /out of range for i16/],
      [ggufVal.u32(-1), /-1 is out of range for u32/],
      [ggufVal.i32(2 ** 31), /out of range for i32/],
      [ggufVal.i32(1.5), /1\.5 is not an integer \(declared i32\)/],
      [ggufVal.u32(NaN), /NaN is not an integer/],
      [ggufVal.u64(-1n), /-1 is out of range for u64/],
      [ggufVal.u64(2n ** 64n), /out of range for u64/],
      [ggufVal.i64(2n ** 63n), /out of range for i64/],
      [ggufVal.f32(1e39), /1e\+39 is out of range for f32/],
      [{ type: 'f64', value: 1n }, /a f64 value must be a number, got bigint/],
      [{ type: 'u32', value: '3' as unknown as number }, /a u32 value must be a number or bigint, got string/],
      [{ type: 'bool', value: 1 as unknown as boolean }, /a bool value must be a boolean, got number/],
      [ggufVal.string('bad \ud800 surrogate'), /lone UTF-16 surrogate/],
      [{ type: 'array', itemType: 'array' as GgufScalarType, value: [] }, /key "k": nested arrays are not supported/],
      [{ type: 'u128' as 'u64', value: 1 }, /key "k": unknown value type "u128"/],
      [ggufVal.array('u8', [1, 2, 300]), /key "k": item 2: 300 is out of range for u8/],
      [ggufVal.array('string', ['a', 5 as unknown as string]), /key "k": item 1: expected a string, got number/],
    ];
    for (const [v, re] of cases) await expectWriteReject(new Map([['k', v]]), t1(), re);
    await expectWriteReject(new Map([['', ggufVal.u8(1)]]), t1(), /metadata keys must be non-empty strings/);
  });

  test('tensors and alignment are validated before anything is written', async () => {
    const m = new Map<string, GgufValue>();
    const d = () => new Uint8Array(0);
    await expectWriteReject(m, [{ name: 'w', ne: [4], type: 'F32', data: d }, { name: 'w', ne: [4], type: 'F32', data: d }], /tensor "w": given twice/);
    await expectWriteReject(m, [{ name: 'n'.repeat(64), ne: [4], type: 'F32', data: d }], /is 64 bytes, longer than the 63-byte limit/);
    await expectWriteReject(m, [{ name: '', ne: [4], type: 'F32', data: d }], /tensor #0 has no name/);
    await expectWriteReject(m, [{ name: 'w', ne: [48], type: 'Q4_0', data: d }], /tensor "w": ne\[0\] = 48 is not a multiple of the Q4_0 block size 32/);
    await expectWriteReject(m, [{ name: 'w', ne: [1, 1, 1, 1, 1], type: 'F32', data: d }], /tensor "w": ne must list 1 to 4 dimensions/);
    await expectWriteReject(m, [{ name: 'w', ne: [], type: 'F32', data: d }], /tensor "w": ne must list 1 to 4 dimensions/);
    await expectWriteReject(m, [{ name: 'w', ne: [2.5], type: 'F32', data: d }], /tensor "w": ne \[2\.5\] is not a list of non-negative integers/);
    await expectWriteReject(m, [{ name: 'w', ne: [256], type: 'Q3_K' as GgmlType, data: d }], /tensor "w": unknown tensor type "Q3_K"/);
    await expectWriteReject(m, t1(), /alignment 48 is not a power of two/, { alignment: 48 });
    await expectWriteReject(new Map([['general.alignment', ggufVal.u32(64)]]), t1(), /alignment option 32 disagrees with key "general\.alignment" = 64/, { alignment: 32 });
    await expectWriteReject(new Map([['general.alignment', ggufVal.u64(64)]]), t1(), /key "general\.alignment": must be a u32, found u64/);
    await expectWriteReject(new Map([['general.alignment', ggufVal.u32(12)]]), t1(), /key "general\.alignment": 12 is not a power of two/);
  });

  test('general.alignment in the metadata sets the alignment', async () => {
    const path = join(dir, 'w-align.gguf');
    await writeGguf(path, new Map([['general.alignment', ggufVal.u32(128)], ['x', ggufVal.u8(1)]]), t1());
    await withOpen(path, async (f) => {
      assert.equal(f.alignment, 128);
      assert.deepEqual([...f.metadata.keys()], ['general.alignment', 'x']);
      assert.equal(f.dataStart % 128, 0);
    });
  });

  test('data() is called once per tensor in order; a wrong byte length aborts and leaves the old file intact', async () => {
    const path = join(dir, 'w-atomic.gguf');
    await writeFile(path, 'previous contents');
    const calls: string[] = [];
    const tensors: GgufTensorToWrite[] = [
      { name: 'a', ne: [4], type: 'F32', data: () => (calls.push('a'), new Float32Array(4)) },
      { name: 'b', ne: [32, 2], type: 'Q8_0', data: () => (calls.push('b'), new Uint8Array(67)) },
      { name: 'c', ne: [4], type: 'F32', data: () => (calls.push('c'), new Float32Array(4)) },
    ];
    await assert.rejects(writeGguf(path, new Map(), tensors), (e: unknown) => {
      assertCleanError(e, path);
      assert.match(e.message, /tensor "b": data\(\) returned 67 bytes, but Q8_0 \[32, 2\] takes 68/);
      return true;
    });
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(await readFile(path, 'utf8'), 'previous contents');
    // A data() that throws likewise leaves no file and no temporaries behind.
    await assert.rejects(writeGguf(join(dir, 'w-throw.gguf'), new Map(), [{ name: 'x', ne: [1], type: 'F32', data: () => { throw new Error('source failed'); } }]), /source failed/);
    const leftovers = (await readdir(dir)).filter((n) => n.startsWith('.nanoseek-tmp-'));
    assert.deepEqual(leftovers, []);
    await assert.rejects(stat(join(dir, 'w-throw.gguf')), /ENOENT/);

    calls.length = 0;
    tensors[1] = { name: 'b', ne: [32, 2], type: 'Q8_0', data: async () => (calls.push('b'), new Uint8Array(68)) };
    await writeGguf(path, new Map(), tensors);
    assert.deepEqual(calls, ['a', 'b', 'c']);
    await withOpen(path, async (f) => assert.equal(f.tensors.size, 3));
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: every truncation of the header, random truncations of the data, random corruptions.

describe('gguf fuzz', () => {
  const PROBE_TIMEOUT_MS = 5000;

  function fuzzBase(): { meta: GgufMetadata; tensors: GgufTensorToWrite[] } {
    const meta: GgufMetadata = new Map([
      ['general.architecture', ggufVal.string('qwen2')],
      ['qwen2.block_count', ggufVal.u32(2)],
      ['qwen2.rope.freq_base', ggufVal.f32(10000)],
      ['tokenizer.ggml.add_bos_token', ggufVal.bool(true)],
      ['tokenizer.ggml.tokens', ggufVal.array('string', ['<s>', 'a', 'Ġb'])],
      ['tokenizer.ggml.token_type', ggufVal.array('i32', [3, 1, 1])],
      ['x.big', ggufVal.i64(-(2n ** 62n))],
    ]);
    const tensors: GgufTensorToWrite[] = [
      { name: 'token_embd.weight', ne: [4, 3], type: 'F32', data: () => randomBytes(48, 1) },
      { name: 'blk.0.attn_q.weight', ne: [32, 2], type: 'Q8_0', data: () => randomBytes(68, 2) },
      { name: 'output_norm.weight', ne: [4], type: 'F16', data: () => randomBytes(8, 3) },
    ];
    return { meta, tensors };
  }

  test('truncations and corruptions either open consistently or fail with a clean path-prefixed Error', async () => {
    const basePath = join(dir, 'fuzz-base.gguf');
    const { meta, tensors } = fuzzBase();
    await writeGguf(basePath, meta, tensors);
    const base = await readFile(basePath);
    const infosEnd = await withOpen(basePath, async (f) => f.dataStart);
    const path = join(dir, 'fuzz.gguf');
    const r = rng(1234);
    const pick = (n: number) => Math.floor(r() * n);

    const variants: Buffer[] = [];
    for (let n = 0; n <= infosEnd; n++) variants.push(base.subarray(0, n));
    for (let i = 0; i < 200; i++) variants.push(base.subarray(0, infosEnd + 1 + pick(base.length - infosEnd - 1)));
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(base);
      // Mostly inside the header, where a flip changes the meaning; some in the data.
      const at = r() < 0.9 ? pick(infosEnd) : pick(b.length);
      b[at] ^= 1 + pick(255);
      variants.push(b);
    }
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(base);
      const at = pick(infosEnd);
      const len = 1 + pick(12);
      const style = pick(3);
      for (let j = at; j < Math.min(b.length, at + len); j++) b[j] = style === 0 ? 0xff : style === 1 ? 0 : pick(256);
      variants.push(b);
    }

    const orig = Buffer.allocUnsafeSlow;
    let maxAlloc = 0;
    Buffer.allocUnsafeSlow = (n: number) => {
      maxAlloc = Math.max(maxAlloc, n);
      return orig(n);
    };
    let opened = 0;
    let refused = 0;
    // One handle rewritten in place: far cheaper than creating the file 1,300 times.
    const out = await open(path, 'w+');
    try {
      for (const [i, bytes] of variants.entries()) {
        await out.truncate(bytes.length);
        await out.write(bytes, 0, bytes.length, 0);
        maxAlloc = 0;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`variant ${i}: hang`)), PROBE_TIMEOUT_MS);
        });
        try {
          const outcome = await Promise.race([probe(path, bytes.length), timeout]);
          if (outcome === 'opened') opened++;
          else refused++;
        } finally {
          clearTimeout(timer);
        }
        assert.ok(maxAlloc <= Math.max(bytes.length, 0), `variant ${i}: allocated ${maxAlloc} bytes for a ${bytes.length}-byte file`);
      }
    } finally {
      Buffer.allocUnsafeSlow = orig;
      await out.close();
    }
    assert.ok(opened > 0 && refused > 0, `opened ${opened}, refused ${refused}`);
  });

  async function probe(path: string, size: number): Promise<'opened' | 'refused'> {
    let f: GgufFile;
    try {
      f = await openGguf(path);
    } catch (err) {
      assertCleanError(err, path);
      return 'refused';
    }
    try {
      assert.equal(f.fileSize, size);
      assert.ok(f.version === 2 || f.version === 3);
      assert.ok(f.alignment > 0 && (f.alignment & (f.alignment - 1)) === 0);
      assert.equal(f.dataStart % f.alignment, 0);
      for (const [key, v] of f.metadata) {
        assert.ok(key.length > 0);
        if (v.type === 'array') assert.ok(Array.isArray(v.value));
        else if (v.type === 'string') assert.equal(typeof v.value, 'string');
        else if (v.type === 'bool') assert.equal(typeof v.value, 'boolean');
        else assert.ok(typeof v.value === 'number' || typeof v.value === 'bigint');
      }
      let expected = f.dataStart;
      for (const [name, info] of f.tensors) {
        assert.equal(info.name, name);
        assert.ok(name.length > 0 && Buffer.byteLength(name) <= 63);
        assert.ok(info.ne.length >= 1 && info.ne.length <= 4);
        assert.equal(info.byteLength, ggufTensorByteLength(info.type, info.ne));
        assert.equal(info.offset, expected);
        assert.ok(info.offset + info.byteLength <= f.fileSize);
        expected += Math.ceil(info.byteLength / f.alignment) * f.alignment;
        try {
          const data = await f.readTensor(name);
          assert.equal(data.length, info.byteLength);
        } catch (err) {
          assertCleanError(err, path);
        }
      }
      return 'opened';
    } finally {
      await f.close();
    }
  }
});
