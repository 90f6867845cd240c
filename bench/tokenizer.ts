// `bench tokenizer`: encode throughput of our tokenizer against Hugging Face tokenizers (the Rust library through
// the `tokenizers` npm package, a dev dependency: measured only when it is installed) on the same generated text.
// How it is made fair:
//  - the text (`mb` MB of mixed Chinese prose, English and code, deterministic) is cut into documents of about
//    `docChars` characters, like pretraining lines, and every document is encoded exactly once by a freshly
//    loaded tokenizer on each side (so both word caches start cold: real data preparation sees new text);
//  - one thread: ours calls encode() per document on the main thread; HF's encode() is awaited per document, so
//    exactly one libuv worker thread runs Rust code at a time (the await hop costs a few microseconds per document);
//  - all cores: ours uses EncodePool (worker threads), HF its encodeBatch (rayon threads).
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { Tokenizer } from '../lib/tokenizer/tokenizer';
import { EncodePool } from '../lib/tokenizer/parallel';
import { trainTokenizer } from '../lib/tokenizer/train';
import { root } from '../lib/native';

/** A small deterministic PRNG (mulberry32), for generated corpora. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const CHINESE = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切团推查够呀哪官河';
export const ENGLISH = ['the', 'quick', 'brown', 'fox', "don't", "it's", "we'll", "they've", 'MiniMind', 'tokenizer', 'BPE',
  'Hello', 'WORLD', 'naïve', 'café', 'Straße', 'αβγ', 'Привет', 'مرحبا', 'नमस्ते', 'こんにちは', '한국어'];
export const CODE = ['def f(x):\n    return x**2\n', 'for (let i = 0; i < n; i++) {\n\tsum += a[i];\n}', '#include <stdio.h>',
  'x = {"a": [1, 2.5e-3, null]}', 'if a != b && c <= d || !e:', '  // comment\r\n', 'SELECT * FROM t WHERE id=42;'];

/** A text of about `bytes` UTF-8 bytes, mixing Chinese prose and English/code like a pretraining corpus. */
export function makeBenchText(seed: number, bytes: number): string {
  const r = rng(seed);
  const pick = <T>(a: ArrayLike<T>) => a[Math.floor(r() * a.length)];
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    let s: string;
    const k = r();
    if (k < 0.6) s = Array.from({ length: 5 + Math.floor(r() * 25) }, () => pick(CHINESE)).join('') + pick('，。！？、；：');
    else if (k < 0.9) s = Array.from({ length: 3 + Math.floor(r() * 12) }, () => pick(ENGLISH)).join(' ') + pick(['. ', ', ', '\n']);
    else s = pick(CODE);
    parts.push(s);
    size += Buffer.byteLength(s);
  }
  return parts.join('');
}

export interface TokenizerBenchOptions {
  /** tokenizer folder or tokenizer.json; default: MiniMind v1's (../shared fixtures) or one trained on the fly. */
  tokenizer?: string;
  /** MB of text (default 4). */
  mb?: number;
  /** characters per document (default 2000). */
  docChars?: number;
  /** threads for the all-cores numbers (default: all cores; 0 skips them). */
  threads?: number;
  /** print a line per measurement (default true). */
  print?: boolean;
}

export interface TokenizerBenchResult {
  tokenizer: string;
  mb: number;
  documents: number;
  tokens: number;
  ours_mb_per_s: number;
  /** null when the `tokenizers` package is not installed. */
  hf_mb_per_s: number | null;
  /** ours / HF, one thread each. */
  ratio: number | null;
  threads: number;
  ours_parallel_mb_per_s: number | null;
  hf_batch_mb_per_s: number | null;
  /** true when our ids equal HF's on the whole text (null without HF). */
  identical: boolean | null;
}

/** MiniMind v1's tokenizer when the repo has ../shared fixtures next to it, else one trained here on 2 MB of
 *  generated text (a different seed from the measured text). */
async function defaultTokenizer(say: (s: string) => void): Promise<string> {
  const fixture = path.join(root, '../shared/fixtures/minimind/v1_2024-10-15_6861d1a');
  if (fs.existsSync(fixture)) return fixture;
  const dir = path.join(os.tmpdir(), 'minimind-bench-tokenizer');
  if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    say(`training a 6400-token tokenizer for the benchmark in ${dir}`);
    const text = makeBenchText(1, 2e6);
    const file = path.join(os.tmpdir(), 'minimind-bench-tokenizer.txt');
    fs.writeFileSync(file, text);
    await trainTokenizer({ files: [file], vocabSize: 6400, out: dir });
    fs.rmSync(file);
  }
  return dir;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

export async function benchTokenizer(opts: TokenizerBenchOptions = {}): Promise<TokenizerBenchResult> {
  const mb = opts.mb ?? 4;
  const docChars = opts.docChars ?? 2000;
  const threads = opts.threads ?? os.availableParallelism();
  const print = opts.print ?? true;
  const say = (s: string) => { if (print) console.log(s); };
  const source = opts.tokenizer ?? (await defaultTokenizer(say));

  const text = makeBenchText(7, mb * 1e6);
  const docs: string[] = [];
  for (let i = 0; i < text.length; i += docChars) docs.push(text.slice(i, i + docChars));
  const megabytes = Buffer.byteLength(text) / 1e6;
  say(`tokenizer ${source}: ${megabytes.toFixed(1)} MB in ${docs.length} documents of ${docChars} characters`);

  const ours = Tokenizer.load(source);
  let t0 = process.hrtime.bigint();
  const ourIds = docs.map((d) => ours.encode(d));
  const oursRate = megabytes / seconds(t0);
  const tokens = ourIds.reduce((n, ids) => n + ids.length, 0);
  say(`ours (1 thread):        ${oursRate.toFixed(2)} MB/s, ${tokens} tokens`);

  let oursParallel: number | null = null;
  if (threads > 0) {
    const pool = new EncodePool(Tokenizer.load(source), threads);
    await pool.encodeFlat(['warm up the workers']);
    t0 = process.hrtime.bigint();
    await pool.encodeFlat(docs);
    oursParallel = megabytes / seconds(t0);
    await pool.close();
    say(`ours (${threads} worker threads): ${oursParallel.toFixed(2)} MB/s`);
  }

  let hfRate: number | null = null;
  let hfBatch: number | null = null;
  let identical: boolean | null = null;
  let hfModule: typeof import('tokenizers') | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    hfModule = require('tokenizers');
  } catch {
    say('Hugging Face tokenizers (npm `tokenizers`) is not installed: skipping the comparison');
  }
  if (hfModule) {
    const file = fs.statSync(source).isDirectory() ? path.join(source, 'tokenizer.json') : source;
    const hf = hfModule.Tokenizer.fromFile(file);
    t0 = process.hrtime.bigint();
    const hfIds: number[][] = [];
    for (const d of docs) hfIds.push((await hf.encode(d, null, { addSpecialTokens: false })).getIds());
    hfRate = megabytes / seconds(t0);
    identical = hfIds.every((ids, i) => ids.length === ourIds[i].length && ids.every((id, j) => id === ourIds[i][j]));
    say(`HF tokenizers (1 thread): ${hfRate.toFixed(2)} MB/s; ids identical: ${identical}`);
    if (threads > 0) {
      const fresh = hfModule.Tokenizer.fromFile(file);
      t0 = process.hrtime.bigint();
      await fresh.encodeBatch(docs, { addSpecialTokens: false });
      hfBatch = megabytes / seconds(t0);
      say(`HF tokenizers encodeBatch (rayon, all cores): ${hfBatch.toFixed(2)} MB/s`);
    }
    say(`ratio ours/HF (1 thread): ${(oursRate / hfRate).toFixed(2)}`);
  }
  return {
    tokenizer: source, mb: megabytes, documents: docs.length, tokens,
    ours_mb_per_s: oursRate, hf_mb_per_s: hfRate, ratio: hfRate === null ? null : oursRate / hfRate,
    threads, ours_parallel_mb_per_s: oursParallel, hf_batch_mb_per_s: hfBatch, identical,
  };
}
