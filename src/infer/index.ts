// Local inference: sampling, continuous batching, offline batch generation and rollouts, reasoning/answer split.
export { checkSamplingOptions, logSumExp, Sampler, type Sample, type SamplingOptions } from './sampler.js';
export { partialSuffix, StopStrings } from './stop.js';
export {
  Engine,
  EngineBusyError,
  EngineClosedError,
  type EngineOptions,
  type EngineStats,
  type FinishReason,
  type Generation,
  type GenerationOptions,
  type GenerationResult,
  type JsonConstraint,
  type TokenEvent,
} from './engine.js';
export { generate, type BatchGenerateOptions, type BatchResult } from './generate.js';
export { sampleCompletions, stopIds, type Completion, type SamplingSettings } from './rollout.js';
export { openedThink, promptOpensThink, ReasoningSplitter, splitCompletion, type SplitText } from './reasoning.js';
export { DEFAULT_MODEL, loadForInference, packageRoot, resolveModelDir, samplingDefaultsOf, type InferenceCheckpoint } from './checkpoint.js';
export { compileJsonSchema, JsonMatcher, matchesGrammar, SchemaError, type GrammarNode, type JsonGrammar } from './json-schema.js';
export { grammarMasks, GrammarMasks, maskHas, TokenTrie, tokenTrie, type TokenMask } from './constraint.js';
