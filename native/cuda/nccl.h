// NCCL communicators for the CUDA backend (implemented in nccl.cu; compiled only with nvcc).
// libnccl.so.2 is loaded with dlopen on first use, so builds and machines without NCCL still work until
// `--backend nccl` is asked for, which then fails with a message saying what is missing.
// Functions throw std::runtime_error with NCCL's or CUDA's error text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mm::cuda::nccl {

// Empty when NCCL can be used (libnccl.so.2 loads and a CUDA device exists), else the reason.
std::string unavailable_reason();
int version();                    // e.g. 22105 for 2.21.5
std::string unique_id();          // 128 bytes, made by rank 0 and shared through the store
// Binds this process to CUDA device `device` and joins the communicator; returns a handle.
int init_rank(int rank, int world, const std::string& id, int device);
// In place on device memory; dtype: 0 f32, 1 bf16; average over ranks when `average`, else sum.
void all_reduce(int handle, void* data, int64_t count, int dtype, bool average);
// Starts in-place all-reduces of several device buffers (one NCCL group) on the communicator's own stream,
// ordered after the work queued so far on the default stream (the kernels that produced the gradients), and
// returns at once: the backward pass goes on while they run. wait() blocks until all started ones are done.
void all_reduce_start(int handle, const std::vector<void*>& data, const std::vector<int64_t>& counts, int dtype,
                      bool average);
void wait(int handle);
void broadcast(int handle, void* data, int64_t bytes, int root);
void destroy(int handle, bool abort);

}  // namespace mm::cuda::nccl
