// The tokenizer contract that data preparation, training, inference and serving use.
// (lib/tokenizer/index.ts implements it: byte-level BPE from a Hugging Face tokenizer.json.)

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
  /** Fields some templates read (reasoning_content, tool_calls, ...). */
  [field: string]: unknown;
}

export interface TextTokenizer {
  readonly vocabSize: number;
  /** Ids of the special tokens named in the files (e.g. bos `<s>`, eos `</s>`, pad, unk); -1 when absent. */
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Exactly Hugging Face tokenizers' `encode(text, add_special_tokens=false)` ids. */
  encode(text: string): number[];
  /** encode() of each text (one thread; for all cores see EncodePool / encodeParallel in ./parallel). */
  encodeBatch(texts: string[]): number[][];
  /** Exactly Hugging Face tokenizers' `decode(ids, skip_special_tokens=false)`. */
  decode(ids: ArrayLike<number>): string;
  /** For generation: push ids, get text that never ends in a broken UTF-8 character; flush() at the end. */
  createStreamDecoder(): { push(...ids: number[]): string; flush(): string };
  tokenToId(token: string): number | undefined;
  /** Renders the tokenizer_config.json chat template (Jinja); `extra` adds variables (tools, open_thinking, ...). */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean, extra?: Record<string, unknown>): string;
}
