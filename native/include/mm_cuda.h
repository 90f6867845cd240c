// The CUDA backend's host-side entry points, callable from the addon's C++ bindings.
// Compiled only when nvcc is found (MINIMIND_WITH_CUDA); each returns 0 or a cudaError_t value.
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
