// AdamW over fp32 master weights, writing the bf16 weights the model computes with.
//   g = grad * grad_scale (grad_scale: the clipping factor)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   master = master * (1 - lr * weight_decay) - lr * (m / bc1) / (sqrt(v / bc2) + eps)   (decoupled decay)
// adam_l2 is torch.optim.Adam's coupled form instead (weight decay as an L2 term of the loss, MiniMind v1):
//   g = grad * grad_scale + weight_decay * master;  m, v as above;  master = master - lr * (m / bc1) / (...)
//   param = bf16(master): round to nearest even, or, with seed != 0, stochastic rounding (rounds up with
//   probability equal to the discarded fraction, so small updates survive on average).
// bc1 = 1 - beta1^step and bc2 = 1 - beta2^step are computed by the caller. All tensors [n]; param bf16.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

// A 32-bit hash of (seed, index): independent random bits per element and step, reproducible from the seed.
__device__ inline uint32_t hash32(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + index;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);
}

// Adds 16 random bits below the bf16 mantissa, then truncates: rounds up with probability (dropped bits)/2^16.
__device__ inline bf16 round_stochastic(float x, uint32_t random) {
  const uint32_t bits = __float_as_uint(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) return __float2bfloat16(x);  // inf and NaN stay as they are
  return __float2bfloat16_rz(__uint_as_float(bits + (random & 0xffffu)));
}

// kDecoupled: AdamW (decay the weight); otherwise Adam (add weight_decay * master to the gradient).
template <bool kDecoupled>
__global__ void adamw_kernel(float* master, bf16* param, const float* grad, float* m, float* v, int64_t n, float lr,
                             float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
                             float grad_scale, uint64_t seed) {
  const float decay = kDecoupled ? 1.f - lr * weight_decay : 1.f, l2 = kDecoupled ? 0.f : weight_decay;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * grad_scale + l2 * master[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * g;
    const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float w = master[i] * decay - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    master[i] = w;
    param[i] = seed ? round_stochastic(w, hash32(seed, i)) : __float2bfloat16(w);
  }
}

// The host side of both entry points: one launch of either variant.
template <bool kDecoupled>
void launch_adam(float* master, uint16_t* param, const float* grad, float* m, float* v, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale,
                 uint64_t seed) {
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 4096));
  MM_LAUNCH(adamw_kernel<kDecoupled>, grid, kThreads, 0, 0)(master, as_bf16(param), grad, m, v, n, lr, beta1, beta2,
                                                            eps, weight_decay, bc1, bc2, grad_scale, seed);
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::adamw(float* master, uint16_t* param, const float* grad, float* m, float* v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale,
                      uint64_t seed) {
  if (n <= 0) return 0;
  launch_adam<true>(master, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale, seed);
  return launch_status("adamw");
}

int MM_BACKEND::adam_l2(float* master, uint16_t* param, const float* grad, float* m, float* v, int64_t n, float lr,
                        float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
                        float grad_scale, uint64_t seed) {
  if (n <= 0) return 0;
  launch_adam<false>(master, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale, seed);
  return launch_status("adam_l2");
}

}  // namespace mm
