// RMSNorm kernels (native/cpu/norm.cc). Rows of C contiguous f32 values (rows = B*T, C = dim).
//   n = x * rstd,  rstd = 1 / sqrt(mean(x^2) + eps)   (statistics in f32; rstd saved per row)
//   y = n * weight                                     (MiniMind: normalise, cast, then scale)
#pragma once
#include <cstdint>

namespace mm::cpu {

// y[rows, C] = rmsnorm(x) * weight; rstd[rows] is saved for the backward pass.
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* weight, int64_t rows, int64_t C,
                     float eps);

// The fused residual add of a pre-norm block: sum = residual + x, y = rmsnorm(sum) * weight, in one pass.
void add_rmsnorm_forward(float* sum, float* y, float* rstd, const float* residual, const float* x,
                         const float* weight, int64_t rows, int64_t C, float eps);

// Backward of y = rmsnorm(x) * weight, given dy, the forward input x and the saved rstd:
//   dh = rstd * (dn - n * mean(dn * n)) + dsum,  dn = dy * weight
// dsum (may be null) is the gradient that reaches x directly (the residual path of add_rmsnorm).
// dh is written to dx and to dx2 (add_rmsnorm's residual and x share it), each skipped when null; each
// output accumulates (+=) when its flag is set, otherwise it is overwritten.
// dweight (may be null) accumulates sum over rows of dy * n. Its reduction is deterministic: each task owns
// a fixed block of rows and the per-task partial sums are added in task order (same thread count, same bits).
void rmsnorm_backward(float* dx, bool dx_accumulate, float* dx2, bool dx2_accumulate, float* dweight,
                      const float* dy, const float* dsum, const float* x, const float* weight, const float* rstd,
                      int64_t rows, int64_t C);

}  // namespace mm::cpu
