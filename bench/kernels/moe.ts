// MoE routing kernels at MiniMind-MoE's shapes (N = B*T = 4096 tokens, E = 4 experts, top-2, C = 512): all
// memory-bound, reported as bytes moved per call against the measured bandwidth. Backward cases call the
// kernels directly with persistent buffers (the op-level backward needs a recorded forward every call).
import { noGrad } from '../../lib/autograd/tape';
import { native } from '../../lib/native';
import { MoeRouting, moeCombine, moeDispatch, moeRoute } from '../../lib/ops/moe';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const N = 4096;
const E = 4;
const K = 2;
const C = 512;
const F32 = 4;

function randomTensor(shape: number[], seed: number): Tensor {
  const t = Tensor.persistent(shape);
  // Deterministic values in (-1, 1): the fractional part of a scaled sine, a common shader-style hash.
  return t.upload(new Float32Array(t.size).map((_, i) => (Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1));
}

/** A routing whose tensors outlive the step, so dispatch and combine can be timed alone. */
function persistentRouting(): MoeRouting {
  return noGrad(() => {
    const r = moeRoute(randomTensor([N, E], 1), K, true);
    const keep = (t: Tensor) => Tensor.persistent(t.shape, t.dtype).copyFrom(t);
    return { ...r, weights: keep(r.weights), scores: keep(r.scores), orderTensor: keep(r.orderTensor),
      positionTensor: keep(r.positionTensor) };
  });
}

export function cases(): KernelCase[] {
  const shape = `N=${N} E=${E} k=${K} C=${C}`;
  const rows = N * K;
  return [
    {
      kernel: 'moe_route',
      pass: 'fwd',
      shape: `N=${N} E=${E} k=${K}`,
      // logits in, scores out; weights, experts, order, positions out (plus the host copies of experts and order).
      bytes: 2 * N * E * F32 + 6 * rows * F32,
      prepare: () => {
        const logits = randomTensor([N, E], 2);
        return () => {
          noGrad(() => moeRoute(logits, K, true));
        };
      },
    },
    {
      kernel: 'moe_route',
      pass: 'bwd',
      shape: `N=${N} E=${E} k=${K}`,
      // dlogits read and written; scores, dscores in; weights, experts, dweights in.
      bytes: 4 * N * E * F32 + 3 * rows * F32,
      prepare: () => {
        const r = persistentRouting();
        const experts = Tensor.persistent([rows], 'i32').upload(r.experts);
        const dweights = randomTensor([N, K], 3);
        const dscores = randomTensor([N, E], 4);
        const dlogits = Tensor.persistent([N, E]);
        return () => native.cpu.moeRouteBackward(dlogits.ptr, r.scores.ptr, r.weights.ptr, experts.ptr,
          dweights.ptr, dscores.ptr, N, E, K, true);
      },
    },
    {
      kernel: 'moe_dispatch',
      pass: 'fwd',
      shape,
      bytes: 2 * rows * C * F32, // each routed row read once and written once
      prepare: () => {
        const r = persistentRouting();
        const x = randomTensor([N, C], 5);
        return () => {
          noGrad(() => moeDispatch(x, r));
        };
      },
    },
    {
      kernel: 'moe_dispatch',
      pass: 'bwd',
      shape,
      bytes: (rows + 2 * N) * C * F32, // dout rows read; dx read and written
      prepare: () => {
        const r = persistentRouting();
        const dout = randomTensor([rows, C], 6);
        const dx = Tensor.persistent([N, C]);
        return () => native.cpu.moeDispatchBackward(dx.ptr, dout.ptr, r.positionTensor.ptr, N, K, C);
      },
    },
    {
      kernel: 'moe_combine',
      pass: 'fwd',
      shape,
      bytes: (rows + N) * C * F32, // expert rows read; y written
      prepare: () => {
        const r = persistentRouting();
        const expertOut = randomTensor([rows, C], 7);
        return () => {
          noGrad(() => moeCombine(expertOut, r));
        };
      },
    },
    {
      kernel: 'moe_combine',
      pass: 'bwd',
      shape,
      // d expertOut: dy read, dexpertOut read and written; d weights: dy and expertOut read again.
      bytes: (2 * N + 3 * rows) * C * F32,
      prepare: () => {
        const r = persistentRouting();
        const expertOut = randomTensor([rows, C], 8);
        const dy = randomTensor([N, C], 9);
        const dexpertOut = Tensor.persistent([rows, C]);
        const dweights = Tensor.persistent([N, K]);
        return () => native.cpu.moeCombineBackward(dexpertOut.ptr, dweights.ptr, dy.ptr, expertOut.ptr,
          r.weights.ptr, r.orderTensor.ptr, r.positionTensor.ptr, N, K, C);
      },
    },
  ];
}
