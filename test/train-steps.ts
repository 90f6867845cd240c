// A bare training loop for tests that compare devices: AdamW steps of loss -> backward -> (clip) -> step.
// Tests that emulate cuda require this after setting MINIMIND_CUDA_EMULATE (it loads the native addon).
import { backward } from '../lib/autograd/tape';
import { AdamW, AdamWOptions } from '../lib/optim/adamw';
import { clipGradNorm } from '../lib/optim/clip';
import { resetStepArenas } from '../lib/tensor/memory';
import type { Tensor } from '../lib/tensor/tensor';

/** Runs `steps` optimizer steps on `params`, `lossOf(step)` giving each step's loss; returns the losses. */
export function trainSteps(params: Tensor[], optimizerOpts: AdamWOptions, steps: number, lossOf: (step: number) => Tensor,
  clip: number | null = 1): number[] {
  const optimizer = new AdamW(params, optimizerOpts);
  const losses: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const loss = lossOf(step);
      losses.push(loss.item());
      backward(loss);
      resetStepArenas();
      if (clip !== null) clipGradNorm(params, clip);
      optimizer.step();
      optimizer.zeroGrad();
      resetStepArenas();
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}
