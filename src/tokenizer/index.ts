// Public surface of the tokenizer package: byte-level BPE (ours and Hugging Face files), training,
// chat formats and completion parsing.
export {
  ByteLevelBpeTokenizer,
  loadTokenizer,
  setChatTemplate,
  type AddedToken,
  type DecodeOptions,
  type DecodeStream,
  type EncodeOptions,
  type SpecialTokenIds,
  type Tokenizer,
} from './tokenizer.js';
export { trainTokenizer, readCorpusFile, DEFAULT_PRE_TOKENIZER, PRE_TOKENIZER_PATTERN, type TrainOptions } from './train.js';
export {
  applyChatTemplate,
  parseCompletion,
  r1ZeroChatTemplate,
  r1ZeroPrompt,
  renderChatTemplate,
  renderR1Chat,
  R1_CHAT_TEMPLATE,
  R1_ZERO_TEMPLATE,
  type ChatMessage,
  type ChatTemplateOptions,
  type CompletionFormat,
  type ParsedCompletion,
  type R1ChatOptions,
} from './chat.js';
export { SPECIAL_TOKENS, type SpecialTokenName } from './special.js';
export { translateOnigPattern } from './regex.js';
