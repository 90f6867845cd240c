// GEMM: PLACEHOLDER plain loops until the packed, cache-blocked micro-kernel lands (see gemm.h for the contract).
#include "gemm.h"

#include "mm.h"

namespace mm::cpu {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, int64_t strideA,
           const float* B, int64_t ldb, int64_t strideB,
           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  parallel_for(batch * M, 1, [=](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      int64_t b = r / M, i = r % M;
      const float* a = A + b * strideA;
      const float* bb = B + b * strideB;
      float* c = C + b * strideC + i * ldc;
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          float av = transA ? a[k * lda + i] : a[i * lda + k];
          float bv = transB ? bb[j * ldb + k] : bb[k * ldb + j];
          acc += double(av) * bv;
        }
        c[j] = float(alpha * acc + (beta == 0.0f ? 0.0 : double(beta) * c[j]));
      }
    }
  });
}

}  // namespace mm::cpu
