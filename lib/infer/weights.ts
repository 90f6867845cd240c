// Model weights at inference precision (`--dtype f32|bf16|f16` on generate, chat, serve and bench generate).
// With bf16 or f16, every weight matrix (the linear layers and the tied embedding/output) is stored in 16 bits:
// half the bytes to read per decoded token, and decoding is memory-bound. Norm weights stay f32, and so do
// activations, the KV cache and every sum (lib/ops/gemm.ts linear, native/cpu/gemv.cc).
// Weights arrive as f32 host values (from a file) and are placed a piece at a time: a half tensor is rounded
// from a small f32 staging buffer, so the f32 weights never exist, not even one whole tensor.
import { HALF_WEIGHT_TYPE } from '../ops/gemm';
import { kernels } from '../ops/kernels';
import { Device, DTYPE_BYTES } from '../tensor/dtype';
import { backend } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';

export type WeightDtype = 'f32' | 'bf16' | 'f16';
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['f32', 'bf16', 'f16'];

interface NarrowKernels {
  /** dst (bf16 or f16 bits) = src (f32) rounded to nearest even; type 1 bf16, 2 f16. */
  narrowWeights(type: number, dst: number, src: number, n: number): void;
}

/** Throws unless `dtype` is a weight dtype the device can run inference with. */
export function checkWeightDtype(dtype: string, device: Device, where = '--dtype'): WeightDtype {
  if (!(WEIGHT_DTYPES as readonly string[]).includes(dtype)) {
    throw new Error(`${where}: expected one of ${WEIGHT_DTYPES.join(', ')}, got '${dtype}'`);
  }
  if (dtype !== 'f32' && device !== 'cpu') throw new Error(`${where} ${dtype}: half-precision weights are CPU-only`);
  return dtype as WeightDtype;
}

/**
 * Writes f32 host values into parameters of any weight dtype, piece by piece (a loader streams a file through
 * a small buffer), through one reused f32 staging buffer for the half types.
 */
export class WeightWriter {
  private staging: Tensor | null = null;

  /** param[at .. at + values.length) = values, rounded to the parameter's dtype. */
  write(param: Tensor, at: number, values: Float32Array): void {
    if (at < 0 || at + values.length > param.size) {
      throw new Error(`${param.describe()}: cannot write ${values.length} values at element ${at}`);
    }
    const type = HALF_WEIGHT_TYPE[param.dtype];
    const address = param.ptr + at * DTYPE_BYTES[param.dtype];
    // backend().upload copies straight from `values` (Tensor.upload would first make a host array of its own).
    if (type === undefined) {
      backend(param.device).upload(address, values);
      return;
    }
    if (param.device !== 'cpu') throw new Error(`${param.describe()}: half-precision weights are CPU-only`);
    if (!this.staging || this.staging.size < values.length) {
      this.staging?.dispose();
      this.staging = Tensor.persistent([values.length], 'f32', 'cpu');
    }
    backend('cpu').upload(this.staging.ptr, values);
    kernels<NarrowKernels>('cpu').narrowWeights(type, address, this.staging.ptr, values.length);
  }

  /** Frees the staging buffer. */
  dispose(): void {
    this.staging?.dispose();
    this.staging = null;
  }
}

/** The `--dtype` option of generate, chat, serve and bench generate (yargs). */
export const DTYPE_OPTION = {
  type: 'string',
  choices: WEIGHT_DTYPES,
  default: 'f32',
  describe: 'precision of the weight matrices for inference (bf16/f16: half the memory, faster decoding)',
} as const;
