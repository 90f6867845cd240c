// Softmax cross-entropy fused with its backward, and the per-token log-probabilities DPO trains on.
//
// cross_entropy: the gradient overwrites the logits (they are not needed after).
//   lse = log(sum_v exp(logits[n, v]));  losses[n] = lse - logits[n, target[n]]
//   logits[n, v] <- (softmax[n, v] - [v == target[n]]) * dloss
// token_logprobs: the logits stay intact (the CPU op's contract, lib/ops/loss.ts tokenLogProbs).
//   lse[n] saved;  logp[n] = logits[n, target[n]] - lse[n]
// token_logprobs_backward: d logp[n] / d logits[n, v] = [v == target[n]] - softmax[n, v], so
//   grad[n, v] (+)= dlogp[n] * ([v == target[n]] - exp(logits[n, v] - lse[n]))
//   grad may be the logits themselves (each value is read just before it is overwritten).
// A target outside [0, V) (padding, e.g. -100) is ignored: loss / log-prob 0 and a zero gradient row.
// Shapes: logits and grad [N, V] bf16; targets [N] int32; losses, logp, lse, dlogp [N] fp32.
// One block per row: a max pass and a sum-of-exponentials pass (row_logsumexp), then the gradient pass, all in
// fp32; the full softmax is never stored.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

// log(sum_v exp(row[v])) over the block's row, returned to every thread; scratch: 32 floats of shared memory.
__device__ inline float row_logsumexp(const bf16* row, int V, float* scratch) {
  float local_max = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) local_max = fmaxf(local_max, __bfloat162float(row[v]));
  const float row_max = block_max(local_max, scratch);
  float local_sum = 0.f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) local_sum += __expf(__bfloat162float(row[v]) - row_max);
  return row_max + logf(block_sum(local_sum, scratch));
}

__global__ void cross_entropy_kernel(float* losses, bf16* logits, const int* targets, int V, float dloss) {
  MM_SHARED(float, scratch, [32]);
  bf16* row = logits + int64_t(blockIdx.x) * V;
  const int target = targets[blockIdx.x];
  // Every thread reads the target's logit now: the gradient pass below overwrites it.
  const float target_logit = target >= 0 && target < V ? __bfloat162float(row[target]) : 0.f;
  const float lse = row_logsumexp(row, V, scratch);
  const bool ignored = target < 0 || target >= V;
  if (threadIdx.x == 0) losses[blockIdx.x] = ignored ? 0.f : lse - target_logit;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = __expf(__bfloat162float(row[v]) - lse);
    row[v] = __float2bfloat16(ignored ? 0.f : (p - (v == target ? 1.f : 0.f)) * dloss);
  }
}

__global__ void token_logprobs_kernel(float* logp, float* lse, const bf16* logits, const int* targets, int V) {
  MM_SHARED(float, scratch, [32]);
  const bf16* row = logits + int64_t(blockIdx.x) * V;
  const int target = targets[blockIdx.x];
  const float row_lse = row_logsumexp(row, V, scratch);
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = row_lse;
    logp[blockIdx.x] = target >= 0 && target < V ? __bfloat162float(row[target]) - row_lse : 0.f;
  }
}

__global__ void token_logprobs_backward_kernel(bf16* grad, bool accumulate, const bf16* logits, const float* lse,
                                               const int* targets, const float* dlogp, int V) {
  const int64_t offset = int64_t(blockIdx.x) * V;
  const int target = targets[blockIdx.x];
  const bool ignored = target < 0 || target >= V;
  const float row_lse = lse[blockIdx.x], scale = dlogp[blockIdx.x];
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = __expf(__bfloat162float(logits[offset + v]) - row_lse);
    const float g = ignored ? 0.f : ((v == target ? 1.f : 0.f) - p) * scale;
    grad[offset + v] = __float2bfloat16(accumulate ? __bfloat162float(grad[offset + v]) + g : g);
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

int MM_BACKEND::token_logprobs(float* logp, float* lse, const uint16_t* logits, const int32_t* targets, int64_t N,
                               int V) {
  if (N <= 0) return 0;
  if (N > 2147483647) return fail("token_logprobs: too many rows for one launch");
  MM_LAUNCH(token_logprobs_kernel, static_cast<unsigned>(N), kThreads, 0, 0)(logp, lse, as_bf16(logits), targets, V);
  return launch_status("token_logprobs");
}

int MM_BACKEND::token_logprobs_backward(uint16_t* grad, bool accumulate, const uint16_t* logits, const float* lse,
                                        const int32_t* targets, const float* dlogp, int64_t N, int V) {
  if (N <= 0) return 0;
  if (N > 2147483647) return fail("token_logprobs_backward: too many rows for one launch");
  MM_LAUNCH(token_logprobs_backward_kernel, static_cast<unsigned>(N), kThreads, 0, 0)(
      as_bf16(grad), accumulate, as_bf16(logits), lse, targets, dlogp, V);
  return launch_status("token_logprobs_backward");
}

}  // namespace mm
