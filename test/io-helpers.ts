// Test data for the io tests: state dicts with every v1 tensor of a config, filled with cheap deterministic values.
import { LMConfig } from '../lib/nn/config';
import { StateDict, v1TensorShapes } from '../lib/io/state-dict';

/** n values in [-0.1, 0.1), distinct per seed (a sine pattern: fast for large embeddings, unlike Box-Muller). */
export function fillValues(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, j) => 0.1 * Math.sin(0.37 * j + 1.7 * seed + 0.3));
}

/** Every tensor of the config's v1 state dict (output.weight tied to tok_embeddings.weight). */
export function sampleStateDict(cfg: LMConfig): StateDict {
  const sd: StateDict = new Map();
  v1TensorShapes(cfg).forEach(([name, shape], t) => {
    sd.set(name, name === 'output.weight' ? sd.get('tok_embeddings.weight')! : { shape, data: fillValues(shape.reduce((a, b) => a * b, 1), t + 1) });
  });
  return sd;
}
