// Optimizer kernels on MiniMind's largest parameter, the tied embedding [6400, 512] (3.3M values; the
// four buffers, 52 MB, exceed the caches): memory-bound.
// Adam reads p, g, m, v and writes p, m, v (28 bytes a value); the gradient norm reads g (4 bytes a value).
import { AdamW } from '../../lib/optim/adamw';
import { gradNorm } from '../../lib/optim/clip';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const SHAPE = [6400, 512];
const n = SHAPE[0] * SHAPE[1];

function paramWithGrad(): Tensor {
  const p = Tensor.persistent(SHAPE).fill_(0.02);
  p.grad = Tensor.persistent(SHAPE).fill_(1e-3);
  return p;
}

export function cases(): KernelCase[] {
  const shape = `params=${SHAPE.join('x')}`;
  return [
    {
      kernel: 'adamw',
      pass: 'fwd',
      shape,
      bytes: 28 * n,
      prepare: () => {
        const opt = new AdamW([paramWithGrad()], { lr: 1e-4, weightDecay: 0.01 });
        return () => opt.step(1e-4);
      },
    },
    {
      kernel: 'grad_norm',
      pass: 'fwd',
      shape,
      bytes: 4 * n,
      prepare: () => {
        const params = [paramWithGrad()];
        return () => void gradNorm(params);
      },
    },
  ];
}
