// Adam and AdamW over a list of f32 parameters, with torch's formulas (see native/cpu/optim.cc):
//   decoupled (AdamW):  p *= 1 - lr * wd                       (torch.optim.AdamW)
//   L2 (Adam):          g += wd * p                            (torch.optim.Adam, MiniMind v1 with wd = 0)
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),  t = 1, 2, ...
// Moments are persistent f32 tensors; each parameter is updated by one fused (threaded) native kernel.
// On cuda the parameters are f32 master weights: the kernel (native/cuda/kernels/adamw.cu) updates the master and
// writes its bf16 working copy (lib/cuda/mixed.ts) in the same pass; Adam's L2 term has its own entry point
// (adamL2), the same kernel with the decay added to the gradient.
import { cudaKernels } from '../cuda/kernels';
import { workingCopy } from '../cuda/mixed';
import { Tensor } from '../tensor/tensor';
import { assertDtype, kernels } from '../ops/kernels';

interface OptimKernels {
  adamStep(p: number, g: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, decoupled: boolean, step: number): void;
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** true (default): AdamW's decoupled decay; false: torch.optim.Adam's L2 term added to the gradient. */
  decoupled?: boolean;
}

export interface AdamWState {
  /** Updates done so far (the t of the bias correction of the last update). */
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

function checkRange(name: string, value: number, lo: number, hi: number, hiOpen: boolean): number {
  if (!(value >= lo && (hiOpen ? value < hi : value <= hi))) {
    throw new Error(`AdamW: opts.${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${value}`);
  }
  return value;
}

export class AdamW {
  /** Updates done so far; the next step() uses stepCount + 1 for the bias correction. */
  stepCount = 0;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(
    readonly params: Tensor[],
    opts: AdamWOptions,
  ) {
    this.lr = checkRange('lr', opts.lr, 0, Infinity, true);
    this.beta1 = checkRange('beta1', opts.beta1 ?? 0.9, 0, 1, true);
    this.beta2 = checkRange('beta2', opts.beta2 ?? 0.999, 0, 1, true);
    this.eps = checkRange('eps', opts.eps ?? 1e-8, 0, Infinity, true);
    this.weightDecay = checkRange('weightDecay', opts.weightDecay ?? 0, 0, Infinity, true);
    this.decoupled = opts.decoupled ?? true;
    params.forEach((p) => assertDtype(`AdamW: parameter ${p.name || p.describe()}`, p, 'f32'));
    this.m = params.map((p) => Tensor.persistent(p.shape, 'f32', p.device));
    this.v = params.map((p) => Tensor.persistent(p.shape, 'f32', p.device));
  }

  /** One update of every parameter that has a gradient, with learning rate `lr` (the schedule's value). */
  step(lr: number = this.lr): void {
    checkRange('lr', lr, 0, Infinity, true);
    this.stepCount++;
    const bc1 = 1 - this.beta1 ** this.stepCount;
    const bc2 = 1 - this.beta2 ** this.stepCount;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      if (p.device === 'cuda') {
        const update = this.decoupled ? cudaKernels().adamw : cudaKernels().adamL2;
        update(p.ptr, workingCopy(p).ptr, p.grad.ptr, this.m[i].ptr, this.v[i].ptr, p.size, lr, this.beta1,
          this.beta2, this.eps, this.weightDecay, bc1, bc2, 1, 0);
        return;
      }
      kernels<OptimKernels>(p.device).adamStep(p.ptr, p.grad.ptr, this.m[i].ptr, this.v[i].ptr, p.size, lr, this.beta1,
        this.beta2, this.eps, this.weightDecay, this.decoupled, this.stepCount);
    });
  }

  /** Zeroes every gradient in place (the buffers are kept for the next step). */
  zeroGrad(): void {
    for (const p of this.params) p.grad?.zero_();
  }

  /** A copy of the state, for checkpoints. */
  exportState(): AdamWState {
    return {
      step: this.stepCount,
      m: this.m.map((t) => t.toArray() as Float32Array),
      v: this.v.map((t) => t.toArray() as Float32Array),
    };
  }

  importState(s: AdamWState): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`AdamW.importState: step must be an integer >= 0, got ${s.step}`);
    if (s.m.length !== this.params.length || s.v.length !== this.params.length) {
      throw new Error(`AdamW.importState: state has ${s.m.length}/${s.v.length} moments, the optimizer ${this.params.length} parameters`);
    }
    this.params.forEach((p, i) => {
      if (s.m[i].length !== p.size || s.v[i].length !== p.size) {
        throw new Error(`AdamW.importState: moments of parameter ${i} (${p.name || p.describe()}) have ` +
          `${s.m[i].length}/${s.v[i].length} values, expected ${p.size}`);
      }
      this.m[i].upload(s.m[i]);
      this.v[i].upload(s.v[i]);
    });
    this.stepCount = s.step;
  }

  /** Frees the moments. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
