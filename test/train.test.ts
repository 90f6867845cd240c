// The training engine end to end on a tiny model: pretrain, SFT, LoRA and DPO runs, metrics, checkpoints,
// bit-exact resume (in process, after SIGKILL of a real CLI process, and after Ctrl-C), and bad input.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportModel } from '../lib/cli/io';
import { generate } from '../lib/infer/generate';
import { loadModelFolder } from '../lib/io/model-folder';
import { readSafetensors } from '../lib/io/safetensors';
import { learningRate } from '../lib/train/schedule';
import { applyLora, mergeLoraStateDict } from '../lib/train/lora';
import { listCheckpoints } from '../lib/train/checkpoint';
import { runTraining } from '../lib/train/run';
import { makeTrainFixture, runOptions, TrainFixture } from './train-fixture';

const ROOT = path.join(__dirname, '..');
let f: TrainFixture;
/** A briefly pretrained model that the SFT, LoRA and DPO tests start from. */
let base: string;

beforeAll(async () => {
  f = await makeTrainFixture();
  base = path.join(f.dir, 'base');
  await runTraining(runOptions(f, { out: base, maxSteps: 10, saveEvery: 0 }));
});
afterAll(() => fs.rmSync(f.dir, { recursive: true, force: true }));

const metrics = (out: string) =>
  fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('the learning-rate schedule follows MiniMind: linear warm-up, cosine to min_lr', () => {
  const s = { maxLr: 1, minLr: 0.1, warmup: 10, totalSteps: 110 };
  expect(learningRate(0, s)).toBe(0);
  expect(learningRate(5, s)).toBeCloseTo(0.5);
  expect(learningRate(10, s)).toBeCloseTo(1);
  expect(learningRate(60, s)).toBeCloseTo(0.55);
  expect(learningRate(110, s)).toBeCloseTo(0.1);
  expect(learningRate(200, s)).toBe(0.1);
});

test('pretrain: the loss falls, metrics.jsonl has a line per step, checkpoints are complete and pruned', async () => {
  const out = path.join(f.dir, 'pretrain');
  const r = await runTraining(runOptions(f, { out, maxSteps: 30, saveEvery: 10, keep: 2 }));
  expect(r.steps).toBe(30);
  expect(r.losses[29]).toBeLessThan(r.losses[0] - 0.5);
  const m = metrics(out);
  expect(m).toHaveLength(30);
  for (const line of m) for (const key of ['step', 'loss', 'lr', 'tokens_per_s']) expect(Number.isFinite(line[key])).toBe(true);
  expect(listCheckpoints(out).map((c) => c.step)).toEqual([20, 30]);
  for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'trainer.msgpack', 'manifest.json']) {
    expect(fs.existsSync(path.join(out, 'step-30', file))).toBe(true);
  }
  expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(true);
});

test('resume continues bit for bit from the last checkpoint', async () => {
  const full = await runTraining(runOptions(f, { out: path.join(f.dir, 'full'), maxSteps: 8, saveEvery: 4 }));
  const out = path.join(f.dir, 'interrupted');
  await expect(runTraining(runOptions(f, { out, maxSteps: 8, saveEvery: 4, onStep: ({ step }) => {
    if (step === 6) throw new Error('simulated crash');
  } }))).rejects.toThrow('simulated crash');
  const resumed = await runTraining(runOptions(f, { out, maxSteps: 8, saveEvery: 4, resume: out }));
  expect(resumed.losses).toEqual(full.losses.slice(4));
  expect(metrics(out).map((m) => m.loss)).toEqual(full.losses);
});

/** Runs the CLI from sources in a child process; `exit` resolves with its exit code, or the signal that ended it. */
function cli(args: string[]) {
  const child = spawn(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.js'), path.join(ROOT, 'bin/cli.ts'), ...args],
    { cwd: f.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  // Listen from the start: a child that finishes quickly must not be missed.
  const exit = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return Object.assign(child, { exit });
}

const trainArgs = (out: string, steps: number) => ['train', 'pretrain', '--data', f.pretrain, '--model-config', f.config,
  '--tokenizer', f.tokenizer, '--out', out, '--batch-size', '4', '--seq-len', '32', '--max-steps', String(steps),
  '--save-every', '2', '--keep', '100', '--log-every', '1', '--lr', '3e-3', '--warmup', '1', '--seed', '1', '--quiet'];

const exited = (p: ReturnType<typeof cli>) => p.exit;

test('a run killed with SIGKILL at a random moment resumes to the same loss curve', async () => {
  const steps = 120; // long enough that the kill lands while the run is still going
  const reference = await runTraining(runOptions(f, { out: path.join(f.dir, 'ref-kill'), maxSteps: steps, saveEvery: 2, keep: 100 }));
  const out = path.join(f.dir, 'killed');
  const child = cli(trainArgs(out, steps));
  // Wait for the first checkpoint, then kill at a random moment of the rest of the run.
  const t0 = Date.now();
  while (!fs.existsSync(path.join(out, 'step-2', 'manifest.json'))) {
    if (Date.now() - t0 > 60_000) throw new Error('no checkpoint appeared');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, Math.random() * 200));
  child.kill('SIGKILL');
  expect(await exited(child)).toBe('SIGKILL');
  const done = listCheckpoints(out).map((c) => c.step);
  expect(done.length).toBeGreaterThan(0);
  const resume = cli([...trainArgs(out, steps), '--resume']);
  expect(await exited(resume)).toBe(0);
  expect(metrics(out).map((m) => m.loss)).toEqual(reference.losses);
});

test('Ctrl-C saves a checkpoint and exits cleanly', async () => {
  const out = path.join(f.dir, 'sigint');
  const child = cli(trainArgs(out, 100000));
  const t0 = Date.now();
  while (!fs.existsSync(path.join(out, 'metrics.jsonl'))) {
    if (Date.now() - t0 > 60_000) throw new Error('the run did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  expect(await exited(child)).toBe(0);
  const last = listCheckpoints(out).pop()!;
  expect(last.step).toBe(metrics(out).length);
});

test('SFT from the pretrained model, then LoRA: only adapters train, they load, and merge-lora folds them in', async () => {
  const sft = path.join(f.dir, 'sft');
  const r = await runTraining(runOptions(f, { stage: 'sft', init: base, data: f.sft, out: sft, seqLen: null, maxSteps: 4, lr: 1e-3 }));
  expect(r.losses.every(Number.isFinite)).toBe(true);

  const lora = path.join(f.dir, 'lora');
  await runTraining(runOptions(f, { stage: 'lora', init: sft, data: f.sft, out: lora, seqLen: null, maxSteps: 4, lr: 1e-2 }));
  const adapters = readSafetensors(path.join(lora, 'adapter_model.safetensors')).tensors;
  expect([...adapters.keys()].sort()).toEqual(['layers.0.attention.wo.lora_A.weight', 'layers.0.attention.wo.lora_B.weight',
    'layers.0.attention.wq.lora_A.weight', 'layers.0.attention.wq.lora_B.weight', 'layers.1.attention.wo.lora_A.weight',
    'layers.1.attention.wo.lora_B.weight', 'layers.1.attention.wq.lora_A.weight', 'layers.1.attention.wq.lora_B.weight']);
  // B starts at zero; training moved it.
  const b = new Float32Array(adapters.get('layers.0.attention.wq.lora_B.weight')!.data.buffer.slice(0));
  expect(b.some((v) => v !== 0)).toBe(true);

  const prompt = [1, 5, 9, 20];
  const withAdapter = loadModelFolder(sft);
  applyLora(withAdapter, lora);
  const a = generate(withAdapter, prompt, { maxNewTokens: 8, temperature: 0 }).ids;
  withAdapter.dispose();
  const merged = path.join(f.dir, 'merged');
  exportModel({ model: sft, format: 'folder', out: merged, dtype: 'f32' }, (_cfg, sd) => mergeLoraStateDict(sd, lora));
  const m = loadModelFolder(merged);
  expect(generate(m, prompt, { maxNewTokens: 8, temperature: 0 }).ids).toEqual(a);
  m.dispose();
});

test('DPO: the loss starts at log 2 (policy = reference) and falls', async () => {
  const r = await runTraining(runOptions(f, { stage: 'dpo', init: base, data: f.dpo, out: path.join(f.dir, 'dpo'), seqLen: null,
    maxSteps: 6, lr: 5e-3, batchSize: 2 }));
  expect(r.losses[0]).toBeCloseTo(Math.log(2), 4);
  expect(Math.min(...r.losses.slice(1))).toBeLessThan(r.losses[0]);
});

test('bad input gets an error naming the file or field', async () => {
  await expect(runTraining(runOptions(f, { data: path.join(f.dir, 'missing.bin') }))).rejects.toThrow(/missing\.bin/);
  const badConfig = path.join(f.dir, 'bad.json');
  fs.writeFileSync(badConfig, JSON.stringify({ dim: 30, n_heads: 4 }));
  await expect(runTraining(runOptions(f, { modelConfig: badConfig }))).rejects.toThrow(/bad\.json.*n_heads/);
  fs.writeFileSync(badConfig, JSON.stringify({ dim: 64, n_heads: 8, n_kv_heads: 4 }));
  await expect(runTraining(runOptions(f, { modelConfig: badConfig }))).rejects.toThrow(/head dim .* multiple of 16/);
  await expect(runTraining(runOptions(f, { stage: 'sft', data: f.sft }))).rejects.toThrow(/--init/);
  const r = spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.js'), path.join(ROOT, 'bin/cli.ts'),
    'train', 'pretrain', '--data', path.join(f.dir, 'nope.jsonl'), '--out', path.join(f.dir, 'x')], { encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/nope\.jsonl/);
});

test('launch --nproc-per-node 2 -- train pretrain: two ranks train one model, rank 0 writes it', async () => {
  const out = path.join(f.dir, 'ddp');
  const child = cli(['launch', '--nproc-per-node', '2', '--', ...trainArgs(out, 4).filter((a) => a !== '--quiet')]);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  expect(await exited(child)).toBe(0);
  expect(output).toMatch(/starting 2 rank\(s\)/);
  // Only rank 0 reports progress; its lines carry the rank prefix.
  expect(output).toMatch(/\[rank 0\] effective batch: 4 x accum 1 x world 2 = 8/);
  expect(metrics(out)).toHaveLength(4);
  expect(listCheckpoints(out).map((c) => c.step)).toEqual([2, 4]);
  expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(true);
});
