// Fused softmax cross-entropy at MiniMind's shape (B*T = 4096 tokens, vocab 6400): memory-bound.
// Forward reads the logits once (per-row logsumexp only); backward reads them and writes the gradient
// over them (in place). The logits (105 MB) are far larger than the caches.
import { native } from '../../lib/native';
import { crossEntropy } from '../../lib/ops/loss';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const N = 4096;
const V = 6400;

function inputs() {
  const targets = Tensor.persistent([N], 'i32');
  targets.upload(Int32Array.from({ length: N }, (_, i) => (i * 2654435761) % V));
  return { logits: Tensor.persistent([N, V]).fill_(0.01), targets, lse: Tensor.persistent([N]).fill_(9) };
}

export function cases(): KernelCase[] {
  const shape = `BT=${N} V=${V}`;
  return [
    {
      kernel: 'cross_entropy',
      pass: 'fwd',
      shape,
      bytes: 4 * N * V,
      prepare: () => {
        const t = inputs();
        return () => void crossEntropy(t.logits, t.targets, { ignoreIndex: 0 });
      },
    },
    {
      kernel: 'cross_entropy',
      pass: 'bwd',
      shape,
      bytes: 2 * 4 * N * V,
      prepare: () => {
        const t = inputs();
        // In place, as crossEntropy's backward runs it (the "logits" become gradients after the first call;
        // the timing does not depend on the values).
        return () => native.cpu.softmaxXentBackward(t.logits.ptr, false, t.logits.ptr, t.lse.ptr, t.targets.ptr, 0, 0,
          1 / N, N, V, 0);
      },
    },
  ];
}
