// Device selection: with MINIMIND_CUDA_EMULATE=1, tensors on device 'cuda' live on the emulated device, so code
// written for the GPU (tensors, arenas, the CUDA kernel table) runs in tests on machines without one.
import type * as TensorModule from '../lib/tensor/tensor';
import type * as NativeModule from '../lib/native';

test("MINIMIND_CUDA_EMULATE=1 puts device 'cuda' on the emulator", () => {
  const saved = process.env.MINIMIND_CUDA_EMULATE;
  process.env.MINIMIND_CUDA_EMULATE = '1';
  try {
    jest.isolateModules(() => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { native, cudaEmulated } = require('../lib/native') as typeof NativeModule;
      const { Tensor } = require('../lib/tensor/tensor') as typeof TensorModule;
      /* eslint-enable @typescript-eslint/no-require-imports */
      expect(cudaEmulated).toBe(true);
      expect(native.cuda).toBe(native.cudaEmu);
      const t = Tensor.from([1, 2, 3, 4], [2, 2], 'f32', 'cuda');
      const half = Tensor.empty([4], 'bf16', 'cuda');
      native.cuda.castF32ToBf16(half.ptr, t.ptr, 4);
      const back = Tensor.empty([4], 'f32', 'cuda');
      native.cuda.castBf16ToF32(back.ptr, half.ptr, 4);
      expect(Array.from(back.toArray())).toEqual([1, 2, 3, 4]);
      expect(Tensor.persistent([3], 'f32', 'cuda').fill_(2.5).toArray()).toEqual(Float32Array.from([2.5, 2.5, 2.5]));
    });
  } finally {
    if (saved === undefined) delete process.env.MINIMIND_CUDA_EMULATE;
    else process.env.MINIMIND_CUDA_EMULATE = saved;
  }
});
