// Training a byte-level BPE tokenizer like MiniMind's train_tokenizer.py (spec §2.1): GPT-2 pre-tokenization
// without a prefix space, the 256 byte symbols as the initial alphabet, the special tokens first (ids 0..k-1),
// then merges until the vocabulary has vocabSize tokens. Output: tokenizer.json + tokenizer_config.json that
// Hugging Face tokenizers loads.
//
//   1. count: every text (jsonl `text` fields, or lines of plain text) → special tokens cut out → GPT-2 pieces →
//      a piece → count table (JS Map), so each distinct word is stored once;
//   2. merge: native BPE with incremental pair counts over that table (native/cpu/bpe.cc);
//   3. write: vocabulary ids = specials, then the byte symbols in code-point order of their characters (the
//      layout of MiniMind's own files: "!" is id k), then one token per merge in merge order.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { native } from '../native';
import { byteToChar } from './bytes';
import { AddedTokenSplitter, GPT2_SPLIT } from './pretokenize';
import { CHATML_CHAT_TEMPLATE, V1_CHAT_TEMPLATE } from './templates';

export interface TrainProgress {
  phase: 'count' | 'merge' | 'write';
  /** count: bytes read; merge: merges done; write: 0 then 1. */
  done: number;
  /** count: bytes in all files; merge: merges wanted; write: 1. */
  total: number;
}

export interface TrainOptions {
  /** jsonl files (each line {"text": ...} or a JSON string) or plain-text files (each line is a text). */
  files: string[];
  vocabSize: number;
  /** Special tokens at ids 0..k-1; default MiniMind v1's. By position they are unk(=pad), bos, eos. */
  special?: string[];
  /** Output folder (created). */
  out: string;
  /** Chat template for tokenizer_config.json; default: ChatML if the specials include <|im_start|> and
   *  <|im_end|>, else MiniMind v1's. */
  chatTemplate?: string;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  vocabSize: number;
  merges: number;
  distinctWords: number;
  bytes: number;
  seconds: { count: number; merge: number; write: number };
  files: { tokenizer: string; config: string };
}

const isJsonl = (file: string) => /\.jsonl?$/i.test(file);

/** Reads every text of the files in order, reporting bytes read. Bad jsonl lines are errors naming file:line. */
async function forEachText(files: string[], fn: (text: string) => void, onBytes: (bytes: number) => void): Promise<void> {
  for (const file of files) {
    const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    let lastReported = 0;
    for await (const line of lines) {
      lineNo++;
      if (isJsonl(file)) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (e) {
          throw new Error(`${file}:${lineNo}: not valid JSON (${(e as Error).message})`);
        }
        const text = typeof value === 'string' ? value : (value as { text?: unknown } | null)?.text;
        if (typeof text !== 'string') throw new Error(`${file}:${lineNo}: expected {"text": "..."} or a JSON string`);
        fn(text);
      } else {
        fn(`${line}\n`);
      }
      if (stream.bytesRead - lastReported >= 1 << 20) {
        onBytes(stream.bytesRead - lastReported);
        lastReported = stream.bytesRead;
      }
    }
    onBytes(stream.bytesRead - lastReported);
  }
}

/** The Hugging Face tokenizer.json for a byte-level BPE with these specials, vocabulary and merges. */
function tokenizerJson(special: string[], vocab: Record<string, number>, merges: [string, string][]): object {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

/** tokenizer_config.json in the shape MiniMind writes by hand (spec §2.1), but add_prefix_space false. */
function tokenizerConfig(special: string[], chatTemplate: string): object {
  const decoder: Record<string, object> = {};
  special.forEach((content, id) => {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: [],
    bos_token: special[1] ?? null,
    clean_up_tokenization_spaces: false,
    eos_token: special[2] ?? null,
    legacy: true,
    model_max_length: 32768,
    pad_token: special[0] ?? null,
    sp_model_kwargs: {},
    spaces_between_special_tokens: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: special[0] ?? null,
    chat_template: chatTemplate,
  };
}

export async function trainTokenizer(opts: TrainOptions): Promise<TrainResult> {
  const special = opts.special ?? ['<unk>', '<s>', '</s>'];
  if (new Set(special).size !== special.length || special.some((s) => s.length === 0)) {
    throw new Error(`trainTokenizer: special tokens must be distinct and non-empty: ${JSON.stringify(special)}`);
  }
  const alphabetEnd = special.length + 256;
  if (!(Number.isInteger(opts.vocabSize) && opts.vocabSize >= alphabetEnd)) {
    throw new Error(`trainTokenizer: vocabSize must be an integer ≥ ${alphabetEnd} (specials + 256 bytes)`);
  }
  if (opts.files.length === 0) throw new Error('trainTokenizer: no input files');
  for (const f of opts.files) if (!fs.existsSync(f)) throw new Error(`trainTokenizer: ${f} does not exist`);
  const progress = opts.onProgress ?? (() => {});
  const t0 = performance.now();

  // 1. Count distinct pieces.
  const splitter = new AddedTokenSplitter(special.map((content, id) => ({
    id, content, special: true, normalized: false, lstrip: false, rstrip: false, singleWord: false })));
  const wordCounts = new Map<string, number>();
  const countPieces = (text: string) => {
    GPT2_SPLIT.lastIndex = 0;
    for (let m = GPT2_SPLIT.exec(text); m !== null; m = GPT2_SPLIT.exec(text)) {
      const piece = m[0];
      wordCounts.set(piece, (wordCounts.get(piece) ?? 0) + 1);
    }
  };
  const totalBytes = opts.files.reduce((n, f) => n + fs.statSync(f).size, 0);
  let bytesRead = 0;
  progress({ phase: 'count', done: 0, total: totalBytes });
  await forEachText(opts.files, (text) => {
    for (const segment of splitter.split(text)) if (segment.text !== undefined) countPieces(segment.text);
  }, (bytes) => {
    bytesRead += bytes;
    progress({ phase: 'count', done: bytesRead, total: totalBytes });
  });
  const t1 = performance.now();

  // 2. Words as byte-symbol ids, then native merging.
  const byteOf = Uint8Array.from([...Array(256).keys()].sort((a, b) => byteToChar[a].charCodeAt(0) - byteToChar[b].charCodeAt(0)));
  const idOfByte = new Int32Array(256);
  byteOf.forEach((b, i) => { idOfByte[b] = special.length + i; });
  const encoder = new TextEncoder();
  let bytes = new Uint8Array(1 << 16);
  let symbols = new Int32Array(1 << 20);
  const offsets = new Float64Array(wordCounts.size + 1);
  const counts = new Float64Array(wordCounts.size);
  let n = 0;
  let w = 0;
  for (const [word, count] of wordCounts) {
    if (bytes.length < word.length * 3) bytes = new Uint8Array(word.length * 3);
    const len = encoder.encodeInto(word, bytes).written;
    if (symbols.length < n + len) {
      const grown = new Int32Array(Math.max(symbols.length * 2, n + len));
      grown.set(symbols.subarray(0, n));
      symbols = grown;
    }
    for (let i = 0; i < len; i++) symbols[n++] = idOfByte[bytes[i]];
    counts[w] = count;
    offsets[++w] = n;
  }
  const distinctWords = wordCounts.size;
  wordCounts.clear();
  const wanted = opts.vocabSize - alphabetEnd;
  progress({ phase: 'merge', done: 0, total: wanted });
  const triples: Int32Array = native.cpu.bpeTrain(symbols.subarray(0, n), offsets, counts, special.length, byteOf,
    opts.vocabSize, (done: number) => progress({ phase: 'merge', done, total: wanted }));
  const t2 = performance.now();

  // 3. Vocabulary and files.
  progress({ phase: 'write', done: 0, total: 1 });
  const tokens: string[] = [...special, ...Array.from(byteOf, (b) => byteToChar[b])];
  const merges: [string, string][] = [];
  for (let i = 0; i < triples.length; i += 3) {
    const [left, right, merged] = [tokens[triples[i]], tokens[triples[i + 1]], triples[i + 2]];
    merges.push([left, right]);
    if (merged === tokens.length) tokens.push(left + right);
  }
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => { if (id >= special.length) vocab[t] = id; });
  // Specials are in the model vocabulary too, as Hugging Face's trainer writes them.
  special.forEach((t, id) => { vocab[t] = id; });
  const ordered: Record<string, number> = {};
  for (const [t, id] of Object.entries(vocab).sort((a, b) => a[1] - b[1])) ordered[t] = id;

  const chatTemplate = opts.chatTemplate ??
    (special.includes('<|im_start|>') && special.includes('<|im_end|>') ? CHATML_CHAT_TEMPLATE : V1_CHAT_TEMPLATE);
  fs.mkdirSync(opts.out, { recursive: true });
  const files = { tokenizer: path.join(opts.out, 'tokenizer.json'), config: path.join(opts.out, 'tokenizer_config.json') };
  fs.writeFileSync(files.tokenizer, JSON.stringify(tokenizerJson(special, ordered, merges), null, 2));
  fs.writeFileSync(files.config, JSON.stringify(tokenizerConfig(special, chatTemplate), null, 2));
  progress({ phase: 'write', done: 1, total: 1 });
  const t3 = performance.now();
  return {
    vocabSize: tokens.length, merges: merges.length, distinctWords, bytes: totalBytes,
    seconds: { count: (t1 - t0) / 1e3, merge: (t2 - t1) / 1e3, write: (t3 - t2) / 1e3 },
    files,
  };
}
