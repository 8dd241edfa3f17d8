// Whole files mapped into memory through the native addon, so model tensors are read in place from
// the page cache: no copy, and no freshly allocated buffer to fault in (seconds per gigabyte on some
// machines). Mappings are private copy-on-write, released when the last view is collected. Without
// the addon (or with NANOSEEK_MMAP=0) callers read into buffers as before.
import { loadNativeAddon } from '../kernels/native.js';

/** The file's bytes as a view on a mapping, or null when mapping is unavailable here. */
export function mapFile(path: string, size: number): Uint8Array | null {
  if (process.env.NANOSEEK_MMAP === '0' || size === 0) return null;
  const lib = loadNativeAddon();
  if (lib?.mmap === undefined) return null;
  const buffer = lib.mmap(path);
  if (buffer === null || buffer.byteLength !== size) return null; // changed since it was opened: read instead
  return new Uint8Array(buffer);
}
