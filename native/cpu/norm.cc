// RMSNorm forward and backward over rows of C values (rows = B*T, C = dim), with the optional fused
// residual add of a pre-norm block (sum = residual + x; y = rmsnorm(sum) * weight).
//
// Memory-bound: forward reads x (and residual) once and writes y (and sum); each row is small enough
// (C <= a few thousand) to stay in L1 between the statistics pass and the output pass. Rows are independent,
// so threads split rows. The weight gradient is a sum over rows: each task owns a fixed block of rows and
// writes its own partial sum, and the partials are added in task order, which makes it deterministic.
#include "norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mm.h"
#include "vec16.h"

namespace mm::cpu {
namespace {

struct NormForward {
  float* sum;             // [rows, C] residual + x, or null for a plain rmsnorm
  float* y;               // [rows, C]
  float* rstd;            // [rows]
  const float* residual;  // null for a plain rmsnorm
  const float* x;
  const float* weight;    // [C]
  int64_t C;
  float eps;
};

MM_INLINE void norm_forward_rows(const NormForward& a, int64_t begin, int64_t end) {
  const int64_t C = a.C, C_vec = C - C % kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * C;
    // The statistics are taken over h: x itself, or residual + x (stored to `sum` on the way).
    const float* h = x;
    f32x16 sq = {};
    int64_t j = 0;
    if (a.residual) {
      const float* res = a.residual + r * C;
      float* sum = a.sum + r * C;
      for (; j < C_vec; j += kLanes) {
        const f32x16 v = load(res + j) + load(x + j);
        store(sum + j, v);
        sq += v * v;
      }
      for (; j < C; ++j) sum[j] = res[j] + x[j];
      h = sum;
    } else {
      for (; j < C_vec; j += kLanes) {
        const f32x16 v = load(x + j);
        sq += v * v;
      }
    }
    float sum_sq = hsum(sq);
    for (j = C_vec; j < C; ++j) sum_sq += h[j] * h[j];
    const float rs = 1.0f / std::sqrt(sum_sq / static_cast<float>(C) + a.eps);
    a.rstd[r] = rs;
    // MiniMind's order: normalise (in f32), cast to x's dtype (a no-op here), then multiply by the weight.
    float* y = a.y + r * C;
    for (j = 0; j < C_vec; j += kLanes) store(y + j, (load(h + j) * rs) * load(a.weight + j));
    for (; j < C; ++j) y[j] = (h[j] * rs) * a.weight[j];
  }
}
MM_VEC_VARIANTS(norm_forward_rows, NormForward)

struct NormBackward {
  float* dx;          // either output may be null
  float* dx2;
  float* dw_partial;  // [C] this task's share of dweight, or null
  const float* dy;
  const float* dsum;  // null: no gradient reaches x directly
  const float* x;
  const float* weight;
  const float* rstd;
  int64_t C;
  bool dx_accumulate, dx2_accumulate;
};

MM_INLINE void store_grad(float* out, bool accumulate, f32x16 g) { store(out, accumulate ? load(out) + g : g); }
MM_INLINE void store_grad(float* out, bool accumulate, float g) { *out = accumulate ? *out + g : g; }

MM_INLINE void norm_backward_rows(const NormBackward& a, int64_t begin, int64_t end) {
  const int64_t C = a.C, C_vec = C - C % kLanes;
  const float* w = a.weight;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * C;
    const float* dy = a.dy + r * C;
    const float rs = a.rstd[r];
    // mean(dn * n) with dn = dy * w and n = x * rstd.
    f32x16 acc = {};
    int64_t j = 0;
    for (; j < C_vec; j += kLanes) acc += load(dy + j) * load(w + j) * load(x + j);
    float dot = hsum(acc);
    for (; j < C; ++j) dot += dy[j] * w[j] * x[j];
    const float coef = dot * rs / static_cast<float>(C);

    const size_t off = static_cast<size_t>(r * C);
    const float* dsum = a.dsum ? a.dsum + off : nullptr;
    for (j = 0; j < C_vec; j += kLanes) {
      const f32x16 n = load(x + j) * rs, g = load(dy + j);
      f32x16 dh = (g * load(w + j) - n * coef) * rs;
      if (dsum) dh += load(dsum + j);
      if (a.dx) store_grad(a.dx + off + j, a.dx_accumulate, dh);
      if (a.dx2) store_grad(a.dx2 + off + j, a.dx2_accumulate, dh);
      if (a.dw_partial) store(a.dw_partial + j, load(a.dw_partial + j) + g * n);
    }
    for (; j < C; ++j) {
      const float n = x[j] * rs, g = dy[j];
      float dh = (g * w[j] - n * coef) * rs;
      if (dsum) dh += dsum[j];
      if (a.dx) store_grad(a.dx + off + j, a.dx_accumulate, dh);
      if (a.dx2) store_grad(a.dx2 + off + j, a.dx2_accumulate, dh);
      if (a.dw_partial) a.dw_partial[j] += g * n;
    }
  }
}
MM_VEC_VARIANTS(norm_backward_rows, NormBackward)

void forward(const NormForward& args, int64_t rows) {
  const auto kernel = norm_forward_rows_kernel();
  parallel_for(rows, rows_per_chunk(args.C), [&](int64_t b, int64_t e) { kernel(args, b, e); });
}

}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* weight, int64_t rows, int64_t C,
                     float eps) {
  forward({nullptr, y, rstd, nullptr, x, weight, C, eps}, rows);
}

void add_rmsnorm_forward(float* sum, float* y, float* rstd, const float* residual, const float* x,
                         const float* weight, int64_t rows, int64_t C, float eps) {
  forward({sum, y, rstd, residual, x, weight, C, eps}, rows);
}

void rmsnorm_backward(float* dx, bool dx_accumulate, float* dx2, bool dx2_accumulate, float* dweight,
                      const float* dy, const float* dsum, const float* x, const float* weight, const float* rstd,
                      int64_t rows, int64_t C) {
  if (rows <= 0) return;
  const NormBackward args{dx, dx2, nullptr, dy, dsum, x, weight, rstd, C, dx_accumulate, dx2_accumulate};
  const auto kernel = norm_backward_rows_kernel();
  // A fixed split of rows into tasks (it depends only on rows, C and the thread count), one dweight
  // partial per task.
  const int64_t tasks = std::min<int64_t>(num_threads(), (rows + rows_per_chunk(C) - 1) / rows_per_chunk(C));
  std::vector<float> partials(dweight ? static_cast<size_t>(tasks * C) : 0, 0.0f);
  parallel_tasks(static_cast<int>(tasks), [&](int t) {
    NormBackward task_args = args;
    if (dweight) task_args.dw_partial = partials.data() + t * C;
    kernel(task_args, rows * t / tasks, rows * (t + 1) / tasks);
  });
  if (!dweight) return;
  for (int64_t j = 0; j < C; ++j) {
    float total = 0;
    for (int64_t t = 0; t < tasks; ++t) total += partials[t * C + j];
    dweight[j] += total;
  }
}

}  // namespace mm::cpu
