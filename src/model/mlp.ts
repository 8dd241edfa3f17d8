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
    return T.linear(T.swiglu(T.linear(x, this.gate), T.linear(x, this.up)), this.down);
  }
}
