// The model's parameters, by their Hugging Face checkpoint names. Modules ask for their tensors by
// name here, so loading and saving a checkpoint is a walk over one map.
import { backend } from '../kernels/backend.js';
import { PackedMatrix, Tensor, untracked, empty, type DType, type Weight } from '../tensor/index.js';
import { Rng } from '../util/rng.js';
import { checkFinite, type StoredTensor, type WeightMode, type WeightSource } from './weights.js';

export type Init = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

/** A trainable parameter and whether weight decay applies to it (an optimizer takes a list of these). */
export interface TrainableParam {
  tensor: Tensor;
  /** Norm weights, biases and embeddings usually skip weight decay. */
  decay: boolean;
}

export class ParamStore {
  readonly tensors = new Map<string, Tensor>();
  /** Matrices kept in their stored encoding (weight mode 'packed' only); never trained. */
  readonly packed = new Map<string, PackedMatrix>();
  /** Names of tensors that are state, not trained by gradients (e.g. the router's correction bias). */
  readonly buffers = new Set<string>();
  private readonly rng: Rng;

  /**
   * Without a source every tensor is initialised as its module asks; with one, every tensor is read
   * from it (and must be there with that shape).
   */
  constructor(
    readonly dtype: DType,
    seed: number,
    private readonly source: WeightSource | null = null,
    readonly mode: WeightMode = 'f32',
  ) {
    this.rng = new Rng(seed);
    if (mode === 'packed' && dtype !== 'f32') throw new Error('params: packed weights need a float32 model');
  }

  private stored(name: string, shape: readonly number[]): StoredTensor {
    const s = this.source!.get(name);
    if (s === undefined) throw new Error(`${this.source!.label}: tensor ${name} is missing`);
    if (s.shape.length !== shape.length || s.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${this.source!.label}: tensor ${name} has shape [${s.shape.join(', ')}], the model needs [${shape.join(', ')}]`);
    }
    if (!this.source!.skipFiniteCheck) checkFinite(this.source!.label, name, s);
    return s;
  }

  /** Creates a named parameter: read from the source, or initialised. */
  create(name: string, shape: number[], init: Init, trainable = true): Tensor {
    if (this.tensors.has(name) || this.packed.has(name)) throw new Error(`params: duplicate tensor name ${name}`);
    const t = untracked(() => empty(shape, this.dtype));
    const d = t.data;
    if (this.source !== null) {
      const s = this.stored(name, shape);
      if (d instanceof Float32Array) backend().dequantize(s.type, s.bytes, d);
      else {
        const f = new Float32Array(d.length);
        backend().dequantize(s.type, s.bytes, f);
        d.set(f);
      }
    } else if (init.kind === 'ones') d.fill(1);
    else if (init.kind === 'zeros') d.fill(0);
    else for (let i = 0; i < d.length; i++) d[i] = this.rng.normal(0, init.std);
    t.name = name;
    t.requiresGrad = trainable;
    this.tensors.set(name, t);
    if (!trainable) this.buffers.add(name);
    return t;
  }

  /**
   * A matrix only ever used as a projection or an embedding table: kept packed when the weight mode
   * is 'packed' and the source stores it encoded, else a float parameter like create() makes.
   */
  matrix(name: string, shape: [number, number], init: Init): Weight {
    if (this.mode === 'packed' && this.source !== null) {
      const s = this.stored(name, shape);
      if (s.type !== 'F32') {
        if (this.tensors.has(name) || this.packed.has(name)) throw new Error(`params: duplicate tensor name ${name}`);
        const m = new PackedMatrix(s.type, shape, s.bytes, name);
        this.packed.set(name, m);
        return m;
      }
    }
    return this.create(name, shape, init);
  }

  /** Every weight by name: float tensors and packed matrices. */
  weight(name: string): Weight {
    const w = this.tensors.get(name) ?? this.packed.get(name);
    if (w === undefined) throw new Error(`params: no tensor named ${name}`);
    return w;
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (t === undefined) throw new Error(`params: no tensor named ${name}`);
    return t;
  }

  /** Trainable parameters, in creation order (the optimizer's order, so resumes line up). */
  trainable(): Tensor[] {
    return [...this.tensors.values()].filter((t) => t.requiresGrad);
  }
}
