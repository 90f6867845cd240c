// The CUDA backend's host-side entry points, callable from the addon's C++ bindings.
//   mm::cuda::query()  - device discovery (compiled only when nvcc is found: MINIMIND_WITH_CUDA);
//   mm::CudaDevice     - memory and kernels on the GPU (same condition);
//   mm::CudaEmulated   - the same kernels run by the CPU emulator (always compiled; no GPU, no toolkit needed).
// The kernel tables of both backends are declared by native/cuda/kernels.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mm::cuda {

struct Info {
  int runtime_version = 0;
  int driver_version = 0;
  int device_count = 0;
  int error = 0;                 // cudaError_t of the device query (0 when fine)
  char error_text[256] = {0};    // the driver's message when device_count is 0
  char names[8][128] = {{0}};    // first devices' names
  int cc_major[8] = {0}, cc_minor[8] = {0};
  size_t total_mem[8] = {0};
};

Info query();

}  // namespace mm::cuda

namespace mm {

#define MM_CUDA_BACKEND CudaDevice
#include "../cuda/kernels.h"
#undef MM_CUDA_BACKEND

#define MM_CUDA_BACKEND CudaEmulated
#include "../cuda/kernels.h"
#undef MM_CUDA_BACKEND

// Settings of the emulated device (tests): the order fibers run in, and shared-memory poisoning.
enum class EmuSchedule { Forward, Reverse, Random };
void emu_configure(EmuSchedule schedule, uint64_t seed, bool poison);

}  // namespace mm
