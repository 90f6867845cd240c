// Encoding on all cores for data preparation: a pool of worker threads, each holding its own copy of the
// tokenizer (rebuilt from the same tokenizer.json text), encodes chunks of the input and sends back flat Int32Array
// ids (transferred, not copied). Results come back in input order.
//
//   const pool = new EncodePool(tokenizer, 4);
//   const { ids, offsets } = await pool.encodeFlat(texts);  // text i is ids[offsets[i] .. offsets[i+1])
//   await pool.close();
// or, for one call: `await encodeParallel(tokenizer, texts, threads)` → number[][].
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../util/worker';
import type { Tokenizer } from './tokenizer';

/** Concatenated ids of several texts: text i is ids[offsets[i] .. offsets[i + 1]). */
export interface FlatIds {
  ids: Int32Array;
  offsets: Int32Array;
}

/** Texts per chunk is chosen so that a chunk holds about this many UTF-16 units (enough to hide messaging). */
const CHUNK_CHARS = 1 << 18;


interface Reply { job: number; ids?: Int32Array; offsets?: Int32Array; error?: string }

export class EncodePool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private nextJob = 0;
  private readonly pending = new Map<number, { resolve: (r: FlatIds) => void; reject: (e: Error) => void }>();

  /** @param threads worker count; defaults to the number of cores. */
  constructor(tokenizer: Tokenizer, threads = os.availableParallelism()) {
    this.threads = Math.max(1, Math.floor(threads));
    const workerData = { source: tokenizer.source };
    this.workers = Array.from({ length: this.threads }, () => {
      const w = startModuleWorker(path.join(__dirname, 'encode-worker'), workerData);
      w.on('message', (r: Reply) => this.settle(w, r));
      w.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      w.unref();
      return w;
    });
    this.idle = [...this.workers];
  }

  private settle(worker: Worker, r: Reply): void {
    const p = this.pending.get(r.job);
    this.pending.delete(r.job);
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
    if (!p) return;
    if (r.error !== undefined) p.reject(new Error(`tokenizer worker: ${r.error}`));
    else p.resolve({ ids: r.ids!, offsets: r.offsets! });
  }

  private async run(texts: string[]): Promise<FlatIds> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((resolve) => this.waiting.push(resolve)));
    const job = this.nextJob++;
    return new Promise<FlatIds>((resolve, reject) => {
      this.pending.set(job, { resolve, reject });
      worker.ref();
      worker.postMessage({ job, texts });
    }).finally(() => { if (this.pending.size === 0) for (const w of this.workers) w.unref(); });
  }

  /** Encodes every text; all ids in one Int32Array, in input order. */
  async encodeFlat(texts: string[]): Promise<FlatIds> {
    const chunks: string[][] = [];
    for (let i = 0; i < texts.length;) {
      let chars = 0;
      const start = i;
      while (i < texts.length && (i === start || chars + texts[i].length <= CHUNK_CHARS)) chars += texts[i++].length;
      chunks.push(texts.slice(start, i));
    }
    const parts = await Promise.all(chunks.map((c) => this.run(c)));
    const total = parts.reduce((n, p) => n + p.ids.length, 0);
    const ids = new Int32Array(total);
    const offsets = new Int32Array(texts.length + 1);
    let idBase = 0;
    let textBase = 0;
    for (const p of parts) {
      ids.set(p.ids, idBase);
      for (let i = 1; i < p.offsets.length; i++) offsets[textBase + i] = idBase + p.offsets[i];
      idBase += p.ids.length;
      textBase += p.offsets.length - 1;
    }
    return { ids, offsets };
  }

  /** Encodes every text; one id array per text. */
  async encode(texts: string[]): Promise<number[][]> {
    const { ids, offsets } = await this.encodeFlat(texts);
    return texts.map((_, i) => Array.from(ids.subarray(offsets[i], offsets[i + 1])));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** One-shot parallel encode: starts `threads` workers (default: all cores), encodes, stops them. */
export async function encodeParallel(tokenizer: Tokenizer, texts: string[], threads?: number): Promise<number[][]> {
  const pool = new EncodePool(tokenizer, threads);
  try {
    return await pool.encode(texts);
  } finally {
    await pool.close();
  }
}
