// Optimizer kernels (native/cpu/optim.cc) over one parameter of n f32 values, with its gradient g and
// Adam moments m (first) and v (second), all persistent buffers.
#pragma once
#include <cstdint>

namespace mm::cpu {

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // true: AdamW (p *= 1 - lr*wd); false: torch.optim.Adam's L2 term (g += wd*p)
  int64_t step;    // 1 for the first update (bias correction as torch: 1 - beta^step)
};

// One fused update, torch's formulas in torch's order (see optim.cc). g is read, never written.
void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h);

// sum of x[i]^2 in double. Deterministic: fixed chunks (independent of the thread count) added in order.
double sum_squares(const float* x, int64_t n);

}  // namespace mm::cpu
