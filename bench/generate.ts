// `minimind-native bench generate`: batch-1 generation speed of a named model with random weights:
// prefill of a 256-token prompt, then 256 decoded tokens (greedy, KV cache), and the process's peak memory.
import { Decoder } from '../lib/infer/generate';
import { loadConfig } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { native } from '../lib/native';

export interface GenerateBenchOptions {
  modelConfig: string;
  promptTokens: number;
  newTokens: number;
}

export interface GenerateBenchResult {
  model: string;
  threads: number;
  prompt_tokens: number;
  new_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  peak_rss_mb: number;
}

export function benchGenerate(o: GenerateBenchOptions): GenerateBenchResult {
  const cfg = loadConfig(o.modelConfig);
  if (o.promptTokens + o.newTokens > cfg.max_seq_len) {
    cfg.max_seq_len = o.promptTokens + o.newTokens; // a longer RoPE table; the weights do not depend on it
  }
  const model = new MiniMind(cfg);
  initWeights(model, 1);
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
    threads: native.cpu.threads(),
    prompt_tokens: o.promptTokens,
    new_tokens: n,
    prefill_tokens_per_s: o.promptTokens / prefillS,
    decode_tokens_per_s: n / decodeS,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}
