// A worker thread of EncodePool (parallel.ts): builds the tokenizer from the parent's parsed files, then answers
// each job (a list of texts) with all ids in one Int32Array plus per-text offsets, transferred, not copied.
import { parentPort, workerData } from 'node:worker_threads';
import { Tokenizer, TokenizerSource } from './tokenizer';

const tokenizer = new Tokenizer((workerData as { source: TokenizerSource }).source);

parentPort!.on('message', ({ job, texts }: { job: number; texts: string[] }) => {
  try {
    const offsets = new Int32Array(texts.length + 1);
    const all: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      const ids = tokenizer.encode(texts[i]);
      for (let j = 0; j < ids.length; j++) all.push(ids[j]);
      offsets[i + 1] = all.length;
    }
    const ids = Int32Array.from(all);
    parentPort!.postMessage({ job, ids, offsets }, [ids.buffer, offsets.buffer]);
  } catch (e) {
    parentPort!.postMessage({ job, error: String((e as Error)?.stack ?? e) });
  }
});
