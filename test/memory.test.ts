// Memory stays flat over a long run: parameters, gradients and optimizer state are allocated once, activations
// come from the step arena (one block after the first step), and nothing large is left to the garbage collector.
import { backward, noGrad } from '../lib/autograd/tape';
import { resolveConfig } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { AdamW } from '../lib/optim/adamw';
import { clipGradNorm } from '../lib/optim/clip';
import { persistentBytes, resetStepArenas, stepArena } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';

test('100 training steps: persistent memory, the arena and RSS do not grow', () => {
  const model = new MiniMind(resolveConfig({ dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 256, max_seq_len: 64,
    hidden_dim: 128 }));
  initWeights(model, 1);
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const B = 4;
  const T = 32;
  const x = Int32Array.from({ length: B * T }, (_, i) => 1 + ((i * 13) % 255));
  const y = Int32Array.from({ length: B * T }, (_, i) => 1 + ((i * 7) % 255));
  const step = () => {
    const loss = model.loss(Tensor.from(x, [B, T], 'i32'), Tensor.from(y, [B, T], 'i32'), null);
    backward(loss);
    clipGradNorm(model.parameters(), 1);
    opt.step(1e-3);
    opt.zeroGrad();
    resetStepArenas();
  };
  for (let i = 0; i < 5; i++) step(); // warm up: gradients, moments and the arena's block are created
  const persistent = persistentBytes.cpu;
  const arena = stepArena('cpu').reservedBytes;
  global.gc?.();
  const rss = process.memoryUsage().rss;
  for (let i = 0; i < 100; i++) step();
  global.gc?.();
  expect(persistentBytes.cpu).toBe(persistent);
  expect(stepArena('cpu').reservedBytes).toBe(arena);
  // RSS may wobble with the JS heap, but must not grow with steps (each step's activations are ~1 MB here).
  expect(process.memoryUsage().rss - rss).toBeLessThan(32 << 20);
  opt.dispose();
  model.dispose();
});

test('activation gradients are released during backward: the step needs far less than forward + all gradients', () => {
  const cfg = resolveConfig({ dim: 64, n_layers: 8, n_heads: 4, n_kv_heads: 2, vocab_size: 256, max_seq_len: 64, hidden_dim: 128 });
  const model = new MiniMind(cfg);
  initWeights(model, 2);
  const B = 4;
  const T = 64;
  const x = Int32Array.from({ length: B * T }, (_, i) => 1 + ((i * 11) % 255));
  resetStepArenas();
  const arena = stepArena('cpu');
  const before = arena.highWater;
  const loss = model.loss(Tensor.from(x, [B, T], 'i32'), Tensor.from(x, [B, T], 'i32'), null);
  const forward = arena.highWater;
  expect(forward).toBeGreaterThan(before);
  backward(loss);
  // Keeping every activation gradient would about double the forward's bytes; released ones are reused.
  expect(arena.highWater - forward).toBeLessThan(0.3 * forward);
  // A released gradient is gone: reading it is an error, not stale data. retainGrad keeps one.
  expect(loss.grad).toBeNull();
  const logits = model.forward(Tensor.from(x, [B, T], 'i32'));
  logits.retainGrad = true;
  const h = Tensor.from(new Float32Array(logits.size).fill(1), logits.shape);
  backward(logits, h);
  expect(logits.grad!.toArray()[0]).toBe(1);
  resetStepArenas();
  model.dispose();
});

test('a released arena tensor throws when used, and its bytes are reused by the next allocation of that size', () => {
  resetStepArenas();
  const a = Tensor.zeros([1000]);
  const address = a.ptr;
  a.release();
  expect(() => a.ptr).toThrow(/released/);
  const b = Tensor.zeros([1000]);
  expect(b.ptr).toBe(address);
  resetStepArenas();
});

test('inference keeps one layer of activations: a forward under noGrad uses about as much arena for 8 layers as for 2', () => {
  const highWater = (layers: number) => {
    const model = new MiniMind(resolveConfig({ dim: 64, n_layers: layers, n_heads: 4, n_kv_heads: 2, vocab_size: 256,
      max_seq_len: 64, hidden_dim: 128 }));
    initWeights(model, 3);
    const x = Tensor.from(Int32Array.from({ length: 2 * 64 }, (_, i) => 1 + (i % 255)), [2, 64], 'i32');
    const arena = stepArena('cpu');
    const before = arena.highWater;
    const logits = noGrad(() => model.forward(x));
    const used = arena.highWater - before;
    const values = logits.toArray(); // the result survives the rewinds
    resetStepArenas();
    model.dispose();
    return { used, values };
  };
  resetStepArenas();
  highWater(2); // the arena's first chunks
  resetStepArenas();
  const two = highWater(2);
  const eight = highWater(8);
  expect(eight.used).toBeLessThan(1.05 * two.used);
  expect(two.values.every(Number.isFinite)).toBe(true);
});
