// The demo pipeline end to end at a reduced scale: the workspace (corpus, tokenizer, prepared files), the
// defaults `train pretrain` / `train sft` take without data arguments, a few steps of each, held-out scoring and
// the report `demo` prints. Only the plumbing is checked here: the accuracy of the full demo takes minutes and is
// measured by running `minimind-native demo`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultTrainArgs, resolveTrainOptions } from '../lib/cli/train';
import { NAMED_CONFIGS } from '../lib/nn/config';
import { runTraining } from '../lib/train/run';
import { DEMO_CONFIG, DEMO_SFT_LEN, DEMO_VOCAB, demoReport, ensureDemoData, scoreHeldout } from '../lib/train/demo';

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-pipeline-'));
afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }));

test('the workspace is made once; the demo rows fit and the tokenizer fits the model', async () => {
  const p = await ensureDemoData(workspace, true);
  const sft = JSON.parse(fs.readFileSync(`${p.sftBin}.json`, 'utf8'));
  expect(sft.seqLen).toBe(DEMO_SFT_LEN);
  expect(sft.counts.truncated).toBe(0);
  expect(sft.tokenizer.vocabSize).toBe(DEMO_VOCAB);
  expect(NAMED_CONFIGS[DEMO_CONFIG].vocab_size).toBeGreaterThanOrEqual(DEMO_VOCAB);
  expect(NAMED_CONFIGS[DEMO_CONFIG].max_seq_len).toBeGreaterThanOrEqual(DEMO_SFT_LEN);
  const made = fs.statSync(p.pretrainBin).mtimeMs;
  await ensureDemoData(workspace, true);
  expect(fs.statSync(p.pretrainBin).mtimeMs).toBe(made);
});

test('train pretrain then sft with the demo defaults (a few steps), then scoring and the report', async () => {
  for (const stage of ['pretrain', 'sft'] as const) {
    const args = defaultTrainArgs(stage, workspace, true);
    const demoDefaults = await resolveTrainOptions(args);
    expect(demoDefaults.maxSteps).toBeGreaterThan(0);
    expect(demoDefaults.warmup).toBeLessThan(demoDefaults.maxSteps!);
    if (stage === 'pretrain') expect(demoDefaults.modelConfig).toBe(DEMO_CONFIG);
    else expect(demoDefaults.init).toBe(path.join(workspace, 'pretrain'));
    const r = await runTraining({ ...demoDefaults, maxSteps: 3, batchSize: 2, warmup: 1 });
    expect(r.steps).toBe(3);
    expect(r.losses.every(Number.isFinite)).toBe(true);
  }
  const p = await ensureDemoData(workspace, true);
  const score = scoreHeldout(p.sftOut, p.heldout, 8);
  expect(score.total).toBe(8);
  expect(score.samples).toHaveLength(8);
  expect(score.accuracy).toBeCloseTo(score.correct / 8);
  for (const s of score.samples) {
    expect(s.question.length).toBeGreaterThan(0);
    expect(typeof s.answer).toBe('string');
  }

  const lines = demoReport(score, 12.3).split('\n');
  expect(lines[0]).toBe('sample answers:');
  expect(lines.filter((l) => l.startsWith('  Q: '))).toHaveLength(6);
  expect(lines.filter((l) => /^ {2}A: .*\[(right|wrong)\]$/.test(l))).toHaveLength(6);
  expect(lines).toContain(`held-out: ${score.correct}/8 in 12 s`);
  expect(lines[lines.length - 1]).toBe(`accuracy: ${Math.round(100 * score.correct / 8)}%`);
});
