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

// gemv.cc: the decoding case (M <= 4 rows, transB, no transA) as row dot products at memory bandwidth.
// Returns false when the product is not of that shape (sgemm then packs as usual).
bool gemv_rows(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Weights kept at lower precision for inference (gemv.cc). Half types hold raw 16-bit patterns.
enum class WeightType { kF32 = 0, kBf16 = 1, kF16 = 2 };

// C[M, N] = A[M, K] @ B[N, K]^T (overwriting C) with half-precision B (kBf16 or kF16): f32 inputs, sums and
// outputs. M <= 4 reads B once at memory bandwidth; larger M widens blocks of B to f32 and runs sgemm.
void gemm_half_weights(WeightType type, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const uint16_t* B, int64_t ldb, float* C, int64_t ldc);

// out[i, :] = weight[ids[i], :] widened to f32, weight [V, C] half-precision. The caller checks that ids lie
// in [0, V) (embedding.h first_invalid_id).
void embedding_half_weights(WeightType type, float* out, const int32_t* ids, int64_t n, const uint16_t* weight,
                            int64_t C);

// dst[i] = src[i] rounded to bf16 or f16 (nearest, ties to even; beyond f16's range: infinity).
void narrow_weights(WeightType type, uint16_t* dst, const float* src, int64_t n);

}  // namespace mm::cpu
