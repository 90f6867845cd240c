// A pool of tokenisation worker threads (worker.ts). `run(job)` sends a batch to the least busy worker and
// resolves with its result; callers keep results in input order themselves. With 0 threads the batches run
// inline on the calling thread through the same code path (processBatch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { processBatch, SampleBuilder, type BatchJob, type BatchResult } from './samples';
import { loadTokenizerWith } from './tokenizer-loader';
import type { WorkerInit, WorkerReply } from './worker';
import { startModuleWorker } from '../util/worker';

interface Pending {
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

export class BatchPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private inline?: Promise<SampleBuilder>;
  private failure?: Error;

  constructor(threads: number, init: WorkerInit) {
    if (threads <= 0) {
      this.inline = loadTokenizerWith(init.loader, init.tokenizerDir)
        .then((tokenizer) => new SampleBuilder(tokenizer, init.maxSeqLen, init.trainOn));
      this.inline.catch(() => undefined);
      return;
    }
    for (let t = 0; t < threads; t++) {
      const worker = startModuleWorker(path.join(__dirname, 'worker'), init);
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (reply: WorkerReply) => {
        slot.busy--;
        const p = this.pending.get(reply.id)!;
        this.pending.delete(reply.id);
        if ('error' in reply) p.reject(new Error(`tokenisation worker: ${reply.error}`));
        else p.resolve(reply.result);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`tokenisation worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  async run(job: BatchJob): Promise<BatchResult> {
    if (this.inline) return processBatch(job, await this.inline);
    if (this.failure) throw this.failure;
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise<BatchResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    const workers = this.slots.splice(0).map((s) => s.worker);
    for (const w of workers) w.removeAllListeners('exit');
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

