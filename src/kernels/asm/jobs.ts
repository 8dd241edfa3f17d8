// The work split across threads (AssemblyScript): the job block the JavaScript side writes
// (wasm.ts), plan() and work(), and the chunk of each kernel family that a claim runs.
//
// The caller writes a job into a block of 32-bit words, plan() cuts it into chunks (bands of rows or
// columns of C, groups of batch entries, runs of parameters), and every thread then runs work(): it
// claims chunks one at a time until none are left. Claiming dynamically means a thread that the OS
// has descheduled (another process on the core) costs at most the chunk it holds, not a fixed share.
//
// NEXT holds the generation (which job) in its high bits and the next chunk index in its low bits, so
// a claim is one compare-and-swap that fails once the job it was meant for is over. The caller
// closes NEXT (close()) before it writes the next job's arguments, so a thread that wakes late and
// reads a half-written job can never claim anything from it. DONE counts finished chunks; the job is
// over when it reaches the total.
//
// Expert jobs are the exception: their chunks are devices of expert parallelism, each pinned to a
// thread (device d runs on thread d mod threads), so nothing is claimed; a thread runs its devices
// and counts each one done.
import { adamw } from './adamw';
import { axpyAccum, MC, MR, sgemm, SMALL_M, STAG, storeVec, SY, VEC_MAX, YS, YV } from './gemm';
import {
  copyRowsRange, gatherRowsRange, logSumExpRange, rmsnormBackwardWRange, rmsnormBackwardXRange, rmsnormRange, rowDotsRange,
  scatterRowsRange, softmaxBackwardRange, softmaxRange, softmaxXentBackwardRange, sumSquaresRange, swigluBackwardRange, swigluRange,
} from './rows';
import { at } from './simd';

/** Milliseconds on a clock all threads share (the JavaScript side passes it in). */
@external("env", "now")
declare function now(): f64;

// Job block layout, in 32-bit words (the JavaScript side writes the arguments, see wasm.ts).
const J_KIND = 0;
const J_THREADS = 1;
const J_SCRATCH = 2; // pointer to an array of per-thread scratch pointers
// gemm
const G_M = 3, G_N = 4, G_K = 5, G_A = 6, G_LDA = 7, G_TA = 8, G_B = 9, G_LDB = 10, G_TB = 11;
const G_C = 12, G_LDC = 13, G_ALPHA = 14, G_BETA = 15, G_BATCH = 16, G_SA = 17, G_SB = 18, G_SC = 19;
// adamw
const W_N = 3, W_P = 4, W_G = 5, W_M = 6, W_V = 7, W_SCALE = 8, W_B1 = 9, W_B2 = 10, W_EPS = 11;
const W_DECAY = 12, W_STEP = 13, W_INVBC2 = 14;
// row-wise kernels: which one, how many units (rows, elements or columns) to split, the work per
// unit (to size chunks), the multiple chunk boundaries keep, then pointers, integers and a real.
const R_OP = 3, R_UNITS = 4, R_COST = 5, R_ALIGN = 6;
const R_P0 = 7, R_P1 = 8, R_P2 = 9, R_P3 = 10, R_P4 = 11, R_I0 = 12, R_I1 = 13, R_I2 = 14, R_X0 = 15;
// experts: sizes, the dispatched rows and their outputs, the task table (5 words a task: gate, up and
// down weight pointers, first row, rows), each device's first task (devices + 1 words), the device
// count, each device's hidden-activation buffer, and where each device writes its start and end times.
const X_DIM = 3, X_HIDDEN = 4, X_X = 5, X_OUT = 6, X_TASKS = 7, X_STARTS = 8, X_DEVICES = 9, X_BUFFERS = 10, X_TIMES = 11;
// plan (written by plan())
const P_TOTAL = 20, P_COLS = 21, P_BANDS = 22, P_BAND = 23, P_GROUP = 24, P_SPLITK = 25;
// synchronisation, each on its own cache line (S_PART shares S_DONE's: both change once per chunk)
const S_NEXT = 48;
const S_DONE = 64;
const S_PART = 72;

const KIND_GEMM = 1;
const KIND_ADAMW = 2;
const KIND_ROWS = 3;
const KIND_EXPERTS = 4;
// row-wise kernels (R_OP)
const OP_SWIGLU = 1, OP_SWIGLU_BACKWARD = 2, OP_RMSNORM = 3, OP_RMSNORM_BACKWARD_X = 4, OP_RMSNORM_BACKWARD_W = 5;
const OP_LOGSUMEXP = 6, OP_XENT_BACKWARD = 7, OP_SOFTMAX = 8, OP_SOFTMAX_BACKWARD = 9, OP_COPY_ROWS = 10;
const OP_SUM_SQUARES = 11, OP_GATHER_ROWS = 12, OP_SCATTER_ROWS = 13, OP_ROW_DOTS = 14;

const INDEX_BITS = 12;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
// Chunks per thread: enough that a slow thread leaves little behind.
const CHUNKS_PER_THREAD = 4;
// Below this much work per chunk the claim and the repeated packing start to show.
const CHUNK_MIN_FLOPS: f64 = 4 * 1024 * 1024;
const ADAMW_CHUNK = 32768;
// Row-wise chunks: at least this much work (units × cost per unit) each.
const ROWS_CHUNK_MIN: f64 = 16384;
// Columns per band where bands stream rows of the matrix: runs of 8 KiB or more keep the prefetchers
// ahead; shorter runs cost up to half the bandwidth.
const AXPY_BAND = 2048;
// Rows of B per chunk of a split-k product are a multiple of this.
const SPLITK_UNIT = 16;

@inline function wordAt(job: usize, i: i32): usize {
  return job + (<usize>i << 2);
}

@inline function word(job: usize, i: i32): i32 {
  return load<i32>(wordAt(job, i));
}

@inline function real(job: usize, i: i32): f32 {
  return load<f32>(wordAt(job, i));
}

@inline function ceilDiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}

/** Whether the batch entries of C do not overlap, so that they may be computed in any order. */
@inline function disjointBatches(job: usize): bool {
  const m = word(job, G_M), n = word(job, G_N);
  return <u64>word(job, G_SC) >= <u64>(m - 1) * <u64>word(job, G_LDC) + <u64>n;
}

/** Ends all claiming on the job block: no chunk index reaches INDEX_MASK. */
export function close(job: usize): void {
  atomic.or<i32>(wordAt(job, S_NEXT), INDEX_MASK);
}

/** Cuts the job into chunks and opens them to claims for generation gen. */
export function plan(job: usize, gen: i32): void {
  const parts = word(job, J_THREADS);
  const most = parts * CHUNKS_PER_THREAD;
  let total = 1;
  if (word(job, J_KIND) == KIND_EXPERTS) {
    total = word(job, X_DEVICES);
  } else if (word(job, J_KIND) == KIND_ROWS) {
    const units = max(1, word(job, R_UNITS)), align = word(job, R_ALIGN);
    let size = units;
    if (parts > 1) {
      const target = <i32>min(<f64>most, max(<f64>parts, <f64>units * <f64>word(job, R_COST) / ROWS_CHUNK_MIN));
      size = ceilDiv(ceilDiv(units, target), align) * align;
    }
    store<i32>(wordAt(job, P_BAND), size);
    total = ceilDiv(units, size);
  } else if (word(job, J_KIND) == KIND_ADAMW) {
    const n = max(1, word(job, W_N));
    const size = parts > 1 ? ceilDiv(ceilDiv(n, min(most, ceilDiv(n, ADAMW_CHUNK))), 16) * 16 : n;
    store<i32>(wordAt(job, P_BAND), size);
    total = ceilDiv(n, size);
  } else {
    const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K), batch = word(job, G_BATCH);
    const transB = word(job, G_TB) != 0;
    const small = m <= SMALL_M;
    // One or two rows times a row-major B whose outputs fit in scratch: each thread streams its own
    // contiguous run of rows of B (split k) into partial sums, and whoever finishes the last chunk
    // adds them up. Cutting the columns instead would cut every row of B into short runs.
    const splitK = parts > 1 && m <= 2 && !transB && batch == 1 && n <= YV && k >= 2 * SPLITK_UNIT;
    store<i32>(wordAt(job, P_SPLITK), splitK ? 1 : 0);
    // Column bands repeat the packing of A (each band reads all of A, and B once per MC rows), row
    // bands that of B (each band reads all of B, A once): cut the side that moves fewer bytes. For
    // square products that is rows.
    const bandGuess = <f64>max(1, parts * CHUNKS_PER_THREAD);
    const rowsCost = bandGuess * <f64>n + <f64>m;
    const colsCost = bandGuess * <f64>m + <f64>ceilDiv(m, MC) * <f64>n;
    const cols = small || (n > VEC_MAX && colsCost < rowsCost);
    // A matrix-vector product that streams rows of its matrix needs long runs of each row per band
    // for the hardware prefetcher to keep up; the other forms only need whole register blocks (and
    // bands of C whole cache lines apart).
    const streamsRows = small ? m <= 2 && !transB : n <= VEC_MAX && word(job, G_TA) != 0;
    const unit = splitK ? SPLITK_UNIT : streamsRows ? AXPY_BAND : small || cols ? 16 : MR;
    const side = max(1, splitK ? k : cols ? n : m);
    let bands = 1, group = max(1, batch), groups = 1;
    if (parts > 1) {
      const flops = 2 * <f64>m * <f64>n * <f64>k * <f64>batch;
      // The small-m paths pack nothing per chunk, so they take the most chunks, which even out
      // threads that start or run late.
      const target = small ? most : <i32>min(<f64>most, max(<f64>parts, flops / CHUNK_MIN_FLOPS));
      // In order, one band of C per chunk through all batch entries, where they may share C.
      if (batch > 1 && disjointBatches(job)) {
        group = ceilDiv(batch, min(batch, target));
        groups = ceilDiv(batch, group);
      }
      bands = min(ceilDiv(side, unit), ceilDiv(target, groups));
      // Split-k chunks only add to per-thread partial sums; each streams 64 rows of B or more.
      if (splitK) bands = min(ceilDiv(k, 4 * SPLITK_UNIT), most);
    }
    const band = ceilDiv(ceilDiv(side, unit), bands) * unit;
    bands = ceilDiv(side, band);
    store<i32>(wordAt(job, P_COLS), cols ? 1 : 0);
    store<i32>(wordAt(job, P_BANDS), bands);
    store<i32>(wordAt(job, P_BAND), band);
    store<i32>(wordAt(job, P_GROUP), group);
    total = groups * bands;
  }
  store<i32>(wordAt(job, P_TOTAL), total);
  atomic.store<i32>(wordAt(job, S_PART), 0);
  atomic.store<i32>(wordAt(job, S_DONE), 0);
  atomic.store<i32>(wordAt(job, S_NEXT), gen << INDEX_BITS);
}

/** The most threads a job can be cut for: chunk indices must fit below the generation bits. */
export function maxThreads(): i32 {
  return INDEX_MASK / CHUNKS_PER_THREAD;
}

function gemmChunk(job: usize, chunk: i32, scratch: usize): void {
  const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K);
  const lda = word(job, G_LDA), ldb = word(job, G_LDB), ldc = word(job, G_LDC);
  const transA = word(job, G_TA) != 0, transB = word(job, G_TB) != 0;
  const alpha = real(job, G_ALPHA), beta = real(job, G_BETA);
  const sa = <usize>word(job, G_SA) << 2, sb = <usize>word(job, G_SB) << 2, sc = <usize>word(job, G_SC) << 2;
  const bands = word(job, P_BANDS), band = word(job, P_BAND), group = word(job, P_GROUP);
  const cols = word(job, P_COLS) != 0;
  const b0 = (chunk / bands) * group;
  const b1 = min(word(job, G_BATCH), b0 + group);
  const lo = (chunk % bands) * band;
  let i0 = 0, i1 = m, j0 = 0, j1 = n;
  if (cols) {
    j0 = lo;
    j1 = min(n, lo + band);
  } else {
    i0 = lo;
    i1 = min(m, lo + band);
  }
  const ao = transA ? <usize>i0 : <usize>i0 * <usize>lda;
  const bo = transB ? <usize>j0 * <usize>ldb : <usize>j0;
  const co = <usize>i0 * <usize>ldc + <usize>j0;
  const a = <usize>word(job, G_A), b = <usize>word(job, G_B), c = <usize>word(job, G_C);
  for (let bi = b0; bi < b1; bi++) {
    const e = <usize>bi;
    sgemm(
      i1 - i0, j1 - j0, k, at(a + e * sa, ao), lda, transA, at(b + e * sb, bo), ldb, transB,
      at(c + e * sc, co), ldc, alpha, beta, scratch,
    );
  }
}

/** Rows [p0, p1) of B of a split-k product into this thread's partial sums (zeroed on its first chunk). */
function splitKChunk(job: usize, chunk: i32, scratch: usize, gen: i32): void {
  const m = word(job, G_M), n = word(job, G_N), k = word(job, G_K);
  const band = word(job, P_BAND);
  const p0 = chunk * band;
  const p1 = min(k, p0 + band);
  const y = scratch + SY;
  // The caller zeroes scratch space when it allocates it and never uses generation 0.
  if (load<i32>(scratch + STAG) != gen) {
    for (let i = 0; i < m; i++) memory.fill(y + <usize>i * YS, 0, <usize>n << 2);
    store<i32>(scratch + STAG, gen);
  }
  axpyAccum(
    m, p0, p1, <usize>word(job, G_A), word(job, G_LDA), word(job, G_TA) != 0, real(job, G_ALPHA),
    <usize>word(job, G_B), word(job, G_LDB), n, y, scratch,
  );
}

/** C = Σ over the threads that took part of their partial sums + beta·C (after the last chunk). */
function splitKReduce(job: usize, gen: i32): void {
  const m = word(job, G_M), n = word(job, G_N), ldc = word(job, G_LDC);
  const c = <usize>word(job, G_C);
  const beta = real(job, G_BETA);
  const table = <usize>word(job, J_SCRATCH);
  const parts = word(job, J_THREADS);
  for (let i = 0; i < m; i++) {
    const row = at(c, <usize>i * <usize>ldc);
    let first = true;
    for (let t = 0; t < parts; t++) {
      const s = <usize>load<u32>(table + (<usize>t << 2));
      if (load<i32>(s + STAG) != gen) continue;
      storeVec(n, s + SY + <usize>i * YS, row, 1, first ? beta : 1);
      first = false;
    }
  }
}

function adamwChunk(job: usize, chunk: i32): void {
  const size = word(job, P_BAND);
  const s = chunk * size;
  const e = min(word(job, W_N), s + size);
  const o = <usize>s << 2;
  adamw(
    e - s, <usize>word(job, W_P) + o, <usize>word(job, W_G) + o, <usize>word(job, W_M) + o,
    <usize>word(job, W_V) + o, real(job, W_SCALE), real(job, W_B1), real(job, W_B2), real(job, W_EPS),
    real(job, W_DECAY), real(job, W_STEP), real(job, W_INVBC2),
  );
}

function rowsChunk(job: usize, chunk: i32): void {
  const size = word(job, P_BAND);
  const lo = chunk * size;
  const hi = min(word(job, R_UNITS), lo + size);
  const p0 = <usize>word(job, R_P0), p1 = <usize>word(job, R_P1), p2 = <usize>word(job, R_P2);
  const p3 = <usize>word(job, R_P3), p4 = <usize>word(job, R_P4);
  const i0 = word(job, R_I0), i1 = word(job, R_I1), i2 = word(job, R_I2);
  switch (word(job, R_OP)) {
    case OP_SWIGLU: swigluRange(p0, p1, p2, lo, hi); break;
    case OP_SWIGLU_BACKWARD: swigluBackwardRange(p0, p1, p2, p3, p4, i0 != 0, lo, hi); break;
    case OP_RMSNORM: rmsnormRange(p0, p1, p2, p3, i0, real(job, R_X0), lo, hi); break;
    case OP_RMSNORM_BACKWARD_X: rmsnormBackwardXRange(p0, p1, p2, p3, p4, i0, i1 != 0, lo, hi); break;
    case OP_RMSNORM_BACKWARD_W: rmsnormBackwardWRange(p0, p1, p2, p3, i1, i0, lo, hi); break;
    case OP_LOGSUMEXP: logSumExpRange(p0, p1, i0, lo, hi); break;
    case OP_XENT_BACKWARD: softmaxXentBackwardRange(p0, p1, p2, p3, p4, i0, lo, hi); break;
    case OP_SOFTMAX: softmaxRange(p0, i0, i1, i2, lo, hi); break;
    case OP_SOFTMAX_BACKWARD: softmaxBackwardRange(p0, p1, i0, i1, i2, lo, hi); break;
    case OP_COPY_ROWS: copyRowsRange(p0, p1, i0, i1, i2, real(job, R_X0) != 0, lo, hi); break;
    // one float64 partial sum per chunk, added up by the caller
    case OP_SUM_SQUARES: store<f64>(p1 + (<usize>chunk << 3), sumSquaresRange(p0, lo, hi)); break;
    case OP_GATHER_ROWS: gatherRowsRange(p0, p1, p2, p3, i0, i1 != 0, lo, hi); break;
    case OP_SCATTER_ROWS: scatterRowsRange(p0, p1, p2, p3, p4, i0, lo, hi); break;
    case OP_ROW_DOTS: rowDotsRange(p0, p1, p2, p3, i0, lo, hi); break;
    default: unreachable();
  }
}

/**
 * Device d of an expert job: each of its tasks is one expert's SwiGLU feed-forward over a run of the
 * dispatched rows, the three products one after another on this thread, the hidden activations in the
 * device's own buffer.
 */
function expertDevice(job: usize, d: i32, scratch: usize): void {
  const dim = word(job, X_DIM), hidden = word(job, X_HIDDEN);
  const x = <usize>word(job, X_X), out = <usize>word(job, X_OUT);
  const tasks = <usize>word(job, X_TASKS), starts = <usize>word(job, X_STARTS);
  const times = <usize>word(job, X_TIMES) + (<usize>d << 4);
  const g = <usize>load<u32>(<usize>word(job, X_BUFFERS) + (<usize>d << 2));
  store<f64>(times, now());
  const t1 = load<i32>(starts + (<usize>(d + 1) << 2));
  for (let t = load<i32>(starts + (<usize>d << 2)); t < t1; t++) {
    const task = tasks + <usize>t * 20;
    const rows = load<i32>(task, 16);
    if (rows == 0) continue;
    const xr = at(x, <usize>load<i32>(task, 12) * <usize>dim);
    const u = at(g, <usize>rows * <usize>hidden);
    sgemm(rows, hidden, dim, xr, dim, false, <usize>load<u32>(task), dim, true, g, hidden, 1, 0, scratch);
    sgemm(rows, hidden, dim, xr, dim, false, <usize>load<u32>(task, 4), dim, true, u, hidden, 1, 0, scratch);
    swigluRange(g, u, g, 0, rows * hidden);
    sgemm(rows, dim, hidden, g, hidden, false, <usize>load<u32>(task, 8), hidden, true, at(out, <usize>load<i32>(task, 12) * <usize>dim), dim, 1, 0, scratch);
  }
  store<f64>(times, now(), 8);
}

/**
 * Claims and runs chunks of generation gen as thread t until none are left. Returns true when this
 * thread finished the job's last chunk (the caller then wakes whoever waits for the job).
 */
export function work(job: usize, gen: i32, t: i32): bool {
  const tag = (gen << INDEX_BITS) & ~INDEX_MASK;
  const next = wordAt(job, S_NEXT);
  const kind = word(job, J_KIND);
  const total = word(job, P_TOTAL);
  const scratch = <usize>load<u32>(<usize>word(job, J_SCRATCH) + (<usize>t << 2));
  let last = false;
  if (kind == KIND_EXPERTS) {
    // A thread that reads the block late may have read the words of a job the caller is writing (after
    // close()) or has since posted. Nothing claims from an expert job, so NEXT keeps exactly the value
    // plan() gave it while the job is open: only then were the words read this job's. And no expert
    // job can end without the devices pinned to this thread, so once true this stays true.
    if (atomic.load<i32>(next) != tag) return false;
    const parts = word(job, J_THREADS);
    for (let d = t; d < total; d += parts) {
      expertDevice(job, d, scratch);
      last = atomic.add<i32>(wordAt(job, S_DONE), 1) == total - 1;
    }
    return last;
  }
  for (;;) {
    const cur = atomic.load<i32>(next);
    if ((cur & ~INDEX_MASK) != tag) break;
    const chunk = cur & INDEX_MASK;
    if (chunk >= total) break;
    if (atomic.cmpxchg<i32>(next, cur, cur + 1) != cur) continue;
    if (kind == KIND_ADAMW) adamwChunk(job, chunk);
    else if (kind == KIND_ROWS) rowsChunk(job, chunk);
    else if (word(job, P_SPLITK) != 0) {
      splitKChunk(job, chunk, scratch, gen);
      // The partial sums are complete once every chunk is: the thread that ends the last one adds
      // them up before it counts its chunk done, so the job is not over until C is written.
      if (atomic.add<i32>(wordAt(job, S_PART), 1) == total - 1) splitKReduce(job, gen);
    } else gemmChunk(job, chunk, scratch);
    last = atomic.add<i32>(wordAt(job, S_DONE), 1) == total - 1;
  }
  return last;
}
