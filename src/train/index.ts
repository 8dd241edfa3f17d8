// Public surface of the training package: configs, data, the pretraining/SFT trainer, and the
// checkpoint, metrics and progress pieces other trainers (GRPO) reuse.
export {
  applyOverrides,
  checkTrainConfig,
  overrideValue,
  parseTrainConfig,
  RESUMABLE_FIELDS,
  STAGES,
  TRAIN_CONFIG_FILE,
  TRAIN_PATH_FIELDS,
  type CheckedConfig,
  type CorpusData,
  type DataSpec,
  type FileData,
  type ModelSpec,
  type SftFileData,
  type SftFormat,
  type SftTaskData,
  type Stage,
  type TokenizerSpec,
  type TrainConfig,
} from './config.js';
export {
  collateSft,
  CorpusStream,
  encodeDocument,
  encodeSftExample,
  ListStream,
  openTrainData,
  PackedBatcher,
  paddedLength,
  SftBatcher,
  TaskSftStream,
  tokenizerTexts,
  type Batcher,
  type EncodedExample,
  type SftBatchStats,
  type SftExample,
  type Stream,
  type TrainData,
} from './data.js';
export {
  checkpointDir,
  latestCheckpoint,
  LATEST_LINK,
  listCheckpoints,
  loadOptimizerState,
  OPTIMIZER_FILE,
  pruneCheckpoints,
  readTrainerState,
  saveOptimizerState,
  saveTrainingCheckpoint,
  TRAINER_STATE_FILE,
  type CheckpointRef,
  type SaveTrainingCheckpoint,
  type TrainerState,
} from './checkpoint-state.js';
export { expertStats, type TrainRecord } from './metrics.js';
export { lineChart, loadHeatmap, METRICS_FILE, MetricsLog, niceTicks, readMetrics, type MetricsRecord, type Series } from '../report/index.js';
export { formatDuration, Progress, type ProgressOptions, type ProgressStream } from './progress.js';
export { plotRun, renderReport } from './plot.js';
export { evaluate, resumeConfig, savedRunConfig, TOKENIZER_DIR, train, type StepInfo, type TrainOptions, type TrainResult } from './trainer.js';
export { AdamW, cosineSchedule, defaultAdamW, type AdamWConfig, type OptimParam } from './optim.js';
export { countTargets, trainStep, type Batch, type StepOptions, type StepStats } from './step.js';
