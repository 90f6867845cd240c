// 16-lane f32 vectors for the memory-bound kernels (norm, swiglu, embedding, loss, optim).
//
// A kernel body is written once with the GCC/Clang vector type f32x16 and compiled three times: for
// AVX-512, for AVX2+FMA and for plain x86-64 (SSE2), where the compiler splits each 16-lane operation into
// 1, 2 or 4 machine instructions. MM_VEC_VARIANTS makes the three copies and picks one at run time from the
// CPU's features (MINIMIND_CPU=portable forces the portable copy). Because every copy uses the same 16
// lanes, reductions add in the same order on every ISA; only FMA contraction differs.
//
// Kernel bodies have the shape `void body(const Args& args, int64_t begin, int64_t end)` over a range of
// rows or elements, so they plug straight into mm::parallel_for.
#pragma once
#include <cstdint>
#include <cstring>

#include "mm.h"

// The helpers below pass 64-byte vectors by value; they are always inlined, so the calling-convention
// (ABI) notes GCC prints about that do not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mm::cpu {

typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

// Helpers are force-inlined so that they compile for the ISA of the kernel copy that calls them.
#define MM_INLINE inline __attribute__((always_inline))

MM_INLINE f32x16 splat(float s) { return f32x16{} + s; }
// Unaligned loads and stores (memcpy compiles to one vmovups per register).
MM_INLINE f32x16 load(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MM_INLINE void store(float* p, f32x16 v) { std::memcpy(p, &v, sizeof v); }
MM_INLINE f32x16 vmax(f32x16 a, f32x16 b) { return a > b ? a : b; }
MM_INLINE f32x16 vmin(f32x16 a, f32x16 b) { return a < b ? a : b; }

// Lane sum in a fixed order (lane 0 first), so results never depend on the ISA.
MM_INLINE float hsum(f32x16 v) {
  float s = 0;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
MM_INLINE float hmax(f32x16 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// exp(x) for x <= 0 (softmax shifted by its max), within ~2 ulp: x = n*ln2 + r with n an integer and
// |r| <= ln2/2, so exp(x) = 2^n * exp(r), and the Taylor series of exp(r) to r^6 is off by < 1.3e-7.
// x is clamped below at -87 so results stay normal floats: exp(-inf) gives 1.6e-38 rather than 0, which
// no softmax below can tell apart.
MM_INLINE f32x16 vexp_nonpositive(f32x16 x) {
  x = vmax(x, splat(-87.0f));
  const f32x16 round_magic = splat(12582912.0f);  // adding 1.5 * 2^23 rounds to the nearest integer
  const f32x16 n = (x * 1.44269504088896341f + round_magic) - round_magic;
  f32x16 r = x - n * 0.693359375f;  // ln2 split in two so that n * ln2_hi is exact
  r = r - n * -2.12194440e-4f;
  f32x16 p = splat(1.0f / 720);
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n built directly in the exponent bits.
  const i32x16 bits = (__builtin_convertvector(n, i32x16) + 127) << 23;
  return p * (f32x16)bits;  // a vector cast reinterprets the bits
}

// exp(x) for any x, clamped above at 88 (exp(88) = 1.65e38) so it never overflows to inf.
MM_INLINE f32x16 vexp(f32x16 x) { return vexp_nonpositive(vmin(x, splat(88.0f))); }

// The scalar version of vexp for the last elements of a row (same formula, same results).
MM_INLINE float sexp(float x) { return vexp(splat(x))[0]; }

// Threads only pay off when each chunk of work is large enough: at least this many values per chunk.
constexpr int64_t kMinChunkValues = 1 << 14;

// Rows of `row_len` values per parallel chunk (at least one).
inline int64_t rows_per_chunk(int64_t row_len) {
  return row_len >= kMinChunkValues ? 1 : kMinChunkValues / (row_len > 0 ? row_len : 1);
}

template <class Args>
using RangeKernel = void (*)(const Args&, int64_t, int64_t);

template <class Args>
RangeKernel<Args> pick_variant(RangeKernel<Args> avx512, RangeKernel<Args> avx2, RangeKernel<Args> portable) {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx2 && f.fma) return avx512;
  if (f.avx2 && f.fma) return avx2;
  return portable;
}

}  // namespace mm::cpu

// Defines `body##_kernel()`, returning the copy of `body` (an MM_INLINE range kernel taking const Args&) that
// suits this CPU.
#if MM_HAVE_X86
#define MM_VEC_VARIANTS(body, Args)                                                                   \
  __attribute__((target("avx512f,avx2,fma"))) static void body##_avx512(const Args& a, int64_t b,   \
                                                                         int64_t e) {                \
    body(a, b, e);                                                                                   \
  }                                                                                                  \
  MM_TARGET_AVX2 static void body##_avx2(const Args& a, int64_t b, int64_t e) { body(a, b, e); }    \
  static void body##_portable(const Args& a, int64_t b, int64_t e) { body(a, b, e); }               \
  static ::mm::cpu::RangeKernel<Args> body##_kernel() {                                              \
    static const auto k = ::mm::cpu::pick_variant<Args>(body##_avx512, body##_avx2, body##_portable); \
    return k;                                                                                        \
  }
#else
#define MM_VEC_VARIANTS(body, Args)                                                                 \
  static void body##_portable(const Args& a, int64_t b, int64_t e) { body(a, b, e); }             \
  static ::mm::cpu::RangeKernel<Args> body##_kernel() { return body##_portable; }
#endif
