// What every kernel file in native/cuda/kernels/ includes. The same source is compiled twice:
//   by nvcc into mm::CudaDevice (the GPU), and by g++ with the emulator into mm::CudaEmulated (the CPU).
// Kernels themselves live in an anonymous namespace, so the two builds never share a symbol.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "emu/cuemu.h"
#include "mm_cuda.h"

#if MM_EMULATED
#define MM_BACKEND CudaEmulated
#else
#define MM_BACKEND CudaDevice
#endif

namespace mm::kernels {

using bf16 = __nv_bfloat16;

// bf16 tensors cross the host API as raw uint16_t bit patterns.
__host__ inline bf16* as_bf16(uint16_t* p) { return reinterpret_cast<bf16*>(p); }
__host__ inline const bf16* as_bf16(const uint16_t* p) { return reinterpret_cast<const bf16*>(p); }

// The status of the launches just made: 0, or non-zero with the backend's error_text() set.
__host__ inline int launch_status(const char* what) {
#if MM_EMULATED
  const std::string error = cuemu::take_last_error();
  return error.empty() ? 0 : MM_BACKEND::fail((std::string(what) + ": " + error).c_str());
#else
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? 0 : MM_BACKEND::fail((std::string(what) + ": " + cudaGetErrorString(error)).c_str());
#endif
}

__host__ inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Sum of v over the warp, in every lane.
__device__ inline float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread. `scratch` holds 32
// floats of shared memory; the function ends with a barrier so the caller may reuse it at once.
__device__ inline float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  v = warp_sum(v);
  __syncthreads();
  return v;
}
__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  v = warp_max(v);
  __syncthreads();
  return v;
}

}  // namespace mm::kernels
