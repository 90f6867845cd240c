// MiniMind's weight initialisation (model.py _init_weights), seeded:
//   every Linear and Embedding weight ~ N(0, 0.02); then w3 and wo weights ~ N(0, 0.02 / sqrt(2 * n_layers));
//   RMSNorm weights = 1; the MoE gate keeps PyTorch's Linear default, kaiming_uniform(a=√5) = U(±1/√dim).
import { Rng } from '../util/random';
import { LMConfig } from './config';
import { MiniMind } from './model';

export function initWeights(model: MiniMind, seed: number): void {
  const rng = new Rng(seed);
  const cfg: LMConfig = model.cfg;
  const residualStd = 0.02 / Math.sqrt(2 * cfg.n_layers);
  for (const [name, t] of model.params.tensors) {
    const data = new Float32Array(t.size);
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (name.endsWith('gate.weight')) {
      const bound = 1 / Math.sqrt(cfg.dim);
      for (let i = 0; i < data.length; i++) data[i] = (2 * rng.next() - 1) * bound;
    } else {
      const std = name.endsWith('w3.weight') || name.endsWith('wo.weight') ? residualStd : 0.02;
      for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    }
    t.upload(data);
  }
}
