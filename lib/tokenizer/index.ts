// The tokenizer package: load a Hugging Face byte-level BPE, encode/decode, chat templates, training, parallel encode.
export type { ChatMessage, TextTokenizer } from './types';
export { Tokenizer, type TokenizerSource } from './tokenizer';
export { StreamDecoder } from './stream';
export { EncodePool, encodeParallel, type FlatIds } from './parallel';
export { trainTokenizer, type TrainOptions, type TrainProgress, type TrainResult } from './train';
export { CHATML_CHAT_TEMPLATE, V1_CHAT_TEMPLATE } from './templates';
