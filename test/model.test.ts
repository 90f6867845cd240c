// The MiniMind model against the upstream PyTorch code: parameter counts of the named configs, and the
// reference vectors in ../shared/fixtures/minimind/golden_v1_tiny_forward.json (formula weights; logits,
// per-token loss, greedy decodes with and without the KV cache), dense and MoE.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad } from '../lib/autograd/tape';
import { tokenLosses } from '../lib/ops/loss';
import { activeParameterCount, loadConfig, parameterCount, resolveConfig } from '../lib/nn/config';
import { MiniMind } from '../lib/nn/model';
import { generate } from '../lib/infer/generate';
import { resetStepArenas } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';
import { expectClose } from './helpers';

const GOLDEN = path.join(__dirname, '../../shared/fixtures/minimind/golden_v1_tiny_forward.json');

afterEach(() => resetStepArenas());

test.each([
  ['minimind-v1-small', 26_878_464],
  ['minimind-v1-moe', 96_100_864],
  ['minimind-v1', 108_749_568],
])('%s has %i parameters', (name, count) => {
  expect(parameterCount(loadConfig(name))).toBe(count);
});

test('the MoE model runs about 61,497,856 parameters per token (top-2 of 4 experts)', () => {
  expect(activeParameterCount(loadConfig('minimind-v1-moe'))).toBe(61_497_856);
  expect(activeParameterCount(loadConfig('minimind-v1-small'))).toBe(26_878_464);
});

interface GoldenCase {
  config: Record<string, unknown>;
  param_order_for_weight_formula: string[];
  input_tokens: number[];
  logits: number[][];
  loss_per_token_ignore_index0: number[];
  greedy_prompt: number[];
  greedy_generated_kv_cache: number[];
  greedy_generated_no_cache: number[];
}

/** Builds the golden model: weights from the fixture's formula, computed in float64 then cast. */
function goldenModel(c: GoldenCase): MiniMind {
  const cfg = resolveConfig({ ...c.config, hidden_dim: c.config.hidden_dim_resolved as number });
  const model = new MiniMind(cfg);
  c.param_order_for_weight_formula.forEach((name, t) => {
    const p = model.params.get(name);
    const data = new Float32Array(p.size);
    const isNorm = name.endsWith('norm.weight');
    for (let j = 0; j < data.length; j++) {
      const s = Math.sin(0.7 * j + 1.3 * t + 0.1);
      data[j] = isNorm ? 1 + 0.05 * s : 0.05 * s;
    }
    p.upload(data);
  });
  expect(c.param_order_for_weight_formula.length).toBe(model.params.tensors.size);
  return model;
}

const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as Record<string, GoldenCase>;

describe.each(['dense', 'moe'])('golden v1 tiny %s model', (kind) => {
  const c = golden[kind];
  let model: MiniMind;
  beforeAll(() => {
    model = goldenModel(c);
  });
  afterAll(() => model.dispose());

  test('logits match the upstream forward to 1e-4', () => {
    const T = c.input_tokens.length;
    const logits = noGrad(() => model.forward(Tensor.from(Int32Array.from(c.input_tokens), [1, T], 'i32')).toArray());
    expectClose(logits, c.logits.flat(), 1e-4, 0, 'logits');
  });

  test('per-token loss (ignore index 0) matches', () => {
    const x = c.input_tokens.slice(0, -1);
    const y = c.input_tokens.slice(1);
    const losses = noGrad(() => {
      const logits = model.forward(Tensor.from(Int32Array.from(x), [1, x.length], 'i32'));
      return tokenLosses(logits.reshapeView([x.length, model.cfg.vocab_size]), Tensor.from(Int32Array.from(y), [y.length], 'i32'));
    });
    const ignored = Float32Array.from(losses, (l, i) => (y[i] === 0 ? 0 : l));
    expectClose(ignored, c.loss_per_token_ignore_index0, 1e-4, 0, 'loss');
  });

  test('greedy decodes match, with and without the KV cache', () => {
    const n = c.greedy_generated_kv_cache.length;
    const cached = generate(model, c.greedy_prompt, { maxNewTokens: n, temperature: 0, kvCache: true });
    const uncached = generate(model, c.greedy_prompt, { maxNewTokens: n, temperature: 0, kvCache: false });
    expect(cached.ids).toEqual(c.greedy_generated_kv_cache);
    expect(uncached.ids).toEqual(c.greedy_generated_no_cache);
  });
});
