// `minimind-native bench generate`: batch-1 generation speed of a named model with random weights: prefill of
// a 256-token prompt, then 256 decoded tokens (greedy, KV cache), and the process's peak memory (max RSS).
//
// The model is loaded the way a user's process loads one: the bench first writes a model folder of random
// weights to a temporary directory (streamed tensor by tensor: the writer never holds the model), then loads
// it with `loadModelFolder(dir, 'cpu', dtype)`, so the peak RSS counts what generate/chat/serve would cost.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Decoder } from '../lib/infer/generate';
import { WeightDtype } from '../lib/infer/weights';
import { loadModelFolder } from '../lib/io/model-folder';
import { v1TensorShapes } from '../lib/io/state-dict';
import { configJson, LMConfig, loadConfig } from '../lib/nn/config';
import { native } from '../lib/native';
import { Rng } from '../lib/util/random';

export interface GenerateBenchOptions {
  modelConfig: string;
  dtype: WeightDtype;
  promptTokens: number;
  newTokens: number;
}

export interface GenerateBenchResult {
  model: string;
  dtype: WeightDtype;
  threads: number;
  prompt_tokens: number;
  new_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  peak_rss_mb: number;
}

/**
 * Writes config.json and model.safetensors (f32; the tied output.weight is left out, loaders fall back to
 * tok_embeddings) with random weights: norms 1, every matrix N(0, 0.02) (speed does not depend on the values).
 */
export function writeRandomModelFolder(cfg: LMConfig, dir: string, seed: number): void {
  const shapes = v1TensorShapes(cfg).filter(([name]) => name !== 'output.weight');
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', source: 'minimind-native bench' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const prefix = Buffer.alloc(8 + Buffer.byteLength(json));
  prefix.writeBigUInt64LE(BigInt(prefix.length - 8), 0);
  prefix.write(json, 8, 'utf8');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson(cfg), null, 2) + '\n');
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  try {
    fs.writeSync(fd, prefix);
    const rng = new Rng(seed);
    const piece = new Float32Array(1 << 18); // written a piece at a time: the bench's own memory stays small
    for (const [, shape] of shapes) {
      for (let left = shape.reduce((a, b) => a * b, 1); left > 0; left -= piece.length) {
        const data = piece.subarray(0, Math.min(left, piece.length));
        if (shape.length === 1) data.fill(1);
        else for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
        fs.writeSync(fd, new Uint8Array(data.buffer, 0, data.byteLength));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function benchGenerate(o: GenerateBenchOptions): GenerateBenchResult {
  const cfg = loadConfig(o.modelConfig);
  // A context long enough for the run (RoPE table and KV caches; the weights do not depend on it).
  cfg.max_seq_len = Math.max(cfg.max_seq_len, o.promptTokens + o.newTokens);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minimind-bench-'));
  let model;
  try {
    writeRandomModelFolder(cfg, dir, 1);
    model = loadModelFolder(dir, 'cpu', o.dtype);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const prompt = Array.from({ length: o.promptTokens }, (_, i) => 3 + ((i * 7919) % (cfg.vocab_size - 3)));
  // Greedy decoding of random weights can hit eos early; no eos ids are given, so it always runs newTokens.
  const opts = { maxNewTokens: o.newTokens, temperature: 0 };
  // Warm-up at full length: the step arena and caches reach their steady size (a server's state after its
  // first request), so the timed run measures compute, not first-touch page faults.
  const warm = new Decoder(model, prompt, { ...opts, maxNewTokens: 2 });
  warm.next();
  warm.finish('stop');
  let t0 = process.hrtime.bigint();
  const d = new Decoder(model, prompt, opts);
  const prefillS = Number(process.hrtime.bigint() - t0) / 1e9;
  t0 = process.hrtime.bigint();
  let n = 0;
  while (d.next() !== null) n++;
  const decodeS = Number(process.hrtime.bigint() - t0) / 1e9;
  model.dispose();
  return {
    model: o.modelConfig,
    dtype: o.dtype,
    threads: native.cpu.threads(),
    prompt_tokens: o.promptTokens,
    new_tokens: n,
    prefill_tokens_per_s: o.promptTokens / prefillS,
    decode_tokens_per_s: n / decodeS,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}
