// Sum of squares of a gradient tensor, for the global gradient norm (clipping): out[0] += sum_i x[i]^2.
// Deterministic: a fixed grid of kSumBlocks blocks writes one partial sum each into out[1 .. kSumBlocks], then
// one block adds them in a fixed order. Call once per tensor; the norm is sqrt(out[0]).
// Shapes: x [n] fp32; out [1 + kSumBlocks] fp32 (out[0] accumulates, the rest is scratch).
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kSumBlocks = 128;  // must match kernels.h

__global__ void sum_squares_partial_kernel(float* partials, const float* x, int64_t n) {
  MM_SHARED(float, scratch, [32]);
  float sum = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    sum += x[i] * x[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void sum_partials_kernel(float* out, const float* partials) {
  MM_SHARED(float, scratch, [32]);
  const float total = block_sum(partials[threadIdx.x], scratch);
  if (threadIdx.x == 0) out[0] += total;
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::sum_squares(float* out, const float* x, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(sum_squares_partial_kernel, kSumBlocks, kThreads, 0, 0)(out + 1, x, n);
  MM_LAUNCH(sum_partials_kernel, 1, kSumBlocks, 0, 0)(out, out + 1);
  return launch_status("sum_squares");
}

}  // namespace mm
