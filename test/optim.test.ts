import { AdamW } from '../lib/optim/adamw';
import { clipGradNorm, gradNorm } from '../lib/optim/clip';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { expectClose, randn } from './helpers';

afterEach(() => resetStepArenas());

interface RefOpts {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/** torch.optim.Adam / AdamW, single-tensor path, in double precision. t counts from 1. */
function refAdamStep(p: number[], g: ArrayLike<number>, m: number[], v: number[], lr: number, t: number,
  o: RefOpts): void {
  const bc1 = 1 - o.beta1 ** t;
  const bc2 = 1 - o.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    let grad = g[i];
    if (o.decoupled) p[i] *= 1 - lr * o.weightDecay;
    else grad += o.weightDecay * p[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * grad;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * grad * grad;
    p[i] -= (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps));
  }
}

function param(data: Float32Array): Tensor {
  const t = Tensor.persistent([data.length]);
  t.upload(data);
  return t;
}

// Parameter sizes (the last one spans two threaded chunks), initial values and gradient noise, shared by
// every optimizer configuration below.
const SIZES = [1, 7, 33_001];
const INIT = SIZES.map((n, i) => randn(n, 10 + i));
const NOISE = SIZES.map((n, i) => Array.from(randn(n, 20 + i)));

describe.each([
  ['Adam (MiniMind v1: L2 form, wd 0)', { weightDecay: 0, decoupled: false }],
  ['Adam with L2 weight decay', { weightDecay: 0.1, decoupled: false }],
  ['AdamW, decoupled decay', { weightDecay: 0.1, decoupled: true }],
  ['AdamW, custom betas and eps', { weightDecay: 0.01, decoupled: true, beta1: 0.8, beta2: 0.95, eps: 1e-6 }],
])('%s', (_, opts) => {
  const o: RefOpts = { beta1: 0.9, beta2: 0.999, eps: 1e-8, ...opts };

  test('matches the reference over several steps; params without a gradient are skipped', () => {
    const params = INIT.map(param);
    const frozen = param(randn(5, 99));
    const opt = new AdamW([...params, frozen], { lr: 1e-3, ...opts });
    // Plain arrays: element writes to typed arrays are slow under jest's vm realm.
    const ref = INIT.map((x) => ({ p: Array.from(x), m: new Array<number>(x.length).fill(0), v: new Array<number>(x.length).fill(0) }));
    const lrs = [1e-3, 2e-3, 5e-4, 1e-2, 3e-3];
    lrs.forEach((lr, step) => {
      params.forEach((p, i) => {
        // A different gradient each step: the noise shifted and scaled.
        const g = NOISE[i].map((_, j) => NOISE[i][(j + 7 * step) % p.size] * (0.5 + step));
        p.grad = Tensor.from(g, p.shape);
        refAdamStep(ref[i].p, g, ref[i].m, ref[i].v, lr, step + 1, o);
      });
      opt.step(lr);
    });
    expect(opt.stepCount).toBe(lrs.length);
    params.forEach((p, i) => expectClose(p.toArray(), ref[i].p, 1e-6, 1e-5, `param ${i}`));
    const state = opt.exportState();
    state.m.forEach((m, i) => i < SIZES.length && expectClose(m, ref[i].m, 1e-6, 1e-5, `m ${i}`));
    state.v.forEach((v, i) => i < SIZES.length && expectClose(v, ref[i].v, 1e-7, 1e-5, `v ${i}`));
    expectClose(frozen.toArray(), randn(5, 99), 0, 0, 'frozen');
    opt.dispose();
    [...params, frozen].forEach((p) => p.dispose());
  });
});

test('exportState/importState resume bit-exactly; zeroGrad zeroes gradients', () => {
  const n = 1000;
  const x0 = randn(n, 1);
  const grads = [0, 1, 2, 3].map((s) => randn(n, 50 + s));
  const a = param(x0);
  const optA = new AdamW([a], { lr: 1e-2, weightDecay: 0.1 });
  for (const g of grads.slice(0, 2)) {
    a.grad = Tensor.from(g, [n]);
    optA.step(1e-2);
  }
  const b = param(a.toArray() as Float32Array);
  const optB = new AdamW([b], { lr: 1e-2, weightDecay: 0.1 });
  optB.importState(optA.exportState());
  expect(optB.stepCount).toBe(2);
  for (const g of grads.slice(2)) {
    for (const [p, opt] of [[a, optA], [b, optB]] as const) {
      p.grad = Tensor.from(g, [n]);
      opt.step(1e-2);
    }
  }
  expect(Buffer.from(b.toArray().buffer).equals(Buffer.from(a.toArray().buffer))).toBe(true);
  optA.zeroGrad();
  expect(a.grad!.toArray().every((v) => v === 0)).toBe(true);
  expect(() => optB.importState({ step: 1, m: [new Float32Array(3)], v: [new Float32Array(3)] })).toThrow(
    /AdamW.importState: moments of parameter 0/);
  for (const t of [a, b]) t.dispose();
  optA.dispose();
  optB.dispose();
});

test('bad options give clear errors', () => {
  const p = param(new Float32Array(2));
  expect(() => new AdamW([p], { lr: -1 })).toThrow('AdamW: opts.lr must be in [0, Infinity), got -1');
  expect(() => new AdamW([p], { lr: 1, beta1: 1 })).toThrow(/opts.beta1/);
  p.dispose();
});

describe('gradient norm and clipping', () => {
  const sizes = [3, 65_537, 70_001]; // the last two span two fixed chunks each
  const grads = sizes.map((n, i) => randn(n, 200 + i, 0.01));
  const refNorm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
  const withGrads = () =>
    grads.map((g) => {
      const p = Tensor.zeros([g.length]);
      p.grad = Tensor.from(g, [g.length]);
      return p;
    });

  test('gradNorm is the global L2 norm, bit-identical across calls; null gradients are skipped', () => {
    const params = [...withGrads(), Tensor.zeros([4])];
    const norm = gradNorm(params);
    expect(norm).toBeCloseTo(refNorm, 10);
    expect(gradNorm(params)).toBe(norm);
  });

  test('clipGradNorm scales by maxNorm / (norm + 1e-6) when the norm is larger; returns the norm before', () => {
    const params = withGrads();
    const maxNorm = refNorm / 4;
    expect(clipGradNorm(params, maxNorm)).toBeCloseTo(refNorm, 10);
    const coef = maxNorm / (refNorm + 1e-6);
    params.forEach((p, i) => expectClose(p.grad!.toArray(), grads[i].map((v) => v * coef), 1e-9, 1e-6));
    expect(gradNorm(params)).toBeCloseTo(maxNorm, 5);
  });

  test('clipGradNorm leaves small gradients alone', () => {
    const params = withGrads();
    expect(clipGradNorm(params, refNorm * 2)).toBeCloseTo(refNorm, 10);
    params.forEach((p, i) => expectClose(p.grad!.toArray(), grads[i], 0, 0));
  });
});
