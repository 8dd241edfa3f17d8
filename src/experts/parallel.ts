// Expert parallelism on one machine: the compute backend's threads act as devices. Each device owns
// the expert slots a placement gives it (slot s on device floor(s / slotsPerDevice), redundant
// replicas included); in every MoE layer the routed rows are dispatched to the devices that own their
// experts, each device runs its experts' feed-forwards on its own thread while the others run theirs,
// and the outputs are combined back into each token's row (the layer's weighted scatter-add, as in
// the plain path).
//
// An expert with several replicas has its rows split among them so as to even out the devices: the
// rows of single-copy experts are fixed; then, heaviest replicated expert first, each row goes to the
// replica whose device holds the fewest rows so far. That is the router's choice among replicas
// ('balanced' dispatch). 'even' dispatch splits every expert's rows equally among its replicas
// instead, as EPLB assumes when it plans (and as a static choice of replica per sender amounts to).
//
// On one machine every thread reads the same weights, so a replica is a second device that may run an
// expert, not a second copy of its memory. The shared expert and everything outside the routed
// experts run as usual on all threads. Expert weights must be float32 tensors (not packed). The
// results are those of the plain path: the same products on the same rows (bitwise where an expert's
// rows are not split and both paths multiply in the same order).
import { backend, type Backend, type ExpertTask } from '../kernels/index.js';
import type { CausalLM } from '../model/model.js';
import type { ExpertRunner, MoE } from '../model/moe.js';
import { Tensor, empty } from '../tensor/index.js';
import type { Placement } from './placement.js';

/** What the devices did since the last reset. */
export interface DeviceStats {
  devices: number;
  /** MoE-layer calls measured (forward passes × MoE layers). */
  calls: number;
  /** [MoE layer][device]: rows computed. */
  rows: number[][];
  /** Per MoE layer: Σ over calls of the busiest device's rows, and of the mean device's. */
  sumMax: number[];
  sumMean: number[];
  /** [device]: seconds computing. */
  busy: number[];
  /** Seconds from dispatching a layer's experts until the last device finished, summed over calls. */
  phase: number;
}

/** Σ max / Σ mean over all layers and calls: how much longer the expert phase takes than with perfect balance (time ∝ rows). */
export function stepImbalance(s: DeviceStats): number {
  const max = s.sumMax.reduce((a, b) => a + b, 0);
  const mean = s.sumMean.reduce((a, b) => a + b, 0);
  return mean > 0 ? max / mean : 1;
}

/** max / mean of each device's rows over the whole run, per MoE layer. */
export function totalImbalance(s: DeviceStats): number[] {
  return s.rows.map((r) => {
    const total = r.reduce((a, b) => a + b, 0);
    return total > 0 ? Math.max(...r) / (total / r.length) : 1;
  });
}

interface LayerPlan {
  /** slot → expert */
  slots: number[];
  /** expert → its slots, in slot order */
  replicas: number[][];
  /** experts with more than one slot */
  shared: number[];
}

/** How a replicated expert's rows are shared among its replicas (see above). */
export type Dispatch = 'balanced' | 'even';

export class ExpertParallel implements ExpertRunner {
  private readonly index = new Map<MoE, number>();
  private readonly layers: LayerPlan[];
  private readonly perDevice: number;
  private readonly kernels: Backend;
  readonly dispatch: Dispatch;
  private statsNow: DeviceStats;

  /**
   * @param placement one row of slots per MoE layer of the model (see placement.ts)
   * @param opts.backend the backend whose threads are the devices (default: the active one)
   * @param opts.dispatch how replicas share their expert's rows (default 'balanced')
   */
  constructor(private readonly model: CausalLM, readonly placement: Placement, opts: { backend?: Backend; dispatch?: Dispatch } = {}) {
    this.kernels = opts.backend ?? backend();
    this.dispatch = opts.dispatch ?? 'balanced';
    if (this.dispatch !== 'balanced' && this.dispatch !== 'even') throw new Error(`expert parallelism: dispatch must be 'balanced' or 'even', got '${this.dispatch as string}'`);
    const moes = model.moeLayers();
    if (moes.length === 0) throw new Error('expert parallelism: the model has no MoE layers');
    if (placement.phy2log.length !== moes.length) throw new Error(`expert parallelism: the placement has ${placement.phy2log.length} layers, the model ${moes.length} MoE layers`);
    const slots = placement.phy2log[0].length;
    if (slots % placement.devices !== 0) throw new Error(`expert parallelism: ${slots} slots do not split evenly over ${placement.devices} devices`);
    this.perDevice = slots / placement.devices;
    moes.forEach((m, i) => {
      this.index.set(m, i);
      m.experts.forEach((x, e) => {
        for (const w of [x.gate, x.up, x.down]) {
          if (!(w instanceof Tensor)) throw new Error(`expert parallelism needs the routed experts' weights as float32 tensors, but this model keeps them packed (layer ${model.moeLayerIds()[i]}, expert ${e}: ${w.type}), as models whose float32 weights would exceed 1 GiB do`);
        }
      });
    });
    this.layers = placement.phy2log.map((row, l) => {
      if (row.length !== slots) throw new Error(`expert parallelism: layer ${l} of the placement has ${row.length} slots, layer 0 has ${slots}`);
      const E = moes[l].E;
      const replicas = Array.from({ length: E }, () => [] as number[]);
      row.forEach((e, s) => {
        if (!(Number.isInteger(e) && e >= 0 && e < E)) throw new Error(`expert parallelism: layer ${l}, slot ${s} holds expert ${e}, outside [0, ${E})`);
        replicas[e].push(s);
      });
      const missing = replicas.findIndex((r) => r.length === 0);
      if (missing >= 0) throw new Error(`expert parallelism: layer ${l} of the placement has no slot for expert ${missing}`);
      return { slots: row, replicas, shared: replicas.flatMap((r, e) => (r.length > 1 ? [e] : [])) };
    });
    this.statsNow = this.emptyStats();
  }

  get devices(): number {
    return this.placement.devices;
  }

  /** Routes the model's routed experts through the devices (until detach()). */
  attach(): this {
    for (const m of this.model.moeLayers()) m.runner = this;
    return this;
  }

  detach(): void {
    for (const m of this.model.moeLayers()) if (m.runner === this) m.runner = null;
  }

  private emptyStats(): DeviceStats {
    const D = this.devices;
    const L = this.layers.length;
    return {
      devices: D, calls: 0, rows: Array.from({ length: L }, () => new Array<number>(D).fill(0)),
      sumMax: new Array<number>(L).fill(0), sumMean: new Array<number>(L).fill(0), busy: new Array<number>(D).fill(0), phase: 0,
    };
  }

  /** The measurements so far (a copy). */
  stats(): DeviceStats {
    return structuredClone(this.statsNow);
  }

  resetStats(): void {
    this.statsNow = this.emptyStats();
  }

  /** How many of each slot's expert's rows it takes: [slot]. */
  split(layer: number, counts: Int32Array): Int32Array {
    const p = this.layers[layer];
    const take = new Int32Array(p.slots.length);
    const held = new Float64Array(this.devices);
    const device = (s: number): number => Math.floor(s / this.perDevice);
    p.replicas.forEach((slots, e) => {
      if (slots.length === 1) {
        take[slots[0]] = counts[e];
        held[device(slots[0])] += counts[e];
      }
    });
    if (this.dispatch === 'even') {
      for (const e of p.shared) {
        const slots = p.replicas[e];
        slots.forEach((s, r) => (take[s] = Math.floor(counts[e] / slots.length) + (r < counts[e] % slots.length ? 1 : 0)));
      }
      return take;
    }
    const order = [...p.shared].sort((a, b) => counts[b] - counts[a] || a - b);
    for (const e of order) {
      const slots = p.replicas[e];
      for (let r = 0; r < counts[e]; r++) {
        let best = slots[0];
        for (const s of slots) if (held[device(s)] < held[device(best)]) best = s;
        take[best]++;
        held[device(best)]++;
      }
    }
    return take;
  }

  run(moe: MoE, x: Tensor, counts: Int32Array): Tensor {
    const l = this.index.get(moe);
    if (l === undefined) throw new Error('expert parallelism: a MoE layer this runner was not built for');
    const p = this.layers[l];
    const [M, dim] = x.shape;
    const take = this.split(l, counts);
    // Each expert's rows are contiguous in x (grouped by expert); its replicas take consecutive runs.
    const next = new Int32Array(counts.length);
    for (let e = 1; e < counts.length; e++) next[e] = next[e - 1] + counts[e - 1];
    const devices: ExpertTask[][] = Array.from({ length: this.devices }, () => []);
    const rows = new Array<number>(this.devices).fill(0);
    p.slots.forEach((e, s) => {
      const n = take[s];
      if (n === 0) return;
      const d = Math.floor(s / this.perDevice);
      const w = moe.experts[e];
      devices[d].push({ gate: (w.gate as Tensor).data, up: (w.up as Tensor).data, down: (w.down as Tensor).data, row: next[e], rows: n });
      next[e] += n;
      rows[d] += n;
    });
    const out = empty([M, dim], x.dtype);
    const t = this.kernels.experts({ x: x.data, out: out.data, dim, hidden: moe.experts[0].gate.shape[0], devices });

    const st = this.statsNow;
    st.calls++;
    rows.forEach((n, d) => {
      st.rows[l][d] += n;
      st.busy[d] += t.end[d] - t.start[d];
    });
    st.sumMax[l] += Math.max(...rows);
    st.sumMean[l] += M / this.devices;
    st.phase += Math.max(...t.end);
    return out;
  }
}
