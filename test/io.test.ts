// safetensors, 16-bit float conversion and atomic writes.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanStaleTemps, replaceDirAtomic, writeFileAtomic, writeJsonAtomic, writeStreamAtomic } from '../src/util/atomic.js';
import { decodeHalf, encodeHalf, f16ToF32Bits, f32BitsToBf16, f32BitsToF16 } from '../src/kernels/quant/half.js';
import {
  readSafetensors,
  readSafetensorsHeader,
  readShardedSafetensors,
  writeSafetensors,
  type TensorToWrite,
} from '../src/io/safetensors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nanoseek-io-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const f32 = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Special float32 bit patterns: ±0, smallest/largest denormal, ±Inf, NaNs with payloads. */
const SPECIAL_BITS = [0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffbadbad, 0x3f800000, 0x7f7fffff];

/** Build a safetensors file by hand, straight from the format description. */
function handMade(header: unknown, data: Uint8Array, pad = true): Buffer {
  let json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  if (pad && json.length % 8 !== 0) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe('half precision', () => {
  test('every F16 value survives decode → encode, NaNs stay NaN', () => {
    for (let h = 0; h < 65536; h++) {
      const back = f32BitsToF16(f16ToF32Bits(h));
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, `NaN ${h.toString(16)}`);
      else assert.equal(back, h, `f16 ${h.toString(16)}`);
    }
  });

  test('F16 encode is round-to-nearest-even against a brute-force reference', () => {
    // All finite non-negative halves in increasing order; nearest by value, ties to even mantissa.
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) values.push(new Float32Array(new Uint32Array([f16ToF32Bits(h)]).buffer)[0]);
    const reference = (x: number): number => {
      const a = Math.abs(x);
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      const maxHalf = 65504;
      if (a >= maxHalf + 16) return sign | 0x7c00; // 65520 is the midpoint to 2^16: ties to even = Inf
      let lo = 0;
      let hi = values.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (values[mid] <= a) lo = mid;
        else hi = mid;
      }
      const dLo = a - values[lo];
      const dHi = values[hi] - a;
      const pick = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
      return sign | pick;
    };
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const bits = new Uint32Array(1);
    const view = new Float32Array(bits.buffer);
    for (let i = 0; i < 20000; i++) {
      // Exponents spanning subnormal halves to overflow, plus exact ties.
      const e = Math.floor(rand() * 44) - 27;
      view[0] = (rand() < 0.5 ? -1 : 1) * 2 ** e * (1 + Math.floor(rand() * 2048) / 2048);
      assert.equal(f32BitsToF16(bits[0]), reference(view[0]), `x = ${view[0]}`);
    }
    const cases: Array<[number, number]> = [
      [1 + 2 ** -11, 0x3c00], // tie → even (down)
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [65519, 0x7bff],
      [65520, 0x7c00],
      [2 ** -25, 0x0000], // half the smallest subnormal: tie → 0
      [2 ** -25 * 1.5, 0x0001],
      [2 ** -24, 0x0001],
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up into the smallest normal
    ];
    for (const [x, h] of cases) {
      view[0] = x;
      assert.equal(f32BitsToF16(bits[0]), h, `x = ${x}`);
    }
  });

  test('BF16 encode is round-to-nearest-even; decode is exact', () => {
    assert.equal(f32BitsToBf16(0x3f808000), 0x3f80); // tie, even stays
    assert.equal(f32BitsToBf16(0x3f818000), 0x3f82); // tie, odd rounds up
    assert.equal(f32BitsToBf16(0x3f808001), 0x3f81);
    assert.equal(f32BitsToBf16(0x7f7fffff), 0x7f80); // largest float rounds to Inf
    assert.equal(f32BitsToBf16(0x80000000), 0x8000);
    const nan = f32BitsToBf16(0x7f800001); // payload only in the dropped bits: must stay NaN
    assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0);
    const src = f32(SPECIAL_BITS.filter((b) => (b & 0xffff) === 0));
    assert.deepEqual(bytesOf(decodeHalf('BF16', encodeHalf('BF16', src))), bytesOf(src));
  });
});

describe('safetensors', () => {
  test('round trip of every writable dtype is bit-exact, with metadata and 8-byte padding', async () => {
    const path = join(dir, 'roundtrip.safetensors');
    const special = f32(SPECIAL_BITS);
    const halves = new Float32Array([1, -2.5, 65504, 1e-7, 3.14159, -0]);
    const tensors = new Map<string, TensorToWrite>([
      ['special', { shape: [SPECIAL_BITS.length], data: special }],
      ['matrix', { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
      ['half', { dtype: 'F16', shape: [3, 2], data: halves }],
      ['brain', { dtype: 'BF16', shape: [6], data: halves }],
      ['raw_bits', { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xffc1]) }],
      ['ints', { shape: [3], data: new Int32Array([-1, 0, 2 ** 31 - 1]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
      ['scalar', { shape: [], data: new Float32Array([7]) }],
    ]);
    await writeSafetensors(path, tensors, { format: 'pt', note: 'ünïcode ✓' });

    const file = await readFile(path);
    const n = Number(file.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8'));
    assert.deepEqual(header.__metadata__, { format: 'pt', note: 'ünïcode ✓' });
    assert.deepEqual(header.matrix, { dtype: 'F32', shape: [2, 3], data_offsets: [44, 68] });

    const raw = await readSafetensors(path);
    assert.deepEqual([...raw.tensors.keys()].sort(), [...tensors.keys()].sort());
    assert.deepEqual(raw.metadata, { format: 'pt', note: 'ünïcode ✓' });
    assert.deepEqual(bytesOf(raw.tensors.get('special')!.data), bytesOf(special));
    assert.deepEqual(raw.tensors.get('half')!.data, encodeHalf('F16', halves));
    assert.equal(raw.tensors.get('half')!.dtype, 'F16');
    assert.deepEqual(raw.tensors.get('brain')!.data, encodeHalf('BF16', halves));
    assert.deepEqual(raw.tensors.get('raw_bits')!.data, new Uint16Array([0x3f80, 0xffc1]));
    assert.deepEqual(raw.tensors.get('ints')!.data, new Int32Array([-1, 0, 2 ** 31 - 1]));
    assert.deepEqual(raw.tensors.get('empty')!.shape, [0, 4]);
    assert.deepEqual(raw.tensors.get('scalar')!.shape, []);

    const asF32 = await readSafetensors(path, { loadAs: 'f32' });
    assert.deepEqual(asF32.tensors.get('half')!.data, decodeHalf('F16', encodeHalf('F16', halves)));
    assert.deepEqual(asF32.tensors.get('brain')!.data, decodeHalf('BF16', encodeHalf('BF16', halves)));
    assert.ok(asF32.tensors.get('ints')!.data instanceof Int32Array);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('.nanoseek-tmp-')), []);
  });

  test('the exact bytes match the format description', async () => {
    const path = join(dir, 'golden.safetensors');
    await writeSafetensors(path, [['x', { shape: [2], data: new Float32Array([1, -2]) }]]);
    const expected = handMade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(new Float32Array([1, -2]).buffer));
    assert.deepEqual(await readFile(path), expected);
  });

  test('reads hand-made files with I64, U8 and I8 tensors and unpadded headers', async () => {
    const path = join(dir, 'ints.safetensors');
    const data = new Uint8Array(8 + 2 + 2);
    new DataView(data.buffer).setBigInt64(0, -5n, true);
    data.set([200, 7, 0xff, 0x01], 8);
    const header = {
      b: { dtype: 'U8', shape: [2], data_offsets: [8, 10] },
      a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] },
      c: { dtype: 'I8', shape: [2], data_offsets: [10, 12] },
    };
    await writeFile(path, handMade(header, data, false));
    const { tensors } = await readSafetensors(path);
    assert.deepEqual(tensors.get('a')!.data, new BigInt64Array([-5n]));
    assert.deepEqual(tensors.get('b')!.data, new Uint8Array([200, 7]));
    assert.deepEqual(tensors.get('c')!.data, new Int8Array([-1, 1]));
    assert.deepEqual([...(await readSafetensorsHeader(path)).tensors.keys()], ['a', 'b', 'c']);
  });

  test('loads float tensors into caller-provided (shared) memory', async () => {
    const path = join(dir, 'alloc.safetensors');
    await writeSafetensors(path, [
      ['a', { shape: [3], data: new Float32Array([1, 2, 3]) }],
      ['b', { dtype: 'BF16', shape: [2], data: new Float32Array([0.5, -4]) }],
    ]);
    const heap = new Float32Array(new SharedArrayBuffer(64));
    let top = 1;
    const allocF32 = (n: number) => heap.subarray(top, (top += n));
    const { tensors } = await readSafetensors(path, { loadAs: 'f32', allocF32 });
    assert.deepEqual([...heap.subarray(0, 6)], [0, 1, 2, 3, 0.5, -4]);
    assert.equal(tensors.get('a')!.data.buffer, heap.buffer);
  });

  test('a file cut at every byte is refused with an error naming the file', async () => {
    const full = join(dir, 'full.safetensors');
    await writeSafetensors(full, [
      ['w', { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
      ['b', { dtype: 'BF16', shape: [4], data: new Float32Array([1, 2, 3, 4]) }],
      ['i', { shape: [3], data: new Int32Array([7, 8, 9]) }],
      ['e', { shape: [0], data: new Float32Array(0) }],
    ], { format: 'pt' });
    const bytes = await readFile(full);
    assert.ok(bytes.length > 200 && bytes.length < 600, `test file is ${bytes.length} bytes`);
    const cut = join(dir, 'cut.safetensors');
    for (let len = 0; len < bytes.length; len++) {
      await writeFile(cut, bytes.subarray(0, len));
      await assert.rejects(readSafetensors(cut), (err: Error) => err.message.startsWith(`${cut}: `), `cut at ${len}`);
    }
    await writeFile(cut, Buffer.concat([bytes, Buffer.from([0])]));
    await assert.rejects(readSafetensors(cut), /1 trailing bytes/);
  });

  test('corrupted headers are refused with the problem named', async () => {
    const f32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    const eight = new Uint8Array(8);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['too short', Buffer.from([1, 2, 3]), /too short/],
      ['header length beyond file', (() => { const b = handMade({ x: f32x2 }, eight); b.writeBigUInt64LE(10n ** 6n); return b; })(), /header length 1000000 runs past the end/],
      ['header length huge', (() => { const b = handMade({ x: f32x2 }, eight); b.writeBigUInt64LE(2n ** 64n - 1n); return b; })(), /runs past the end/],
      ['not JSON', handMade('{"x": [', eight), /not valid JSON/],
      ['not UTF-8', handMade(Buffer.from('{"\xff": 1}', 'latin1'), eight), /not valid UTF-8/],
      ['not an object', handMade('[1, 2]', eight), /not a JSON object/],
      ['unknown dtype', handMade({ x: { ...f32x2, dtype: 'F8_E4M3' } }, eight), /tensor "x": unknown or unsupported dtype "F8_E4M3"/],
      ['shape vs offsets', handMade({ x: { ...f32x2, shape: [3] } }, eight), /tensor "x": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/],
      ['bad shape', handMade({ x: { ...f32x2, shape: [2.5] } }, eight), /tensor "x": shape \[2.5\]/],
      ['negative offset', handMade({ x: { ...f32x2, data_offsets: [-8, 0] } }, eight), /data_offsets \[-8,0\] is not a pair/],
      ['reversed offsets', handMade({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight), /end before they begin/],
      ['overlap', handMade({ x: f32x2, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /tensor "y".*overlap tensor "x"/],
      ['hole', handMade({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /tensor "x".*leaving a hole/],
      ['out of range', handMade({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight), /run past the end of the data section \(8 bytes\)/],
      ['trailing bytes', handMade({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight), /4 trailing bytes/],
      ['metadata not strings', handMade({ __metadata__: { step: 3 }, x: f32x2 }, eight), /__metadata__ value for "step" is not a string/],
      ['entry not object', handMade({ x: 5 }, eight), /tensor "x": header entry is not an object/],
    ];
    for (const [what, bytes, pattern] of cases) {
      const path = join(dir, `bad-${what.replace(/\W+/g, '-')}.safetensors`);
      await writeFile(path, bytes);
      await assert.rejects(readSafetensors(path), (err: Error) => {
        assert.ok(err.message.startsWith(`${path}: `), `${what}: ${err.message}`);
        assert.match(err.message, pattern, what);
        return true;
      });
    }
  });

  test('writing refuses inconsistent tensors', async () => {
    const path = join(dir, 'refused.safetensors');
    await assert.rejects(writeSafetensors(path, [['x', { shape: [3], data: new Float32Array(2) }]]), /shape \[3\] has 3 elements but the data has 2/);
    await assert.rejects(writeSafetensors(path, [['x', { shape: [2], data: new Uint16Array(2) }]]), /needs an explicit dtype/);
    await assert.rejects(writeSafetensors(path, [['x', { dtype: 'I32', shape: [2], data: new Float32Array(2) }]]), /cannot write Float32Array as I32/);
    await assert.rejects(writeSafetensors(path, [['__metadata__', { shape: [1], data: new Float32Array(1) }]]), /cannot be named/);
    await assert.rejects(
      writeSafetensors(path, [['x', { shape: [1], data: new Float32Array(1) }], ['x', { shape: [1], data: new Float32Array(1) }]]),
      /given twice/,
    );
  });

  test('sharded files are read through the index, strictly', async () => {
    const sdir = join(dir, 'sharded');
    await mkdir(sdir);
    await writeSafetensors(join(sdir, 'a.safetensors'), [['x', { shape: [1], data: new Float32Array([1]) }]], { format: 'pt' });
    await writeSafetensors(join(sdir, 'b.safetensors'), [['y', { shape: [2], data: new Float32Array([2, 3]) }]]);
    const index = join(sdir, 'model.safetensors.index.json');
    await writeJsonAtomic(index, { metadata: { total_size: 12 }, weight_map: { x: 'a.safetensors', y: 'b.safetensors' } });
    const got = await readShardedSafetensors(index);
    assert.deepEqual(got.tensors.get('y')!.data, new Float32Array([2, 3]));
    assert.equal(got.fileOf.get('x'), join(sdir, 'a.safetensors'));
    assert.deepEqual(got.metadata, { format: 'pt' });

    await writeJsonAtomic(index, { weight_map: { x: 'a.safetensors', y: 'a.safetensors' } });
    await assert.rejects(readShardedSafetensors(index), /a\.safetensors: tensor "y" is listed in model\.safetensors\.index\.json but not in this shard/);
    await writeJsonAtomic(index, { weight_map: { y: 'b.safetensors' } });
    assert.equal((await readShardedSafetensors(index)).tensors.size, 1);
    await writeSafetensors(join(sdir, 'c.safetensors'), [
      ['y', { shape: [1], data: new Float32Array(1) }],
      ['w', { shape: [1], data: new Float32Array(1) }],
    ]);
    await writeJsonAtomic(index, { weight_map: { x: 'a.safetensors', y: 'c.safetensors' } });
    await assert.rejects(readShardedSafetensors(index), /c\.safetensors: tensor "w" is in this shard but model\.safetensors\.index\.json does not map it here/);
    await writeJsonAtomic(index, { weight_map: { x: '../a.safetensors' } });
    await assert.rejects(readShardedSafetensors(index), /is not a file name beside the index/);
    await writeFile(index, '{"weight_map": ');
    await assert.rejects(readShardedSafetensors(index), /not valid JSON/);
  });
});

describe('atomic writes', () => {
  test('writeFileAtomic replaces the file and leaves no temporaries', async () => {
    const path = join(dir, 'atomic', 'nested', 'out.txt');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, new TextEncoder().encode('two'));
    assert.equal(await readFile(path, 'utf8'), 'two');
    await writeJsonAtomic(path, { a: 1 });
    assert.equal(await readFile(path, 'utf8'), '{\n  "a": 1\n}\n');
    assert.deepEqual(await readdir(join(dir, 'atomic', 'nested')), ['out.txt']);
  });

  test('a failing writer leaves the old file intact and no temporaries', async () => {
    const path = join(dir, 'atomic-fail.txt');
    await writeFileAtomic(path, 'old');
    await assert.rejects(
      writeStreamAtomic(path, async (fh) => {
        await fh.write('partial new contents');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.equal(await readFile(path, 'utf8'), 'old');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('atomic-fail') && f !== 'atomic-fail.txt'), []);
  });

  test('a failing directory fill leaves the old directory intact', async () => {
    const target = join(dir, 'swap');
    await replaceDirAtomic(target, async (tmp) => writeFile(join(tmp, 'v'), '1'));
    await assert.rejects(
      replaceDirAtomic(target, async (tmp) => {
        await writeFile(join(tmp, 'v'), '2');
        throw new Error('out of memory');
      }),
      /out of memory/,
    );
    assert.equal(await readFile(join(target, 'v'), 'utf8'), '1');
    await replaceDirAtomic(target, async (tmp) => writeFile(join(tmp, 'w'), '3'));
    assert.deepEqual(await readdir(target), ['w']);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('swap')), ['swap']);
  });

  test('stale temporaries of dead processes are removed, live ones kept', async () => {
    const sdir = join(dir, 'stale');
    await mkdir(sdir);
    const dead = join(sdir, '.nanoseek-tmp-ckpt.4194305.0badf00d'); // above Linux's largest pid
    const ours = join(sdir, `.nanoseek-tmp-ckpt.${process.pid}.deadbeef`); // our pid, but not ours: an earlier run's
    const live = join(sdir, `.nanoseek-tmp-ckpt.${process.ppid}.12345678`);
    const unrelated = join(sdir, 'ckpt');
    for (const p of [dead, ours, live, unrelated]) await mkdir(p);
    const removed = await cleanStaleTemps(sdir);
    assert.deepEqual(removed.sort(), [dead, ours].sort());
    assert.deepEqual((await readdir(sdir)).sort(), ['.nanoseek-tmp-ckpt.' + process.ppid + '.12345678', 'ckpt'].sort());
  });
});
