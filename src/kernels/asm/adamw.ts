// AdamW (AssemblyScript): one update over a run of parameters; jobs.ts cuts the parameters into runs.
import { madd } from './simd';

/**
 * One AdamW step over n parameters. The caller folds the scalars: decay = 1 − lr·wd,
 * stepSize = lr / (1 − β1ᵗ), invBc2 = 1 / (1 − β2ᵗ).
 */
export function adamw(
  n: i32, param: usize, grad: usize, mom: usize, vel: usize, gradScale: f32, beta1: f32, beta2: f32,
  eps: f32, decay: f32, stepSize: f32, invBc2: f32,
): void {
  const vs = f32x4.splat(gradScale);
  const vb1 = f32x4.splat(beta1);
  const vc1 = f32x4.splat(1 - beta1);
  const vb2 = f32x4.splat(beta2);
  const vc2 = f32x4.splat(1 - beta2);
  const ve = f32x4.splat(eps);
  const vd = f32x4.splat(decay);
  const vl = f32x4.splat(stepSize);
  const vi = f32x4.splat(invBc2);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(v128.load(grad + o), vs);
    const mi = madd(vb1, v128.load(mom + o), f32x4.mul(vc1, g));
    const vv = madd(vb2, v128.load(vel + o), f32x4.mul(vc2, f32x4.mul(g, g)));
    v128.store(mom + o, mi);
    v128.store(vel + o, vv);
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vv, vi)), ve);
    const upd = f32x4.div(f32x4.mul(vl, mi), den);
    v128.store(param + o, f32x4.sub(f32x4.mul(v128.load(param + o), vd), upd));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(grad + o) * gradScale;
    const mi = beta1 * load<f32>(mom + o) + (1 - beta1) * g;
    const vv = beta2 * load<f32>(vel + o) + (1 - beta2) * g * g;
    store<f32>(mom + o, mi);
    store<f32>(vel + o, vv);
    store<f32>(param + o, load<f32>(param + o) * decay - (stepSize * mi) / (sqrt<f32>(vv * invBc2) + eps));
  }
}
