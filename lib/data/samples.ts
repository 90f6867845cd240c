// Token ids and loss masks for one record, exactly as MiniMind's datasets build them (minimind-reference.md §3,
// §6.2). L = max sequence length of a row (MiniMind's max_length, 512 in v1); every SFT/DPO row is truncated to
// L ids and padded with id 0 to L, and its mask has L entries. The loader later shifts a row into
// x = ids[:-1], y = ids[1:], mask = mask[1:] (L-1 each), so mask[i] = 1 means "predict ids[i]".
//
// Pretraining documents are not padded: they become [bos] + encode(text) + [eos] and are concatenated (v1 .bin).
import type { ChatMessage, TextTokenizer } from '../tokenizer/types';
import { parseRecord, RecordError, type InputFormat, type MaskStyle, type ParsedRecord, type RawRecord,
  type Stage } from './records';

/** MiniMind pads with id 0 in every dataset (v1 `padding = 0`; MiniMind2's pad `<|endoftext|>` is id 0). */
export const PAD_ID = 0;

export interface Row {
  ids: number[];
  mask: number[];
}

/** Index of the last occurrence of `needle` in `haystack`, or -1 (v1 `find_sublist_index`). */
export function lastIndexOfSequence(haystack: ArrayLike<number>, needle: ArrayLike<number>): number {
  outer: for (let i = haystack.length - needle.length; i >= 0; i--) {
    for (let k = 0; k < needle.length; k++) if (haystack[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

function startsWithAt(ids: ArrayLike<number>, at: number, seq: ArrayLike<number>): boolean {
  if (at + seq.length > ids.length) return false;
  for (let k = 0; k < seq.length; k++) if (ids[at + k] !== seq[k]) return false;
  return true;
}

/**
 * v1 SFT mask (SFTDataset @6861d1a): q = last index of the `<s>assistant` ids + their length (3 when absent,
 * since the index is then -1 and the length 4); mask = 1 on [q, unpadded length), 0 elsewhere. Trains the `\n`
 * after `<s>assistant`, the last answer, `</s>` and the final `\n`.
 */
export function v1LastAnswerMask(unpadded: ArrayLike<number>, rowLength: number,
  assistantPrefix: ArrayLike<number>): number[] {
  const mask = new Array<number>(rowLength).fill(0);
  const questionLength = lastIndexOfSequence(unpadded, assistantPrefix) + assistantPrefix.length;
  for (let i = Math.max(0, questionLength); i < unpadded.length; i++) mask[i] = 1;
  return mask;
}

/**
 * MiniMind2 mask (`_generate_loss_mask` @274483c) over the padded ids: for every assistant prefix
 * (`<|im_start|>assistant`, i.e. [bos, ...encode('assistant')]) starting at i, let start = i + its length
 * (the `\n` after it) and end = the next eos (or the row length when none); mask = 1 on
 * [start + 1, min(end + len(eos) + 1, L)). Trains each answer, its eos and the `\n` after it.
 */
export function assistantTurnsMask(ids: ArrayLike<number>, assistantPrefix: ArrayLike<number>,
  eos: ArrayLike<number>): number[] {
  const n = ids.length;
  const mask = new Array<number>(n).fill(0);
  let i = 0;
  while (i < n) {
    if (!startsWithAt(ids, i, assistantPrefix)) {
      i++;
      continue;
    }
    const start = i + assistantPrefix.length;
    let end = start;
    while (end < n && !startsWithAt(ids, end, eos)) end++;
    for (let j = start + 1; j < Math.min(end + eos.length + 1, n); j++) mask[j] = 1;
    i = end < n ? end + eos.length : n;
  }
  return mask;
}

/** Builds rows and documents for one tokenizer and row length L. */
/** Which assistant turns of an SFT conversation are trained. */
export type TrainOn = 'last' | 'all';

export class SampleBuilder {
  /** [bos, ...encode('assistant')]: `<s>assistant` in v1, `<|im_start|>assistant` in MiniMind2. */
  readonly assistantPrefix: number[];
  readonly eos: number[];

  /**
   * @param trainOn SFT only: 'last' trains the last answer (v1), 'all' every assistant turn (MiniMind2);
   *   default: by the input format, as MiniMind's datasets (v1 CSV: last, jsonl conversations: all).
   */
  constructor(readonly tokenizer: TextTokenizer, readonly maxSeqLen: number, readonly trainOn?: TrainOn) {
    if (tokenizer.bosId < 0 || tokenizer.eosId < 0) {
      throw new Error('the tokenizer names no bos/eos token (tokenizer_config.json bos_token/eos_token)');
    }
    this.assistantPrefix = [tokenizer.bosId, ...tokenizer.encode('assistant')];
    this.eos = [tokenizer.eosId];
  }

  /** [bos] + encode(text) + [eos], the unit of v1 pretraining (`<s>{text}</s>`). */
  document(text: string): number[] {
    return [this.tokenizer.bosId, ...this.tokenizer.encode(text), this.tokenizer.eosId];
  }

  /** A pretraining document as one padded row of L ids (v1 CSV-era PretrainDataset: truncation may cut eos). */
  documentRow(text: string): Row & { truncated: boolean } {
    const doc = this.document(text);
    const { ids, truncated } = this.fit(doc);
    const mask = ids.map((_, i) => (i < doc.length ? 1 : 0));
    return { ids, mask, truncated };
  }

  /** One conversation as a padded row with its mask in the given style. */
  chatRow(messages: ChatMessage[], style: MaskStyle): Row & { truncated: boolean } {
    // v1 renders with add_generation_prompt=True, MiniMind2 with False; neither template uses the flag.
    const prompt = this.tokenizer.applyChatTemplate(messages, style === 'v1-last-answer');
    const encoded = this.tokenizer.encode(prompt);
    const { ids, truncated } = this.fit(encoded);
    const mask = style === 'v1-last-answer'
      ? v1LastAnswerMask(encoded.slice(0, this.maxSeqLen), this.maxSeqLen, this.assistantPrefix)
      : assistantTurnsMask(ids, this.assistantPrefix, this.eos);
    return { ids, mask, truncated };
  }

  /** The rows of an SFT conversation (one) or a DPO pair (chosen, then rejected). */
  conversationRows(record: Exclude<ParsedRecord, { kind: 'document' }>): (Row & { truncated: boolean })[] {
    if (record.kind === 'chat') {
      const style = this.trainOn ? (this.trainOn === 'last' ? 'v1-last-answer' : 'assistant-turns') : record.mask;
      return [this.chatRow(record.messages, style)];
    }
    return [this.chatRow(record.chosen, 'assistant-turns'), this.chatRow(record.rejected, 'assistant-turns')];
  }

  /** Truncates to L and pads with PAD_ID to L. */
  private fit(ids: number[]): { ids: number[]; truncated: boolean } {
    const L = this.maxSeqLen;
    if (ids.length >= L) return { ids: ids.slice(0, L), truncated: ids.length > L };
    return { ids: ids.concat(new Array<number>(L - ids.length).fill(PAD_ID)), truncated: false };
  }
}

// ---- batches of records (run in worker threads by prepare.ts, or inline) --------------------------------------

export interface BatchJob {
  stage: Stage;
  format: InputFormat;
  /** CSV header names (CSV only). */
  columns?: string[];
  records: RawRecord[];
}

export interface SkippedRecord {
  line: number;
  reason: string;
}

/**
 * What one batch produces. pretrain: `tokens` is the concatenation of documents and `documentLengths` their
 * lengths. sft: `tokens`/`mask` hold `samples` rows of L. dpo: 2·samples rows, chosen then rejected per pair.
 */
export interface BatchResult {
  tokens: Uint16Array;
  mask?: Uint8Array;
  documentLengths?: Uint32Array;
  samples: number;
  truncated: number;
  skipped: SkippedRecord[];
}

export function processBatch(job: BatchJob, builder: SampleBuilder): BatchResult {
  const skipped: SkippedRecord[] = [];
  const documents: number[][] = [];
  const rows: Row[] = [];
  let samples = 0;
  let truncated = 0;
  for (const record of job.records) {
    let built: number[] | (Row & { truncated: boolean })[];
    try {
      const parsed = parseRecord(job.stage, job.format, record.text, job.columns, builder.maxSeqLen);
      built = parsed.kind === 'document' ? builder.document(parsed.text) : builder.conversationRows(parsed);
    } catch (e) {
      // A record the chat template or tokenizer rejects is a bad record too, not a reason to stop the run.
      const reason = e instanceof RecordError ? e.message : `cannot render or tokenise (${(e as Error).message})`;
      skipped.push({ line: record.line, reason });
      continue;
    }
    samples++;
    if (job.stage === 'pretrain') documents.push(built as number[]);
    else {
      for (const row of built as (Row & { truncated: boolean })[]) {
        rows.push(row);
        if (row.truncated) truncated++;
      }
    }
  }
  if (job.stage === 'pretrain') {
    const tokens = new Uint16Array(documents.reduce((n, d) => n + d.length, 0));
    let at = 0;
    for (const d of documents) {
      tokens.set(d, at);
      at += d.length;
    }
    return { tokens, documentLengths: Uint32Array.from(documents, (d) => d.length), samples, truncated, skipped };
  }
  const L = builder.maxSeqLen;
  const tokens = new Uint16Array(rows.length * L);
  const mask = new Uint8Array(rows.length * L);
  rows.forEach((r, i) => {
    tokens.set(r.ids, i * L);
    mask.set(r.mask, i * L);
  });
  return { tokens, mask, samples, truncated, skipped };
}
