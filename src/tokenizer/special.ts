// The DeepSeek special tokens our own tokenizers carry. The full-width bars (｜, U+FF5C) and the
// "▁" (U+2581) are part of the token text: DeepSeek chose characters that ordinary text almost
// never contains, so a user typing "<|User|>" does not produce the role marker.

export const SPECIAL_TOKENS = {
  bos: '<｜begin▁of▁sentence｜>',
  eos: '<｜end▁of▁sentence｜>',
  pad: '<｜▁pad▁｜>',
  user: '<｜User｜>',
  assistant: '<｜Assistant｜>',
  think: '<think>',
  thinkEnd: '</think>',
  answer: '<answer>',
  answerEnd: '</answer>',
} as const;

export type SpecialTokenName = keyof typeof SPECIAL_TOKENS;
