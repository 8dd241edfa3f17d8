// Tensors, their memory, and reverse-mode autodiff on a tape.
//
// float32 tensors live on the shared WASM heap (see kernels/memory.ts) and are recycled explicitly:
// `tidy(fn)` frees every tensor created inside `fn` except the ones it returns or `keep()`s, so a
// training step reuses the same buffers every time. float64 tensors are ordinary JS arrays; they exist
// so gradient checks can run the very same ops in double precision.
import { allocF32, freeF32 } from '../kernels/memory.js';
import { backend, type Backend, type FloatArray } from '../kernels/backend.js';
import { referenceBackend } from '../kernels/reference.js';

export type DType = 'f32' | 'f64';
export type { FloatArray };

/** Reference-counted data shared by a tensor and its reshaped views. */
class Storage {
  refs = 1;
  /** False for wrapped arrays the tensor does not own (never returned to the pool). */
  constructor(public data: FloatArray | null, public owned = true) {}
}

/** Called by the tape when the gradient of an op's output is known; accumulates into input grads. */
type BackwardFn = (gradOut: FloatArray) => void;

interface TapeNode {
  out: Tensor;
  backward: BackwardFn;
}

let tape: TapeNode[] = [];
let gradEnabled = true;
const scopes: Tensor[][] = [];
let anomalyMode = process.env.NANOSEEK_CHECK_FINITE === '1';

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
  private storage: Storage;
  /** Accumulated gradient, same shape; allocated on first use. */
  grad: Tensor | null = null;
  requiresGrad = false;
  /** Set for tensors that outlive scopes (parameters, caches); their grads outlive scopes too. */
  persistent: boolean;
  /** Optional name, shown in error messages (parameters carry their checkpoint name). */
  name: string | undefined;

  /** Wraps an existing array without copying or owning it (e.g. a slice of a KV cache). */
  static wrap(data: FloatArray, shape: readonly number[]): Tensor {
    const t = new Tensor(shape, data instanceof Float64Array ? 'f64' : 'f32', new Storage(data, false));
    t.storage.refs--; // the constructor counted a reference the wrapper does not hold
    if (t.size !== data.length) throw new Error(`Tensor.wrap: ${data.length} values do not form [${shape.join(', ')}]`);
    return t;
  }

  constructor(shape: readonly number[], dtype: DType, storage?: Storage) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`tensor: bad shape [${shape.join(', ')}]`);
    }
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.dtype = dtype;
    if (storage !== undefined) {
      storage.refs++;
      this.storage = storage;
    } else {
      this.storage = new Storage(dtype === 'f32' ? allocF32(this.size) : new Float64Array(this.size));
    }
    const scope = scopes[scopes.length - 1];
    this.persistent = scope === undefined;
    if (scope !== undefined) scope.push(this);
  }

  get data(): FloatArray {
    const d = this.storage.data;
    if (d === null) throw new Error(`tensor${this.name ? ` ${this.name}` : ''}: used after dispose (shape [${this.shape.join(', ')}])`);
    return d;
  }

  get disposed(): boolean {
    return this.storage.data === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Releases the memory (shared with reshaped views: freed when the last one goes). Idempotent. */
  dispose(): void {
    if (this.storage.data === null) return;
    const s = this.storage;
    this.storage = new Storage(null);
    if (--s.refs === 0) {
      if (s.owned && s.data instanceof Float32Array) freeF32(s.data);
      s.data = null;
    }
    if (this.grad !== null) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A tensor with the same data and a new shape (no copy). */
  view(shape: readonly number[]): Tensor {
    const t = new Tensor(shape, this.dtype, this.storage);
    if (t.size !== this.size) {
      t.dispose();
      throw new Error(`reshape: cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    }
    return t;
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements, not 1 (shape [${this.shape.join(', ')}])`);
    return this.data[0];
  }

  toString(): string {
    return `Tensor(${this.name ?? ''}[${this.shape.join(', ')}] ${this.dtype})`;
  }
}

// ---------------------------------------------------------------- creation

export function empty(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return new Tensor(shape, dtype);
}

export function zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  t.data.fill(0);
  return t;
}

export function full(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  t.data.fill(value);
  return t;
}

export function fromArray(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  if (values.length !== t.size) {
    t.dispose();
    throw new Error(`fromArray: ${values.length} values do not fill shape [${shape.join(', ')}]`);
  }
  t.data.set(values);
  return t;
}

/** A scalar (shape []). */
export function scalar(value: number, dtype: DType = 'f32'): Tensor {
  return fromArray([value], [], dtype);
}

/** A persistent copy in another dtype (float64 copies of float32 models feed gradient checks). */
export function cast(t: Tensor, dtype: DType): Tensor {
  return untracked(() => fromArray(t.data, t.shape, dtype));
}

// ---------------------------------------------------------------- scopes

/** Runs fn, then frees every tensor it created except those in its result and those kept. */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (t.persistent) continue;
    if (survivors.has(t)) {
      if (parent !== undefined) parent.push(t);
      else t.persistent = true;
    } else {
      t.dispose();
    }
  }
  return result;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

/** Marks a tensor created inside a scope as surviving it (the caller disposes it). */
export function keep<T extends Tensor>(t: T): T {
  t.persistent = true;
  return t;
}

/** Runs fn with scope tracking off: what it creates is persistent. */
export function untracked<T>(fn: () => T): T {
  const saved = scopes.splice(0, scopes.length);
  try {
    return fn();
  } finally {
    scopes.push(...saved);
  }
}

// ---------------------------------------------------------------- autodiff

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a tape (inference). */
export function noGrad<T>(fn: () => T): T {
  const saved = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = saved;
  }
}

/**
 * Registers `out` as produced from `inputs` by the op named `op` (errors and NANOSEEK_CHECK_FINITE
 * name it). When any input needs a gradient (and recording is on),
 * `backward` is put on the tape; it receives d(loss)/d(out) and must add into `gradOf(input)`.
 */
export function record(op: string, inputs: readonly Tensor[], out: Tensor, backward: BackwardFn): Tensor {
  if (anomalyMode) checkFinite(op, out, inputs);
  if (!gradEnabled) return out;
  let needed = false;
  for (const t of inputs) if (t.requiresGrad) needed = true;
  if (!needed) return out;
  out.requiresGrad = true;
  tape.push({ out, backward });
  return out;
}

/** The gradient buffer of t, zero-filled on first use. Lives as long as t's scope (or forever for parameters). */
export function gradOf(t: Tensor): FloatArray {
  if (t.grad === null) {
    const make = (): Tensor => zeros(t.shape, t.dtype);
    t.grad = t.persistent ? untracked(make) : make();
  }
  return t.grad.data;
}

export interface GradBuffer {
  data: FloatArray;
  /** True when the buffer is new and uninitialised: the op must store into every element, not add. */
  fresh: boolean;
}

/**
 * The gradient of t for an op that writes every element of it. When t has no gradient yet the buffer
 * comes uninitialised with fresh = true, and the op stores (GEMM beta = 0, a copy) instead of adding to
 * zeros it would first have to write: most activations receive exactly one gradient, so this saves a
 * zero-fill of each. Otherwise it is the existing gradient, to add to. (Ops that write only part of
 * a gradient use gradOf.)
 */
export function gradFor(t: Tensor): GradBuffer {
  if (t.grad !== null) return { data: t.grad.data, fresh: false };
  const make = (): Tensor => empty(t.shape, t.dtype);
  t.grad = t.persistent ? untracked(make) : make();
  return { data: t.grad.data, fresh: true };
}

/**
 * Hands the gradient of an op's output `out` to its input x as x's gradient, without a copy, when x
 * has none yet and the tape would drop out's right after (reshape, add). At most one input takes it.
 * Returns false when x must add the gradient in instead.
 */
export function adoptGrad(x: Tensor, out: Tensor): boolean {
  const g = out.grad;
  if (g === null || x.grad !== null || x.persistent || out.persistent || g.size !== x.size || g.dtype !== x.dtype) return false;
  x.grad = g.view(x.shape);
  out.grad = null; // the tape still releases its own reference; nobody else may take this one
  return true;
}

/**
 * Back-propagates from a scalar loss through everything recorded since the last backward.
 * Gradients accumulate into `.grad` of every tensor with requiresGrad (parameters keep theirs until
 * zeroed; intermediate gradients are freed as soon as they have been propagated).
 */
export function backward(loss: Tensor, seed = 1): void {
  if (loss.size !== 1) throw new Error(`backward: loss must have one element, got shape [${loss.shape.join(', ')}]`);
  if (!loss.requiresGrad) throw new Error('backward: the loss does not depend on any tensor that requires grad');
  gradOf(loss)[0] += seed;
  const nodes = tape;
  tape = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const { out, backward: fn } = nodes[i];
    const g = out.grad;
    if (g === null) continue; // nothing downstream of this output reached the loss
    fn(g.data);
    if (!out.persistent) {
      g.dispose();
      out.grad = null;
    }
  }
}

/** Drops the recorded tape without back-propagating (e.g. after a forward pass whose loss is unused). */
export function clearTape(): void {
  tape = [];
}

// ---------------------------------------------------------------- helpers for ops

/** The kernels for a dtype: float64 always takes the reference path. */
export function kernels(t: Tensor): Backend {
  return t.dtype === 'f64' ? referenceBackend : backend();
}

export function shapeStr(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/** An error that names the op and the shapes involved. */
export function opError(op: string, message: string, ...tensors: Tensor[]): Error {
  const shapes = tensors.map((t) => `${t.name ? `${t.name}=` : ''}${shapeStr(t)}${t.dtype === 'f64' ? ' f64' : ''}`).join(', ');
  return new Error(`${op}: ${message}${tensors.length > 0 ? ` (shapes ${shapes})` : ''}`);
}

export function sameDType(op: string, ...ts: Tensor[]): DType {
  const d = ts[0].dtype;
  for (const t of ts) if (t.dtype !== d) throw opError(op, 'mixed dtypes', ...ts);
  return d;
}

/**
 * Throws, naming the op, when `t` holds NaN or ±Infinity. With `inputs`, `t` is the op's output
 * (anomaly mode): the message names the inputs and says whether one of them was already non-finite.
 */
export function checkFinite(op: string, t: Tensor, inputs?: readonly Tensor[]): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (Number.isFinite(d[i])) continue;
    const describe = (x: Tensor) => `${x.name === undefined ? '' : `${x.name} `}${shapeStr(x)}`;
    if (inputs === undefined) throw new Error(`${op}: ${describe(t)} holds ${d[i]} at flat index ${i}`);
    const bad = inputs.findIndex((x) => !x.data.every(Number.isFinite));
    const cause = bad < 0 ? 'every input is finite, so the op itself overflowed' : `input ${bad} (${describe(inputs[bad])}) already held NaN or Infinity`;
    throw new Error(`${op}: its output ${shapeStr(t)} holds ${d[i]} at flat index ${i}; inputs ${inputs.map(describe).join(', ')}: ${cause}`);
  }
}

/** Turns on a NaN/Inf check of every op output (slow; for debugging a diverging run). */
export function setAnomalyMode(on: boolean): void {
  anomalyMode = on;
}

export function checkIndices(op: string, ids: ArrayLike<number>, limit: number): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new Error(`${op}: index ${v} at position ${i} is outside [0, ${limit})`);
    }
  }
}
