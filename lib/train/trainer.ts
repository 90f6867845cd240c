// The training loop shared by every stage (pretrain, SFT, LoRA, DPO):
//   for each optimizer step s: lr = schedule(s); `accum` micro-batches of forward + backward (gradients
//   accumulate with +=); clip the global gradient norm; Adam/AdamW step; zero the gradients; log; checkpoint.
// Deterministic: the same data order, RNG and kernels give the same loss curve, and a resumed run continues
// bit for bit from its checkpoint. Ctrl-C (SIGINT) finishes the current step, saves a checkpoint and exits.
// Data-parallel ([dist], lib/dist): every rank runs this loop on its data shard; weights start from rank 0's,
// gradients are averaged once per step, so every rank takes the same steps; rank 0 writes checkpoints/metrics.
import { backward } from '../autograd/tape';
import type { Dist } from '../dist';
import { GradientOverlap } from '../dist/overlap';
import { scale } from '../ops/elementwise';
import { AdamW } from '../optim/adamw';
import { clipGradNorm } from '../optim/clip';
import { MiniMind } from '../nn/model';
import { resetStepArenas } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import { latestCheckpoint, readTrainerState, saveCheckpoint, TrainerState } from './checkpoint';
import { RunLogger } from './metrics';
import { learningRate, Schedule } from './schedule';

/** One micro-batch: inputs, shifted targets and the loss mask, [B, T] each. */
export interface Batch {
  x: Int32Array;
  y: Int32Array;
  mask: Float32Array;
  B: number;
  T: number;
  /** Extra per-stage data (e.g. DPO's rejected sequences). */
  extra?: unknown;
}

/** An endless, resumable stream of micro-batches (it wraps around epochs itself). */
export interface BatchSource {
  next(): Batch;
  readonly epoch: number;
  /** Micro-batches in one epoch. */
  readonly batchesPerEpoch: number;
  getCursor(): unknown;
  /**
   * [dist] `savedWorldSize`: the number of ranks the checkpoint was written with; a sharded source remaps the
   * cursor when it differs from its own (lib/dist/sharding.ts remapCursor).
   */
  setCursor(cursor: unknown, savedWorldSize?: number): void;
}

export interface TrainOptions {
  stage: string;
  out: string;
  accum: number;
  clip: number;
  lr: number;
  minLr: number;
  warmup: number;
  /** Optimizer steps; derived from epochs when not given. */
  maxSteps?: number;
  epochs: number;
  weightDecay: number;
  /** 'adamw' (decoupled decay) or 'adam' (torch.optim.Adam, MiniMind v1). */
  optimizer: 'adamw' | 'adam';
  saveEvery: number;
  keep: number;
  logEvery: number;
  tokenizerDir: string | null;
  /** Resume from this folder (a run's out folder or a step-N checkpoint); null starts fresh. */
  resume: string | null;
  quiet?: boolean;
  /** Everything the CLI was given, recorded in checkpoints. */
  args: Record<string, unknown>;
  /** Files a stage adds to each checkpoint (e.g. LoRA adapters). */
  extraFiles?: (dir: string) => void;
  /** Called after every optimizer step (tests use it to kill or inspect runs). */
  onStep?: (s: { step: number; loss: number }) => void;
  /** [dist] The data-parallel run this process is a rank of (lib/dist initDistributed); null trains alone. */
  dist?: Dist | null;
}

export interface TrainResult {
  steps: number;
  losses: number[];
  interrupted: boolean;
  lastCheckpoint: string | null;
}

export function totalSteps(source: BatchSource, opts: TrainOptions): number {
  return opts.maxSteps ?? Math.max(1, Math.floor((opts.epochs * source.batchesPerEpoch) / opts.accum));
}

/**
 * Trains `params` of `model` on `source`, with `lossOf(batch)` giving a scalar loss tensor per micro-batch.
 */
export async function train(model: MiniMind, params: Tensor[], source: BatchSource, lossOf: (b: Batch) => Tensor,
  opts: TrainOptions): Promise<TrainResult> {
  const S = totalSteps(source, opts);
  const schedule: Schedule = { maxLr: opts.lr, minLr: opts.minLr, warmup: opts.warmup, totalSteps: S };
  const optimizer = new AdamW(params, {
    lr: opts.lr,
    weightDecay: opts.weightDecay,
    decoupled: opts.optimizer === 'adamw',
  });
  let step = 0;
  const losses: number[] = [];
  if (opts.resume) {
    const dir = latestCheckpoint(opts.resume);
    if (!dir) throw new Error(`--resume: no complete checkpoint in ${opts.resume}`);
    const state = readTrainerState(dir);
    if (state.stage !== opts.stage) throw new Error(`--resume: ${dir} is a ${state.stage} checkpoint, not ${opts.stage}`);
    optimizer.importState(state.optimizer);
    source.setCursor(state.cursor, state.worldSize ?? 1); // [dist] the cursor's world size, for remapping
    step = state.step;
  }
  // [dist] Identical initial weights: rank 0's, whether freshly initialised or loaded.
  const dist = opts.dist ?? null;
  const isMain = !dist || dist.isMain;
  if (dist) {
    dist.broadcast(params);
    // Every rank must take the same number of steps, or the last ones would wait for a rank that finished.
    const [meanS, meanS2] = dist.allReduceNumbers([S, S * S]);
    if (meanS2 !== meanS * meanS) {
      throw new Error(`rank ${dist.rank}: the ranks disagree on the number of optimizer steps (${S} here): every ` +
        'rank\'s data shard must have the same batches per epoch (lib/dist/sharding.ts)');
    }
  }
  const overlap = dist ? new GradientOverlap(dist, params) : null; // [dist]
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  // [dist] Only rank 0 writes metrics and progress.
  const logger: Pick<RunLogger, 'log' | 'message' | 'close'> = isMain ? new RunLogger(opts.out, S, step, opts.quiet)
    : { log: () => {}, message: () => {}, close: () => {} };
  let lastCheckpoint: string | null = null;
  const checkpoint = () => {
    if (!isMain) return; // [dist] rank 0 writes checkpoints
    const state: TrainerState = {
      step,
      epoch: source.epoch,
      cursor: source.getCursor(),
      optimizer: optimizer.exportState(),
      schedule,
      worldSize: dist?.worldSize ?? 1, // [dist]
      stage: opts.stage,
      args: opts.args,
    };
    lastCheckpoint = saveCheckpoint(opts.out, model, state, opts.tokenizerDir, opts.keep, opts.extraFiles);
  };
  const start = Date.now();
  const startStep = step;
  try {
    while (step < S && !interrupted) {
      const t0 = process.hrtime.bigint();
      const lr = learningRate(step, schedule);
      let lossSum = 0;
      let tokens = 0;
      for (let micro = 0; micro < opts.accum; micro++) {
        // [dist] The last micro-batch's backward pass averages each layer's gradients as soon as they are complete.
        if (overlap && micro === opts.accum - 1) overlap.arm(model);
        const batch = source.next();
        const loss = lossOf(batch);
        lossSum += loss.item();
        backward(opts.accum === 1 ? loss : scale(loss, 1 / opts.accum));
        tokens += batch.B * batch.T;
        if (dist && step === startStep && micro === 0) { // [dist]
          logger.message(`effective batch: ${batch.B} x accum ${opts.accum} x world ${dist.worldSize} = ` +
            `${batch.B * opts.accum * dist.worldSize} sequences per optimizer step`);
        }
        resetStepArenas();
      }
      // [dist] Every rank has the mean gradient once the all-reduces started during the backward pass are done.
      overlap?.finish(model);
      const gradNorm = opts.clip > 0 ? clipGradNorm(params, opts.clip) : 0;
      optimizer.step(lr);
      optimizer.zeroGrad();
      resetStepArenas();
      step++;
      let loss = lossSum / opts.accum;
      if (dist) { // [dist] the logged loss is the mean over ranks; a Ctrl-C seen by any rank stops all at this step
        const [meanLoss, anyInterrupted] = dist.allReduceNumbers([loss, interrupted ? 1 : 0]);
        loss = meanLoss;
        interrupted = anyInterrupted > 0;
      }
      losses.push(loss);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const logLine = step % opts.logEvery === 0 || step === S;
      const allTokens = tokens * (dist?.worldSize ?? 1); // [dist] throughput of all ranks together
      logger.log({ step, epoch: source.epoch, loss, lr, tokens_per_s: allTokens / seconds, grad_norm: gradNorm,
        elapsed_s: (Date.now() - start) / 1000 }, logLine);
      opts.onStep?.({ step, loss });
      if ((opts.saveEvery > 0 && step % opts.saveEvery === 0) || step === S) checkpoint();
      // Let the event loop run between steps, so signals (Ctrl-C) and I/O are handled during a long run.
      await new Promise((resolve) => setImmediate(resolve));
      if (interrupted && step % opts.saveEvery !== 0 && step !== S) checkpoint();
    }
    if (interrupted) logger.message(`interrupted: saved ${lastCheckpoint}`);
  } finally {
    logger.close();
    process.off('SIGINT', onSigint);
    optimizer.dispose();
  }
  return { steps: step, losses, interrupted, lastCheckpoint };
}
