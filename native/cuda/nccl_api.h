// The part of NCCL's C API that minimind-native calls, declared by hand so the build needs no NCCL headers:
// libnccl.so.2 is loaded with dlopen at run time (native/cuda/nccl.cu). The values are the public ABI of
// nccl.h (NCCL 2.x); test/dist-nccl.test.ts compiles this header against a real nccl.h when one is present.
// Plain C++ (no CUDA headers), so that test can compile it with the host compiler.
#pragma once
#include <cstddef>

struct ncclComm;     // opaque, as in nccl.h
struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace mm::nccl {

using Comm = ncclComm*;
using Stream = CUstream_st*;

constexpr int kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
struct UniqueId {
  char internal[kUniqueIdBytes];
};

// ncclResult_t
enum Result : int {
  kSuccess = 0,
  kUnhandledCudaError = 1,
  kSystemError = 2,
  kInternalError = 3,
  kInvalidArgument = 4,
  kInvalidUsage = 5,
  kRemoteError = 6,
  kInProgress = 7,
};

// ncclDataType_t (the ones we use)
enum DataType : int {
  kInt8 = 0,
  kInt32 = 2,
  kFloat16 = 6,
  kFloat32 = 7,
  kFloat64 = 8,
  kBfloat16 = 9,
};

// ncclRedOp_t (ncclAvg needs NCCL >= 2.10)
enum RedOp : int {
  kSum = 0,
  kProd = 1,
  kMax = 2,
  kMin = 3,
  kAvg = 4,
};

// The entry points, as function-pointer types matching nccl.h's prototypes.
using GetVersionFn = Result (*)(int* version);
using GetUniqueIdFn = Result (*)(UniqueId* id);
using CommInitRankFn = Result (*)(Comm* comm, int nranks, UniqueId id, int rank);
using AllReduceFn = Result (*)(const void* send, void* recv, size_t count, DataType type, RedOp op, Comm comm,
                               Stream stream);
using BroadcastFn = Result (*)(const void* send, void* recv, size_t count, DataType type, int root, Comm comm,
                               Stream stream);
using CommDestroyFn = Result (*)(Comm comm);
using CommAbortFn = Result (*)(Comm comm);
using GetErrorStringFn = const char* (*)(Result result);
using GroupStartFn = Result (*)();
using GroupEndFn = Result (*)();

}  // namespace mm::nccl
