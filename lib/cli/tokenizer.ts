// `minimind-native tokenizer train|encode|decode`: train a byte-level BPE, or tokenize for scripts (stdin → stdout).
//
//   tokenizer train --data a.jsonl b.txt --vocab-size 6400 --special "<unk>,<s>,</s>" --out DIR
//   tokenizer encode --tokenizer DIR|FILE [--jsonl]   plain: one text per line → space-separated ids per line
//                                                     jsonl: "text" or {"text": ...} per line → {"ids": [...]}
//   tokenizer decode --tokenizer DIR|FILE [--jsonl]   plain: space-separated ids per line → text per line
//                                                     jsonl: {"ids": [...]} or [...] per line → {"text": ...}
// Plain mode cannot carry newlines inside a text (use --jsonl for that). Blank jsonl lines are skipped. A bad line
// stops with an error naming it ("stdin:LINE: ...").
import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Argv, CommandModule } from 'yargs';
import { SingleBar, Presets } from 'cli-progress';
import { Tokenizer } from '../tokenizer/tokenizer';
import { trainTokenizer, type TrainProgress, type TrainResult } from '../tokenizer/train';

/** Writes a line, waiting when the stream asks for it (stdout piped into a slow reader). */
async function writeLine(out: Writable, line: string): Promise<void> {
  if (!out.write(`${line}\n`)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/** Calls fn(line, lineNumber) for every input line; errors thrown by fn are prefixed with `name:line: `. */
async function eachLine(input: Readable, name: string, fn: (line: string) => Promise<void>): Promise<void> {
  let lineNo = 0;
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    try {
      await fn(line);
    } catch (e) {
      throw new Error(`${name}:${lineNo}: ${(e as Error).message}`);
    }
  }
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
}

/** stdin → stdout encode (see the file comment for the formats). */
export async function encodeStream(tok: Tokenizer, input: Readable, output: Writable, jsonl: boolean, name = 'stdin'): Promise<void> {
  await eachLine(input, name, async (line) => {
    if (!jsonl) return writeLine(output, tok.encode(line).join(' '));
    if (line.trim() === '') return;
    const value = parseJson(line);
    const text = typeof value === 'string' ? value : (value as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') throw new Error('expected a JSON string or {"text": "..."}');
    return writeLine(output, JSON.stringify({ ids: tok.encode(text) }));
  });
}

function checkIds(ids: unknown[], vocabSize: number): number[] {
  for (const id of ids) {
    if (!(typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new Error(`${JSON.stringify(id)} is not a token id (0..${vocabSize - 1})`);
    }
  }
  return ids as number[];
}

/** stdin → stdout decode (see the file comment for the formats). */
export async function decodeStream(tok: Tokenizer, input: Readable, output: Writable, jsonl: boolean, name = 'stdin'): Promise<void> {
  await eachLine(input, name, async (line) => {
    if (!jsonl) {
      const fields = line.trim() === '' ? [] : line.trim().split(/\s+/);
      return writeLine(output, tok.decode(checkIds(fields.map((f) => (/^\d+$/.test(f) ? Number(f) : f)), tok.vocabSize)));
    }
    if (line.trim() === '') return;
    const value = parseJson(line);
    const ids = Array.isArray(value) ? value : (value as { ids?: unknown } | null)?.ids;
    if (!Array.isArray(ids)) throw new Error('expected {"ids": [...]} or a JSON array');
    return writeLine(output, JSON.stringify({ text: tok.decode(checkIds(ids, tok.vocabSize)) }));
  });
}

/** Renders training progress as one cli-progress bar per phase. */
export function progressBars(): { onProgress: (p: TrainProgress) => void; stop: () => void } {
  let bar: SingleBar | undefined;
  let phase = '';
  const labels: Record<string, string> = { count: 'counting words (bytes)', merge: 'merging pairs', write: 'writing files' };
  return {
    onProgress: (p) => {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = new SingleBar({ format: `${labels[p.phase].padEnd(22)} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}` },
          Presets.shades_classic);
        bar.start(p.total, p.done);
      } else {
        bar?.update(p.done);
      }
    },
    stop: () => bar?.stop(),
  };
}

interface TokenizerArgs {
  action: string;
  data?: string[];
  'vocab-size': number;
  special: string;
  out?: string;
  tokenizer?: string;
  jsonl: boolean;
  progress: boolean;
}

export async function runTrain(argv: TokenizerArgs): Promise<TrainResult> {
  if (!argv.data?.length) throw new Error('tokenizer train: --data FILE... is required');
  if (!argv.out) throw new Error('tokenizer train: --out DIR is required');
  const bars = argv.progress ? progressBars() : undefined;
  try {
    const result = await trainTokenizer({
      files: argv.data, vocabSize: argv['vocab-size'], special: argv.special.split(',').filter((s) => s.length > 0),
      out: argv.out, onProgress: bars?.onProgress,
    });
    bars?.stop();
    const s = result.seconds;
    console.error(`trained ${result.vocabSize} tokens (${result.merges} merges, ${result.distinctWords} distinct words, ` +
      `${(result.bytes / 1e6).toFixed(1)} MB) in ${(s.count + s.merge + s.write).toFixed(1)} s ` +
      `(count ${s.count.toFixed(1)} s, merge ${s.merge.toFixed(1)} s): ${result.files.tokenizer}, ${result.files.config}`);
    return result;
  } finally {
    bars?.stop();
  }
}

export const tokenizerCommand: CommandModule<object, TokenizerArgs> = {
  command: 'tokenizer <action>',
  describe: 'Train a byte-level BPE tokenizer, or encode/decode stdin to stdout',
  builder: (y: Argv) =>
    y
      .positional('action', { choices: ['train', 'encode', 'decode'], type: 'string', describe: 'what to do' })
      .option('data', { type: 'string', array: true, describe: 'train: jsonl ({"text"} per line) or plain-text files' })
      .option('vocab-size', { type: 'number', default: 6400, describe: 'train: vocabulary size' })
      .option('special', { type: 'string', default: '<unk>,<s>,</s>', describe: 'train: special tokens (ids 0..k-1; unk, bos, eos by position)' })
      .option('out', { type: 'string', describe: 'train: output folder for tokenizer.json + tokenizer_config.json' })
      .option('tokenizer', { type: 'string', describe: 'encode/decode: tokenizer folder or tokenizer.json' })
      .option('jsonl', { type: 'boolean', default: false, describe: 'encode/decode: JSON lines instead of plain lines' })
      .option('progress', { type: 'boolean', default: true, describe: 'train: show progress bars (stderr)' }) as Argv<TokenizerArgs>,
  handler: async (argv) => {
    if (argv.action === 'train') {
      await runTrain(argv);
      return;
    }
    if (!argv.tokenizer) throw new Error(`tokenizer ${argv.action}: --tokenizer DIR|FILE is required`);
    const tok = Tokenizer.load(argv.tokenizer);
    const run = argv.action === 'encode' ? encodeStream : decodeStream;
    await run(tok, process.stdin, process.stdout, argv.jsonl);
  },
};
