// TEMPORARY stub (F32/F16/BF16 only) until the quant branch lands with every block format.
import { decodeHalf, encodeHalf } from './half.js';
import { rowBytes, type GgmlType } from './types.js';

export * from './types.js';

export function dequantize(type: GgmlType, src: Uint8Array, dst: Float32Array): void {
  const need = rowBytes(type, dst.length);
  if (src.length !== need) throw new Error(`${type}: ${src.length} bytes for ${dst.length} values, expected ${need}`);
  if (type === 'F32') {
    new Uint8Array(dst.buffer, dst.byteOffset, need).set(src);
  } else if (type === 'F16' || type === 'BF16') {
    const halves = src.byteOffset % 2 === 0 ? new Uint16Array(src.buffer, src.byteOffset, dst.length) : new Uint16Array(src.slice().buffer);
    decodeHalf(type, halves, dst);
  } else {
    throw new Error(`${type}: not implemented yet`);
  }
}

export function quantize(type: GgmlType, src: Float32Array, dst?: Uint8Array): Uint8Array {
  const need = rowBytes(type, src.length);
  const out = dst ?? new Uint8Array(need);
  if (type === 'F32') out.set(new Uint8Array(src.buffer, src.byteOffset, need));
  else if (type === 'F16' || type === 'BF16') out.set(new Uint8Array(encodeHalf(type, src).buffer));
  else throw new Error(`${type}: not implemented yet`);
  return out;
}
