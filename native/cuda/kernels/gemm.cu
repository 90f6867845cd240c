// GEMM on tensor cores without cuBLAS: bf16 inputs, fp32 accumulation, fp32 or bf16 output. Same contract as the
// CPU's sgemm (native/cpu/gemm.h):
//   for b in [0, batch):  C_b = alpha * op(A_b) @ op(B_b) + beta * C_b
//   op(A_b) is M x K (A_b is K x M when transA), op(B_b) is K x N (B_b is N x K when transB); row-major with
//   row strides lda/ldb/ldc and batch strides strideA/B/C (elements). beta = 0 ignores C's old contents.
// Each block computes a 32 x 32 tile of C with 4 warps (one 16 x 16 WMMA accumulator each), staging 32 x 16
// slices of op(A) and 16 x 32 slices of op(B) in shared memory; transposes and ragged edges (zero padding) are
// handled while staging. The GPU backend prefers cuBLASLt when it can load it (native/cuda/cublaslt.cu).
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kTile = 32;  // C tile edge
constexpr int kStep = 16;  // K per stage (one WMMA k)

__device__ inline void store_out(float& dst, float v) { dst = v; }
__device__ inline void store_out(bf16& dst, float v) { dst = __float2bfloat16(v); }

template <typename OutT>
__global__ void gemm_tiled_kernel(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                                  const bf16* A, int64_t lda, int64_t strideA, const bf16* B, int64_t ldb,
                                  int64_t strideB, float beta, OutT* C, int64_t ldc, int64_t strideC) {
  using namespace nvcuda;
  MM_SHARED(bf16, a_tile, [kTile][kStep]);
  MM_SHARED(bf16, b_tile, [kStep][kTile]);
  MM_SHARED(float, c_tile, [kTile][kTile]);
  A += blockIdx.z * strideA;
  B += blockIdx.z * strideB;
  C += blockIdx.z * strideC;
  const int64_t row0 = int64_t(blockIdx.y) * kTile, col0 = int64_t(blockIdx.x) * kTile;
  const int warp = threadIdx.x / 32, warp_row = warp / 2, warp_col = warp % 2;
  const bf16 zero = __float2bfloat16(0.f);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.f);
  for (int64_t k0 = 0; k0 < K; k0 += kStep) {
    for (int e = threadIdx.x; e < kTile * kStep; e += blockDim.x) {
      const int r = e / kStep, k = e % kStep;  // a_tile[r][k] = op(A)[row0 + r][k0 + k]
      const int64_t i = row0 + r, ka = k0 + k;
      a_tile[r][k] = i < M && ka < K ? (transA ? A[ka * lda + i] : A[i * lda + ka]) : zero;
      const int kb_local = e / kTile, c = e % kTile;  // b_tile[kb][c] = op(B)[k0 + kb][col0 + c]
      const int64_t j = col0 + c, kb = k0 + kb_local;
      b_tile[kb_local][c] = j < N && kb < K ? (transB ? B[j * ldb + kb] : B[kb * ldb + j]) : zero;
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> b;
    wmma::load_matrix_sync(a, &a_tile[warp_row * 16][0], kStep);
    wmma::load_matrix_sync(b, &b_tile[0][warp_col * 16], kTile);
    wmma::mma_sync(acc, a, b, acc);
    __syncthreads();  // the next stage overwrites the tiles
  }
  wmma::store_matrix_sync(&c_tile[warp_row * 16][warp_col * 16], acc, kTile, wmma::mem_row_major);
  __syncthreads();
  for (int e = threadIdx.x; e < kTile * kTile; e += blockDim.x) {
    const int r = e / kTile, c = e % kTile;
    const int64_t i = row0 + r, j = col0 + c;
    if (i >= M || j >= N) continue;
    OutT& dst = C[i * ldc + j];
    float v = alpha * c_tile[r][c];
    if (beta != 0.f) v += beta * float(dst);
    store_out(dst, v);
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::gemm_tiled(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                           int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB, float beta,
                           void* C, bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return 0;
  if (batch > 65535 || (M + kTile - 1) / kTile > 65535) return fail("gemm_tiled: batch or M too large for the grid");
  const dim3 grid(static_cast<unsigned>((N + kTile - 1) / kTile), static_cast<unsigned>((M + kTile - 1) / kTile),
                  static_cast<unsigned>(batch));
  if (c_bf16) {
    MM_LAUNCH(gemm_tiled_kernel<bf16>, grid, 128, 0, 0)(transA, transB, M, N, K, alpha, as_bf16(A), lda, strideA,
                                                       as_bf16(B), ldb, strideB, beta, static_cast<bf16*>(C), ldc,
                                                       strideC);
  } else {
    MM_LAUNCH(gemm_tiled_kernel<float>, grid, 128, 0, 0)(transA, transB, M, N, K, alpha, as_bf16(A), lda, strideA,
                                                        as_bf16(B), ldb, strideB, beta, static_cast<float*>(C), ldc,
                                                        strideC);
  }
  return launch_status("gemm_tiled");
}

}  // namespace mm
