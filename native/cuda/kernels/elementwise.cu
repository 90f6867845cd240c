// Elementwise kernels and dtype casts: f32 <-> bf16 (round to nearest even), n elements. Memory-bound.
#include "../common.cuh"

namespace mm::kernels {
namespace {

__global__ void cast_f32_to_bf16_kernel(bf16* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void cast_bf16_to_f32_kernel(float* out, const bf16* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(in[i]);
}

// Grid-stride loops: enough blocks to fill the GPU, capped so huge tensors reuse threads.
constexpr int kThreads = 256;
unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 4096)); }

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::cast_f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(cast_f32_to_bf16_kernel, grid_for(n), kThreads, 0, 0)(as_bf16(out), in, n);
  return launch_status("cast_f32_to_bf16");
}

int MM_BACKEND::cast_bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(cast_bf16_to_f32_kernel, grid_for(n), kThreads, 0, 0)(out, as_bf16(in), n);
  return launch_status("cast_bf16_to_f32");
}

}  // namespace mm
