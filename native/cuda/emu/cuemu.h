// cuemu.h: one header that lets the same CUDA kernel sources build with nvcc (real GPU) and with g++ (run on
// the CPU, for tests on machines without a GPU).
//
// Under nvcc it only includes the toolkit headers and defines the project's three portability macros:
//   MM_LAUNCH(kernel, grid, block, smem, stream)(args...)   instead of kernel<<<grid, block, smem, stream>>>(args...)
//   MM_SHARED(T, name, dims);                                instead of __shared__ T name dims;
//   MM_EXTERN_SHARED(T, name);                               instead of extern __shared__ T name[];
//
// Under g++ it is an emulator (needs C++20, x86-64, no CUDA toolkit):
//   - every CUDA thread is a fiber with its own small stack; a hand-written context switch (6 callee-saved
//     registers + rsp) moves between them, ~10x cheaper than swapcontext (which makes a syscall per switch);
//   - a block runs to completion on one OS thread; the blocks of a grid run in parallel on the project's
//     thread pool (mm::parallel_tasks), so atomics on global memory are real atomics;
//   - fibers run in passes in a chosen order (forward, reverse, or seeded random per pass); a fiber runs until
//     it blocks (barrier, warp collective) or exits, then hands over directly to the next runnable fiber;
//   - shared memory (static MM_SHARED and dynamic MM_EXTERN_SHARED) is one arena per block, filled with 0xFF
//     bytes before each block (floats read as NaN, ints as -1), so reads of memory nobody wrote show up;
//   - warp collectives (shuffles, votes, __syncwarp) are a rendezvous: each lane leaves a record on its own
//     stack, and the lane that completes the group computes every lane's result at once;
//   - under -fsanitize=thread every fiber is a TSan fiber and barriers are release/acquire edges, so
//     ThreadSanitizer reports a missing __syncthreads as a data race with both source lines.
//   - WMMA fragments (nvcuda::wmma, m16n16k16) are warp collectives too; mma_sync computes in fp32, k in order.
// Deliberately not emulated: inline PTX, cooperative groups, streams (launches are synchronous), the real
// WMMA register layout, and the GPU's approximate fast-math results (__expf is exact expf here).
#pragma once

#if defined(__CUDACC__)
// ================================================= nvcc ==================================================
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#define MM_EMULATED 0
#define MM_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define MM_SHARED(T, name, dims) __shared__ T name dims
#define MM_EXTERN_SHARED(T, name) extern __shared__ T name[]

#else
// ================================================ emulator ===============================================
#if !defined(__x86_64__)
#error "cuemu: the CPU emulator's context switch is written for x86-64"
#endif
#if __cplusplus < 202002L
#error "cuemu: the emulator build needs -std=c++20"
#endif

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mm.h"  // mm::parallel_tasks: the blocks of a grid run on the project's thread pool

#define MM_EMULATED 1

// ---- keywords ------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
// Plain __shared__ cannot be poisoned per block here (it would be a thread_local), so it is refused:
// kernel sources declare shared memory with MM_SHARED / MM_EXTERN_SHARED.
#define __shared__ __shared___is_not_emulated__declare_shared_memory_with_MM_SHARED

// The CUDA types and intrinsics live in namespace cuemu_api (made visible below with a using-directive) so
// their symbols never collide with the toolkit's own dim3, __nv_bfloat16, ... compiled by nvcc into the same
// library.
namespace cuemu_api {

// ---- vector and index types ------------------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
using cudaStream_t = struct CUstream_st*;
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;

// ---- bf16 and half -----------------------------------------------------------------------------------------
namespace detail {
inline uint32_t float_bits(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }
// Round to nearest even, NaN canonicalised to 0x7fff: bit-identical to cuda_bf16.h.
inline uint16_t float_to_bf16_rn(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
}  // namespace detail

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(detail::float_to_bf16_rn(f)) {}
  __nv_bfloat16(double f) : __x(detail::float_to_bf16_rn(static_cast<float>(f))) {}
  __nv_bfloat16(int i) : __x(detail::float_to_bf16_rn(static_cast<float>(i))) {}
  operator float() const { return detail::bits_float(static_cast<uint32_t>(__x) << 16); }
};
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
using nv_bfloat16 = __nv_bfloat16;
using nv_bfloat162 = __nv_bfloat162;
inline float __bfloat162float(__nv_bfloat16 h) { return static_cast<float>(h); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rz(float f) {
  __nv_bfloat16 h;
  h.__x = static_cast<unsigned short>(detail::float_bits(f) >> 16);
  return h;
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { __nv_bfloat16 h; h.__x = u; return h; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__nv_bfloat16(a), __nv_bfloat16(b)}; }
inline __nv_bfloat162 __float2bfloat162_rn(float a) { return {__nv_bfloat16(a), __nv_bfloat16(a)}; }
inline float __low2float(__nv_bfloat162 v) { return static_cast<float>(v.x); }
inline float __high2float(__nv_bfloat162 v) { return static_cast<float>(v.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {static_cast<float>(v.x), static_cast<float>(v.y)}; }
#define MM_BF16_BINARY(op, fn)                                                                     \
  inline __nv_bfloat16 operator op(__nv_bfloat16 a, __nv_bfloat16 b) {                            \
    return __nv_bfloat16(static_cast<float>(a) op static_cast<float>(b));                         \
  }                                                                                                \
  inline __nv_bfloat16 fn(__nv_bfloat16 a, __nv_bfloat16 b) { return a op b; }
MM_BF16_BINARY(+, __hadd)
MM_BF16_BINARY(-, __hsub)
MM_BF16_BINARY(*, __hmul)
MM_BF16_BINARY(/, __hdiv)
#undef MM_BF16_BINARY
inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
  return __nv_bfloat16(std::fma(static_cast<float>(a), static_cast<float>(b), static_cast<float>(c)));
}
inline __nv_bfloat16 __hmax(__nv_bfloat16 a, __nv_bfloat16 b) { return static_cast<float>(a) < static_cast<float>(b) ? b : a; }

struct __half {
  unsigned short __x;
  __half() = default;
  __half(float f) { _Float16 h = static_cast<_Float16>(f); __builtin_memcpy(&__x, &h, 2); }
  operator float() const { _Float16 h; __builtin_memcpy(&h, &__x, 2); return static_cast<float>(h); }
};
inline float __half2float(__half h) { return static_cast<float>(h); }
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }

// ---- math and bit intrinsics ----------------------------------------------------------------------------------
// The GPU's fast approximations (__expf, rsqrtf, __fdividef) are a few ULP off; here they are exact.
// glibc's <math.h> declares __expf, __logf, ... (internal names it does not export), so these are macros.
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __powf(x, y) powf(x, y)
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline int __float_as_int(float f) { int i; __builtin_memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; __builtin_memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { return detail::float_bits(f); }
inline float __uint_as_float(unsigned u) { return detail::bits_float(u); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- atomics: real ones, since blocks run in parallel on OS threads -------------------------------------------
template <typename T> inline T atomicAdd(T* p, T v) requires std::is_integral_v<T> {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <typename T> inline T atomicSub(T* p, T v) requires std::is_integral_v<T> {
  return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}
template <typename T> inline T atomicMax(T* p, T v) requires std::is_integral_v<T> {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <typename T> inline T atomicMin(T* p, T v) requires std::is_integral_v<T> {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old > v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <typename T> inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;  // the old value, whether or not the swap happened
}
template <typename T> inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
namespace detail {
// Floating-point atomics: a compare-and-swap loop on the bit pattern.
template <typename F, typename Bits, typename Op>
inline F atomic_float_update(F* p, Op op) {
  Bits* bits = reinterpret_cast<Bits*>(p);
  Bits old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
  F old_value;
  do {
    __builtin_memcpy(&old_value, &old, sizeof(F));
    F new_value = op(old_value);
    __builtin_memcpy(&next, &new_value, sizeof(F));
  } while (!__atomic_compare_exchange_n(bits, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old_value;
}
}  // namespace detail
inline float atomicAdd(float* p, float v) {
  return detail::atomic_float_update<float, uint32_t>(p, [v](float x) { return x + v; });
}
inline double atomicAdd(double* p, double v) {
  return detail::atomic_float_update<double, uint64_t>(p, [v](double x) { return x + v; });
}
inline float atomicMax(float* p, float v) {
  return detail::atomic_float_update<float, uint32_t>(p, [v](float x) { return fmaxf(x, v); });
}
inline __nv_bfloat16 atomicAdd(__nv_bfloat16* p, __nv_bfloat16 v) {
  return detail::atomic_float_update<__nv_bfloat16, uint16_t>(
      p, [v](__nv_bfloat16 x) { return __nv_bfloat16(static_cast<float>(x) + static_cast<float>(v)); });
}

}  // namespace cuemu_api
using namespace cuemu_api;

// ---- ThreadSanitizer hooks ---------------------------------------------------------------------------------------
#if defined(__SANITIZE_THREAD__)
#define CUEMU_TSAN 1
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#define CUEMU_INTERNAL __attribute__((no_sanitize("thread"), noinline))
#else
#define CUEMU_TSAN 0
#define CUEMU_INTERNAL __attribute__((noinline))
#endif

// ---- the context switch ----------------------------------------------------------------------------------------
// cuemu_switch(save, to): pushes the callee-saved registers, stores rsp in *save, loads `to` as rsp, pops
// the registers saved there and returns into that fiber. Emitted as a weak symbol in a COMDAT group so any
// number of translation units can include this header.
extern "C" void cuemu_switch(void** save_sp, void* to_sp);
asm(R"(
  .pushsection .text.cuemu_switch,"axG",@progbits,cuemu_switch,comdat
  .weak cuemu_switch
  .hidden cuemu_switch
  .type cuemu_switch,@function
cuemu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuemu_switch, .-cuemu_switch
  .popsection
)");

namespace cuemu {

// ---- settings (process-wide, set by tests) ------------------------------------------------------------------------
enum class Schedule : int { Forward = 0, Reverse = 1, Random = 2 };
struct Settings {
  std::atomic<int> schedule{0};
  std::atomic<uint64_t> seed{1};
  std::atomic<bool> poison{true};
};
inline Settings& settings() {
  static Settings s;
  return s;
}
inline void set_schedule(Schedule s, uint64_t seed = 1) {
  settings().schedule = static_cast<int>(s);
  settings().seed = seed;
}
inline void set_poison(bool on) { settings().poison = on; }

constexpr int kMaxThreads = 1024;
constexpr size_t kStaticSmemLimit = 48 * 1024;     // static __shared__ per block, as on the GPU
constexpr size_t kDynamicSmemLimit = 227 * 1024;   // sm_80/sm_90 opt-in maximum
#if CUEMU_TSAN
constexpr size_t kStackBytes = 256 * 1024;  // TSan frames are large
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif

// A kernel failure (deadlock, mismatched collectives, ...): reported by the launch, never an abort.
struct KernelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class FiberState : uint8_t { Runnable, AtBarrier, InWarpOp, Done };

struct Block;
struct Fiber {
  void* sp = nullptr;          // saved stack pointer while switched out
  char* stack = nullptr;       // mmap'd, lowest page is a guard page
  void* tsan_fiber = nullptr;
  uint3 tid{};
  int index = 0;               // linear thread index in the block
  FiberState state = FiberState::Done;
  const char* wait_file = "";  // where it waits, for deadlock reports
  int wait_line = 0;
};

// One warp collective in flight: the lanes in `mask` that have arrived, and each lane's record.
struct WarpRecord {
  uint64_t in = 0, out = 0;  // this lane's value, and its result
  int arg = 0;               // source lane, delta or lane mask
  // Matrix ops (WMMA): the lane's fragments, and the function that computes the whole warp's result.
  const void* operand[4] = {};
  void (*compute)(WarpRecord* const* lanes) = nullptr;
};
enum class WarpOp : uint8_t { ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, SyncWarp, Matrix };
struct WarpGroup {
  unsigned mask = 0, arrived = 0;
  WarpOp op{};
  int width = 32;
  const char* file = "";
  int line = 0;
  WarpRecord* rec[32] = {};
};
struct Warp {
  unsigned live = 0;  // lanes that exist and have not exited
  WarpGroup groups[4];  // disjoint masks may be in flight at once (e.g. two half-warps)
  int sync_token = 0;  // TSan release/acquire address for __syncwarp
};

struct LaunchInfo {
  dim3 grid, block;
  size_t dyn_smem = 0;
  const char* name = "";
  void (*body)(const void* ctx) = nullptr;  // runs the kernel for the current fiber
  const void* ctx = nullptr;
  std::mutex error_mutex;
  std::string error;  // the first failure, if any
  std::atomic<bool> failed{false};
};

// Per-block state; each worker OS thread owns one and reuses it (and its fibers' stacks) for every block.
struct Block {
  LaunchInfo* launch = nullptr;
  uint3 bid{};
  int nthreads = 0;
  int live = 0;
  Fiber fibers[kMaxThreads];
  int order[kMaxThreads];
  int cursor = 0;            // position in `order` of the current pass
  bool ran_in_pass = false;
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  void* scheduler_tsan_fiber = nullptr;
  // __syncthreads
  int bar_arrived = 0;
  unsigned bar_generation = 0;
  int bar_votes[2] = {0, 0};  // __syncthreads_count of the pending/finished generation
  int bar_token[2] = {0, 0};
  bool warned_exit_barrier = false;
  Warp warps[kMaxThreads / 32];
  // shared memory: static allocations (MM_SHARED) then the dynamic part, poisoned before each block
  alignas(64) unsigned char smem[kStaticSmemLimit + kDynamicSmemLimit];
  size_t static_used = 0;
  const void* static_keys[64];
  size_t static_offsets[64];
  int num_static = 0;
  int start_token = 0, end_token = 0;
  std::string error;
};

inline thread_local Block* t_block = nullptr;  // the block running on this OS thread

// What threadIdx, blockIdx, ... read. Under TSan these are uninstrumented calls: emulator state is not kernel
// memory, and a block abandoned after an error never hands its state back with a release.
#if CUEMU_TSAN
#define CUEMU_ACCESSOR CUEMU_INTERNAL inline
#else
#define CUEMU_ACCESSOR inline
#endif
CUEMU_ACCESSOR Fiber* current_fiber() { return t_block->current; }
CUEMU_ACCESSOR const uint3& thread_index() { return t_block->current->tid; }
CUEMU_ACCESSOR const uint3& block_index() { return t_block->bid; }

// ---- fibers -------------------------------------------------------------------------------------------------------
CUEMU_INTERNAL inline void switch_to(void** save, Fiber* to, Block& b) {
  b.current = to;
  b.ran_in_pass = true;
#if CUEMU_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 1 /* __tsan_switch_to_fiber_no_sync */);
#endif
  cuemu_switch(save, to->sp);
}

CUEMU_INTERNAL inline void switch_to_scheduler(void** save, Block& b) {
  b.current = nullptr;
#if CUEMU_TSAN
  __tsan_switch_to_fiber(b.scheduler_tsan_fiber, 1);
#endif
  cuemu_switch(save, b.scheduler_sp);
}

// The next runnable fiber of the current pass, or null when the pass is over.
CUEMU_INTERNAL inline Fiber* next_in_pass(Block& b) {
  while (b.cursor < b.nthreads) {
    Fiber* f = &b.fibers[b.order[b.cursor++]];
    if (f->state == FiberState::Runnable) return f;
  }
  return nullptr;
}

// The current fiber stops running (it waits or has exited): hand over to the next fiber of the pass.
CUEMU_INTERNAL inline void yield_current(Block& b) {
  Fiber* self = b.current;
  void* discard;
  void** save = self->state == FiberState::Done ? &discard : &self->sp;
  if (Fiber* next = next_in_pass(b)) {
    if (next != self) switch_to(save, next, b);
  } else {
    switch_to_scheduler(save, b);
  }
}

[[noreturn]] inline void fail(const std::string& message) { throw KernelError(message); }

inline std::string where(const Block& b, const Fiber& f) {
  char text[160];
  std::snprintf(text, sizeof text, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", b.launch->name, b.bid.x,
                b.bid.y, b.bid.z, f.tid.x, f.tid.y, f.tid.z);
  return text;
}

// ---- __syncthreads ---------------------------------------------------------------------------------------------------
CUEMU_INTERNAL inline void release_barrier(Block& b) {
  for (int i = 0; i < b.nthreads; ++i)
    if (b.fibers[i].state == FiberState::AtBarrier) b.fibers[i].state = FiberState::Runnable;
  b.bar_arrived = 0;
  b.bar_generation++;
  b.bar_votes[b.bar_generation & 1] = 0;
}

// Arrives at the block barrier with a vote; returns how many threads voted true.
CUEMU_INTERNAL inline int barrier(int vote, const char* file, int line) {
  Block& b = *t_block;
  Fiber* self = b.current;
  unsigned generation = b.bar_generation;
  b.bar_votes[generation & 1] += vote != 0;
#if CUEMU_TSAN
  __tsan_release(&b.bar_token[generation & 1]);
#endif
  if (++b.bar_arrived == b.live) {
    release_barrier(b);  // the last thread to arrive releases everyone and keeps running
  } else {
    self->state = FiberState::AtBarrier;
    self->wait_file = file;
    self->wait_line = line;
    yield_current(b);
  }
#if CUEMU_TSAN
  __tsan_acquire(&b.bar_token[generation & 1]);
#endif
  return b.bar_votes[generation & 1];
}

// ---- warp collectives --------------------------------------------------------------------------------------------------
CUEMU_INTERNAL inline void complete_group(WarpGroup& g, Block& b, int warp_index) {
  const unsigned present = g.arrived;
  if (g.op == WarpOp::Matrix) {
    if (present != ~0u) fail("a WMMA operation needs all 32 lanes of the warp");
    g.rec[0]->compute(g.rec);
  }
  for (int lane = 0; lane < 32 && g.op != WarpOp::Matrix; ++lane) {
    if (!(present >> lane & 1)) continue;
    WarpRecord& r = *g.rec[lane];
    if (g.op == WarpOp::Ballot) {
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l)
        if ((present >> l & 1) && g.rec[l]->in) ballot |= 1u << l;
      r.out = ballot;
      continue;
    }
    if (g.op == WarpOp::SyncWarp) continue;
    // Shuffles follow PTX shfl.sync: lanes are split into segments of `width`; a source outside the segment
    // (up/down/xor) returns the lane's own value; a source lane that did not take part is undefined (poison).
    const int seg_start = lane & ~(g.width - 1);
    int src = lane;
    switch (g.op) {
      case WarpOp::ShflIdx: src = seg_start + (r.arg & (g.width - 1)); break;
      case WarpOp::ShflUp: src = lane - r.arg; if (src < seg_start) src = lane; break;
      case WarpOp::ShflDown: src = lane + r.arg; if (src >= seg_start + g.width) src = lane; break;
      case WarpOp::ShflXor: src = lane ^ r.arg; if (src >= seg_start + g.width || src < seg_start) src = lane; break;
      default: break;
    }
    r.out = (present >> src & 1) ? g.rec[src]->in : ~uint64_t(0);
  }
  for (int lane = 0; lane < 32; ++lane)
    if ((present >> lane & 1)) {
      Fiber& f = b.fibers[warp_index * 32 + lane];
      if (f.state == FiberState::InWarpOp) f.state = FiberState::Runnable;
    }
  g.mask = 0;
  g.arrived = 0;
}

inline const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Ballot: return "__ballot/__any/__all_sync";
    case WarpOp::SyncWarp: return "__syncwarp";
    case WarpOp::Matrix: return "wmma::mma_sync";
    default: return "__shfl*_sync";
  }
}

// The calling lane joins the collective `op` over `mask`; returns when every live lane of the mask has joined.
CUEMU_INTERNAL inline void warp_collective(WarpOp op, unsigned mask, int width, WarpRecord& r, const char* file,
                                           int line) {
  Block& b = *t_block;
  Fiber* self = b.current;
  const int warp_index = self->index / 32, lane = self->index % 32;
  Warp& w = b.warps[warp_index];
  if (!(mask >> lane & 1))
    fail(where(b, *self) + ": lane " + std::to_string(lane) + " calls " + op_name(op) + " at " + file + ":" +
         std::to_string(line) + " with a mask that does not include itself");
  WarpGroup* g = nullptr;
  for (WarpGroup& candidate : w.groups) {
    if (candidate.arrived && (candidate.mask & mask)) {
      if (candidate.mask != mask || candidate.op != op || candidate.width != width) {
        char text[256];
        std::snprintf(text, sizeof text,
                      ": lanes disagree in a warp collective: lane %d %s mask %08x at %s:%d, but %s mask %08x at "
                      "%s:%d is pending",
                      lane, op_name(op), mask, file, line, op_name(candidate.op), candidate.mask, candidate.file,
                      candidate.line);
        fail(where(b, *self) + text);
      }
      g = &candidate;
      break;
    }
  }
  if (!g) {
    for (WarpGroup& candidate : w.groups)
      if (!candidate.arrived) { g = &candidate; break; }
    if (!g) fail(where(b, *self) + ": more than 4 warp collectives in flight in one warp");
    g->mask = mask;
    g->op = op;
    g->width = width;
    g->file = file;
    g->line = line;
  }
  g->rec[lane] = &r;
  g->arrived |= 1u << lane;
  if (op == WarpOp::SyncWarp) {
#if CUEMU_TSAN
    __tsan_release(&w.sync_token);
#endif
  }
  if ((g->arrived & (mask & w.live)) == (mask & w.live)) {
    complete_group(*g, b, warp_index);
  } else {
    self->state = FiberState::InWarpOp;
    self->wait_file = file;
    self->wait_line = line;
    yield_current(b);
  }
  if (op == WarpOp::SyncWarp) {
#if CUEMU_TSAN
    __tsan_acquire(&w.sync_token);
#endif
  }
}

// A lane exited: groups waiting only for it can complete now, and so can the block barrier.
CUEMU_INTERNAL inline void on_exit(Block& b, Fiber& f) {
  Warp& w = b.warps[f.index / 32];
  w.live &= ~(1u << (f.index % 32));
  for (WarpGroup& g : w.groups)
    if (g.arrived && (g.arrived & (g.mask & w.live)) == (g.mask & w.live)) complete_group(g, b, f.index / 32);
  b.live--;
  if (b.bar_arrived > 0 && b.bar_arrived == b.live) {
    if (!b.warned_exit_barrier) {
      std::fprintf(stderr,
                   "cuemu: warning: kernel %s: a __syncthreads completed because other threads of the block had "
                   "exited (undefined behaviour in CUDA)\n",
                   b.launch->name);
      b.warned_exit_barrier = true;
    }
    release_barrier(b);
  }
}

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp shuffles move up to 8 bytes");
  uint64_t bits = 0;
  __builtin_memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <typename T>
inline T from_bits(uint64_t bits) {
  T v;
  __builtin_memcpy(static_cast<void*>(&v), &bits, sizeof(T));
  return v;
}

CUEMU_INTERNAL inline uint64_t shuffle(WarpOp op, unsigned mask, uint64_t bits, int arg, int width,
                                       const char* file, int line) {
  WarpRecord r;
  r.in = bits;
  r.arg = arg;
  warp_collective(op, mask, width, r, file, line);
  return r.out;
}

CUEMU_INTERNAL inline unsigned ballot(unsigned mask, int predicate, const char* file, int line) {
  WarpRecord r;
  r.in = predicate != 0;
  warp_collective(WarpOp::Ballot, mask, 32, r, file, line);
  return static_cast<unsigned>(r.out);
}

// ---- shared memory ------------------------------------------------------------------------------------------------------
// MM_SHARED(T, name, dims): the first thread of the block to reach the declaration places it in the block's
// arena; every thread gets the same address. `Key` is a type unique to the declaration (a lambda's).
CUEMU_INTERNAL inline void* static_shared(const void* key, size_t bytes, size_t align) {
  Block& b = *t_block;
  for (int i = 0; i < b.num_static; ++i)
    if (b.static_keys[i] == key) return b.smem + b.static_offsets[i];
  size_t offset = (b.static_used + align - 1) & ~(align - 1);
  if (offset + bytes > kStaticSmemLimit || b.num_static == 64)
    fail(std::string("kernel ") + b.launch->name + ": more than 48 KiB of static shared memory");
  b.static_keys[b.num_static] = key;
  b.static_offsets[b.num_static++] = offset;
  b.static_used = offset + bytes;
  return b.smem + offset;
}
template <typename T, typename Key>
inline T& block_shared(Key) {
  static const char key = 0;
  return *static_cast<T*>(static_shared(&key, sizeof(T), alignof(T)));
}
CUEMU_ACCESSOR unsigned char* dynamic_shared() { return t_block->smem + kStaticSmemLimit; }

// ---- running a block ----------------------------------------------------------------------------------------------------
inline uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

CUEMU_INTERNAL inline void order_pass(Block& b, uint64_t pass) {
  const int n = b.nthreads;
  const auto schedule = static_cast<Schedule>(settings().schedule.load());
  for (int i = 0; i < n; ++i) b.order[i] = schedule == Schedule::Reverse ? n - 1 - i : i;
  if (schedule == Schedule::Random) {
    // Seeded by (seed, block, pass): the order does not depend on which OS thread runs the block.
    uint64_t state = settings().seed.load() * 0x100000001b3ull ^
                     ((uint64_t(b.bid.z) * 65536 + b.bid.y) * 65536 + b.bid.x) * 0x9e37ull ^ pass << 40;
    for (int i = n - 1; i > 0; --i) std::swap(b.order[i], b.order[splitmix(state) % uint64_t(i + 1)]);
  }
  b.cursor = 0;
}

[[noreturn]] CUEMU_INTERNAL inline void fiber_entry() {
  Block& b = *t_block;
  Fiber* self = b.current;
#if CUEMU_TSAN
  __tsan_acquire(&b.start_token);
#endif
  try {
    b.launch->body(b.launch->ctx);
  } catch (const std::exception& e) {
    if (b.error.empty()) b.error = e.what();
  }
#if CUEMU_TSAN
  __tsan_release(&b.end_token);
#endif
  self->state = FiberState::Done;
  on_exit(b, *self);
  yield_current(b);
  __builtin_unreachable();
}

CUEMU_INTERNAL inline void prepare_fiber(Fiber& f) {
  if (!f.stack) {
    void* mem = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("cuemu: cannot map a fiber stack");
    mprotect(mem, 4096, PROT_NONE);  // guard page: an overflow faults instead of corrupting a neighbour
    f.stack = static_cast<char*>(mem);
#if CUEMU_TSAN
    f.tsan_fiber = __tsan_create_fiber(0);
#endif
  }
  // Initial frame: 6 zeroed callee-saved registers, then the "return address" fiber_entry. After cuemu_switch
  // pops them and returns, rsp % 16 == 8, as at the entry of any function.
  uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 64);
  for (int i = 0; i < 6; ++i) sp[i] = nullptr;
  sp[6] = reinterpret_cast<void*>(&fiber_entry);
  sp[7] = nullptr;
  f.sp = sp;
}

inline std::string deadlock_report(Block& b) {
  std::string text = std::string("cuemu: DEADLOCK in kernel ") + b.launch->name + ", block (" +
                     std::to_string(b.bid.x) + "," + std::to_string(b.bid.y) + "," + std::to_string(b.bid.z) +
                     "): " + std::to_string(b.live) + " threads still waiting";
  int shown = 0;
  for (int i = 0; i < b.nthreads && shown < 4; ++i) {
    const Fiber& f = b.fibers[i];
    if (f.state == FiberState::AtBarrier || f.state == FiberState::InWarpOp) {
      text += std::string("; thread ") + std::to_string(i) +
              (f.state == FiberState::AtBarrier ? " in __syncthreads at " : " in a warp collective at ") +
              f.wait_file + ":" + std::to_string(f.wait_line);
      shown++;
    }
  }
  return text;
}

CUEMU_INTERNAL inline void run_block(Block& b, LaunchInfo& launch, unsigned linear_block) {
  b.launch = &launch;
  b.bid = {linear_block % launch.grid.x, linear_block / launch.grid.x % launch.grid.y,
           linear_block / (launch.grid.x * launch.grid.y)};
  const int n = static_cast<int>(launch.block.x * launch.block.y * launch.block.z);
  b.nthreads = n;
  b.live = n;
  b.bar_arrived = 0;
  b.bar_votes[0] = b.bar_votes[1] = 0;
  b.static_used = 0;
  b.num_static = 0;
  b.error.clear();
  b.warned_exit_barrier = false;
  if (settings().poison) std::memset(b.smem, 0xff, kStaticSmemLimit + launch.dyn_smem);
  for (int wi = 0; wi < (n + 31) / 32; ++wi) {
    Warp& w = b.warps[wi];
    w.live = wi * 32 + 32 <= n ? ~0u : (1u << (n - wi * 32)) - 1;
    for (WarpGroup& g : w.groups) g.arrived = g.mask = 0;
  }
  for (int i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    prepare_fiber(f);
    f.index = i;
    f.tid = {i % launch.block.x, i / launch.block.x % launch.block.y, i / (launch.block.x * launch.block.y)};
    f.state = FiberState::Runnable;
  }
#if CUEMU_TSAN
  b.scheduler_tsan_fiber = __tsan_get_current_fiber();
  __tsan_release(&b.start_token);  // the poisoning above happens before every thread of the block
#endif
  for (uint64_t pass = 0; b.live > 0 && b.error.empty(); ++pass) {
    order_pass(b, pass);
    b.ran_in_pass = false;
    if (Fiber* first = next_in_pass(b)) switch_to(&b.scheduler_sp, first, b);
    if (!b.ran_in_pass && b.live > 0) b.error = deadlock_report(b);
  }
#if CUEMU_TSAN
  __tsan_acquire(&b.end_token);
  // Threads abandoned after an error never released their accesses: hand them over to this thread in TSan's
  // bookkeeping only (a synchronising switch there and back, without running the fiber).
  for (int i = 0; i < n; ++i)
    if (b.fibers[i].state != FiberState::Done) {
      __tsan_switch_to_fiber(b.fibers[i].tsan_fiber, 0);
      __tsan_switch_to_fiber(b.scheduler_tsan_fiber, 0);
    }
#endif
  if (!b.error.empty()) {
    std::lock_guard<std::mutex> lock(launch.error_mutex);
    if (launch.error.empty()) launch.error = b.error;
    launch.failed = true;
  }
}

// The error of the last failed launch on this thread ("" when fine), cleared by reading, like cudaGetLastError.
inline thread_local std::string t_last_error;
inline std::string take_last_error() { return std::exchange(t_last_error, std::string()); }

inline void launch_grid(LaunchInfo& launch) {
  const unsigned threads = launch.block.x * launch.block.y * launch.block.z;
  const unsigned blocks = launch.grid.x * launch.grid.y * launch.grid.z;
  std::string bad;
  if (threads == 0 || threads > kMaxThreads || launch.block.z > 64) bad = "invalid block size";
  if (launch.dyn_smem > kDynamicSmemLimit) bad = "more dynamic shared memory than the 227 KiB a block can have";
  if (!bad.empty()) {
    t_last_error = std::string("cuemu: launch of ") + launch.name + ": " + bad;
    return;
  }
  if (blocks == 0) return;
  mm::parallel_tasks(static_cast<int>(blocks), [&](int block_index) {
    if (launch.failed) return;
    thread_local Block* worker_block = new Block();  // per OS thread, reused by every launch
    Block* outer = std::exchange(t_block, worker_block);
    run_block(*worker_block, launch, static_cast<unsigned>(block_index));
    t_block = outer;
  });
  if (launch.failed) t_last_error = launch.error;
}

// MM_LAUNCH(kernel, ...)(args...): the arguments are converted to the kernel's parameter types once (CUDA
// passes them by value), and each thread calls the kernel with its own copy.
template <typename... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, block;
  size_t smem;
  const char* name;

  template <typename... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "MM_LAUNCH: wrong number of kernel arguments");
    struct Context {
      void (*kernel)(Params...);
      std::tuple<std::decay_t<Params>...> args;
    } ctx{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
    LaunchInfo launch;
    launch.grid = grid;
    launch.block = block;
    launch.dyn_smem = smem;
    launch.name = name;
    launch.ctx = &ctx;
    launch.body = [](const void* p) {
      const Context& c = *static_cast<const Context*>(p);
      std::apply([&](const auto&... a) { c.kernel(a...); }, c.args);
    };
    launch_grid(launch);
  }
};
template <typename... Params>
inline Launcher<Params...> make_launcher(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                                         const char* name) {
  return {kernel, grid, block, smem, name};
}

}  // namespace cuemu

namespace cuemu {
CUEMU_ACCESSOR const dim3& block_dim() { return t_block->launch->block; }
CUEMU_ACCESSOR const dim3& grid_dim() { return t_block->launch->grid; }
CUEMU_ACCESSOR unsigned live_lanes() { return t_block->warps[t_block->current->index / 32].live; }
CUEMU_ACCESSOR int live_threads() { return t_block->live; }
}  // namespace cuemu

// ---- the CUDA names kernels use -------------------------------------------------------------------------------------------
#define threadIdx (::cuemu::thread_index())
#define blockIdx (::cuemu::block_index())
#define blockDim (::cuemu::block_dim())
#define gridDim (::cuemu::grid_dim())
constexpr int warpSize = 32;

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cuemu::barrier(0, file, line);
}
inline int __syncthreads_count(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(p, file, line);
}
inline int __syncthreads_or(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(p, file, line) > 0;
}
inline int __syncthreads_and(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(p, file, line) == cuemu::live_threads();
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cuemu::WarpRecord r;
  cuemu::warp_collective(cuemu::WarpOp::SyncWarp, mask, 32, r, file, line);
}
inline unsigned __ballot_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::ballot(mask, p, file, line);
}
inline int __any_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::ballot(mask, p, file, line) != 0;
}
inline int __all_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::ballot(mask, p, file, line) == (mask & cuemu::live_lanes());
}
inline unsigned __activemask() { return cuemu::live_lanes(); }
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(cuemu::shuffle(cuemu::WarpOp::ShflIdx, mask, cuemu::to_bits(v), src, width, file, line));
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::shuffle(cuemu::WarpOp::ShflUp, mask, cuemu::to_bits(v), int(delta), width, file, line));
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::shuffle(cuemu::WarpOp::ShflDown, mask, cuemu::to_bits(v), int(delta), width, file, line));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::shuffle(cuemu::WarpOp::ShflXor, mask, cuemu::to_bits(v), lane_mask, width, file, line));
}

// ---- WMMA (tensor-core fragments) -----------------------------------------------------------------------------------
// A fragment holds rows*cols/32 elements per lane; lane l owns elements l*ne .. l*ne+ne-1 of the tile in row-major
// order (the GPU's own layout differs: code that relies on which element x[i] is gives different results).
// load/store are warp-synchronous (a __syncwarp, then each lane moves its own elements); mma_sync gathers the
// warp's fragments, computes D = A*B + C in fp32 with fmaf in k order, and scatters D back.
namespace nvcuda::wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols / 32;
  using element_type = T;
  T x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename Layout, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const V& value) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = T(value);
}

namespace detail {
// Moves the calling lane's elements between a fragment and memory, after a warp-wide rendezvous.
template <typename Frag, typename P, typename Move>
inline void each_element(Frag& f, P* p, unsigned ldm, bool col_major, Move move) {
  __syncwarp();
  const int lane = ::cuemu::current_fiber()->index % 32;
  for (int i = 0; i < Frag::num_elements; ++i) {
    const int e = lane * Frag::num_elements + i, r = e / Frag::cols, c = e % Frag::cols;
    move(f.x[i], p[col_major ? size_t(c) * ldm + r : size_t(r) * ldm + c]);
  }
}

template <typename FA, typename FB, typename FC, typename FD>
CUEMU_INTERNAL void mma_compute(::cuemu::WarpRecord* const* lanes) {
  constexpr int M = FA::rows, K = FA::cols, N = FB::cols;
  float a[M * K], b[K * N], c[M * N];
  // Raw copies of every lane's fragments first (they live on the other lanes' stacks), then fp32 math.
  for (int l = 0; l < 32; ++l) {
    typename FA::element_type ea[FA::num_elements];
    typename FB::element_type eb[FB::num_elements];
    typename FC::element_type ec[FC::num_elements];
    __builtin_memcpy(static_cast<void*>(ea), static_cast<const FA*>(lanes[l]->operand[0])->x, sizeof ea);
    __builtin_memcpy(static_cast<void*>(eb), static_cast<const FB*>(lanes[l]->operand[1])->x, sizeof eb);
    __builtin_memcpy(static_cast<void*>(ec), static_cast<const FC*>(lanes[l]->operand[2])->x, sizeof ec);
    for (int i = 0; i < FA::num_elements; ++i) a[l * FA::num_elements + i] = float(ea[i]);
    for (int i = 0; i < FB::num_elements; ++i) b[l * FB::num_elements + i] = float(eb[i]);
    for (int i = 0; i < FC::num_elements; ++i) c[l * FC::num_elements + i] = float(ec[i]);
  }
  float d[M * N];
  for (int r = 0; r < M; ++r)
    for (int col = 0; col < N; ++col) {
      float acc = c[r * N + col];
      for (int k = 0; k < K; ++k) acc = fmaf(a[r * K + k], b[k * N + col], acc);
      d[r * N + col] = acc;
    }
  for (int l = 0; l < 32; ++l) {
    typename FD::element_type ed[FD::num_elements];
    for (int i = 0; i < FD::num_elements; ++i) ed[i] = typename FD::element_type(d[l * FD::num_elements + i]);
    __builtin_memcpy(static_cast<FD*>(const_cast<void*>(lanes[l]->operand[3]))->x, static_cast<const void*>(ed), sizeof ed);
  }
}
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  detail::each_element(f, p, ldm, std::is_same_v<Layout, col_major>, [](T& x, const T& m) { x = m; });
}
template <int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  detail::each_element(f, p, ldm, layout == mem_col_major, [](T& x, const T& m) { x = m; });
}
template <int M, int N, int K, typename T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  detail::each_element(f, p, ldm, layout == mem_col_major, [](const T& x, T& m) { m = x; });
}
template <typename FD, typename FA, typename FB, typename FC>
inline void mma_sync(FD& d, const FA& a, const FB& b, const FC& c, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  ::cuemu::WarpRecord r;
  r.operand[0] = &a;
  r.operand[1] = &b;
  r.operand[2] = &c;
  r.operand[3] = &d;
  r.compute = &detail::mma_compute<FA, FB, FC, FD>;
  ::cuemu::warp_collective(::cuemu::WarpOp::Matrix, 0xffffffffu, 32, r, file, line);
}
}  // namespace nvcuda::wmma

#define MM_LAUNCH(kernel, grid, block, smem, stream) \
  ((void)(stream), ::cuemu::make_launcher(kernel, dim3(grid), dim3(block), size_t(smem), #kernel))
#define MM_SHARED(T, name, dims) auto& name = ::cuemu::block_shared<T dims>([] {})
#define MM_EXTERN_SHARED(T, name) T* name = reinterpret_cast<T*>(::cuemu::dynamic_shared())

#endif  // emulator
