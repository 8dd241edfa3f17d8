// Model files mapped into memory through the native addon, so tensors are read in place from the
// page cache: no copy, and no freshly allocated buffer to fault in (seconds per gigabyte on some
// machines). One JS typed array cannot exceed 4 GiB while model files do, so a file is mapped in
// segments of whole tensors, up to 1 GiB each, each mapped on first use, private copy-on-write, and
// released when the last view of it is collected. Without the addon (or with NANOSEEK_MMAP=0)
// readers copy into buffers as before.
import { loadNativeAddon } from '../kernels/native.js';

const SEGMENT_BYTES = 2 ** 30;

/** Whether files can be mapped here. */
export function canMap(): boolean {
  return process.env.NANOSEEK_MMAP !== '0' && loadNativeAddon()?.mmap !== undefined;
}

export class MappedFile {
  /** Segment boundaries (absolute byte offsets), ascending; segment i is [starts[i], ends[i]). */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly segments: (Uint8Array | undefined)[] = [];

  /** `ranges`: the byte ranges views will be asked for (the tensors), each kept inside one segment. */
  constructor(private readonly path: string, ranges: ReadonlyArray<readonly [number, number]>) {
    const sorted = [...ranges].filter(([b, e]) => e > b).sort((a, b) => a[0] - b[0]);
    for (const [b, e] of sorted) {
      const last = this.starts.length - 1;
      if (last >= 0 && b >= this.starts[last] && e - this.starts[last] <= SEGMENT_BYTES) this.ends[last] = Math.max(this.ends[last], e);
      else {
        this.starts.push(b);
        this.ends.push(e);
      }
    }
  }

  /** Bytes [begin, end) of the file: a view on the mapped segment holding them. */
  view(begin: number, end: number): Uint8Array {
    if (end === begin) return new Uint8Array(0);
    // The last segment starting at or before `begin`.
    let lo = 0, hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= begin) lo = mid;
      else hi = mid - 1;
    }
    if (this.starts.length === 0 || this.starts[lo] > begin || this.ends[lo] < end) {
      throw new Error(`${this.path}: bytes ${begin} to ${end} are not inside a mapped segment`);
    }
    let seg = this.segments[lo];
    if (seg === undefined) {
      seg = new Uint8Array(loadNativeAddon()!.mmap!(this.path, this.starts[lo], this.ends[lo] - this.starts[lo]));
      this.segments[lo] = seg;
    }
    return seg.subarray(begin - this.starts[lo], end - this.starts[lo]);
  }
}
