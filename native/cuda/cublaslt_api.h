// The part of cuBLASLt's C API that minimind-native calls, declared by hand so the build needs no cuBLAS headers:
// libcublasLt.so is loaded with dlopen at run time (native/cuda/cublaslt.cu). Handles are opaque pointers (void*
// here), enums are passed as int; the values are the public ABI of cublasLt.h and library_types.h (CUDA 12/13).
// test/cuda-cublas-header.test.ts compiles this header against a real cublasLt.h when one is present.
// Plain C++ (no CUDA headers), so that test can compile it with the host compiler.
#pragma once
#include <cstddef>
#include <cstdint>

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace mm::cublaslt {

using Status = int;        // cublasStatus_t, 0 = CUBLAS_STATUS_SUCCESS
using Handle = void*;      // cublasLtHandle_t
using MatmulDesc = void*;  // cublasLtMatmulDesc_t
using Layout = void*;      // cublasLtMatrixLayout_t
using Preference = void*;  // cublasLtMatmulPreference_t
using Stream = CUstream_st*;

struct Algo {  // cublasLtMatmulAlgo_t
  uint64_t data[8];
};
struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
  Algo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

constexpr int kComputeF32 = 68;                               // CUBLAS_COMPUTE_32F
constexpr int kTypeF32 = 0, kTypeBF16 = 14;                   // CUDA_R_32F, CUDA_R_16BF
constexpr int kDescTransA = 3, kDescTransB = 4;               // CUBLASLT_MATMUL_DESC_TRANSA/B (int32 cublasOperation_t)
constexpr int kOpN = 0, kOpT = 1;                             // CUBLAS_OP_N/T
constexpr int kLayoutBatchCount = 5, kLayoutBatchStride = 6;  // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT (int32) /
                                                              // ..._STRIDED_BATCH_OFFSET (int64)
constexpr int kPrefMaxWorkspace = 1;                          // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES (uint64)

// The entry points, as function-pointer types matching cublasLt.h's prototypes.
using CreateFn = Status (*)(Handle* handle);                                          // cublasLtCreate
using DescCreateFn = Status (*)(MatmulDesc* desc, int compute, int scale_type);       // cublasLtMatmulDescCreate
using DescDestroyFn = Status (*)(MatmulDesc desc);                                    // cublasLtMatmulDescDestroy
using DescSetFn = Status (*)(MatmulDesc desc, int attr, const void* value, size_t size);
using LayoutCreateFn = Status (*)(Layout* layout, int type, uint64_t rows, uint64_t cols, int64_t ld);
using LayoutDestroyFn = Status (*)(Layout layout);
using LayoutSetFn = Status (*)(Layout layout, int attr, const void* value, size_t size);
using PrefCreateFn = Status (*)(Preference* pref);
using PrefDestroyFn = Status (*)(Preference pref);
using PrefSetFn = Status (*)(Preference pref, int attr, const void* value, size_t size);
using HeuristicFn = Status (*)(Handle handle, MatmulDesc desc, Layout a, Layout b, Layout c, Layout d, Preference pref,
                               int requested, HeuristicResult* results, int* returned);  // cublasLtMatmulAlgoGetHeuristic
using MatmulFn = Status (*)(Handle handle, MatmulDesc desc, const void* alpha, const void* A, Layout a, const void* B,
                            Layout b, const void* beta, const void* C, Layout c, void* D, Layout d, const Algo* algo,
                            void* workspace, size_t workspace_size, Stream stream);       // cublasLtMatmul

}  // namespace mm::cublaslt
