// Expert parallelism and load balancing: recording which experts tokens choose (load.ts), DeepSeek's
// EPLB (eplb.ts), placements and their SGLang export (placement.ts), running a model's experts on the
// backend's threads as devices (parallel.ts), the DeepSeek-V3-scale simulator (simulate.ts), and the
// pages and report that show them (stats.ts, report.ts, with the workload they run: workload.ts).
export { balancedPacking, checkShape, rebalanceExperts, replicateExperts, type EplbOptions, type EplbPlan, type Policy } from './eplb.js';
export { addStep, compactJson, emptyLoad, ExpertLoadRecorder, LOAD_FORMAT, loadFromMetrics, MAX_SERIES, parseLoad, readLoad, writeLoad, type ExpertLoad } from './load.js';
export {
  gpuLoads, maxOverMean, parsePlacement, PLAN_FORMAT, planFromLoad, readPlacement, sglangLogicalCount, sglangPlacement, trivialPlacement, writePlan,
  type Placement, type PlacementShape, type PlanFile,
} from './placement.js';
export { ExpertParallel, stepImbalance, totalImbalance, type DeviceStats, type Dispatch } from './parallel.js';
export { CLUSTERS, DEEPSEEK_V3, H800_FP8_PEAK, parseSkew, popularity, simulate, simulatedSglangPlacement, type ClusterShape, type ModelShape, type Popularity, type SimOptions, type SimResult } from './simulate.js';
export { formatStats, loadStats, overviewHeatmap, statsPage, type LayerStats, type LoadStats } from './stats.js';
export { buildExpertReport, summarize, type ExpertReport, type ReportOptions, type RunFigures, type SimSummary } from './report.js';
export { runWorkload, skewRouting, workloadProblems, type WorkloadResult } from './workload.js';
