// `minimind-native train pretrain|sft|lora|dpo [options]`
// Without --data, training uses the embedded demo (see lib/train/demo.ts): `train pretrain` then `train sft`
// give a small model that answers the demo's questions, on the CPU, in minutes.
import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { DEMO_CONFIG, ensureDemoData } from '../train/demo';
import { initDistributed } from '../dist';
import { parseTargets } from '../train/lora';
import { runTraining, RunOptions, Stage } from '../train/run';

interface TrainArgs {
  stage: Stage;
  'model-config'?: string;
  init?: string;
  data?: string;
  tokenizer?: string;
  out?: string;
  workspace: string;
  'batch-size'?: number;
  'seq-len'?: number;
  accum: number;
  lr?: number;
  'min-lr'?: number;
  warmup?: number;
  epochs: number;
  'max-steps'?: number;
  'weight-decay': number;
  optimizer: 'adamw' | 'adam';
  clip: number;
  seed: number;
  'save-every': number;
  keep: number;
  'log-every'?: number;
  device: 'cpu' | 'cuda';
  resume?: string;
  'aux-loss': boolean;
  'lora-rank': number;
  'lora-alpha'?: number;
  'lora-targets': string;
  'dpo-beta': number;
  'dpo-logp': 'sum' | 'mean';
  'train-on'?: 'last' | 'all';
  quiet: boolean;
}

/** MiniMind's learning rates per stage (pretrain uses a higher one, suited to small batches on a CPU). */
const STAGE_LR: Record<Stage, number> = { pretrain: 5e-4, sft: 1e-4, lora: 1e-4, dpo: 4e-5 };
/** Demo runs: enough steps to learn the demo facts in a few minutes on 2 cores (a short warm-up lets the
 * high learning rates start safely from random weights). */
const DEMO_STEPS: Record<Stage, { steps: number; lr: number; batch: number; seqLen?: number; warmup: number }> = {
  pretrain: { steps: 250, lr: 3e-3, batch: 16, seqLen: 128, warmup: 20 },
  sft: { steps: 400, lr: 1e-3, batch: 16, warmup: 10 },
  lora: { steps: 200, lr: 2e-3, batch: 16, warmup: 0 },
  dpo: { steps: 50, lr: 1e-5, batch: 4, warmup: 0 },
};

export async function resolveTrainOptions(argv: TrainArgs): Promise<RunOptions> {
  const stage = argv.stage;
  let data = argv.data;
  let init = argv.init ?? null;
  let out = argv.out;
  let modelConfig = argv['model-config'] ?? null;
  let tokenizer = argv.tokenizer ?? null;
  const demo = data === undefined;
  if (demo) {
    const p = await ensureDemoData(argv.workspace, argv.quiet);
    data = { pretrain: p.pretrainBin, sft: p.sftBin, lora: p.sftBin, dpo: p.dpoBin }[stage];
    tokenizer ??= p.tokenizer;
    if (stage === 'pretrain') {
      modelConfig ??= DEMO_CONFIG;
      out ??= p.pretrainOut;
    } else {
      init ??= stage === 'sft' ? p.pretrainOut : p.sftOut;
      out ??= `${p.root}/${stage}`;
      if (!fs.existsSync(`${init}/config.json`)) {
        throw new Error(`train ${stage} (demo): ${init} does not exist yet; run \`minimind-native train ${stage === 'sft' ? 'pretrain' : 'sft'}\` first`);
      }
    }
    if (!argv.quiet) console.error(`demo ${stage}: data ${data}, out ${out}`);
  }
  if (!out) throw new Error('--out is required when --data is given');
  const d = DEMO_STEPS[stage];
  const resume = argv.resume === undefined ? null : argv.resume === '' ? out : argv.resume;
  return {
    stage,
    modelConfig,
    init,
    data: data!,
    tokenizer,
    out,
    batchSize: argv['batch-size'] ?? (demo ? d.batch : 32),
    seqLen: argv['seq-len'] ?? (demo ? d.seqLen ?? null : null),
    accum: argv.accum,
    lr: argv.lr ?? (demo ? d.lr : STAGE_LR[stage]),
    minLr: argv['min-lr'] ?? null,
    warmup: argv.warmup ?? (demo ? d.warmup : 0),
    epochs: argv.epochs,
    maxSteps: argv['max-steps'] ?? (demo ? d.steps : null),
    weightDecay: argv['weight-decay'],
    optimizer: argv.optimizer,
    clip: argv.clip,
    seed: argv.seed,
    saveEvery: argv['save-every'],
    keep: argv.keep,
    logEvery: argv['log-every'] ?? null,
    device: argv.device,
    resume,
    auxLoss: argv['aux-loss'],
    lora: { rank: argv['lora-rank'], alpha: argv['lora-alpha'] ?? argv['lora-rank'], targets: parseTargets(argv['lora-targets']) },
    dpoBeta: argv['dpo-beta'],
    dpoLogp: argv['dpo-logp'],
    trainOn: argv['train-on'],
    quiet: argv.quiet,
  };
}

/** The options of `train`, shared with `demo` (which trains with their defaults). */
const TRAIN_OPTIONS = {
  'model-config': { type: 'string', describe: 'minimind-v1-small | minimind-v1-moe | minimind-v1 | demo-tiny | config.json' },
  init: { type: 'string', describe: 'start from this model folder' },
  data: { type: 'string', describe: 'prepared data (data prepare) or jsonl; default: the demo' },
  tokenizer: { type: 'string', describe: 'tokenizer folder (default: the --init folder\'s)' },
  out: { type: 'string', describe: 'output folder (final model + step-N checkpoints + metrics.jsonl)' },
  workspace: { type: 'string', default: 'minimind-demo', describe: 'demo workspace folder' },
  'batch-size': { type: 'number' },
  'seq-len': { type: 'number', describe: 'positions per row (default: max_seq_len - 1)' },
  accum: { type: 'number', default: 1, describe: 'micro-batches per optimizer step' },
  lr: { type: 'number', describe: 'peak learning rate' },
  'min-lr': { type: 'number', describe: 'final learning rate (default lr/10)' },
  warmup: { type: 'number', describe: 'warm-up optimizer steps (default 0; demo runs: a few)' },
  epochs: { type: 'number', default: 1 },
  'max-steps': { type: 'number', describe: 'optimizer steps (overrides --epochs)' },
  'weight-decay': { type: 'number', default: 0 },
  optimizer: { choices: ['adamw', 'adam'] as const, default: 'adamw' as const, describe: 'adamw (decoupled decay) or adam (torch.optim.Adam, MiniMind v1)' },
  clip: { type: 'number', default: 1.0, describe: 'gradient norm clip (0 = off)' },
  seed: { type: 'number', default: 1337 },
  'save-every': { type: 'number', default: 1000, describe: 'checkpoint every N optimizer steps' },
  keep: { type: 'number', default: 3, describe: 'checkpoints kept' },
  'log-every': { type: 'number', describe: 'metrics.jsonl line every N steps (default 1 for runs under 1000 steps)' },
  device: { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const },
  resume: { type: 'string', describe: 'continue from the newest checkpoint in DIR (default: --out)' },
  'aux-loss': { type: 'boolean', default: false, describe: 'add the MoE auxiliary loss (off for v1 parity)' },
  'lora-rank': { type: 'number', default: 16 },
  'lora-alpha': { type: 'number', describe: 'default: the rank' },
  'lora-targets': { type: 'string', default: 'wq,wo', describe: 'any of wq,wk,wv,wo,w1,w2,w3' },
  'dpo-beta': { type: 'number', default: 0.1 },
  'dpo-logp': { choices: ['sum', 'mean'] as const, default: 'sum' as const },
  'train-on': { choices: ['last', 'all'] as const,
    describe: 'sft/lora on jsonl tokenised on the fly: the last answer (v1) or every assistant turn (MiniMind2; default for jsonl); for prepared data use data prepare --train-on' },
  quiet: { type: 'boolean', default: false },
} as const;

/** The arguments `train STAGE` gets with every option at its default (what `demo` runs). */
export function defaultTrainArgs(stage: Stage, workspace: string, quiet: boolean): TrainArgs {
  const args: Record<string, unknown> = { stage, workspace, quiet };
  for (const [name, o] of Object.entries(TRAIN_OPTIONS)) {
    if ('default' in o && !(name in args)) args[name] = o.default;
  }
  return args as unknown as TrainArgs;
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train <stage>',
  describe: 'Train: pretrain, sft, lora or dpo (without --data: the embedded demo)',
  builder: (y: Argv) =>
    y
      .positional('stage', { choices: ['pretrain', 'sft', 'lora', 'dpo'] as const, type: 'string' })
      .options(TRAIN_OPTIONS) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    const opts = await resolveTrainOptions(argv);
    // Started by `launch`/torchrun (WORLD_SIZE > 1): join the other ranks; every rank must run the same options.
    const dist = await initDistributed({ backend: opts.device === 'cuda' ? 'nccl' : 'cpu', config: { ...opts, onStep: undefined } });
    let r;
    try {
      r = await runTraining({ ...opts, dist });
    } finally {
      dist?.close();
    }
    if (!argv.quiet && (!dist || dist.isMain)) {
      const last = r.losses.length ? r.losses[r.losses.length - 1].toFixed(4) : '-';
      console.error(`${r.interrupted ? 'interrupted' : 'done'}: ${r.steps} steps, last loss ${last}; model in ${opts.out}`);
    }
  },
};
