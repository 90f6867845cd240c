// One rank of the distributed tests, spawned by test/dist/spawn.ts (or by the launcher) as
//   node -r scripts/register-ts.js test/dist/worker.ts <mode>
// Modes:
//   env          print the launcher's variables as JSON, then a line without a newline; FAIL_RANK=r exits 3
//                on rank r while the others sleep (the launcher must stop them)
//   collectives  all-reduce SIZES buffers (bucketed, single, then each one started in the background and
//                waited for after the blocking collectives below), broadcast, allReduceNumbers, barrier; writes
//                the results to $OUT_DIR/collectives-rank<r>.bin and a JSON summary to stdout
//   die          all-reduce in a loop (blocking and started, alternately); rank 1 kills itself (SIGKILL) after 3 rounds
//   stall        all-reduce in a loop; rank 1 stops calling collectives for STALL_MS after 3 rounds
//   train        the DDP linear-regression run (linreg.ts); TRAIN_JSON holds its options; writes
//                $OUT_DIR/<TAG>-rank<r>.json with the final parameters
//   minimind     the real trainer on a tiny MiniMind (minimind.ts); TRAIN_JSON holds its options; writes
//                $OUT_DIR/<TAG>-rank<r>.bin with the final parameters (f32)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initDistributed } from '../../lib/dist';
import { Tensor } from '../../lib/tensor/tensor';
import { rankData, SIZES } from './data';
import { trainLinearRegression } from './linreg';
import { MiniMindRun, trainMiniMind } from './minimind';

const env = process.env;
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

async function main(mode: string): Promise<void> {
  if (mode === 'env') {
    const keys = ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'MINIMIND_THREADS'];
    console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, env[k]]))));
    process.stdout.write('no newline at the end');
    if (env.FAIL_RANK !== undefined) {
      if (env.FAIL_RANK === env.RANK) process.exit(3);
      await new Promise((r) => setTimeout(r, 60_000));
    }
    return;
  }
  const dist = await initDistributed({ config: { mode } });
  if (mode === 'train') { // alone (no WORLD_SIZE) or as a rank
    const o = JSON.parse(env.TRAIN_JSON!) as { batch: number; accum: number; steps: number; resumeFrom?: string;
      saveAt?: { step: number; file: string } };
    const final = trainLinearRegression({ dist, ...o });
    fs.writeFileSync(path.join(env.OUT_DIR!, `${env.TAG}-rank${dist?.rank ?? 0}.json`), JSON.stringify(final));
    dist?.close();
    return;
  }
  if (mode === 'minimind') { // alone or as a rank
    const final = await trainMiniMind(JSON.parse(env.TRAIN_JSON!) as MiniMindRun, dist);
    fs.writeFileSync(path.join(env.OUT_DIR!, `${env.TAG}-rank${dist?.rank ?? 0}.bin`), final);
    dist?.close();
    return;
  }
  if (!dist) throw new Error('worker: WORLD_SIZE is not set');
  const rank = dist.rank;
  if (mode === 'collectives') {
    const bucket = SIZES.map((_, i) => Tensor.from(rankData(rank, i), [SIZES[i]], 'f32', 'cpu', true));
    dist.allReduceMean(bucket);  // one bucketed call
    const single = Tensor.from(rankData(rank, SIZES.length - 1), [SIZES[SIZES.length - 1]], 'f32', 'cpu', true);
    dist.allReduceMean([single]);  // in place, no bucket
    const started = SIZES.map((_, i) => Tensor.from(rankData(rank, i), [SIZES[i]], 'f32', 'cpu', true));
    for (const t of started) dist.allReduceMeanStart([t]); // in the background; the broadcast waits for them
    const ints = Tensor.from([rank, 10 * rank, -rank], [3], 'i32', 'cpu', true);
    dist.broadcast([ints], 1);
    const numbers = dist.allReduceNumbers([rank, 1.5]);
    dist.barrier();
    dist.waitAll();
    const out = Buffer.concat([...bucket, single, ...started].map((t) => Buffer.from((t.toArray() as Float32Array).buffer)));
    fs.writeFileSync(path.join(env.OUT_DIR!, `collectives-rank${rank}.bin`), out);
    console.log(JSON.stringify({ rank, transport: dist.transport, ints: Array.from(ints.toArray()), numbers }));
  } else if (mode === 'die' || mode === 'stall') {
    const t = Tensor.from(rankData(rank, 2), [SIZES[2]], 'f32', 'cpu', true);
    for (let round = 0; ; round++) {
      if (rank === 1 && round === 3) {
        console.log('rank 1 leaves');
        if (mode === 'die') process.kill(process.pid, 'SIGKILL');
        sleep(Number(env.STALL_MS ?? 60_000));
      }
      if (round % 2) dist.allReduceMean([t]);
      else {
        dist.allReduceMeanStart([t]);
        dist.waitAll();
      }
    }
  }
  dist.close();
}

main(process.argv[2]).catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
