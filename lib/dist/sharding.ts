// How a data loader shares an epoch between ranks, and how its cursor survives a change of the number of
// ranks. The contract a BatchSource (lib/train/trainer.ts) follows when it is given rank and worldSize; it is
// the scheme of lib/data/loader.ts (like torch's DistributedSampler) plus the `start` offset for resuming.
//
//   - Every rank computes the same order of the epoch's N samples (a permutation seeded with seed and epoch).
//   - Rank r of W takes order positions start + r, start + r + W, start + r + 2W, ...: disjoint shards that
//     together cover the epoch once. `start` is 0, except in the epoch a run resumed in on another number of
//     ranks (below); the next epoch starts at 0 again.
//   - The loader's cursor is {epoch, position, start?}: position = samples of this epoch this rank has taken.
//     At an optimizer-step boundary every rank has taken the same number of samples (batches are full), so
//     the ranks together have taken exactly the order prefix [0, start + position * W).
//   - Every rank must take the same number of steps: give every rank floor((N - start) / W) samples per epoch
//     (drop the remainder, like DistributedSampler's drop_last). Per-rank counts of ceil((N - start - r) / W)
//     differ when W does not divide N, so ranks would disagree on steps per epoch and the last step would wait
//     for a rank that already finished (the collective timeout would end it, but the run is wrong).
//   - Resume: the trainer calls setCursor(cursor, savedWorldSize) with the world size the checkpoint was written
//     with. Same world size: use the cursor as is. Another world size: remapCursor() turns the prefix the old
//     ranks consumed into `start`, so the new ranks continue right after it: nothing skipped, nothing repeated.
// Rank 0 writes the checkpoint, so the saved cursor is rank 0's; at a step boundary all ranks' positions agree.

/** A sharded loader's resumable position. */
export interface ShardCursor {
  epoch: number;
  /** Samples of this epoch taken by this rank (since `start`). */
  position: number;
  /** Order positions of this epoch consumed before these ranks began (after a resume on another world size). */
  start?: number;
}

/** The position in the epoch's order of the next sample rank `rank` of `worldSize` takes. */
export function shardIndex(cursor: ShardCursor, rank: number, worldSize: number): number {
  return (cursor.start ?? 0) + rank + cursor.position * worldSize;
}

/** Samples each rank takes in an epoch of `total` samples that begins at order position `start`. */
export function shardSize(total: number, worldSize: number, start = 0): number {
  return Math.floor((total - start) / worldSize);
}

/** A cursor written by `fromWorld` ranks, for `toWorld` ranks: the same consumed prefix of the epoch. */
export function remapCursor(cursor: ShardCursor, fromWorld: number, toWorld: number): ShardCursor {
  if (fromWorld === toWorld) return cursor;
  return { epoch: cursor.epoch, start: (cursor.start ?? 0) + cursor.position * fromWorld, position: 0 };
}
