// Mixture-of-experts routing on the CPU: the router (softmax, top-k, renormalisation, sort by expert), its
// auxiliary load-balancing loss, and the MegaBlocks-style permutation of token rows into expert-sorted order
// (dispatch) and back (combine), each with its backward.
//
// Shapes: N = B*T tokens, E experts, k = experts per token, C = model dim. Assignment a = token*k + slot;
// position p = its row in expert-sorted order. order[p] = a and positions[a] = p.
//
// Determinism: every output element is written by one thread, and sums over a token's k slots run in slot
// order, so results do not depend on the thread count and no atomics are needed. The row loops (copy, scaled
// add, dot) are memory-bound; they are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones picks one
// when the addon loads), and the dot product keeps 16 independent partial sums so every ISA adds in the same order.
#include "moe.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "mm.h"

#if MM_HAVE_X86 && defined(__GNUC__) && !defined(__clang__)
#define MM_ROW_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MM_ROW_KERNEL
#endif

namespace mm::cpu {

// Rows per parallel chunk: about 64 KiB of row data, so small problems stay on one thread.
static int64_t row_grain(int64_t C) { return C >= 16384 ? 1 : 16384 / C; }

// ---- router ----------------------------------------------------------------------------------------

void moe_route(const float* logits, int64_t N, int E, int k, bool renorm, float* scores, float* weights,
               int32_t* experts, int32_t* offsets, int32_t* order, int32_t* positions) {
  parallel_for(N, 256, [=](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* z = logits + t * E;
      route_token([z](int e) { return z[e]; }, E, k, renorm, scores + t * E, weights + t * k, experts + t * k);
    }
  });

  // Stable counting sort of the N*k assignments by expert (serial: N*k small integers, a few microseconds).
  const int64_t NK = N * k;
  std::fill(offsets, offsets + E + 1, 0);
  for (int64_t a = 0; a < NK; ++a) ++offsets[experts[a] + 1];
  for (int e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  std::vector<int32_t> next(offsets, offsets + E);  // the next free position of each expert's segment
  for (int64_t a = 0; a < NK; ++a) {                // assignments ascend, so tokens ascend within a segment
    const int32_t p = next[experts[a]]++;
    order[p] = static_cast<int32_t>(a);
    positions[a] = p;
  }
}

// Per token, with s = softmax(z), chosen experts e_j and raw weights r_j = s[e_j]:
//   renormalised w_j = r_j / D, D = sum_i r_i + 1e-20, so dL/dr_j = (dw_j - sum_i dw_i w_i) / D;
//   dL/ds = dscores + scatter of dL/dr into the chosen experts;
//   dL/dz_e = s_e (dL/ds_e - sum_f s_f dL/ds_f).
// The scatter is applied term by term, so no E-sized scratch is needed.
void moe_route_backward(float* dlogits, const float* scores, const float* weights, const int32_t* experts,
                        const float* dweights, const float* dscores, int64_t N, int E, int k, bool renorm) {
  parallel_for(N, 256, [=](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* s = scores + t * E;
      const int32_t* chosen = experts + t * k;
      float* dz = dlogits + t * E;

      double draw[kMoeMaxTopK] = {};
      if (dweights) {
        const float* dw = dweights + t * k;
        if (renorm) {
          float raw_sum = 0.0f;  // the forward's denominator, recomputed the same way
          for (int j = 0; j < k; ++j) raw_sum += s[chosen[j]];
          const double denom = double(raw_sum + 1e-20f);
          double dw_dot_w = 0.0;
          for (int j = 0; j < k; ++j) dw_dot_w += double(dw[j]) * weights[t * k + j];
          for (int j = 0; j < k; ++j) draw[j] = (dw[j] - dw_dot_w) / denom;
        } else {
          for (int j = 0; j < k; ++j) draw[j] = dw[j];
        }
      }

      double s_dot_ds = 0.0;
      if (dscores) {
        for (int e = 0; e < E; ++e) s_dot_ds += double(s[e]) * dscores[t * E + e];
      }
      for (int j = 0; j < k; ++j) s_dot_ds += double(s[chosen[j]]) * draw[j];

      for (int e = 0; e < E; ++e) {
        const double ds = dscores ? double(dscores[t * E + e]) : 0.0;
        dz[e] += float(s[e] * (ds - s_dot_ds));
      }
      for (int j = 0; j < k; ++j) dz[chosen[j]] += float(s[chosen[j]] * draw[j]);
    }
  });
}

// ---- auxiliary loss ----------------------------------------------------------------------------------

void moe_aux_loss(float* out, const float* scores, const float* coef, int64_t B, int64_t T, int E) {
  double total = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const float* s = scores + (b * T + t) * E;
      for (int e = 0; e < E; ++e) total += double(coef[b * E + e]) * s[e];
    }
  }
  out[0] = float(total);
}

void moe_aux_loss_backward(float* dscores, const float* dloss, const float* coef, int64_t B, int64_t T, int E) {
  const float g = dloss[0];
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      float* ds = dscores + (b * T + t) * E;
      for (int e = 0; e < E; ++e) ds[e] += g * coef[b * E + e];
    }
  }
}

// ---- row kernels (memory-bound) --------------------------------------------------------------------

// dst += alpha * src over C floats.
MM_ROW_KERNEL static void add_scaled_row(float* dst, const float* src, float alpha, int64_t C) {
  for (int64_t c = 0; c < C; ++c) dst[c] += alpha * src[c];
}

// dst += src over C floats.
MM_ROW_KERNEL static void add_row(float* dst, const float* src, int64_t C) {
  for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
}

// dst = alpha * src over C floats.
MM_ROW_KERNEL static void scaled_copy_row(float* dst, const float* src, float alpha, int64_t C) {
  for (int64_t c = 0; c < C; ++c) dst[c] = alpha * src[c];
}

// a . b over C floats: 16 independent lane sums (vectorisable without reassociation), then a fixed-order total.
MM_ROW_KERNEL static float dot_row(const float* a, const float* b, int64_t C) {
  constexpr int kLanes = 16;
  float lane[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += a[c + l] * b[c + l];
  }
  for (int l = 0; c < C; ++c, ++l) lane[l] += a[c] * b[c];
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

// ---- dispatch and combine ------------------------------------------------------------------------

void moe_dispatch(float* out, const float* x, const int32_t* order, int64_t N, int k, int64_t C) {
  parallel_for(N * k, row_grain(C), [=](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      std::memcpy(out + p * C, x + int64_t(order[p] / k) * C, size_t(C) * sizeof(float));
    }
  });
}

void moe_dispatch_backward(float* dx, const float* dout, const int32_t* positions, int64_t N, int k, int64_t C) {
  parallel_for(N, row_grain(C), [=](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int slot = 0; slot < k; ++slot) add_row(dx + t * C, dout + int64_t(positions[t * k + slot]) * C, C);
    }
  });
}

void moe_combine(float* y, const float* expert_out, const float* weights, const int32_t* positions, int64_t N,
                 int k, int64_t C) {
  parallel_for(N, row_grain(C), [=](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t * k;
      scaled_copy_row(y + t * C, expert_out + int64_t(positions[a]) * C, weights[a], C);
      for (int slot = 1; slot < k; ++slot) {
        add_scaled_row(y + t * C, expert_out + int64_t(positions[a + slot]) * C, weights[a + slot], C);
      }
    }
  });
}

void moe_combine_backward(float* dexpert_out, float* dweights, const float* dy, const float* expert_out,
                          const float* weights, const int32_t* order, const int32_t* positions, int64_t N, int k,
                          int64_t C) {
  if (dexpert_out) {
    parallel_for(N * k, row_grain(C), [=](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int32_t a = order[p];
        add_scaled_row(dexpert_out + p * C, dy + int64_t(a / k) * C, weights[a], C);
      }
    });
  }
  if (dweights) {
    parallel_for(N, row_grain(C), [=](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        for (int slot = 0; slot < k; ++slot) {
          const int64_t a = t * k + slot;
          dweights[a] += dot_row(dy + t * C, expert_out + int64_t(positions[a]) * C, C);
        }
      }
    });
  }
}

}  // namespace mm::cpu
