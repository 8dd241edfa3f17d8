// `nanoseek experts stats | plan | export | simulate | report` and `nanoseek bench experts`: expert load,
// DeepSeek's EPLB, SGLang's placement files, the DeepSeek-V3-scale simulator, the committed report.
import type { Command } from 'commander';
import { formatExpertBench, runExpertBench } from '../../../bench/experts.js';
import {
  buildExpertReport, CLUSTERS, compactJson, formatStats, loadStats, parseSkew, planFromLoad, readLoad, sglangLogicalCount, sglangPlacement, simulate,
  simulatedSglangPlacement, statsPage, summarize, writePlan, type ClusterShape, type Policy, type Popularity,
} from '../../experts/index.js';
import type { PresetName } from '../../model/config.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { benchCommand } from './bench.js';
import { intFlag, loadFromFlags, numberFlag, withModelFlags } from './generate.js';

interface PlanFlags {
  load: string;
  replicas: number;
  groups?: number;
  nodes: number;
  gpus: number;
  policy?: string;
  out?: string;
  sglang?: string;
  json?: boolean;
}

interface SimulateFlags {
  load?: string;
  synthetic?: string;
  cluster: string;
  nodes?: number;
  gpus?: number;
  redundant?: number;
  tokensPerGpu?: number;
  steps: number;
  seed: number;
  sglang?: string;
  json?: boolean;
}

function policyFlag(text: string | undefined): Policy | undefined {
  if (text === undefined) return undefined;
  if (text !== 'hierarchical' && text !== 'global') throw new Error(`--policy must be hierarchical or global, got '${text}'`);
  return text;
}

/** --cluster prefill|decode, with any of --nodes/--gpus/--redundant/--tokens-per-gpu overriding it. */
function clustersFrom(o: SimulateFlags): ClusterShape[] {
  const names: readonly ('prefill' | 'decode')[] | null = o.cluster === 'both' ? ['prefill', 'decode'] : o.cluster === 'prefill' || o.cluster === 'decode' ? [o.cluster] : null;
  if (names === null) throw new Error(`--cluster must be prefill, decode or both, got '${o.cluster}'`);
  return names.map((n) => {
    const c = { ...CLUSTERS[n] };
    if (o.nodes !== undefined) c.nodes = o.nodes;
    if (o.gpus !== undefined) c.gpus = o.gpus;
    if (o.redundant !== undefined) c.redundant = o.redundant;
    if (o.tokensPerGpu !== undefined) c.tokensPerGpu = o.tokensPerGpu;
    if (o.nodes !== undefined || o.gpus !== undefined || o.redundant !== undefined) c.name = `${n} EP${c.gpus} (${c.nodes} nodes, ${c.redundant} redundant)`;
    return c;
  });
}

export function register(program: Command): void {
  const experts = program.command('experts').description('expert load, EPLB placement plans, SGLang export, the DeepSeek-V3-scale simulator, expert-parallel report');

  experts
    .command('stats')
    .description('imbalance per MoE layer of a recording (serve/eval --record-experts, or a training run\'s metrics.jsonl), and its heatmaps as HTML')
    .argument('<file>', 'expert-load recording (.json) or metrics.jsonl')
    .option('--devices <n>', 'also show max/mean per device with the trivial placement on n devices', intFlag('--devices'))
    .option('--html <file>', 'where to write the heatmap page (default: load.json → load.html, metrics.jsonl → metrics-experts.html)')
    .option('--json', 'print the statistics as one JSON object')
    .action(async (file: string, o: { devices?: number; html?: string; json?: boolean }) => {
      const rec = await readLoad(file);
      const s = loadStats(rec, o.devices);
      // A training log's page goes beside `nanoseek plot`'s metrics.html, not over it.
      const html = o.html ?? (file.endsWith('.jsonl') ? `${file.slice(0, -'.jsonl'.length)}-experts.html` : `${file.replace(/\.json$/, '')}.html`);
      await writeFileAtomic(html, statsPage(rec, s));
      process.stdout.write(o.json ? `${JSON.stringify({ ...s, html })}\n` : `${formatStats(s)}\nheatmaps: ${html}\n`);
    });

  experts
    .command('plan')
    .description('DeepSeek\'s EPLB on a recording: replicas and GPU of every expert slot (phy2log, log2phy, logcnt), the balance before and after')
    .requiredOption('--load <file>', 'expert-load recording (.json) or metrics.jsonl')
    .requiredOption('--replicas <n>', 'physical expert slots per layer (experts + redundant ones; a multiple of --gpus)', intFlag('--replicas'))
    .requiredOption('--gpus <n>', 'GPUs (devices) in all', intFlag('--gpus'))
    .option('--groups <n>', 'expert groups (default: the model\'s n_group)', intFlag('--groups'))
    .option('--nodes <n>', 'nodes the GPUs are spread over', intFlag('--nodes'), 1)
    .option('--policy <p>', 'hierarchical or global (default: hierarchical when groups divide among nodes)')
    .option('--out <file>', 'write the plan (usable as --placement)')
    .option('--sglang <file>', 'write SGLang\'s --init-expert-location JSON (physical_to_logical_map)')
    .option('--json', 'print the plan as JSON')
    .action(async (o: PlanFlags) => {
      const rec = await readLoad(o.load);
      const plan = planFromLoad(rec, { replicas: o.replicas, groups: o.groups ?? rec.groups, nodes: o.nodes, gpus: o.gpus, policy: policyFlag(o.policy) }, o.load);
      if (o.out !== undefined) await writePlan(o.out, plan);
      if (o.sglang !== undefined) await writeFileAtomic(o.sglang, compactJson(sglangPlacement(plan)));
      if (o.json) {
        process.stdout.write(compactJson(plan));
        return;
      }
      const per = plan.replicas / plan.gpus;
      const lines = [`EPLB, ${plan.policy} policy: ${rec.experts} experts → ${plan.replicas} slots on ${plan.gpus} GPUs (${plan.nodes} node${plan.nodes > 1 ? 's' : ''}, ${per} slots each)`];
      plan.phy2log.forEach((row, l) => {
        lines.push(`layer ${rec.layers[l]}: max/mean per GPU ${plan.balance.trivial[l].toFixed(3)} (trivial, same slots) → ${plan.balance.planned[l].toFixed(3)}; replicated: ${plan.logcnt[l].flatMap((c, e) => (c > 1 ? [`e${e}×${c}`] : [])).join(' ') || 'none'}`);
        lines.push(`  ${Array.from({ length: plan.gpus }, (_, g) => `gpu${g} [${row.slice(g * per, (g + 1) * per).join(' ')}]`).join('  ')}`);
      });
      if (o.out !== undefined) lines.push(`plan written to ${o.out}`);
      if (o.sglang !== undefined) lines.push(`SGLang placement written to ${o.sglang} (--init-expert-location, with --ep-num-redundant-experts ${plan.replicas - rec.experts})`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  experts
    .command('export')
    .description('a recording as SGLang\'s --init-expert-location JSON with logical_count ([step][layer][expert] counts; SGLang runs EPLB on them)')
    .requiredOption('--load <file>', 'expert-load recording (.json) or metrics.jsonl')
    .requiredOption('--out <file>', 'the JSON to write')
    .action(async (o: { load: string; out: string }) => {
      const rec = await readLoad(o.load);
      const json = sglangLogicalCount(rec);
      await writeFileAtomic(o.out, compactJson(json));
      process.stdout.write(`logical_count [${json.logical_count.length} steps, ${rec.num_hidden_layers} layers, ${rec.experts} experts] written to ${o.out}\n`);
    });

  experts
    .command('simulate')
    .description('DeepSeek-V3 (256 experts × 58 MoE layers) on EP32 prefill / EP144 decode: per-GPU max/mean before and after EPLB, and the throughput bound')
    .option('--load <file>', 'resample expert popularity from this recording')
    .option('--synthetic <skew>', 'or a synthetic skew: zipf:<exponent> or lognormal:<sigma>')
    .option('--cluster <name>', 'prefill (EP32, 4 nodes), decode (EP144, 18 nodes) or both', 'both')
    .option('--nodes <n>', 'override the cluster\'s nodes', intFlag('--nodes'))
    .option('--gpus <n>', 'override its GPUs', intFlag('--gpus'))
    .option('--redundant <n>', 'override its redundant experts', intFlag('--redundant', 0))
    .option('--tokens-per-gpu <n>', 'tokens each GPU brings to a step (default: 4096 prefill, 128 decode)', intFlag('--tokens-per-gpu'))
    .option('--steps <n>', 'simulated steps, for the history and for measuring each', intFlag('--steps'), 32)
    .option('--seed <n>', 'random seed', intFlag('--seed', 0), 0)
    .option('--sglang <file>', 'write the (first) cluster\'s plan as SGLang JSON (physical_to_logical_map, 61 rows)')
    .option('--json', 'one JSON document')
    .action(async (o: SimulateFlags) => {
      if ((o.load === undefined) === (o.synthetic === undefined)) throw new Error('give exactly one of --load <file> and --synthetic <skew>');
      const popularity: Popularity = o.load !== undefined ? { kind: 'recorded', load: await readLoad(o.load) } : parseSkew(o.synthetic!);
      const results = clustersFrom(o).map((cluster) => simulate({ cluster, popularity, steps: o.steps, historySteps: o.steps, seed: o.seed }));
      if (o.sglang !== undefined) await writeFileAtomic(o.sglang, compactJson(simulatedSglangPlacement(results[0])));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(results.map(summarize), null, 1)}\n`);
        return;
      }
      const lines: string[] = [];
      for (const r of results) {
        lines.push(
          `${r.cluster.name}: ${r.model.name}, ${r.source}; ${r.cluster.gpus} GPUs, ${r.slots} slots (${r.slotsPerGpu} per GPU), ${r.cluster.tokensPerGpu} tokens per GPU per step, ${r.policy} policy`,
          `  per-GPU max/mean over ${r.steps} steps × ${r.model.layers} layers: trivial ${r.trivial.stepImbalance.toFixed(3)} (worst ${r.trivial.worst.toFixed(2)}) → planned ${r.planned.stepImbalance.toFixed(3)} (worst ${r.planned.worst.toFixed(2)})`,
          `  expert-GEMM bound at FP8 peak, tokens/s per node: trivial ${r.trivial.boundPerNode.toFixed(0)} → planned ${r.planned.boundPerNode.toFixed(0)} (perfect balance ${r.idealBoundPerNode.toFixed(0)})`,
        );
      }
      if (o.sglang !== undefined) lines.push(`SGLang placement of ${results[0].cluster.name} written to ${o.sglang}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  withModelFlags(experts.command('report'))
    .description('the committed report: skewed routing on a trained MoE model, recorded, planned, run expert-parallel on this machine, simulated at V3 scale')
    .option('--out <dir>', 'where to write index.html, stats.html, deploy.html, report.json and the exports', 'docs/experts')
    .option('--devices <n>', 'devices of expert parallelism', intFlag('--devices'), 2)
    .option('--skew <delta>', 'router bias added to the experts the trivial placement puts on device 0', numberFlag('--skew', 0, 10), 0.1)
    .option('--redundant <n>', 'redundant expert slots for the plan (default: 2 per device)', intFlag('--redundant', 0))
    .option('--problems <n>', 'problems in each workload (calibration, measurement)', intFlag('--problems'), 64)
    .option('--max-tokens <n>', 'tokens per completion', intFlag('--max-tokens'), 96)
    .action(async (o: { model?: string; tokenizer?: string; out: string; devices: number; skew: number; redundant?: number; problems: number; maxTokens: number }) => {
      const ck = await loadFromFlags(o);
      const r = await buildExpertReport({
        model: ck.model, tokenizer: ck.tokenizer, modelLabel: ck.name, out: o.out, devices: o.devices, skew: o.skew, redundant: o.redundant,
        problems: o.problems, maxTokens: o.maxTokens, progress: (line) => process.stderr.write(`${line}\n`),
      });
      const bad = r.runs.filter((x) => !x.identical);
      process.stdout.write(`report written to ${o.out}/index.html\n`);
      if (bad.length > 0) throw new Error(`expert-parallel tokens differ from the plain path (${bad.map((x) => x.placement).join(', ')})`);
    });

  benchCommand(program)
    .command('experts')
    .description('expert-parallel decoding against the plain path on a trained MoE model with skewed routing: tokens/s, per-device load and time, with and without the plan')
    .option('--model <dir>', 'MoE checkpoint (default: models/nano-r1zero)')
    .option('--preset <name>', 'a random-weight MoE preset instead (nano, micro, small), with the checkpoint\'s tokenizer')
    .option('--devices <n>', 'devices of expert parallelism', intFlag('--devices'), 2)
    .option('--skew <delta>', 'router bias added to the experts the trivial placement puts on device 0', numberFlag('--skew', 0, 10), 0.1)
    .option('--problems <n>', 'sequences decoded together', intFlag('--problems'), 64)
    .option('--max-tokens <n>', 'tokens per completion', intFlag('--max-tokens'), 96)
    .option('--repeats <n>', 'rounds of plain / trivial / planned, alternating', intFlag('--repeats'), 5)
    .option('--json', 'one JSON document')
    .action(async (o: { model?: string; preset?: string; devices: number; skew: number; problems: number; maxTokens: number; repeats: number; json?: boolean }) => {
      if (o.preset !== undefined && !['nano', 'micro', 'small'].includes(o.preset)) throw new Error(`--preset must be nano, micro or small, got '${o.preset}'`);
      const r = await runExpertBench({ ...o, preset: o.preset as PresetName | undefined, progress: o.json ? undefined : (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatExpertBench(r)}\n`);
    });
}
