// The tokenizer package: byte-level BPE compatible with Hugging Face tokenizers, for MiniMind's tokenizer files.
//
//   const tok = Tokenizer.load('dir');            // dir/tokenizer.json (+ tokenizer_config.json), or a .json file
//   tok.encode('<s>user\n你好</s>')               // = HF encode(text, add_special_tokens=False).ids
//   tok.decode(ids)                               // = HF decode(ids, skip_special_tokens=False)
//   tok.encodeBatch(texts)                        // one thread
//   const s = tok.createStreamDecoder(); s.push(id) ... s.flush()   // whole characters only
//   tok.applyChatTemplate(messages, true)         // tokenizer_config.json's Jinja chat_template
//
// Data preparation on all cores: worker threads, each with its own copy of the tokenizer.
//   const pool = new EncodePool(tok, os.availableParallelism());
//   const { ids, offsets } = await pool.encodeFlat(texts);   // text i → ids[offsets[i] .. offsets[i+1]), Int32Array
//   await pool.close();
//   // or once: await encodeParallel(tok, texts, threads) → number[][]
// Give the pool batches of thousands of texts (it cuts them into ~256K-character chunks per message).
//
// Training: await trainTokenizer({ files, vocabSize: 6400, special: ['<unk>', '<s>', '</s>'], out, onProgress }).
export type { ChatMessage, TextTokenizer } from './types';
export { Tokenizer, type TokenizerSource } from './tokenizer';
export { StreamDecoder } from './stream';
export { EncodePool, encodeParallel, type FlatIds } from './parallel';
export { trainTokenizer, type TrainOptions, type TrainProgress, type TrainResult } from './train';
export { CHATML_CHAT_TEMPLATE, V1_CHAT_TEMPLATE } from './templates';
