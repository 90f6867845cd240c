// Training batches from prepared data (format.ts) or, when no prepared file is given, from a jsonl file
// tokenised on the fly. A batch is B rows of T = seqLen positions, ready to upload:
//   x    Int32Array (B·T)    input ids            x[b, t] = row[b][t]
//   y    Int32Array (B·T)    target ids           y[b, t] = row[b][t + 1]
//   mask Float32Array (B·T)  1 = y[b, t] counts   mask[b, t] = rowMask[b][t + 1]   (MiniMind's loss_mask[1:])
// Rows hold seqLen + 1 ids. pretrain: non-overlapping windows of seqLen + 1 tokens over the token file (v1 .bin:
// the tail remainder is dropped, every target counts). sft: one conversation per row. dpo: B chosen rows
// followed by the B rejected rows of the same pairs (MiniMind2 concatenates them the same way), so 2B rows.
// MiniMind's max_seq_len M corresponds to seqLen = M - 1 here (prepare with --max-seq-len M).
//
// Order: each epoch e visits a seeded permutation of all N samples (seed mixed with e, so epochs differ);
// rank r of W takes positions r, r+W, r+2W, ... of it: ranks are disjoint and together cover every sample once
// per epoch. Batches are always full and continue into the next epoch, unless partialLastBatch is set.
// The cursor {epoch, position} (position = samples of this epoch already taken by this rank) restores the exact
// next batch.
import * as fs from 'node:fs';
import type { TextTokenizer } from '../tokenizer/types';
import { readHeader, type DataHeader } from './format';
import { parseRecord, RecordError, type Stage } from './records';
import { mixSeed, permutation } from '../util/random';
import { SampleBuilder, type Row, type TrainOn } from './samples';

export interface Batch {
  x: Int32Array;
  y: Int32Array;
  mask: Float32Array;
  /** Rows in x (B, or 2B for dpo). */
  rows: number;
  /** Positions per row (T). */
  seqLen: number;
  /** Sample indices (0..N-1) in this batch, in row order (for dpo: the pairs). */
  samples: number[];
}

export interface Cursor {
  epoch: number;
  position: number;
  /**
   * Set after resuming with another number of ranks (lib/dist/sharding.ts remapCursor): the global sample
   * position where this epoch's remainder starts; cleared at the next epoch.
   */
  start?: number;
}

export interface LoaderOptions {
  /** Prepared data (OUT or OUT.json from `data prepare`), or a jsonl file to tokenise on the fly. */
  data: string;
  batchSize: number;
  /** Positions per row (T). Prepared sft/dpo: defaults to (and must equal) the header's row length - 1. */
  seqLen?: number;
  /** Needed for jsonl (on the fly); for prepared data it is checked against the header when given. */
  stage?: Stage;
  tokenizer?: TextTokenizer;
  seed?: number;
  /** Default true. */
  shuffle?: boolean;
  rank?: number;
  worldSize?: number;
  /** SFT tokenised on the fly: which assistant turns are trained (default by format). */
  trainOn?: TrainOn;
  /** End each epoch with a short batch instead of filling it from the next epoch (evaluation). */
  partialLastBatch?: boolean;
}

/** Random access to the rows of sample i. */
interface SampleSource {
  readonly stage: Stage;
  readonly count: number;
  /** Rows per sample: 1, or 2 for dpo (chosen, rejected). */
  readonly rowsPerSample: number;
  /** Ids per row (T + 1). */
  readonly rowLength: number;
  /** Row k (0 ≤ k < rowsPerSample) of sample i. */
  read(i: number, k: number): { ids: ArrayLike<number>; mask?: ArrayLike<number> };
  close(): void;
}

export class DataLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  /** Samples this rank visits per epoch. */
  readonly samplesPerEpoch: number;
  private epoch = 0;
  private position = 0;
  private start = 0;
  private order?: { epoch: number; perm: Uint32Array | null };

  constructor(private readonly source: SampleSource, private readonly options: LoaderOptions) {
    this.batchSize = options.batchSize;
    this.seed = options.seed ?? 0;
    this.rank = options.rank ?? 0;
    this.worldSize = options.worldSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error('batchSize must be ≥ 1');
    if (this.rank < 0 || this.rank >= this.worldSize) throw new Error(`rank ${this.rank} is not in [0, ${this.worldSize})`);
    if (source.count < this.worldSize) {
      throw new Error(`${options.data}: ${source.count} samples cannot be shared by ${this.worldSize} ranks`);
    }
    this.samplesPerEpoch = Math.ceil((source.count - this.rank) / this.worldSize);
  }

  get stage(): Stage {
    return this.source.stage;
  }

  get seqLen(): number {
    return this.source.rowLength - 1;
  }

  /** All samples in the data (all ranks). */
  get totalSamples(): number {
    return this.source.count;
  }

  /** The same on every rank (the shortest rank's share), so all ranks agree on the number of steps. */
  get batchesPerEpoch(): number {
    return Math.ceil(Math.floor(this.source.count / this.worldSize) / this.batchSize);
  }

  get cursor(): Cursor {
    return { epoch: this.epoch, position: this.position, ...(this.start ? { start: this.start } : {}) };
  }

  seek(cursor: Cursor): void {
    if (!(cursor.position >= 0 && cursor.position <= this.samplesPerEpoch && cursor.epoch >= 0)) {
      throw new Error(`cursor ${JSON.stringify(cursor)} is outside this loader's ${this.samplesPerEpoch} samples/epoch`);
    }
    this.epoch = cursor.epoch;
    this.position = cursor.position;
    this.start = cursor.start ?? 0;
  }

  /** The sample index at `position` of `epoch` for this rank. */
  sampleAt(epoch: number, position: number): number {
    if (this.order?.epoch !== epoch) {
      const shuffle = this.options.shuffle ?? true;
      this.order = { epoch, perm: shuffle ? permutation(this.source.count, mixSeed(this.seed, epoch)) : null };
    }
    const global = this.start + this.rank + position * this.worldSize;
    return this.order.perm ? this.order.perm[global] : global;
  }

  next(): Batch {
    if (this.position >= this.epochLimit()) {
      this.epoch++;
      this.position = 0;
      this.start = 0;
    }
    const samples: number[] = [];
    while (samples.length < this.batchSize) {
      if (this.position >= this.epochLimit()) {
        if (this.options.partialLastBatch) break;
        this.epoch++;
        this.position = 0;
        this.start = 0;
      }
      samples.push(this.sampleAt(this.epoch, this.position++));
    }
    return this.assemble(samples);
  }

  private epochLimit(): number {
    return this.start ? Math.ceil((this.source.count - this.start - this.rank) / this.worldSize) : this.samplesPerEpoch;
  }

  close(): void {
    this.source.close();
  }

  private assemble(samples: number[]): Batch {
    const R = this.source.rowsPerSample;
    const B = samples.length;
    const T = this.seqLen;
    const rows = R * B;
    const x = new Int32Array(rows * T);
    const y = new Int32Array(rows * T);
    const mask = new Float32Array(rows * T).fill(1);
    for (let k = 0; k < R; k++) {
      for (let b = 0; b < B; b++) {
        const row = this.source.read(samples[b], k);
        const at = (k * B + b) * T;
        for (let t = 0; t < T; t++) {
          x[at + t] = row.ids[t];
          y[at + t] = row.ids[t + 1];
          if (row.mask) mask[at + t] = row.mask[t + 1];
        }
      }
    }
    return { x, y, mask, rows, seqLen: T, samples };
  }
}

/** Opens prepared data, or a jsonl file to tokenise on the fly. */
export function openLoader(options: LoaderOptions): DataLoader {
  const source = hasHeader(options.data) ? preparedSource(options) : jsonlSource(options);
  try {
    return new DataLoader(source, options);
  } catch (e) {
    source.close();
    throw e;
  }
}

function hasHeader(data: string): boolean {
  return fs.existsSync(`${data}.json`) || (data.endsWith('.json') && fs.existsSync(data.slice(0, -5)));
}

// ---- prepared data ---------------------------------------------------------------------------------------------

function preparedSource(options: LoaderOptions): SampleSource {
  const { header, out } = readHeader(options.data);
  checkAgainstHeader(header, options);
  const fd = fs.openSync(out, 'r');
  const maskFd = header.stage === 'pretrain' ? undefined : fs.openSync(`${out}.mask`, 'r');
  const close = () => {
    fs.closeSync(fd);
    if (maskFd !== undefined) fs.closeSync(maskFd);
  };
  const readIds = (tokenOffset: number, count: number): Uint16Array => {
    const buf = Buffer.alloc(count * 2);
    fs.readSync(fd, buf, 0, buf.length, tokenOffset * 2);
    // Little-endian on disk; copy into an aligned array so it also works for odd offsets.
    const ids = new Uint16Array(count);
    for (let i = 0; i < count; i++) ids[i] = buf.readUInt16LE(2 * i);
    return ids;
  };
  if (header.stage === 'pretrain') {
    if (options.seqLen === undefined) throw new Error(`${options.data}: pretraining needs seqLen (window = seqLen + 1)`);
    const rowLength = options.seqLen + 1;
    return { stage: 'pretrain', count: Math.floor(header.counts.tokens / rowLength), rowsPerSample: 1, rowLength,
      read: (i) => ({ ids: readIds(i * rowLength, rowLength) }), close };
  }
  const rowLength = header.seqLen!;
  const rowsPerSample = header.stage === 'dpo' ? 2 : 1;
  return {
    stage: header.stage, count: header.counts.samples, rowsPerSample, rowLength, close,
    read: (i, k) => {
      const row = i * rowsPerSample + k;
      const mask = Buffer.alloc(rowLength);
      fs.readSync(maskFd!, mask, 0, rowLength, row * rowLength);
      return { ids: readIds(row * rowLength, rowLength), mask };
    },
  };
}

function checkAgainstHeader(header: DataHeader, options: LoaderOptions): void {
  const where = options.data;
  if (options.stage && options.stage !== header.stage) {
    throw new Error(`${where}: prepared for ${header.stage}, not ${options.stage}`);
  }
  if (options.tokenizer && options.tokenizer.vocabSize !== header.tokenizer.vocabSize) {
    throw new Error(`${where}: prepared with a vocabulary of ${header.tokenizer.vocabSize}, ` +
      `the tokenizer has ${options.tokenizer.vocabSize}`);
  }
  if (header.stage !== 'pretrain' && options.seqLen !== undefined && options.seqLen + 1 !== header.seqLen) {
    throw new Error(`${where}: rows hold ${header.seqLen} ids (seqLen ${header.seqLen! - 1}), not seqLen ${options.seqLen}` +
      ` + 1; prepare again with --max-seq-len ${options.seqLen + 1}`);
  }
}

// ---- jsonl on the fly ------------------------------------------------------------------------------------------

function jsonlSource(options: LoaderOptions): SampleSource {
  const { data, stage, tokenizer, seqLen } = options;
  if (!stage || !tokenizer || seqLen === undefined) {
    throw new Error(`${data}: no prepared header (${data}.json); tokenising jsonl on the fly needs stage, ` +
      `tokenizer and seqLen`);
  }
  const lines = indexLines(data);
  const fd = fs.openSync(data, 'r');
  const builder = new SampleBuilder(tokenizer, seqLen + 1, options.trainOn);
  // A dpo sample is read as two rows (k = 0, 1); keep the last pair so the second read does not redo the work.
  let lastPair: { i: number; rows: Row[] } | undefined;
  const rows = (i: number): Row[] => {
    if (lastPair?.i === i) return lastPair.rows;
    const buf = Buffer.alloc(lines.lengths[i]);
    fs.readSync(fd, buf, 0, buf.length, lines.starts[i]);
    let record;
    try {
      record = parseRecord(stage, 'jsonl', buf.toString('utf8'), undefined, seqLen + 1);
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      throw new Error(`${data}:${lines.numbers[i]}: ${e.message} (run 'data prepare' to skip bad lines)`);
    }
    const built = record.kind === 'document' ? [builder.documentRow(record.text)] : builder.conversationRows(record);
    lastPair = { i, rows: built };
    return built;
  };
  return {
    stage, count: lines.starts.length, rowsPerSample: stage === 'dpo' ? 2 : 1, rowLength: seqLen + 1,
    read: (i, k) => rows(i)[k],
    close: () => fs.closeSync(fd),
  };
}

/** Byte offsets, lengths and line numbers of the non-blank lines of a file, read in 1 MiB chunks. */
function indexLines(file: string): { starts: number[]; lengths: number[]; numbers: number[] } {
  const starts: number[] = [];
  const lengths: number[] = [];
  const numbers: number[] = [];
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.alloc(1 << 20);
  let lineStart = 0;
  let lineNo = 1;
  let blank = true;
  let offset = 0;
  const endLine = (end: number) => {
    if (!blank) {
      starts.push(lineStart);
      lengths.push(end - lineStart);
      numbers.push(lineNo);
    }
    lineNo++;
    lineStart = end + 1;
    blank = true;
  };
  try {
    // Skip a UTF-8 byte order mark.
    if (fs.readSync(fd, chunk, 0, 3, 0) === 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
      offset = lineStart = 3;
    }
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, offset)) > 0; offset += n) {
      for (let i = 0; i < n; i++) {
        const c = chunk[i];
        if (c === 0x0a) endLine(offset + i);
        else if (blank && c !== 0x20 && c !== 0x0d && c !== 0x09) blank = false;
      }
    }
    endLine(offset);
  } finally {
    fs.closeSync(fd);
  }
  return { starts, lengths, numbers };
}
