// GEMM on the GPU (mm::CudaDevice::gemm): cuBLASLt when it can be loaded, else our WMMA kernel (kernels/gemm.cu).
// cuBLASLt is dlopen()ed at the first GEMM with hand-declared prototypes, so the build needs no cuBLAS headers or
// libraries and the addon loads where cuBLAS is missing. MINIMIND_CUBLASLT=0 forces the WMMA kernel.
// Row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the operands swap places.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cublaslt_api.h"
#include "mm_cuda.h"

namespace mm {
namespace {

using namespace mm::cublaslt;  // the hand-declared part of cublasLt.h (cublaslt_api.h)

constexpr size_t kWorkspaceBytes = 32 << 20;    // Hopper kernels want a large workspace

struct CublasLt {
  CreateFn create;
  DescCreateFn desc_create;
  DescDestroyFn desc_destroy;
  DescSetFn desc_set;
  LayoutCreateFn layout_create;
  LayoutDestroyFn layout_destroy;
  LayoutSetFn layout_set;
  PrefCreateFn pref_create;
  PrefDestroyFn pref_destroy;
  PrefSetFn pref_set;
  HeuristicFn heuristic;
  MatmulFn matmul;
  Handle handle = nullptr;
  void* workspace = nullptr;
};

// Loads cuBLASLt once; null when unavailable (no library, a missing symbol, or no device).
CublasLt* load_cublaslt() {
  static CublasLt* loaded = [] () -> CublasLt* {
    const char* setting = std::getenv("MINIMIND_CUBLASLT");
    if (setting && std::strcmp(setting, "0") == 0) return nullptr;
    void* lib = nullptr;
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) return nullptr;
    static CublasLt lt;
    bool ok = true;
    auto bind = [&](auto& fn, const char* symbol) {
      void* p = dlsym(lib, symbol);
      ok = ok && p;
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    bind(lt.create, "cublasLtCreate");
    bind(lt.desc_create, "cublasLtMatmulDescCreate");
    bind(lt.desc_destroy, "cublasLtMatmulDescDestroy");
    bind(lt.desc_set, "cublasLtMatmulDescSetAttribute");
    bind(lt.layout_create, "cublasLtMatrixLayoutCreate");
    bind(lt.layout_destroy, "cublasLtMatrixLayoutDestroy");
    bind(lt.layout_set, "cublasLtMatrixLayoutSetAttribute");
    bind(lt.pref_create, "cublasLtMatmulPreferenceCreate");
    bind(lt.pref_destroy, "cublasLtMatmulPreferenceDestroy");
    bind(lt.pref_set, "cublasLtMatmulPreferenceSetAttribute");
    bind(lt.heuristic, "cublasLtMatmulAlgoGetHeuristic");
    bind(lt.matmul, "cublasLtMatmul");
    if (!ok || lt.create(&lt.handle) != 0) return nullptr;
    if (cudaMalloc(&lt.workspace, kWorkspaceBytes) != cudaSuccess) return nullptr;
    return &lt;
  }();
  return loaded;
}

// A column-major layout of a row-major matrix with `rows` x `cols` as stored, batched.
Layout make_layout(CublasLt& lt, int type, int64_t stored_rows, int64_t stored_cols, int64_t ld, int64_t batch,
                   int64_t stride) {
  Layout layout = nullptr;
  // Row-major stored_rows x stored_cols is column-major stored_cols x stored_rows with the same leading dim.
  if (lt.layout_create(&layout, type, stored_cols, stored_rows, ld) != 0) return nullptr;
  const int32_t count = static_cast<int32_t>(batch);
  lt.layout_set(layout, kLayoutBatchCount, &count, sizeof count);
  lt.layout_set(layout, kLayoutBatchStride, &stride, sizeof stride);
  return layout;
}

// C = alpha op(A) op(B) + beta C with cuBLASLt; false when it has no algorithm for this case.
bool gemm_cublaslt(CublasLt& lt, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                   const uint16_t* A, int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB,
                   float beta, void* C, bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch) {
  MatmulDesc desc = nullptr;
  if (lt.desc_create(&desc, kComputeF32, kTypeF32) != 0) return false;
  const int32_t op_first = transB ? kOpT : kOpN, op_second = transA ? kOpT : kOpN;  // swapped operands
  lt.desc_set(desc, kDescTransA, &op_first, sizeof op_first);
  lt.desc_set(desc, kDescTransB, &op_second, sizeof op_second);
  Layout first = make_layout(lt, kTypeBF16, transB ? N : K, transB ? K : N, ldb, batch, strideB);
  Layout second = make_layout(lt, kTypeBF16, transA ? K : M, transA ? M : K, lda, batch, strideA);
  Layout out = make_layout(lt, c_bf16 ? kTypeBF16 : kTypeF32, M, N, ldc, batch, strideC);
  Preference pref = nullptr;
  lt.pref_create(&pref);
  const uint64_t workspace = kWorkspaceBytes;
  lt.pref_set(pref, kPrefMaxWorkspace, &workspace, sizeof workspace);
  HeuristicResult result;
  int found = 0;
  bool done = first && second && out &&
              lt.heuristic(lt.handle, desc, first, second, out, out, pref, 1, &result, &found) == 0 && found > 0 &&
              lt.matmul(lt.handle, desc, &alpha, B, first, A, second, &beta, C, out, C, out, &result.algo,
                        lt.workspace, kWorkspaceBytes, nullptr) == 0;
  lt.pref_destroy(pref);
  for (Layout l : {first, second, out})
    if (l) lt.layout_destroy(l);
  lt.desc_destroy(desc);
  return done;
}

}  // namespace

int CudaDevice::gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                     int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB, float beta,
                     void* C, bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return 0;
  if (CublasLt* lt = load_cublaslt())
    if (gemm_cublaslt(*lt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, c_bf16, ldc,
                      strideC, batch))
      return 0;
  return gemm_tiled(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, c_bf16, ldc, strideC,
                    batch);
}

}  // namespace mm
