// `data prepare`: tokenises a pretrain/sft/dpo source file into the layout of format.ts.
//
// Pipeline: the main thread streams the source (source.ts) in groups of records of about `batchBytes`, hands
// each group to a pool of worker threads (pool.ts; each worker loads the tokenizer from its folder), and writes
// the results strictly in input order, so the output does not depend on the thread count. At most
// 2 × threads groups are in flight, which bounds memory for inputs of any size.
//
// Choices, per minimind-reference.md:
// - pretrain: every document becomes [bos] + encode(text) + [eos] (v1's `<s>{text}</s>`; HEAD's pretrain dataset
//   does the same), concatenated with nothing between (v1 .bin). v1's 512-character document filter is a
//   corpus-building choice, not applied here; the loader cuts seqLen+1 windows.
// - sft/dpo: each row is the chat template's rendering, encoded, truncated to maxSeqLen and padded with 0 to
//   maxSeqLen, exactly as MiniMind's datasets do (truncation can cut the answer and its eos, as there). Rows
//   are stored padded so the loader can read row i at a fixed offset and upload batches as they are.
// - masks: v1 CSV rows use v1's last-answer mask; jsonl `conversations` and DPO use MiniMind2's every-assistant-
//   turn mask. Roles are taken as written (MiniMind2 @274483c reassigned roles by position, which turned a
//   leading system message into a user turn; 2510/HEAD use the roles as written).
// - dpo v1 records {prompt, chosen, rejected} are rendered as [user prompt, assistant answer] with the chat
//   template (v1 handed raw strings to TRL; our DPO trains an SFT model that only knows the template).
// Output is written to temporary names and renamed when complete; on any failure they are removed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DATA_FORMAT, DATA_FORMAT_VERSION, headerPath, outputSuffixes, type DataHeader } from './format';
import { BatchPool } from './pool';
import { STAGE_FORMATS, type InputFormat, type RawRecord, type Stage } from './records';
import type { BatchResult, SkippedRecord, TrainOn } from './samples';
import { detectFormat, RecordStream } from './source';
import { defaultTokenizerLoader, loadTokenizerWith, type TokenizerLoaderRef } from './tokenizer-loader';

export interface PrepareOptions {
  stage: Stage;
  /** Source file (jsonl, csv, json array or plain text). */
  data: string;
  /** Tokenizer folder (tokenizer.json + tokenizer_config.json). */
  tokenizerDir: string;
  /** Output token file; OUT.json, OUT.mask / OUT.idx are written beside it. */
  out: string;
  /** Row length for sft/dpo (MiniMind's max_length). Default 512. */
  maxSeqLen?: number;
  /** SFT: which assistant turns are trained; default by format (v1 CSV: last, jsonl: all). */
  trainOn?: TrainOn;
  /** Stop at the first bad record instead of skipping it. */
  strict?: boolean;
  /** Worker threads; 0 tokenises on the calling thread. Default: all cores. */
  threads?: number;
  /** Overrides detection by extension. */
  format?: InputFormat;
  tokenizerLoader?: TokenizerLoaderRef;
  /** Source text per batch sent to a worker. Default 256 KiB. */
  batchBytes?: number;
  /** Called for each skipped record (not in strict mode). */
  onSkip?: (file: string, skip: SkippedRecord) => void;
  /** Called after each batch is written. */
  onProgress?: (p: PrepareProgress) => void;
}

export interface PrepareProgress {
  bytesRead: number;
  totalBytes: number;
  records: number;
  samples: number;
}

export interface PrepareResult {
  header: DataHeader;
  /** Every file written (OUT, OUT.json, and OUT.mask or OUT.idx). */
  files: string[];
  /** Size of the source file. */
  inputBytes: number;
  seconds: number;
}

export async function prepareData(options: PrepareOptions): Promise<PrepareResult> {
  const started = Date.now();
  const { stage, data, out } = options;
  const maxSeqLen = options.maxSeqLen ?? 512;
  const format = options.format ?? detectFormat(data);
  if (!STAGE_FORMATS[stage].includes(format)) {
    throw new Error(`${data}: ${stage} data cannot be ${format} (use ${STAGE_FORMATS[stage].join(', ')})`);
  }
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 2) throw new Error(`--max-seq-len must be an integer ≥ 2`);
  const loader = options.tokenizerLoader ?? defaultTokenizerLoader;
  const tokenizer = await loadTokenizerWith(loader, options.tokenizerDir);
  if (tokenizer.vocabSize > 65536) throw new Error(`vocabulary of ${tokenizer.vocabSize} does not fit uint16 ids`);
  const totalBytes = fs.statSync(data).size;

  const suffixes = outputSuffixes(stage);
  const output = new AtomicOutputs(out, [...Object.values(suffixes), '.json']);
  const threads = options.threads ?? os.availableParallelism();
  const pool = new BatchPool(threads, { loader, tokenizerDir: options.tokenizerDir, maxSeqLen, trainOn: options.trainOn });
  const counts = { records: 0, samples: 0, rows: 0, tokens: 0, skipped: 0, truncated: 0 };
  let bytesRead = 0;

  const write = (result: BatchResult) => {
    if (options.strict && result.skipped.length > 0) {
      const first = result.skipped[0];
      throw new Error(`${data}:${first.line}: ${first.reason} (--strict)`);
    }
    for (const s of result.skipped) options.onSkip?.(data, s);
    counts.skipped += result.skipped.length;
    counts.samples += result.samples;
    counts.truncated += result.truncated;
    output.write('', result.tokens);
    if (result.mask) output.write('.mask', result.mask);
    if (result.documentLengths) {
      // The index holds each document's start; the final total is appended at the end.
      const starts = new BigUint64Array(result.documentLengths.length);
      let at = counts.tokens;
      result.documentLengths.forEach((len, i) => {
        starts[i] = BigInt(at);
        at += len;
      });
      output.write('.idx', starts);
    } else counts.rows += result.tokens.length / maxSeqLen;
    counts.tokens += result.tokens.length;
    options.onProgress?.({ bytesRead, totalBytes, records: counts.records, samples: counts.samples });
  };

  try {
    const stream = new RecordStream(data, format, (n) => {
      bytesRead = n;
    });
    const inFlight: Promise<BatchResult>[] = [];
    const maxInFlight = 2 * Math.max(1, threads);
    let group: RawRecord[] = [];
    let groupBytes = 0;
    const batchBytes = options.batchBytes ?? 1 << 18;
    const send = async () => {
      const job = { stage, format, columns: stream.columns, records: group };
      const result = pool.run(job);
      result.catch(() => undefined); // awaited below in order; avoid an unhandled rejection meanwhile
      inFlight.push(result);
      group = [];
      groupBytes = 0;
      while (inFlight.length >= maxInFlight) write(await inFlight.shift()!);
    };
    for await (const records of stream.groups()) {
      for (const r of records) {
        group.push(r);
        groupBytes += r.text.length;
        counts.records++;
        if (groupBytes >= batchBytes) await send();
      }
    }
    if (group.length > 0) await send();
    while (inFlight.length > 0) write(await inFlight.shift()!);

    if (suffixes.index) output.write('.idx', new BigUint64Array([BigInt(counts.tokens)]));
    const header: DataHeader = {
      format: DATA_FORMAT,
      version: DATA_FORMAT_VERSION,
      stage,
      source: { file: path.resolve(data), format },
      tokenizer: { dir: path.resolve(options.tokenizerDir), vocabSize: tokenizer.vocabSize, bosId: tokenizer.bosId,
        eosId: tokenizer.eosId, padId: tokenizer.padId },
      dtype: 'uint16',
      seqLen: stage === 'pretrain' ? null : maxSeqLen,
      mask: stage === 'pretrain' ? 'none' : stage === 'sft' && format === 'csv' ? 'v1-last-answer'
        : 'assistant-turns',
      counts,
      files: {
        tokens: path.basename(out),
        ...(suffixes.mask ? { mask: path.basename(out) + suffixes.mask } : {}),
        ...(suffixes.index ? { index: path.basename(out) + suffixes.index } : {}),
      },
    };
    output.write('.json', Buffer.from(JSON.stringify(header, null, 2) + '\n'));
    const files = output.commit();
    return { header, files, inputBytes: totalBytes, seconds: (Date.now() - started) / 1000 };
  } catch (e) {
    output.abandon();
    throw e;
  } finally {
    await pool.close();
  }
}

/**
 * A set of files written under temporary names (OUT.tmp-PID-N + suffix) and renamed together by commit():
 * data files first, the header last, after removing any old header, so a reader never pairs a new file with an
 * old header. abandon() deletes the temporary files.
 */
class AtomicOutputs {
  private readonly fds = new Map<string, number>();
  private readonly tempBase: string;
  private static counter = 0;

  constructor(private readonly out: string, private readonly suffixes: string[]) {
    this.tempBase = `${out}.tmp-${process.pid}-${AtomicOutputs.counter++}`;
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    for (const s of suffixes) this.fds.set(s, fs.openSync(this.tempBase + s, 'wx'));
  }

  write(suffix: string, data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fds.get(suffix)!, bytes, done);
  }

  commit(): string[] {
    for (const fd of this.fds.values()) fs.fsyncSync(fd);
    this.closeAll();
    const ordered = this.suffixes.filter((s) => s !== '.json').concat('.json');
    fs.rmSync(headerPath(this.out), { force: true });
    for (const s of ordered) fs.renameSync(this.tempBase + s, this.out + s);
    return ordered.map((s) => this.out + s);
  }

  abandon(): void {
    this.closeAll();
    for (const s of this.suffixes) fs.rmSync(this.tempBase + s, { force: true });
  }

  private closeAll(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}
