// Elementwise ops over n contiguous f32 values (memory-bound; vectorised by the compiler, threaded in chunks).
//   add(out, a, b, n)        out = a + b        (residual connections)
//   mul(out, a, b, n)        out = a * b
//   scale(out, x, alpha, n)  out = alpha * x
//   axpy(y, x, alpha, n)     y += alpha * x     (gradient accumulation: every backward's "+=")
// out may alias an input.
#include "mm.h"
#include "elementwise.h"

namespace mm::cpu {

static constexpr int64_t kGrain = 1 << 15;  // ~128 KiB per chunk: threads only pay off on large arrays

void add(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  });
}

void mul(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] * b[i];
  });
}

void scale(float* out, const float* x, float alpha, int64_t n) {
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = alpha * x[i];
  });
}

void axpy(float* y, const float* x, float alpha, int64_t n) {
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] += alpha * x[i];
  });
}

}  // namespace mm::cpu
