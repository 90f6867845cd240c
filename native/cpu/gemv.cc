// Matrix-vector products for decoding: C[M, N] = alpha * A[M, K] @ B[N, K]^T + beta * C, with M <= 4 rows
// (one new token per sequence) and B in nn.Linear's [out, in] layout, so each output is a dot product of two
// contiguous rows. Packing B, as the GEMM does, would copy every weight once per token; here each weight row
// is read once from memory and used for all M rows, so decoding runs at memory bandwidth.
// Threads split N; every output is one dot product summed in a fixed order, so results do not depend on the
// thread count.
#include <algorithm>
#include <string_view>

#include "gemm.h"
#include "mm.h"

#if MM_HAVE_X86
#include <immintrin.h>
#endif

namespace mm::cpu {
namespace {

constexpr int kMaxRows = 4;

struct Gemv {
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  int64_t M, K;
  float alpha, beta;
};

inline void store(const Gemv& g, int64_t i, int64_t n, float dot) {
  float* out = g.c + i * g.ldc + n;
  *out = g.alpha * dot + (g.beta == 0.0f ? 0.0f : g.beta * *out);
}

void rows_portable(const Gemv& g, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* w = g.b + n * g.ldb;
    for (int64_t i = 0; i < g.M; ++i) {
      const float* x = g.a + i * g.lda;
      float acc[8] = {0};
      int64_t k = 0;
      for (; k + 8 <= g.K; k += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[k + l] * w[k + l];
      float dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (; k < g.K; ++k) dot += x[k] * w[k];
      store(g, i, n, dot);
    }
  }
}

#if MM_HAVE_X86
__attribute__((target("avx512f"))) void rows_avx512(const Gemv& g, int64_t n0, int64_t n1) {
  const int64_t K16 = g.K & ~int64_t(15);
  const __mmask16 tail = static_cast<__mmask16>((1u << (g.K - K16)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const float* w = g.b + n * g.ldb;
    __m512 acc[kMaxRows];
    for (int i = 0; i < g.M; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K16; k += 16) {
      const __m512 wv = _mm512_loadu_ps(w + k);
      for (int i = 0; i < g.M; ++i) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(g.a + i * g.lda + k), wv, acc[i]);
    }
    if (tail) {
      const __m512 wv = _mm512_maskz_loadu_ps(tail, w + K16);
      for (int i = 0; i < g.M; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, g.a + i * g.lda + K16), wv, acc[i]);
    }
    for (int i = 0; i < g.M; ++i) store(g, i, n, _mm512_reduce_add_ps(acc[i]));
  }
}

MM_TARGET_AVX2 void rows_avx2(const Gemv& g, int64_t n0, int64_t n1) {
  const int64_t K8 = g.K & ~int64_t(7);
  for (int64_t n = n0; n < n1; ++n) {
    const float* w = g.b + n * g.ldb;
    __m256 acc[kMaxRows];
    for (int i = 0; i < g.M; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      const __m256 wv = _mm256_loadu_ps(w + k);
      for (int i = 0; i < g.M; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(g.a + i * g.lda + k), wv, acc[i]);
    }
    for (int i = 0; i < g.M; ++i) {
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      s = _mm_add_ss(s, _mm_movehdup_ps(s));
      float dot = _mm_cvtss_f32(s);
      for (int64_t k = K8; k < g.K; ++k) dot += g.a[i * g.lda + k] * w[k];
      store(g, i, n, dot);
    }
  }
}
#endif

}  // namespace

bool gemv_rows(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (transA || !transB || M > kMaxRows || K == 0) return false;
  const Gemv g{A, lda, B, ldb, C, ldc, M, K, alpha, beta};
  void (*rows)(const Gemv&, int64_t, int64_t) = rows_portable;
  const char* isa = sgemm_isa();
#if MM_HAVE_X86
  if (std::string_view(isa) == "avx512") rows = rows_avx512;
  else if (std::string_view(isa) == "avx2") rows = rows_avx2;
#endif
  // ~64 KiB of weights per chunk: enough work to pay for waking a thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t(16) << 10) / K);
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) { rows(g, n0, n1); });
  return true;
}

}  // namespace mm::cpu
