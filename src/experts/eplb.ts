// DeepSeek's expert-parallel load balancer (EPLB), written from its published description: given each
// logical expert's load per MoE layer, decide how many physical copies (replicas) every expert gets
// and which GPU each copy lives on, so that the busiest GPU carries as little as possible.
//
// Hierarchical policy (expert groups divide evenly among nodes; suits prefill, where group-limited
// routing keeps a token's experts on few nodes):
//   1. pack whole expert groups onto nodes, balancing the groups' loads;
//   2. within each node, give one more replica at a time to the expert with the largest load per
//      replica until the node's slots are full;
//   3. pack the node's replicas (each carrying load / replicas of its expert) onto the node's GPUs.
// Global policy (decode, or groups that do not divide among nodes): the same with one group and one
// node, i.e. replicate across the whole cluster, then pack onto all GPUs.
//
// Balanced packing: items by weight, heaviest first, each into the lightest pack that still has room
// (every pack takes exactly items / packs). Ties go to the lower index everywhere (sorts are stable),
// so results are deterministic and reproduce the worked example of DeepSeek's README exactly.
//
// Slots are numbered GPU-major: physical slot s lives on GPU floor(s / (replicas / gpus)), node
// floor(gpu / (gpus / nodes)) — the numbering SGLang and vLLM use for physical experts.

export type Policy = 'hierarchical' | 'global';

export interface EplbOptions {
  /** Physical expert slots per layer (logical experts + redundant ones); a multiple of gpus. */
  replicas: number;
  /** Expert groups of the router (n_group; 1 when the model has none). */
  groups: number;
  nodes: number;
  gpus: number;
  /** Default: hierarchical when groups divide evenly among nodes, else global. */
  policy?: Policy;
}

export interface EplbPlan {
  policy: Policy;
  /** [layer][slot] → logical expert. */
  phy2log: number[][];
  /** [layer][expert][replica] → slot, padded with −1 to the largest replica count. */
  log2phy: number[][][];
  /** [layer][expert] → number of replicas. */
  logcnt: number[][];
}

/** Indices of `w` heaviest first; equal weights keep index order. */
function heaviestFirst(w: readonly number[]): number[] {
  return w.map((_, i) => i).sort((a, b) => w[b] - w[a] || a - b);
}

/**
 * Packs items of weights `w` into `packs` packs of exactly w.length / packs items each: heaviest
 * first into the lightest pack with room. Returns each item's pack and its rank within the pack.
 */
export function balancedPacking(w: readonly number[], packs: number): { pack: number[]; rank: number[] } {
  const n = w.length;
  if (!Number.isInteger(packs) || packs < 1 || n % packs !== 0) throw new Error(`balancedPacking: ${n} items do not split into ${packs} equal packs`);
  const per = n / packs;
  const pack = new Array<number>(n).fill(0);
  const rank = new Array<number>(n).fill(0);
  if (per === 1) return { pack: w.map((_, i) => i), rank };
  const weight = new Array<number>(packs).fill(0);
  const items = new Array<number>(packs).fill(0);
  for (const i of heaviestFirst(w)) {
    let best = -1;
    for (let p = 0; p < packs; p++) if (items[p] < per && (best < 0 || weight[p] < weight[best])) best = p;
    pack[i] = best;
    rank[i] = items[best]++;
    weight[best] += w[i];
  }
  return { pack, rank };
}

/**
 * Spreads `slots` physical slots over the experts of weights `w` (slots ≥ experts): every expert gets
 * one, then each spare slot goes to the expert with the largest weight per replica. Returns each slot's
 * expert, its replica number, and each expert's replica count.
 */
export function replicateExperts(w: readonly number[], slots: number): { phy2log: number[]; rank: number[]; count: number[] } {
  const n = w.length;
  if (slots < n) throw new Error(`replicateExperts: ${slots} slots cannot hold ${n} experts`);
  const phy2log = Array.from({ length: slots }, (_, s) => (s < n ? s : 0));
  const rank = new Array<number>(slots).fill(0);
  const count = new Array<number>(n).fill(1);
  for (let s = n; s < slots; s++) {
    let best = 0;
    for (let e = 1; e < n; e++) if (w[e] / count[e] > w[best] / count[best]) best = e;
    phy2log[s] = best;
    rank[s] = count[best]++;
  }
  return { phy2log, rank, count };
}

/** One layer, hierarchical: groups onto nodes, replicas within each node, replicas onto its GPUs. */
function planLayer(w: readonly number[], replicas: number, groups: number, nodes: number, gpus: number): { phy2log: number[]; rank: number[]; count: number[] } {
  const E = w.length;
  const groupSize = E / groups;
  const groupsPerNode = groups / nodes;
  const expertsPerNode = E / nodes;
  const slotsPerNode = replicas / nodes;
  const gpusPerNode = gpus / nodes;
  const slotsPerGpu = replicas / gpus;

  // 1. Groups onto nodes. Relabel the experts so that node n holds labels [n·E/nodes, (n+1)·E/nodes).
  const groupLoad = Array.from({ length: groups }, (_, g) => w.slice(g * groupSize, (g + 1) * groupSize).reduce((a, b) => a + b, 0));
  const nodeOf = balancedPacking(groupLoad, nodes);
  const labelOf = new Array<number>(E); // logical expert → node-major label
  for (let e = 0; e < E; e++) {
    const g = Math.floor(e / groupSize);
    labelOf[e] = (nodeOf.pack[g] * groupsPerNode + nodeOf.rank[g]) * groupSize + (e % groupSize);
  }
  const expertOf = new Array<number>(E); // label → logical expert
  for (let e = 0; e < E; e++) expertOf[labelOf[e]] = e;

  const phy2log = new Array<number>(replicas);
  const rank = new Array<number>(replicas);
  const count = new Array<number>(E);
  for (let node = 0; node < nodes; node++) {
    // 2. Replicate the node's experts into its slots.
    const local = Array.from({ length: expertsPerNode }, (_, j) => w[expertOf[node * expertsPerNode + j]]);
    const rep = replicateExperts(local, slotsPerNode);
    // 3. Pack the node's replicas onto its GPUs by the load each replica carries.
    const perReplica = rep.phy2log.map((j) => local[j] / rep.count[j]);
    const onGpu = balancedPacking(perReplica, gpusPerNode);
    for (let r = 0; r < slotsPerNode; r++) {
      const slot = node * slotsPerNode + onGpu.pack[r] * slotsPerGpu + onGpu.rank[r];
      phy2log[slot] = expertOf[node * expertsPerNode + rep.phy2log[r]];
      rank[slot] = rep.rank[r];
    }
    for (let j = 0; j < expertsPerNode; j++) count[expertOf[node * expertsPerNode + j]] = rep.count[j];
  }
  return { phy2log, rank, count };
}

/** Checks the cluster shape against the experts; the message names the option at fault. */
export function checkShape(experts: number, o: EplbOptions): void {
  const int = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`eplb: ${name} must be a positive integer, got ${v}`);
  };
  int('replicas', o.replicas);
  int('groups', o.groups);
  int('nodes', o.nodes);
  int('gpus', o.gpus);
  if (o.replicas < experts) throw new Error(`eplb: replicas (${o.replicas}) must be at least the number of experts (${experts})`);
  if (o.replicas % o.gpus !== 0) throw new Error(`eplb: replicas (${o.replicas}) must be a multiple of gpus (${o.gpus})`);
  if (o.gpus % o.nodes !== 0) throw new Error(`eplb: gpus (${o.gpus}) must be a multiple of nodes (${o.nodes})`);
  if (experts % o.groups !== 0) throw new Error(`eplb: groups (${o.groups}) must divide the ${experts} experts`);
  if (o.policy === 'hierarchical' && o.groups % o.nodes !== 0) throw new Error(`eplb: the hierarchical policy needs groups (${o.groups}) to be a multiple of nodes (${o.nodes})`);
  if (o.policy !== undefined && o.policy !== 'hierarchical' && o.policy !== 'global') throw new Error(`eplb: policy must be 'hierarchical' or 'global', got '${o.policy}'`);
}

/**
 * The placement of every layer's experts: weight[layer][expert] is the load (token counts, or any
 * non-negative measure of it).
 */
export function rebalanceExperts(weight: readonly (readonly number[])[], o: EplbOptions): EplbPlan {
  if (weight.length === 0) throw new Error('eplb: no layers to plan');
  const E = weight[0].length;
  weight.forEach((row, l) => {
    if (row.length !== E) throw new Error(`eplb: layer ${l} has ${row.length} experts, layer 0 has ${E}`);
    row.forEach((v, e) => {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`eplb: load of layer ${l}, expert ${e} is ${v}; loads must be finite and non-negative`);
    });
  });
  checkShape(E, o);
  const policy: Policy = o.policy ?? (o.groups % o.nodes === 0 ? 'hierarchical' : 'global');
  const [groups, nodes] = policy === 'hierarchical' ? [o.groups, o.nodes] : [1, 1];
  const layers = weight.map((w) => planLayer(w, o.replicas, groups, nodes, o.gpus));
  const most = Math.max(...layers.flatMap((l) => l.count));
  const log2phy = layers.map((l) => {
    const m = Array.from({ length: E }, () => new Array<number>(most).fill(-1));
    l.phy2log.forEach((e, s) => (m[e][l.rank[s]] = s));
    return m;
  });
  return { policy, phy2log: layers.map((l) => l.phy2log), log2phy, logcnt: layers.map((l) => l.count) };
}
