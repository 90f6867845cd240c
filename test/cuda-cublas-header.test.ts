// The hand-written cuBLASLt declarations (native/cuda/cublaslt_api.h) against a real cublasLt.h, when this machine
// has one (CUDA toolkits with cuBLAS; not the CUDA runtime-only install CI has): enum values, struct layouts and the
// prototypes that libcublasLt.so is called with. Compiled with the host compiler, as test/dist-nccl.test.ts does.
import * as path from 'node:path';
import { cudaHome, expectCompiles, findInclude } from './header-check';

const cublasInclude = findInclude('cublasLt.h', [path.join(cudaHome, 'include'), '/usr/include', '/usr/local/include']);

const CHECKS = `
#include <cublasLt.h>
#include <cstddef>
#include <type_traits>
#include "cuda/cublaslt_api.h"
namespace c = mm::cublaslt;
static_assert(sizeof(c::Algo) == sizeof(cublasLtMatmulAlgo_t), "cublasLtMatmulAlgo_t size");
static_assert(sizeof(c::HeuristicResult) == sizeof(cublasLtMatmulHeuristicResult_t), "heuristic result size");
static_assert(offsetof(c::HeuristicResult, workspace_size) == offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize) &&
              offsetof(c::HeuristicResult, state) == offsetof(cublasLtMatmulHeuristicResult_t, state) &&
              offsetof(c::HeuristicResult, waves_count) == offsetof(cublasLtMatmulHeuristicResult_t, wavesCount),
              "heuristic result fields");
static_assert(sizeof(cublasStatus_t) == sizeof(int) && sizeof(cublasComputeType_t) == sizeof(int) &&
              sizeof(cudaDataType_t) == sizeof(int) && sizeof(cublasLtMatmulDescAttributes_t) == sizeof(int) &&
              sizeof(cublasLtMatrixLayoutAttribute_t) == sizeof(int) &&
              sizeof(cublasLtMatmulPreferenceAttributes_t) == sizeof(int), "enums are passed as int");
static_assert(sizeof(cublasLtHandle_t) == sizeof(void*) && sizeof(cublasLtMatmulDesc_t) == sizeof(void*) &&
              sizeof(cublasLtMatrixLayout_t) == sizeof(void*) && sizeof(cublasLtMatmulPreference_t) == sizeof(void*),
              "handles are pointers");
static_assert(c::kComputeF32 == CUBLAS_COMPUTE_32F && c::kTypeF32 == CUDA_R_32F && c::kTypeBF16 == CUDA_R_16BF, "types");
static_assert(c::kDescTransA == CUBLASLT_MATMUL_DESC_TRANSA && c::kDescTransB == CUBLASLT_MATMUL_DESC_TRANSB, "desc attrs");
static_assert(c::kOpN == CUBLAS_OP_N && c::kOpT == CUBLAS_OP_T, "operations");
static_assert(c::kLayoutBatchCount == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT &&
              c::kLayoutBatchStride == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, "layout attrs");
static_assert(c::kPrefMaxWorkspace == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "preference attrs");
// The prototypes, written with cublasLt.h's own types in the order our function-pointer types use.
static_assert(std::is_same<decltype(&cublasLtCreate), cublasStatus_t (*)(cublasLtHandle_t*)>::value, "cublasLtCreate");
static_assert(std::is_same<decltype(&cublasLtMatmulDescCreate),
              cublasStatus_t (*)(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t)>::value, "DescCreate");
static_assert(std::is_same<decltype(&cublasLtMatmulDescSetAttribute),
              cublasStatus_t (*)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void*, size_t)>::value, "DescSet");
static_assert(std::is_same<decltype(&cublasLtMatrixLayoutCreate),
              cublasStatus_t (*)(cublasLtMatrixLayout_t*, cudaDataType, uint64_t, uint64_t, int64_t)>::value, "LayoutCreate");
static_assert(std::is_same<decltype(&cublasLtMatrixLayoutSetAttribute),
              cublasStatus_t (*)(cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t, const void*, size_t)>::value, "LayoutSet");
static_assert(std::is_same<decltype(&cublasLtMatmulPreferenceSetAttribute),
              cublasStatus_t (*)(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void*, size_t)>::value,
              "PreferenceSet");
static_assert(std::is_same<decltype(&cublasLtMatmulAlgoGetHeuristic),
              cublasStatus_t (*)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                 cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                                 cublasLtMatmulHeuristicResult_t*, int*)>::value, "AlgoGetHeuristic");
static_assert(std::is_same<decltype(&cublasLtMatmul),
              cublasStatus_t (*)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*, cublasLtMatrixLayout_t,
                                 const void*, cublasLtMatrixLayout_t, const void*, const void*, cublasLtMatrixLayout_t, void*,
                                 cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t)>::value,
              "cublasLtMatmul");
static_assert(std::is_same<c::Stream, cudaStream_t>::value, "stream handle");
int main() { return 0; }
`;

const name = cublasInclude
  ? `cublaslt_api.h matches ${path.join(cublasInclude, 'cublasLt.h')}`
  : 'cublaslt_api.h matches cublasLt.h (skipped: no cublasLt.h in CUDA_HOME, /usr/include or /usr/local/include)';

(cublasInclude ? test : test.skip)(name, () => {
  expectCompiles(CHECKS, [cublasInclude!, path.join(cudaHome, 'include')], ['-Wno-enum-compare']);
});

test('cublaslt_api.h compiles on its own with the host compiler (no CUDA headers needed)', () => {
  expectCompiles('#include "cuda/cublaslt_api.h"\nstatic_assert(sizeof(mm::cublaslt::Algo) == 64, "Algo");\nint main() { return 0; }\n',
    [], ['-Wall']);
});
