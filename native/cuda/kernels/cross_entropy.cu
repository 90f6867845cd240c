// Softmax cross-entropy fused with its backward; the gradient overwrites the logits (they are not needed after).
//   lse = log(sum_v exp(logits[n, v]));  losses[n] = lse - logits[n, target[n]]
//   logits[n, v] <- (softmax[n, v] - [v == target[n]]) * dloss
// A target < 0 (padding, e.g. -100) is ignored: loss 0 and a zero gradient row.
// Shapes: logits [N, V] bf16 (in: logits, out: gradient); targets [N] int32; losses [N] fp32 (written).
// One block per row: a max pass, a sum-of-exponentials pass and a gradient pass, all in fp32; the full softmax
// is never stored.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void cross_entropy_kernel(float* losses, bf16* logits, const int* targets, int V, float dloss) {
  MM_SHARED(float, scratch, [32]);
  bf16* row = logits + int64_t(blockIdx.x) * V;
  const int target = targets[blockIdx.x];
  // Every thread reads the target's logit now: the gradient pass below overwrites it.
  const float target_logit = target >= 0 && target < V ? __bfloat162float(row[target]) : 0.f;
  float local_max = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) local_max = fmaxf(local_max, __bfloat162float(row[v]));
  const float row_max = block_max(local_max, scratch);
  float local_sum = 0.f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) local_sum += __expf(__bfloat162float(row[v]) - row_max);
  const float lse = row_max + logf(block_sum(local_sum, scratch));
  const bool ignored = target < 0 || target >= V;
  if (threadIdx.x == 0) losses[blockIdx.x] = ignored ? 0.f : lse - target_logit;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = __expf(__bfloat162float(row[v]) - lse);
    row[v] = __float2bfloat16(ignored ? 0.f : (p - (v == target ? 1.f : 0.f)) * dloss);
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::cross_entropy(float* losses, uint16_t* logits, const int32_t* targets, int64_t N, int V, float dloss) {
  if (N <= 0) return 0;
  if (N > 2147483647) return fail("cross_entropy: too many rows for one launch");
  MM_LAUNCH(cross_entropy_kernel, static_cast<unsigned>(N), kThreads, 0, 0)(losses, as_bf16(logits), targets, V, dloss);
  return launch_status("cross_entropy");
}

}  // namespace mm
