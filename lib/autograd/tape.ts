// The autograd tape. Each op that has an input requiring a gradient records a closure that, given the
// gradient of its output, adds (+=) the gradients of its inputs. backward(loss) seeds d(loss)=1 and runs
// the closures in reverse order. Parameter gradients are persistent and accumulate across backward calls
// (gradient accumulation is free); activation gradients live in the step arena and are released as soon as
// the op that produced the activation has back-propagated them: every op that reads an activation was
// recorded after the op that made it, so by then its gradient is complete and nothing else needs it.
import { Tensor } from '../tensor/tensor';

type Backward = () => void;

const tape: Backward[] = [];
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording anything (inference, evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

/**
 * Records an op's backward. `outputs` become requiresGrad; `backward` runs once during backward(), after
 * every later op's backward, and reads the outputs' .grad (it is skipped when none of them got a gradient).
 */
export function record(outputs: Tensor | Tensor[], backward: Backward): void {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  for (const o of outs) o.requiresGrad = true;
  tape.push(() => {
    if (outs.some((o) => o.grad !== null)) backward();
    for (const o of outs) {
      if (o.grad && !o.grad.isPersistent && !o.retainGrad) {
        o.grad.release();
        o.grad = null;
      }
    }
  });
}

/**
 * Calls `reached` when backward() gets to this point: after the backward of every op recorded later. (A model
 * marks where each layer starts, so the gradients of a layer's parameters are known to be final there.)
 */
export function onBackward(reached: () => void): void {
  if (gradEnabled) tape.push(reached);
}

/**
 * The gradient buffer of t, created zero-filled on first use: persistent for persistent tensors
 * (parameters), step-arena otherwise. Backward closures accumulate into it with +=.
 */
export function gradOf(t: Tensor): Tensor {
  if (!t.grad) {
    t.grad = t.isPersistent ? Tensor.persistent(t.shape, 'f32', t.device) : Tensor.zeros(t.shape, 'f32', t.device);
  }
  return t.grad;
}

/** Back-propagates from a scalar loss (or from a given output gradient) and clears the tape. */
export function backward(loss: Tensor, seed?: Tensor): void {
  if (!loss.requiresGrad) throw new Error('backward: the loss does not depend on any tensor that requires grad');
  const g = gradOf(loss);
  if (seed) g.copyFrom(seed);
  else {
    if (loss.size !== 1) throw new Error(`backward: loss ${loss.describe()} is not a scalar; pass a seed gradient`);
    g.fill_(1);
  }
  try {
    for (let i = tape.length - 1; i >= 0; i--) tape[i]();
  } finally {
    tape.length = 0;
  }
}

