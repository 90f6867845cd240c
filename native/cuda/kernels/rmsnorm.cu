// RMSNorm fused with the residual add, bf16 storage, fp32 math.
//   forward:  h = x + residual;  rstd = 1 / sqrt(mean(h^2) + eps);  y = h * rstd * weight
//   backward: dh += rstd * (dy*w - h * rstd^2 * mean(dy*w*h));  dweight += sum over rows of dy * h * rstd
// Shapes: x, residual, h, y, dy, dh [N, C] bf16; weight [C] bf16; dweight [C] fp32; rstd [N] fp32.
// One warp per row (MiniMind's C = 512 is 16 values a lane). The weight gradient is a separate column kernel:
// every column is summed over the rows in a fixed order, so results do not depend on scheduling (deterministic).
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kRowsPerBlock = 8;  // warps per block in the row kernels

__global__ void rmsnorm_forward_kernel(bf16* y, bf16* h, float* rstd, const bf16* x, const bf16* residual,
                                       const bf16* weight, int64_t N, int C, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / 32;
  if (row >= N) return;  // the whole warp leaves together
  const int64_t base = row * C;
  float sum_squares = 0.f;
  for (int c = lane; c < C; c += 32) {
    float v = __bfloat162float(x[base + c]);
    if (residual) v += __bfloat162float(residual[base + c]);
    const bf16 stored = __float2bfloat16(v);
    h[base + c] = stored;
    v = __bfloat162float(stored);  // normalise what was stored, so backward sees the same h
    sum_squares += v * v;
  }
  const float r = rsqrtf(warp_sum(sum_squares) / C + eps);
  if (lane == 0) rstd[row] = r;
  for (int c = lane; c < C; c += 32)
    y[base + c] = __float2bfloat16(__bfloat162float(h[base + c]) * r * __bfloat162float(weight[c]));
}

__global__ void rmsnorm_backward_kernel(bf16* dh, const bf16* dy, const bf16* h, const bf16* weight,
                                        const float* rstd, int64_t N, int C) {
  const int lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / 32;
  if (row >= N) return;
  const int64_t base = row * C;
  float dot = 0.f;  // sum over c of dy * w * h
  for (int c = lane; c < C; c += 32)
    dot += __bfloat162float(dy[base + c]) * __bfloat162float(weight[c]) * __bfloat162float(h[base + c]);
  const float r = rstd[row];
  const float correction = warp_sum(dot) * r * r / C;
  for (int c = lane; c < C; c += 32) {
    const float g = r * (__bfloat162float(dy[base + c]) * __bfloat162float(weight[c]) -
                         __bfloat162float(h[base + c]) * correction);
    dh[base + c] = __float2bfloat16(__bfloat162float(dh[base + c]) + g);
  }
}

// Block (32 columns, 8 row lanes): each thread sums every 8th row of its column, then the 8 partial sums of a
// column are added in a fixed order through shared memory.
constexpr int kRowLanes = 8;
__global__ void rmsnorm_dweight_kernel(float* dweight, const bf16* dy, const bf16* h, const float* rstd, int64_t N,
                                       int C) {
  MM_SHARED(float, partial, [kRowLanes][32]);
  const int c = blockIdx.x * 32 + threadIdx.x;
  float sum = 0.f;
  if (c < C)
    for (int64_t row = threadIdx.y; row < N; row += kRowLanes)
      sum += __bfloat162float(dy[row * C + c]) * __bfloat162float(h[row * C + c]) * rstd[row];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float total = 0.f;
    for (int i = 0; i < kRowLanes; ++i) total += partial[i][threadIdx.x];
    dweight[c] += total;
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::rmsnorm_forward(uint16_t* y, uint16_t* h, float* rstd, const uint16_t* x, const uint16_t* residual,
                                const uint16_t* weight, int64_t N, int C, float eps) {
  if (N <= 0) return 0;
  MM_LAUNCH(rmsnorm_forward_kernel, blocks_for(N, kRowsPerBlock), 32 * kRowsPerBlock, 0, 0)(
      as_bf16(y), as_bf16(h), rstd, as_bf16(x), as_bf16(residual), as_bf16(weight), N, C, eps);
  return launch_status("rmsnorm_forward");
}

int MM_BACKEND::rmsnorm_backward(uint16_t* dh, float* dweight, const uint16_t* dy, const uint16_t* h,
                                 const uint16_t* weight, const float* rstd, int64_t N, int C) {
  if (N <= 0) return 0;
  MM_LAUNCH(rmsnorm_backward_kernel, blocks_for(N, kRowsPerBlock), 32 * kRowsPerBlock, 0, 0)(
      as_bf16(dh), as_bf16(dy), as_bf16(h), as_bf16(weight), rstd, N, C);
  MM_LAUNCH(rmsnorm_dweight_kernel, blocks_for(C, 32), dim3(32, kRowLanes), 0, 0)(dweight, as_bf16(dy), as_bf16(h),
                                                                               rstd, N, C);
  return launch_status("rmsnorm_backward");
}

}  // namespace mm
