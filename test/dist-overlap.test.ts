// GradientOverlap (lib/dist/overlap.ts): during the backward pass each layer's gradients are handed to the
// all-reduce as soon as they are complete, last layer first, then the rest; with a fake Dist that records
// what it is given, a copy taken at that moment must equal the final gradient.
import { backward, gradOf } from '../lib/autograd/tape';
import type { Dist } from '../lib/dist';
import { GradientOverlap } from '../lib/dist/overlap';
import { add } from '../lib/ops/elementwise';
import { resolveConfig } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { resetStepArenas } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';

interface Started {
  names: string[];
  grads: Float32Array[];
}

/** Records the parameter (by name) whose gradient each started tensor is, and a copy of it. */
function fakeDist(params: Tensor[], started: Started[], waits: { n: number }): Dist {
  return {
    allReduceMeanStart: (grads: Tensor[]) => {
      started.push({ names: grads.map((g) => params.find((p) => p.grad === g)!.name), grads: grads.map((g) => g.toArray() as Float32Array) });
    },
    waitAll: () => {
      waits.n++;
    },
  } as unknown as Dist;
}

function tinyModel(): MiniMind {
  const model = new MiniMind(resolveConfig({ dim: 32, n_layers: 3, n_heads: 2, n_kv_heads: 1, vocab_size: 64,
    max_seq_len: 16, hidden_dim: 48 }));
  initWeights(model, 5);
  return model;
}

const tokens = () => Tensor.from(Int32Array.from({ length: 2 * 8 }, (_, i) => 1 + ((i * 5) % 63)), [2, 8], 'i32');

/** Runs forward passes (their losses summed) and backward with the overlap armed; returns what was started. */
function run(model: MiniMind, passes: number): { started: Started[]; waits: number } {
  const started: Started[] = [];
  const waits = { n: 0 };
  const params = model.parameters();
  const overlap = new GradientOverlap(fakeDist(params, started, waits), params);
  overlap.arm(model);
  let loss = model.loss(tokens(), tokens(), null);
  for (let p = 1; p < passes; p++) loss = add(loss, model.loss(tokens(), tokens(), null));
  backward(loss);
  overlap.finish(model);
  // Every started gradient was already final when it was started.
  for (const s of started) {
    s.names.forEach((name, i) => {
      const param = params.find((p) => p.name === name)!;
      expect(Array.from(s.grads[i])).toEqual(Array.from(gradOf(param).toArray()));
    });
  }
  resetStepArenas();
  for (const p of params) p.grad?.zero_();
  return { started, waits: waits.n };
}

const layerOf = (names: string[]) => [...new Set(names.map((n) => n.split('.').slice(0, 2).join('.')))];

test('each layer is averaged once its gradients are complete, last layer first, then embedding and norm', () => {
  const model = tinyModel();
  const { started, waits } = run(model, 1);
  expect(started.map((s) => layerOf(s.names))).toEqual([['layers.2'], ['layers.1'], ['layers.0'], ['tok_embeddings.weight', 'norm.weight']]);
  // Every parameter exactly once, and one wait.
  expect(started.flatMap((s) => s.names).sort()).toEqual(model.parameters().map((p) => p.name).sort());
  expect(waits).toBe(1);
  expect(model.layerBackwardHook).toBeNull();
  model.dispose();
});

test('a layer used by two forward passes (DPO) starts after the backward of both', () => {
  const model = tinyModel();
  const { started } = run(model, 2);
  expect(started.map((s) => layerOf(s.names)[0])).toEqual(['layers.2', 'layers.1', 'layers.0', 'tok_embeddings.weight']);
  model.dispose();
});
