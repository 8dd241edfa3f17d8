// The model's parameters, by their Hugging Face checkpoint names. Modules ask for their tensors by
// name here, so loading and saving a checkpoint is a walk over one map.
import { Tensor, untracked, empty, type DType } from '../tensor/index.js';
import { Rng } from '../util/rng.js';

export type Init = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

/** A trainable parameter and whether weight decay applies to it (an optimizer takes a list of these). */
export interface TrainableParam {
  tensor: Tensor;
  /** Norm weights, biases and embeddings usually skip weight decay. */
  decay: boolean;
}

export class ParamStore {
  readonly tensors = new Map<string, Tensor>();
  /** Names of tensors that are state, not trained by gradients (e.g. the router's correction bias). */
  readonly buffers = new Set<string>();
  private readonly rng: Rng;

  constructor(readonly dtype: DType, seed: number) {
    this.rng = new Rng(seed);
  }

  /** Creates (or, during construction from a checkpoint, later overwrites) a named parameter. */
  create(name: string, shape: number[], init: Init, trainable = true): Tensor {
    if (this.tensors.has(name)) throw new Error(`params: duplicate tensor name ${name}`);
    const t = untracked(() => empty(shape, this.dtype));
    const d = t.data;
    if (init.kind === 'ones') d.fill(1);
    else if (init.kind === 'zeros') d.fill(0);
    else for (let i = 0; i < d.length; i++) d[i] = this.rng.normal(0, init.std);
    t.name = name;
    t.requiresGrad = trainable;
    this.tensors.set(name, t);
    if (!trainable) this.buffers.add(name);
    return t;
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
