// Adam/AdamW update and the squared norm for gradient clipping (see optim.h).
//
// adam_step follows torch.optim.Adam / AdamW (single-tensor path), per element, in f32:
//   Adam (L2):        g' = g + wd * p
//   AdamW:            p  = p * (1 - lr * wd)
//   m  = m + (1 - beta1) * (g' - m)                    (torch: exp_avg.lerp_(grad, 1 - beta1))
//   v  = v * beta2 + (1 - beta2) * g' * g'             (exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2))
//   p  = p + (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The scalars (bias corrections, step size) are computed in double as Python does, then used as f32.
// Memory-bound: 16 bytes read and 12 written per value; plain loops that the compiler vectorises for each ISA.
#include "optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "mm.h"
#include "vec16.h"

namespace mm::cpu {
namespace {

struct AdamArgs {
  float* __restrict p;
  const float* __restrict g;
  float* __restrict m;
  float* __restrict v;
  // AdamW sets decay = 1 - lr*wd and l2 = 0; Adam sets decay = 1 and l2 = wd. Multiplying by 1 and adding
  // 0 * p change nothing, so one branch-free loop serves both.
  float decay, l2, one_minus_beta1, beta2, one_minus_beta2, eps, neg_step_size, bias_correction2_sqrt;
};

MM_INLINE void adam_range(const AdamArgs& a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float p = a.p[i] * a.decay, g = a.g[i] + a.l2 * a.p[i];
    const float m = a.m[i] + a.one_minus_beta1 * (g - a.m[i]);
    const float v = a.v[i] * a.beta2 + a.one_minus_beta2 * g * g;
    a.m[i] = m;
    a.v[i] = v;
    a.p[i] = p + a.neg_step_size * m / (std::sqrt(v) / a.bias_correction2_sqrt + a.eps);
  }
}
MM_VEC_VARIANTS(adam_range, AdamArgs)

constexpr int64_t kNormChunk = 1 << 16;

struct SumSquares {
  double* partials;  // one per chunk
  const float* x;
  int64_t n;
};

MM_INLINE void sum_squares_chunks(const SumSquares& k, int64_t chunk_begin, int64_t chunk_end) {
  for (int64_t c = chunk_begin; c < chunk_end; ++c) {
    const int64_t begin = c * kNormChunk, end = std::min(k.n, begin + kNormChunk);
    f64x8 acc = {};
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
      f32x8 x;
      std::memcpy(&x, k.x + i, sizeof x);
      const f64x8 d = __builtin_convertvector(x, f64x8);
      acc += d * d;
    }
    double s = 0;
    for (int lane = 0; lane < 8; ++lane) s += acc[lane];
    for (; i < end; ++i) s += static_cast<double>(k.x[i]) * k.x[i];
    k.partials[c] = s;
  }
}
MM_VEC_VARIANTS(sum_squares_chunks, SumSquares)

}  // namespace

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h) {
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  const AdamArgs args{p, g, m, v,
                      static_cast<float>(h.decoupled ? 1.0 - h.lr * h.weight_decay : 1.0),
                      static_cast<float>(h.decoupled ? 0.0 : h.weight_decay),
                      static_cast<float>(1.0 - h.beta1),
                      static_cast<float>(h.beta2),
                      static_cast<float>(1.0 - h.beta2),
                      static_cast<float>(h.eps),
                      static_cast<float>(-h.lr / bias_correction1),
                      static_cast<float>(std::sqrt(bias_correction2))};
  const auto kernel = adam_range_kernel();
  parallel_for(n, kMinChunkValues, [&](int64_t b, int64_t e) { kernel(args, b, e); });
}

double sum_squares(const float* x, int64_t n) {
  if (n <= 0) return 0;
  const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<double> partials(chunks);
  const SumSquares args{partials.data(), x, n};
  const auto kernel = sum_squares_chunks_kernel();
  parallel_for(chunks, 1, [&](int64_t b, int64_t e) { kernel(args, b, e); });
  double total = 0;
  for (double s : partials) total += s;
  return total;
}

}  // namespace mm::cpu
