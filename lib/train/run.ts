// One training run from CLI-level options: resolves the model (a named config, a config.json, or --init from a
// model folder), the tokenizer and the data (prepared token files, or jsonl tokenised on the fly), builds the
// stage's loss (pretrain/sft/lora: masked next-token cross-entropy; dpo: the DPO loss against a frozen reference
// model) and runs the shared training loop. The final model folder is written to --out itself, checkpoints to
// --out/step-N.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader, openLoader } from '../data';
import type { Dist } from '../dist';
import { remapCursor, ShardCursor } from '../dist/sharding';
import { loadModelFolder, saveModelFolder } from '../io/model-folder';
import { loadConfig, LMConfig } from '../nn/config';
import { initWeights } from '../nn/init';
import { MiniMind } from '../nn/model';
import { Device } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { Tokenizer } from '../tokenizer';
import { dpoLoss, LogpReduction, referenceRows, sequenceTokenLogps } from './dpo';
import { attachLora, loadLoraInto, LoraConfig, saveLora } from './lora';
import { latestCheckpoint } from './checkpoint';
import { Batch, BatchSource, train, TrainOptions, TrainResult } from './trainer';

export type Stage = 'pretrain' | 'sft' | 'lora' | 'dpo';

export interface RunOptions {
  stage: Stage;
  modelConfig: string | null;
  init: string | null;
  data: string;
  tokenizer: string | null;
  out: string;
  batchSize: number;
  seqLen: number | null;
  accum: number;
  lr: number;
  minLr: number | null;
  warmup: number;
  epochs: number;
  maxSteps: number | null;
  weightDecay: number;
  optimizer: 'adamw' | 'adam';
  clip: number;
  seed: number;
  saveEvery: number;
  keep: number;
  logEvery: number | null;
  device: Device;
  resume: string | null;
  auxLoss: boolean;
  lora: LoraConfig;
  dpoBeta: number;
  dpoLogp: LogpReduction;
  /** SFT on jsonl tokenised on the fly: which assistant turns are trained (default by format). */
  trainOn?: 'last' | 'all';
  quiet?: boolean;
  onStep?: TrainOptions['onStep'];
  /** Data-parallel run (lib/dist initDistributed); null or absent trains alone. */
  dist?: Dist | null;
}

/** Adapts the data loader to the trainer's BatchSource. */
class LoaderSource implements BatchSource {
  constructor(private readonly loader: DataLoader) {}

  next(): Batch {
    const b = this.loader.next();
    return { x: b.x, y: b.y, mask: b.mask, B: b.rows, T: b.seqLen };
  }

  get epoch(): number {
    return this.loader.cursor.epoch;
  }

  get batchesPerEpoch(): number {
    return this.loader.batchesPerEpoch;
  }

  getCursor(): unknown {
    return this.loader.cursor;
  }

  setCursor(cursor: unknown, savedWorldSize = 1): void {
    this.loader.seek(remapCursor(cursor as ShardCursor, savedWorldSize, this.loader.worldSize));
  }
}

function buildModel(o: RunOptions, resumeDir: string | null): { model: MiniMind; cfg: LMConfig } {
  // Resuming loads the checkpoint's weights; --init loads a model folder; otherwise a fresh initialisation.
  const from = resumeDir ?? o.init;
  if (from) {
    const model = loadModelFolder(from, o.device);
    return { model, cfg: model.cfg };
  }
  const cfg = loadConfig(o.modelConfig ?? 'minimind-v1-small');
  const model = new MiniMind(cfg, o.device);
  initWeights(model, o.seed);
  return { model, cfg };
}

const tensorOf = (data: Int32Array | Float32Array, shape: number[], device: Device) =>
  Tensor.from(data, shape, data instanceof Int32Array ? 'i32' : 'f32', device);

export async function runTraining(o: RunOptions): Promise<TrainResult> {
  if (!fs.existsSync(o.data)) throw new Error(`--data: no such file ${o.data}`);
  if ((o.stage === 'sft' || o.stage === 'lora' || o.stage === 'dpo') && !o.init && !o.resume) {
    throw new Error(`train ${o.stage} needs --init DIR (a pretrained or SFT model folder)`);
  }
  const resumeDir = o.resume ? latestCheckpoint(o.resume) : null;
  if (o.resume && !resumeDir) throw new Error(`--resume: no complete checkpoint in ${o.resume}`);
  // LoRA checkpoints hold the base model plus adapters: the base always comes from --init.
  const { model, cfg } = buildModel(o, o.stage === 'lora' ? null : resumeDir);
  const tokenizerDir = o.tokenizer ?? (o.init && fs.existsSync(path.join(o.init, 'tokenizer.json')) ? o.init : null);
  const tokenizer = tokenizerDir ? Tokenizer.load(tokenizerDir) : null;
  if (tokenizer && tokenizer.vocabSize > cfg.vocab_size) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${cfg.vocab_size}`);
  }
  // Pretraining cuts windows of any length (default: the whole context); SFT/DPO rows have the prepared length.
  const seqLen = o.seqLen ?? (o.stage === 'pretrain' ? cfg.max_seq_len - 1 : undefined);
  if (seqLen !== undefined && seqLen > cfg.max_seq_len) throw new Error(`--seq-len ${seqLen} exceeds the model's max_seq_len ${cfg.max_seq_len}`);
  if (o.trainOn && fs.existsSync(`${o.data}.json`)) {
    throw new Error(`--train-on: ${o.data} is prepared data, whose masks were fixed by \`data prepare\` (use its --train-on)`);
  }
  const loader = openLoader({
    data: o.data,
    batchSize: o.batchSize,
    seqLen,
    stage: o.stage === 'lora' ? 'sft' : o.stage,
    tokenizer: tokenizer ?? undefined,
    seed: o.seed,
    trainOn: o.trainOn,
    rank: o.dist?.rank ?? 0,
    worldSize: o.dist?.worldSize ?? 1,
  });
  if (loader.seqLen > cfg.max_seq_len) {
    throw new Error(`${o.data}: rows of ${loader.seqLen} positions exceed the model's max_seq_len ${cfg.max_seq_len}`);
  }

  let params = model.parameters();
  let extraFiles: ((dir: string) => void) | undefined;
  if (o.stage === 'lora') {
    params = attachLora(model, o.lora, o.seed);
    if (resumeDir) loadLoraInto(model, o.lora, resumeDir);
    extraFiles = (dir) => saveLora(model, o.lora, dir);
  }

  let lossOf: (b: Batch) => Tensor;
  let reference: MiniMind | null = null;
  if (o.stage === 'dpo') {
    reference = loadModelFolder(o.init!, o.device);
    const ref = reference;
    lossOf = (b) => {
      const x = tensorOf(b.x, [b.B, b.T], o.device);
      const y = tensorOf(b.y, [b.B, b.T], o.device);
      const refRows = referenceRows(ref, x, y, b.mask, o.dpoLogp);
      return dpoLoss(sequenceTokenLogps(model, x, y), b.mask, refRows, b.T, o.dpoBeta, o.dpoLogp).loss;
    };
  } else {
    lossOf = (b) => model.loss(tensorOf(b.x, [b.B, b.T], o.device), tensorOf(b.y, [b.B, b.T], o.device),
      tensorOf(b.mask, [b.B, b.T], o.device), o.auxLoss);
  }

  const source = new LoaderSource(loader);
  const args = { ...o, onStep: undefined, dist: undefined } as Record<string, unknown>;
  const trainOpts: TrainOptions = {
    stage: o.stage,
    out: o.out,
    accum: o.accum,
    clip: o.clip,
    lr: o.lr,
    minLr: o.minLr ?? o.lr / 10,
    warmup: o.warmup,
    maxSteps: o.maxSteps ?? undefined,
    epochs: o.epochs,
    weightDecay: o.weightDecay,
    optimizer: o.optimizer,
    saveEvery: o.saveEvery,
    keep: o.keep,
    logEvery: o.logEvery ?? 1,
    tokenizerDir,
    resume: resumeDir,
    quiet: o.quiet,
    args,
    extraFiles,
    onStep: o.onStep,
    dist: o.dist ?? null,
  };
  if (!o.logEvery) {
    const steps = o.maxSteps ?? Math.floor((o.epochs * source.batchesPerEpoch) / o.accum);
    trainOpts.logEvery = steps < 1000 ? 1 : 10;
  }
  try {
    const result = await train(model, params, source, lossOf, trainOpts);
    // The finished model: LoRA writes the adapters; other stages the full model folder. Rank 0 writes it.
    if (o.dist && !o.dist.isMain) return result;
    if (o.stage === 'lora') saveLora(model, o.lora, o.out);
    else saveModelFolder(model, o.out, tokenizerDir);
    return result;
  } finally {
    loader.close();
    reference?.dispose();
    model.dispose();
  }
}
