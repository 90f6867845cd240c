// The hand-written NCCL declarations (native/cuda/nccl_api.h) against a real nccl.h, when this machine has one:
// enum values and struct sizes must match the ABI that libnccl.so.2 is called with. Compiled with the host
// compiler (the header has no CUDA code), with CUDA's include folder for nccl.h's own includes.
import * as path from 'node:path';
import { cudaHome, expectCompiles, findInclude } from './header-check';

const ncclInclude = findInclude('nccl.h', [process.env.NCCL_HOME && path.join(process.env.NCCL_HOME, 'include'),
  '/usr/include', '/usr/local/include', path.join(cudaHome, 'include')]);

const CHECKS = `
#include <nccl.h>
#include "cuda/nccl_api.h"
#include <type_traits>
namespace n = mm::nccl;
static_assert(sizeof(n::UniqueId) == sizeof(ncclUniqueId), "ncclUniqueId size");
static_assert(n::kUniqueIdBytes == NCCL_UNIQUE_ID_BYTES, "NCCL_UNIQUE_ID_BYTES");
static_assert(sizeof(ncclResult_t) == sizeof(int) && sizeof(ncclDataType_t) == sizeof(int) &&
              sizeof(ncclRedOp_t) == sizeof(int), "enums are passed as int");
static_assert(n::kSuccess == ncclSuccess && n::kUnhandledCudaError == ncclUnhandledCudaError &&
              n::kSystemError == ncclSystemError && n::kInternalError == ncclInternalError &&
              n::kInvalidArgument == ncclInvalidArgument && n::kInvalidUsage == ncclInvalidUsage &&
              n::kRemoteError == ncclRemoteError && n::kInProgress == ncclInProgress, "ncclResult_t");
static_assert(n::kInt8 == ncclInt8 && n::kInt32 == ncclInt32 && n::kFloat16 == ncclFloat16 &&
              n::kFloat32 == ncclFloat32 && n::kFloat64 == ncclFloat64 && n::kBfloat16 == ncclBfloat16, "ncclDataType_t");
static_assert(n::kSum == ncclSum && n::kProd == ncclProd && n::kMax == ncclMax && n::kMin == ncclMin &&
              n::kAvg == ncclAvg, "ncclRedOp_t");
static_assert(std::is_same<n::Comm, ncclComm_t>::value && std::is_same<n::Stream, cudaStream_t>::value, "handles");
// Same parameter lists once our int enums are read as NCCL's enums.
static_assert(std::is_same<decltype(&ncclGetUniqueId), ncclResult_t (*)(ncclUniqueId*)>::value, "ncclGetUniqueId");
static_assert(std::is_same<decltype(&ncclCommInitRank), ncclResult_t (*)(ncclComm_t*, int, ncclUniqueId, int)>::value, "ncclCommInitRank");
static_assert(std::is_same<decltype(&ncclAllReduce), ncclResult_t (*)(const void*, void*, size_t, ncclDataType_t,
              ncclRedOp_t, ncclComm_t, cudaStream_t)>::value, "ncclAllReduce");
static_assert(std::is_same<decltype(&ncclBroadcast), ncclResult_t (*)(const void*, void*, size_t, ncclDataType_t, int,
              ncclComm_t, cudaStream_t)>::value, "ncclBroadcast");
static_assert(std::is_same<decltype(&ncclGroupStart), ncclResult_t (*)()>::value &&
              std::is_same<decltype(&ncclGroupEnd), ncclResult_t (*)()>::value, "ncclGroupStart/End");
int main() { return 0; }
`;

const name = ncclInclude
  ? `nccl_api.h matches ${path.join(ncclInclude, 'nccl.h')}`
  : 'nccl_api.h matches nccl.h (skipped: no nccl.h in NCCL_HOME, /usr/include, /usr/local/include or CUDA_HOME)';

(ncclInclude ? test : test.skip)(name, () => {
  expectCompiles(CHECKS, [ncclInclude!, path.join(cudaHome, 'include')], ['-Wno-enum-compare']);
});
