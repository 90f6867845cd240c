// How data loaders split an epoch between ranks, and why a checkpoint's cursor survives a change of the
// number of ranks. This is the contract a BatchSource (lib/train/trainer.ts) follows when given rank/worldSize.
//
//   - Every rank computes the same order of the epoch's samples (shuffled with seed + epoch), and cuts it into
//     global micro-batches of B samples: global micro-batch g holds samples [g*B, (g+1)*B) of that order.
//   - Rank r of W takes global micro-batches r, r+W, r+2W, ...: disjoint shards, and after every optimizer step
//     (accum micro-batches on each rank) the ranks together have consumed a prefix of the epoch's order.
//   - A rank's epoch has floor(batches / W) micro-batches (the last incomplete round is dropped, so every rank
//     takes the same number of steps); `batchesPerEpoch` reports that per-rank count.
//   - getCursor() returns the global position {epoch, samples}: samples of this epoch consumed by all ranks
//     together (identical on every rank at a step boundary, where checkpoints are written). setCursor() on
//     rank r of W resumes at global micro-batch samples / B + r.
// Because the position counts samples of the global order, a checkpoint written by W ranks resumes on any W'
// ranks (and with any B that divides `samples`): nothing is skipped or seen twice.

/** The resumable position a sharded loader stores in checkpoints. */
export interface GlobalCursor {
  epoch: number;
  /** Samples of this epoch consumed by all ranks together. */
  samples: number;
}

/** The global micro-batch that rank `rank` of `worldSize` reads as its `j`-th micro-batch after `cursor`. */
export function globalMicroBatch(cursor: GlobalCursor, batchSize: number, rank: number, worldSize: number, j: number): number {
  if (cursor.samples % batchSize !== 0) {
    throw new Error(`resume: the checkpoint's position (${cursor.samples} samples into epoch ${cursor.epoch}) is not a ` +
      `multiple of the batch size ${batchSize}`);
  }
  return cursor.samples / batchSize + j * worldSize + rank;
}

/** The cursor after every rank has read `perRank` micro-batches of `batchSize` from `cursor`. */
export function advanceCursor(cursor: GlobalCursor, batchSize: number, worldSize: number, perRank: number): GlobalCursor {
  return { epoch: cursor.epoch, samples: cursor.samples + perRank * worldSize * batchSize };
}
