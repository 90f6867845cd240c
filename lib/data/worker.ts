// A tokenisation worker thread for `data prepare` (see pool.ts). It loads the tokenizer once from workerData,
// then answers each BatchJob message with a BatchResult whose typed arrays are transferred, not copied.
import { parentPort, workerData } from 'node:worker_threads';
import { processBatch, SampleBuilder, type BatchJob, type BatchResult, type TrainOn } from './samples';
import { loadTokenizerWith, type TokenizerLoaderRef } from './tokenizer-loader';

export interface WorkerInit {
  loader: TokenizerLoaderRef;
  tokenizerDir: string;
  maxSeqLen: number;
  trainOn?: TrainOn;
}

export type WorkerReply = { id: number; result: BatchResult } | { id: number; error: string };

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const ready = loadTokenizerWith(init.loader, init.tokenizerDir)
    .then((tokenizer) => new SampleBuilder(tokenizer, init.maxSeqLen, init.trainOn));
  // Keep a failed load from being reported as unhandled before the first job asks for it.
  ready.catch(() => undefined);
  parentPort!.on('message', async ({ id, job }: { id: number; job: BatchJob }) => {
    try {
      const result = processBatch(job, await ready);
      const transfer = [result.tokens.buffer, result.mask?.buffer, result.documentLengths?.buffer]
        .filter((b): b is ArrayBuffer => b !== undefined);
      parentPort!.postMessage({ id, result } satisfies WorkerReply, transfer);
    } catch (e) {
      parentPort!.postMessage({ id, error: (e as Error).stack ?? String(e) } satisfies WorkerReply);
    }
  });
}

void main();
