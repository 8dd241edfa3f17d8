// Element-wise ops. Broadcasting is limited to what a transformer needs: `b` may have the shape of
// `a`'s trailing dimensions (a bias or a per-channel scale), repeated over the leading ones.
import type { FloatArray } from '../tensor.js';
import { Tensor, adoptGrad, empty, gradFor, gradOf, isGradEnabled, kernels, opError, record, sameDType } from '../tensor.js';

function broadcastInner(op: string, a: Tensor, b: Tensor): number {
  const off = a.rank - b.rank;
  if (off < 0) throw opError(op, 'second operand has more dimensions than the first', a, b);
  for (let i = 0; i < b.rank; i++) {
    if (a.shape[off + i] !== b.shape[i]) throw opError(op, 'shapes do not broadcast', a, b);
  }
  return b.size;
}

/**
 * x receives the gradient g of `out` (same size) unchanged: as its own gradient buffer when it can
 * (adoptGrad), else as a copy into a fresh one or added to the one it has.
 */
export function passGrad(x: Tensor, out: Tensor, g: FloatArray): void {
  if (adoptGrad(x, out)) return;
  const gx = gradFor(x);
  kernels(x).copyRows(g, 0, 0, gx.data, 0, 0, 1, x.size, !gx.fresh);
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameDType('add', a, b);
  const inner = broadcastInner('add', a, b);
  const out = empty(a.shape, a.dtype);
  const x = a.data, y = b.data, o = out.data;
  const be = kernels(a);
  if (inner === a.size) {
    // Same shapes (the residual stream): o = a, then o += b, in the backend's SIMD copy.
    o.set(x);
    be.copyRows(y, 0, 0, o, 0, 0, 1, o.length, true);
  } else {
    for (let i = 0, j = 0; i < o.length; i++, j = j + 1 === inner ? 0 : j + 1) o[i] = x[i] + y[j];
  }
  return record('add', [a, b], out, (g) => {
    // The residual stream: a takes the output's gradient as its own, b a copy of it.
    if (a.requiresGrad) passGrad(a, out, g);
    if (b.requiresGrad) {
      if (inner === a.size) {
        passGrad(b, out, g);
      } else {
        const gb = gradOf(b);
        for (let i = 0, j = 0; i < g.length; i++, j = j + 1 === inner ? 0 : j + 1) gb[j] += g[i];
      }
    }
  });
}

export function sub(a: Tensor, b: Tensor): Tensor {
  sameDType('sub', a, b);
  const inner = broadcastInner('sub', a, b);
  const out = empty(a.shape, a.dtype);
  const x = a.data, y = b.data, o = out.data;
  for (let i = 0, j = 0; i < o.length; i++, j = j + 1 === inner ? 0 : j + 1) o[i] = x[i] - y[j];
  return record('sub', [a, b], out, (g) => {
    if (a.requiresGrad) {
      const ga = gradOf(a);
      for (let i = 0; i < g.length; i++) ga[i] += g[i];
    }
    if (b.requiresGrad) {
      const gb = gradOf(b);
      for (let i = 0, j = 0; i < g.length; i++, j = j + 1 === inner ? 0 : j + 1) gb[j] -= g[i];
    }
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  sameDType('mul', a, b);
  const inner = broadcastInner('mul', a, b);
  const out = empty(a.shape, a.dtype);
  const x = a.data, y = b.data, o = out.data;
  for (let i = 0, j = 0; i < o.length; i++, j = j + 1 === inner ? 0 : j + 1) o[i] = x[i] * y[j];
  return record('mul', [a, b], out, (g) => {
    if (a.requiresGrad) {
      const ga = gradOf(a);
      for (let i = 0, j = 0; i < g.length; i++, j = j + 1 === inner ? 0 : j + 1) ga[i] += g[i] * y[j];
    }
    if (b.requiresGrad) {
      const gb = gradOf(b);
      for (let i = 0, j = 0; i < g.length; i++, j = j + 1 === inner ? 0 : j + 1) gb[j] += g[i] * x[i];
    }
  });
}

export function scale(a: Tensor, s: number): Tensor {
  const out = empty(a.shape, a.dtype);
  const x = a.data, o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = x[i] * s;
  return record('scale', [a], out, (g) => {
    const ga = gradOf(a);
    for (let i = 0; i < g.length; i++) ga[i] += g[i] * s;
  });
}

export function sigmoid(a: Tensor): Tensor {
  const out = empty(a.shape, a.dtype);
  const x = a.data, o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = 1 / (1 + Math.exp(-x[i]));
  return record('sigmoid', [a], out, (g) => {
    const ga = gradOf(a);
    for (let i = 0; i < g.length; i++) ga[i] += g[i] * o[i] * (1 - o[i]);
  });
}

export function silu(a: Tensor): Tensor {
  const out = empty(a.shape, a.dtype);
  const x = a.data, o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = x[i] / (1 + Math.exp(-x[i]));
  return record('silu', [a], out, (g) => {
    const ga = gradOf(a);
    for (let i = 0; i < g.length; i++) {
      const s = 1 / (1 + Math.exp(-x[i]));
      ga[i] += g[i] * s * (1 + x[i] * (1 - s));
    }
  });
}

/** SwiGLU's gating: silu(gate) ⊙ up, fused so the gate's activation is never stored. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  sameDType('swiglu', gate, up);
  if (gate.size !== up.size || gate.rank !== up.rank) throw opError('swiglu', 'gate and up differ in shape', gate, up);
  const out = empty(gate.shape, gate.dtype);
  const be = kernels(gate);
  be.swiglu(gate.data, up.data, out.data, out.size);
  return record('swiglu', [gate, up], out, (g) => {
    const gg = gate.requiresGrad ? gradFor(gate) : null;
    const gu = up.requiresGrad ? gradFor(up) : null;
    // One mode for both outputs: a fresh buffer beside an existing one (or gate = up) starts at zero.
    const overwrite = (gg === null || gg.fresh) && (gu === null || gu.fresh) && gate !== up;
    if (!overwrite) for (const b of [gg, gu]) if (b?.fresh) b.data.fill(0);
    be.swigluBackward(gate.data, up.data, g, gg?.data ?? null, gu?.data ?? null, out.size, overwrite);
  });
}

/**
 * gate ← silu(gate) ⊙ up, written over gate: inference only (no tape). The feed-forward's hidden
 * activations are its largest buffers, and this keeps two of them alive instead of three.
 */
export function swigluInPlace(gate: Tensor, up: Tensor): Tensor {
  sameDType('swigluInPlace', gate, up);
  if (gate.size !== up.size || gate.rank !== up.rank) throw opError('swigluInPlace', 'gate and up differ in shape', gate, up);
  if (isGradEnabled()) throw opError('swigluInPlace', 'overwrites its input, so it runs only without a tape (inside noGrad)', gate, up);
  kernels(gate).swiglu(gate.data, up.data, gate.data, gate.size);
  return gate;
}
