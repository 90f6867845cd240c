// Fused softmax cross-entropy (see loss.h). Memory-bound: the forward reads the logits once to get each
// row's logsumexp (a row of V = 6400 floats is 25 KiB, so the max pass and the exp-sum pass read it
// from L1/L2, not memory); the backward reads the logits once more and writes the gradient, usually over
// the logits themselves. Rows are independent and split across threads; the exponential is vectorised.
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "mm.h"
#include "vec16.h"

namespace mm::cpu {
namespace {

struct RowLse {
  float* lse;
  const float* logits;
  int64_t V;
};

// lse = max + log(sum exp(x - max)), the max first so no exponential overflows.
MM_INLINE void row_lse(const RowLse& k, int64_t begin, int64_t end) {
  const int64_t V = k.V, V_vec = V - V % kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = k.logits + r * V;
    // Four independent max chains: one chain would wait on vmax's latency at every step.
    f32x16 mv[4];
    for (f32x16& v : mv) v = splat(-std::numeric_limits<float>::infinity());
    int64_t j = 0;
    for (; j + 4 * kLanes <= V; j += 4 * kLanes)
      for (int c = 0; c < 4; ++c) mv[c] = vmax(mv[c], load(x + j + c * kLanes));
    for (; j < V_vec; j += kLanes) mv[0] = vmax(mv[0], load(x + j));
    float m = hmax(vmax(vmax(mv[0], mv[1]), vmax(mv[2], mv[3])));
    for (; j < V; ++j) m = x[j] > m ? x[j] : m;
    f32x16 sv = {};
    for (j = 0; j < V_vec; j += kLanes) sv += vexp_nonpositive(load(x + j) - m);
    float s = hsum(sv);
    for (; j < V; ++j) s += sexp(x[j] - m);
    k.lse[r] = m + std::log(s);
  }
}
MM_VEC_VARIANTS(row_lse, RowLse)

void all_row_lse(float* lse, const float* logits, int64_t N, int64_t V) {
  const RowLse args{lse, logits, V};
  const auto kernel = row_lse_kernel();
  parallel_for(N, rows_per_chunk(V), [&](int64_t b, int64_t e) { kernel(args, b, e); });
}

struct XentBackward {
  float* grad;
  const float* logits;
  const float* lse;
  const int32_t* targets;
  const float* row_scale;
  float common_scale;  // (*scalar) * scale
  int64_t V;
  int32_t ignore_index;
  bool accumulate;
};

MM_INLINE void xent_backward_rows(const XentBackward& k, int64_t begin, int64_t end) {
  const int64_t V = k.V, V_vec = V - V % kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = k.logits + r * V;
    float* g = k.grad + r * V;
    const int32_t t = k.targets[r];
    const float c = t == k.ignore_index ? 0.0f : (k.row_scale ? k.row_scale[r] : 1.0f) * k.common_scale;
    if (c == 0.0f) {
      // Nothing flows back from this row: a fresh (or in-place) gradient is zero, an accumulated one unchanged.
      if (!k.accumulate) std::memset(g, 0, static_cast<size_t>(V) * sizeof(float));
      continue;
    }
    const float shift = k.lse[r];
    int64_t j = 0;
    if (k.accumulate) {
      for (; j < V_vec; j += kLanes) store(g + j, load(g + j) + vexp_nonpositive(load(x + j) - shift) * c);
      for (; j < V; ++j) g[j] += sexp(x[j] - shift) * c;
    } else {
      for (; j < V_vec; j += kLanes) store(g + j, vexp_nonpositive(load(x + j) - shift) * c);
      for (; j < V; ++j) g[j] = sexp(x[j] - shift) * c;
    }
    g[t] -= c;  // the one-hot term
  }
}
MM_VEC_VARIANTS(xent_backward_rows, XentBackward)

}  // namespace

int64_t first_invalid_target(const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index) {
  for (int64_t i = 0; i < N; ++i)
    if (targets[i] != ignore_index && (targets[i] < 0 || targets[i] >= V)) return i;
  return -1;
}

double cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                             const float* mask, int64_t N, int64_t V, int32_t ignore_index) {
  all_row_lse(lse, logits, N, V);
  double weighted = 0, weights = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] == ignore_index) continue;
    const double w = mask ? mask[i] : 1.0;
    weighted += w * (static_cast<double>(lse[i]) - logits[i * V + targets[i]]);
    weights += w;
  }
  *loss = weights == 0 ? 0.0f : static_cast<float>(weighted / weights);
  return weights;
}

void token_logprobs_forward(float* logp, float* lse, const float* logits, const int32_t* targets, int64_t N,
                            int64_t V) {
  all_row_lse(lse, logits, N, V);
  for (int64_t i = 0; i < N; ++i) logp[i] = logits[i * V + targets[i]] - lse[i];
}

void softmax_xent_backward(float* grad, bool accumulate, const float* logits, const float* lse,
                           const int32_t* targets, const float* row_scale, const float* scalar, double scale,
                           int64_t N, int64_t V, int32_t ignore_index) {
  const float common = static_cast<float>((scalar ? *scalar : 1.0) * scale);
  // In place (grad == logits) the old values are read just before being overwritten, never after.
  const XentBackward args{grad, logits, lse, targets, row_scale, common, V, ignore_index, accumulate && grad != logits};
  const auto kernel = xent_backward_rows_kernel();
  parallel_for(N, rows_per_chunk(V), [&](int64_t b, int64_t e) { kernel(args, b, e); });
}

}  // namespace mm::cpu
