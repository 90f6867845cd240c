// The CLI as a user runs it (a real process from the TypeScript sources): info, generate, chat in a pipe,
// eval loss and ceval, plot, bench (JSON shapes).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../lib/infer/generate';
import { loadModelFolder } from '../lib/io/model-folder';
import { Tokenizer } from '../lib/tokenizer';
import { makeModelFolder } from './serve-fixture';

const ROOT = path.join(__dirname, '..');
const CEVAL = path.join(__dirname, '../../shared/fixtures/minimind/v1_2024-10-15_6861d1a/ceval-exam/val');
let model: string;
let work: string;

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.js'), path.join(ROOT, 'bin/cli.ts'), ...args],
    { encoding: 'utf8', input, cwd: work, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  model = await makeModelFolder();
  work = path.dirname(model);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('info --json reports version, backends, CUDA devices with the driver error, CPU features, threads', () => {
  const r = cli(['info', '--json']);
  expect(r.code).toBe(0);
  const info = JSON.parse(r.out);
  expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
  expect(info.backends.cpu).toBe('compiled');
  expect(['compiled', 'not compiled']).toContain(info.backends.cuda);
  expect(typeof info.cuda.devices).toBe('number');
  if (info.cuda.devices === 0) expect(info.cuda.error).toMatch(/\w/);
  expect(['avx512', 'avx2', 'portable']).toContain(info.cpu.kernel_path);
  expect(info.cpu.threads).toBeGreaterThan(0);
  expect(JSON.parse(cli(['info', '--json', '--threads', '1']).out).cpu.threads).toBe(1);
});

test('generate --json with --prompt-ids matches the library, and --prompt tokenizes text', () => {
  const r = cli(['generate', '--model', model, '--prompt-ids', '1,5,9', '--temperature', '0', '--max-new-tokens', '6', '--json']);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.out);
  const m = loadModelFolder(model);
  const expected = generate(m, [1, 5, 9], { maxNewTokens: 6, temperature: 0, eosIds: [2] }).ids;
  m.dispose();
  expect(out.ids).toEqual(expected);
  expect(typeof out.text).toBe('string');
  const t = cli(['generate', '--model', model, '--prompt', 'The capital of', '--max-new-tokens', '4', '--seed', '3']);
  expect(t.code).toBe(0);
  expect(cli(['generate', '--model', model]).code).not.toBe(0);
});

test('chat works in a pipe, with /reset and /exit', () => {
  const r = cli(['chat', '--model', model, '--max-new-tokens', '4', '--temperature', '0'], 'hello\n/reset\nwho are you?\n/exit\nnever read\n');
  expect(r.code).toBe(0);
  // Each answer is printed followed by a newline; /reset and /exit print nothing in a pipe; input after /exit is
  // not read. With no history kept, each answer is the greedy continuation of its own one-message prompt.
  const m = loadModelFolder(model);
  const tok = Tokenizer.load(model);
  const answer = (q: string) => tok.decode(generate(m, tok.encode(tok.applyChatTemplate([{ role: 'user', content: q }], true)),
    { maxNewTokens: 4, temperature: 0, eosIds: [tok.eosId] }).ids);
  expect(r.out).toBe(`${answer('hello')}\n${answer('who are you?')}\n`);
  m.dispose();
});

test('eval loss --json on a token file and on jsonl text', () => {
  const tokens = path.join(work, 'tokens.bin');
  fs.writeFileSync(tokens, Buffer.from(Uint16Array.from({ length: 600 }, (_, i) => 1 + ((i * 7) % 500)).buffer));
  const r = cli(['eval', 'loss', '--model', model, '--data', tokens, '--seq-len', '100', '--json']);
  expect(r.code).toBe(0);
  const rep = JSON.parse(r.out);
  expect(rep.tokens).toBe(6 * 99);
  expect(rep.perplexity).toBeCloseTo(Math.exp(rep.mean_loss), 6);
  const j = cli(['eval', 'loss', '--model', model, '--data', path.join(work, 'data', 'pretrain.jsonl'), '--seq-len', '64', '--json']);
  expect(j.code).toBe(0);
  expect(JSON.parse(j.out).mean_loss).toBeGreaterThan(0);
  const bad = cli(['eval', 'loss', '--model', model, '--data', path.join(work, 'odd.bin')]);
  expect(bad.code).not.toBe(0);
});

test('eval ceval writes per-subject results like upstream', () => {
  const data = path.join(work, 'ceval');
  fs.mkdirSync(data);
  for (const f of ['computer_network_val.csv', 'operating_system_val.csv']) fs.copyFileSync(path.join(CEVAL, f), path.join(data, f));
  const out = path.join(work, 'ceval_result');
  const r = cli(['eval', 'ceval', '--model', model, '--data', data, '--out', out, '--json']);
  expect(r.code).toBe(0);
  const rep = JSON.parse(r.out);
  expect(rep.subjects.map((s: { subject: string }) => s.subject)).toEqual(['computer_network', 'operating_system']);
  expect(rep.total).toBe(rep.subjects.reduce((n: number, s: { total: number }) => n + s.total, 0));
  const csv = fs.readFileSync(path.join(out, 'computer_network_val_result.csv'), 'utf8').trim().split('\n');
  expect(csv[0]).toBe('question,A,B,C,D,answer,llm_answer,is_right');
  expect(csv[csv.length - 1]).toMatch(/文件 computer_network_val.csv 的正确率: \d+\.\d\d%/);
  expect(fs.readFileSync(path.join(out, 'test.log'), 'utf8')).toMatch(/总题数: \d+/);
});

test('plot draws an SVG of a run\'s metrics', () => {
  const run = path.join(work, 'run');
  fs.mkdirSync(run);
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), [1, 2, 3].map((s) => JSON.stringify({ step: s, loss: 5 - s, lr: 1e-3, tokens_per_s: 100 * s })).join('\n') + '\n');
  const r = cli(['plot', '--run', run]);
  expect(r.code).toBe(0);
  const svg = fs.readFileSync(path.join(run, 'curves.svg'), 'utf8');
  expect(svg).toMatch(/^<svg/);
  expect(svg.match(/<path /g)).toHaveLength(3);
});

test('bench kernels, train and generate --json have the documented fields', () => {
  const k = cli(['bench', 'kernels', '--json', '--filter', 'add']);
  expect(k.code).toBe(0);
  const rep = JSON.parse(k.out);
  for (const key of ['threads', 'peak_gflops', 'bandwidth_gbps']) expect(rep.machine[key]).toBeGreaterThan(0);
  expect(Object.keys(rep.kernels[0]).sort()).toEqual(['gbps', 'gflops', 'kernel', 'median_s', 'pass', 'pct_peak', 'shape']);
  const t = cli(['bench', 'train', '--model-config', 'demo-tiny', '--batch-size', '1', '--seq-len', '32', '--steps', '1', '--json']);
  expect(t.code).toBe(0);
  const tr = JSON.parse(t.out);
  for (const key of ['tokens_per_s', 'step_s', 'mfu', 'peak_rss_mb']) expect(tr[key]).toBeGreaterThan(0);
  const g = cli(['bench', 'generate', '--model-config', 'demo-tiny', '--json']);
  expect(g.code).toBe(0);
  const gr = JSON.parse(g.out);
  expect(gr.new_tokens).toBe(256);
  for (const key of ['prefill_tokens_per_s', 'decode_tokens_per_s', 'peak_rss_mb']) expect(gr[key]).toBeGreaterThan(0);
});
