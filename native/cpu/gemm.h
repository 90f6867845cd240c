// GEMM (native/cpu/gemm.cc): batched, row-major, any transposes, accumulating.
//   for b in [0, batch):  C_b = alpha * op(A_b) @ op(B_b) + beta * C_b
//   op(A_b) is M x K (A_b is K x M when transA), op(B_b) is K x N (B_b is N x K when transB).
//   X_b = X + b * strideX; lda/ldb/ldc are row strides in elements. beta = 0 ignores C's old contents.
#pragma once
#include <cstdint>

namespace mm::cpu {

// Threaded over the pool (called from inside a pool task it runs on the calling thread alone).
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, int64_t strideA,
           const float* B, int64_t ldb, int64_t strideB,
           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch);

// The micro-kernel sgemm uses: by default the widest the CPU has ("avx512", "avx2", or "portable";
// MINIMIND_CPU=portable forces "portable"). Tests force each one to compare them.
const char* sgemm_isa();
// Forces one ("avx512", "avx2", "portable") or goes back to the default ("auto"). Returns false, changing
// nothing, for an unknown name or an ISA this CPU lacks. Not for use while other threads run sgemm.
bool sgemm_force_isa(const char* name);

}  // namespace mm::cpu
