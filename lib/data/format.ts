// The prepared-data layout that `data prepare` writes and the loaders read. For an output path OUT:
//
//   OUT         token ids, raw little-endian uint16 (MiniMind v1 `.bin` layout: np.uint16(ids).tobytes()).
//               pretrain: the concatenation of every document as [bos] + ids + [eos], no padding;
//               sft:      N rows of L ids each (L = seqLen), truncated and padded with 0;
//               dpo:      2N rows of L ids: row 2i is pair i's chosen answer, row 2i+1 its rejected one.
//   OUT.mask    sft/dpo only: one uint8 per id (1 = this id is a training target), same rows as OUT.
//   OUT.idx     pretrain only: N+1 little-endian uint64 token offsets; document i is OUT[idx[i], idx[i+1]).
//   OUT.json    this header (written last: a complete data set always has one).
import * as fs from 'node:fs';
import type { MaskStyle, Stage } from './records';

export const DATA_FORMAT = 'minimind-native-data';
export const DATA_FORMAT_VERSION = 1;

export interface DataHeader {
  format: typeof DATA_FORMAT;
  version: number;
  stage: Stage;
  source: { file: string; format: string };
  tokenizer: { dir: string; vocabSize: number; bosId: number; eosId: number; padId: number };
  dtype: 'uint16';
  /** Ids per row for sft/dpo (MiniMind's max_length); null for pretrain, whose loader cuts windows. */
  seqLen: number | null;
  /** How masks were built (sft/dpo), 'none' for pretrain (every token counts, as v1's .bin training). */
  mask: MaskStyle | 'none';
  counts: {
    /** Records read from the source, good or bad. */
    records: number;
    /** Documents (pretrain), conversations (sft) or pairs (dpo) written. */
    samples: number;
    /** Rows in OUT: 0 for pretrain, samples for sft, 2·samples for dpo. */
    rows: number;
    tokens: number;
    skipped: number;
    /** Rows cut at seqLen. */
    truncated: number;
  };
  /** File names relative to the header's folder. */
  files: { tokens: string; mask?: string; index?: string };
}

export function headerPath(out: string): string {
  return `${out}.json`;
}

/** The output files of a stage, as suffixes of OUT. */
export function outputSuffixes(stage: Stage): { tokens: ''; mask?: '.mask'; index?: '.idx' } {
  return stage === 'pretrain' ? { tokens: '', index: '.idx' } : { tokens: '', mask: '.mask' };
}

/**
 * Reads and checks a header: the format tag, the version, and that each file's size matches the counts.
 * `path` may be OUT or OUT.json.
 */
export function readHeader(path: string): { header: DataHeader; out: string } {
  const out = path.endsWith('.json') && !fs.existsSync(`${path}.json`) ? path.slice(0, -'.json'.length) : path;
  const file = headerPath(out);
  if (!fs.existsSync(file)) throw new Error(`${file}: no header; is ${out} a file written by 'data prepare'?`);
  const header = JSON.parse(fs.readFileSync(file, 'utf8')) as DataHeader;
  if (header.format !== DATA_FORMAT) throw new Error(`${file}: format is '${header.format}', not '${DATA_FORMAT}'`);
  if (header.version !== DATA_FORMAT_VERSION) {
    throw new Error(`${file}: version ${header.version}; this build reads version ${DATA_FORMAT_VERSION}`);
  }
  const expectSize = (suffix: string, bytes: number) => {
    const size = fs.statSync(out + suffix).size;
    if (size !== bytes) throw new Error(`${out}${suffix}: ${size} bytes, the header says ${bytes}`);
  };
  expectSize('', header.counts.tokens * 2);
  if (header.stage === 'pretrain') expectSize('.idx', (header.counts.samples + 1) * 8);
  else {
    expectSize('.mask', header.counts.tokens);
    if (header.counts.tokens !== header.counts.rows * (header.seqLen ?? 0)) {
      throw new Error(`${file}: ${header.counts.tokens} tokens is not rows × seqLen`);
    }
  }
  return { header, out };
}
