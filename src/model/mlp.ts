// The SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)). Dense layers, shared experts and each routed
// expert are all this, at different widths.
import type { Tensor, Weight } from '../tensor/index.js';
import * as T from '../tensor/index.js';
import type { ParamStore } from './params.js';

export class SwiGLU {
  readonly gate: Weight;
  readonly up: Weight;
  readonly down: Weight;

  constructor(p: ParamStore, prefix: string, dim: number, hidden: number, std: number) {
    const normal = { kind: 'normal', std } as const;
    this.gate = p.matrix(`${prefix}.gate_proj.weight`, [hidden, dim], normal);
    this.up = p.matrix(`${prefix}.up_proj.weight`, [hidden, dim], normal);
    this.down = p.matrix(`${prefix}.down_proj.weight`, [dim, hidden], normal);
  }

  forward(x: Tensor): Tensor {
    if (T.isGradEnabled()) return T.linear(T.swiglu(T.linear(x, this.gate), T.linear(x, this.up)), this.down);
    // Without a tape, combine in place and free as soon as possible: a 256-token prefill of a 1.5B
    // model holds two 9 MB hidden buffers at its peak instead of three.
    const h = T.linear(x, this.gate);
    const up = T.linear(x, this.up);
    T.swigluInPlace(h, up);
    up.dispose();
    const out = T.linear(h, this.down);
    h.dispose();
    return out;
  }
}
