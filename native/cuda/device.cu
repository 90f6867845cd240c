// CUDA device discovery: runtime and driver versions, devices, and the driver's error text when there is none.
// Static cudart loads libcuda.so.1 lazily here, so the addon still loads on machines without a driver.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "mm_cuda.h"

namespace mm::cuda {

Info query() {
  Info info;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  cudaError_t err = cudaGetDeviceCount(&info.device_count);
  if (err != cudaSuccess) {
    info.device_count = 0;
    info.error = static_cast<int>(err);
    std::snprintf(info.error_text, sizeof info.error_text, "%s (cudaError %d)", cudaGetErrorString(err),
                  static_cast<int>(err));
    cudaGetLastError();  // clear the sticky error
    return info;
  }
  for (int d = 0; d < info.device_count && d < 8; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    std::strncpy(info.names[d], prop.name, sizeof info.names[d] - 1);
    info.cc_major[d] = prop.major;
    info.cc_minor[d] = prop.minor;
    info.total_mem[d] = prop.totalGlobalMem;
  }
  return info;
}

}  // namespace mm::cuda
